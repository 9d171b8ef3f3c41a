// Command loadgen simulates many lightweight agents over real websockets to measure a hub:
// the time from a schedule push until every agent has it (median, p99), beside the floor (the
// same bytes written to the same number of connections by a server with no hub logic, measured
// in the same run), and confirmations ingested per second. scripts/bench-hub runs it.
// `loadgen storm` measures a reconnection storm after a hub restart (scripts/bench-storm).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/protocol"
)

func main() {
	hubURL := flag.String("hub", "", "hub base URLs, comma-separated (http://127.0.0.1:8470): replicas on one database; agent i connects to the i-th modulo their number, enrolment and the push go through the first")
	token := flag.String("token", "", "staff token scoped to --parent or above")
	parent := flag.String("parent", "", "existing area to create the bench area under")
	n := flag.Int("agents", 1000, "simulated agents")
	batches := flag.Int("batches", 4, "confirmation batches per agent")
	batch := flag.Int("batch", 100, "records per batch")
	conc := flag.Int("concurrency", 64, "parallel enrolments and dials")
	floorURL := flag.String("floor", "", "URLs of `loadgen floor` servers, comma-separated (ws://host:port): agent i connects to the i-th modulo their number")
	procs := flag.Int("procs", 0, "loadgen processes holding the agents (0: one per 15,000 agents; 1: this process alone)")
	if len(os.Args) > 1 && os.Args[1] == "storm" {
		fs := flag.NewFlagSet("storm", flag.ExitOnError)
		hubURL := fs.String("hub", "", "hub base URL (http://127.0.0.1:8470)")
		token := fs.String("token", "", "staff token scoped to --parent or above")
		parent := fs.String("parent", "", "existing area to create the storm area under")
		n := fs.Int("agents", 10000, "simulated agents")
		conc := fs.Int("concurrency", 64, "parallel enrolments")
		fs.Parse(os.Args[2:])
		if err := storm(*hubURL, *token, *parent, *n, *conc); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen storm:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := serveFloor(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen floor:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "worker" { // a fleet of a coordinator's (fleet.go)
		if err := serveWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen worker:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	c := config{hubs: splitList(*hubURL), floors: splitList(*floorURL), token: *token, parent: *parent,
		n: *n, batches: *batches, batch: *batch, conc: *conc, procs: *procs}
	if len(c.hubs) == 0 || c.n < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: --hub and --agents (1 or more) are needed")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

type agent struct {
	id, secret string
	ws         *websocket.Conn
	wmu        sync.Mutex
	got        chan time.Time // receipt of a schedule
	acks       chan uint64
	gone       chan struct{}                  // closed when the connection is lost
	lost       error                          // why, set before gone is closed
	live       atomic.Pointer[websocket.Conn] // once welcomed: what keepalive pings
	sample     atomic.Pointer[[]byte]
}

func (a *agent) write(b []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return a.ws.WriteMessage(websocket.TextMessage, b)
}

func (a *agent) readLoop() {
	for {
		_, b, err := a.ws.ReadMessage()
		if err != nil {
			a.lost = err
			close(a.got)
			close(a.gone)
			return
		}
		at := time.Now()
		m, err := protocol.Decode(b)
		if err != nil {
			continue
		}
		switch m := m.(type) {
		case *protocol.Schedule:
			a.sample.Store(&b)
			var p protocol.SchedulePayload
			if m.Signed != nil && json.Unmarshal(m.Signed.Payload, &p) == nil && p.Revision > 0 {
				d, err := protocol.Encode(&protocol.Delivery{Header: protocol.Header{ID: "d-" + m.ID, Re: m.ID},
					ScheduleID: p.ScheduleID, Revision: p.Revision, State: protocol.DeliveryReceived})
				if err == nil {
					a.write(d)
				}
			}
			a.got <- at
		case *protocol.Ack:
			a.acks <- m.Seq
		}
	}
}

func dial(url string, a *agent) (*protocol.Welcome, error) {
	d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial(url, http.Header{"Authorization": {protocol.FormatDeviceAuth(a.id, a.secret)}})
	if err != nil {
		return nil, err
	}
	a.ws = ws
	hello, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "a-0"}, DeviceID: a.id, SoftwareVersion: "loadgen"})
	if err := a.write(hello); err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Time{})
	m, err := protocol.Decode(b)
	if err != nil {
		return nil, err
	}
	w, ok := m.(*protocol.Welcome)
	if !ok {
		return nil, fmt.Errorf("%s: first answer %s", a.id, m.Type())
	}
	a.got, a.acks, a.gone = make(chan time.Time, 4), make(chan uint64, 64), make(chan struct{})
	a.live.Store(ws)
	go a.readLoop()
	return w, nil
}

func parallel(n, conc int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func percentiles(ds []time.Duration) (med, p99, max time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
}

// config is one run of the load generator.
type config struct {
	hubs, floors            []string
	token, parent           string
	n, batches, batch, conc int
	procs                   int
}

// perProcess is how many agents one loadgen process holds by default: below the bench
// sandbox's hard limit of 20,000 open files, with room for the process's own.
const perProcess = 15000

// stepper is a fleet, here or in a worker process.
type stepper interface{ do(step) result }

func run(c config) error {
	ctx := context.Background()
	cl := &client.Client{BaseURL: c.hubs[0], Token: c.token}
	area := c.parent + "/bench-" + strconv.FormatInt(time.Now().Unix(), 36)
	if _, err := cl.AddArea(ctx, area, "bench"); err != nil {
		return err
	}
	procs := c.procs
	if procs <= 0 {
		procs = (c.n + perProcess - 1) / perProcess
	}
	procs = min(procs, c.n)
	fleets := make([]stepper, procs)
	if procs == 1 {
		f := &fleet{}
		defer f.stopKeepalive()
		fleets[0] = f
	} else {
		var workers []*worker
		defer func() {
			for _, w := range workers {
				w.stop()
			}
		}()
		for k := range fleets {
			w, err := startWorker()
			if err != nil {
				return err
			}
			workers = append(workers, w)
			fleets[k] = w
		}
		fmt.Printf("%d agents in %d loadgen processes\n", c.n, procs)
	}
	// all runs a step on every fleet at once; mk makes fleet k's.
	all := func(mk func(k int) step) ([]result, error) {
		rs := make([]result, len(fleets))
		parallel(len(fleets), len(fleets), func(k int) error { rs[k] = fleets[k].do(mk(k)); return nil })
		for _, r := range rs {
			if r.Err != "" {
				return nil, errors.New(r.Err)
			}
		}
		return rs, nil
	}
	share := func(total int) int { return max(1, (total+procs-1)/procs) } // a fleet's part of a concurrency
	// The agents' URLs on the hubs (http://…) and the floors (ws://…).
	wsURLs := func(bases []string) []string {
		out := make([]string, len(bases))
		for i, b := range bases {
			out[i] = "ws" + strings.TrimPrefix(strings.TrimPrefix(b, "ws"), "http") + "/agent/ws"
		}
		return out
	}
	prefix := fmt.Sprintf("b%d", time.Now().Unix()%100000)

	t0 := time.Now()
	if _, err := all(func(k int) step {
		first := k * c.n / procs
		return step{Op: "enrol", Hub: c.hubs[0], Token: c.token, Area: area, Prefix: prefix,
			First: first, Count: (k+1)*c.n/procs - first, Conc: share(c.conc)}
	}); err != nil {
		return err
	}
	fmt.Printf("enrolled %d agents in %.1fs\n", c.n, time.Since(t0).Seconds())
	t0 = time.Now()
	if _, err := all(func(int) step { return step{Op: "connect", URLs: wsURLs(c.hubs), Conc: share(c.conc)} }); err != nil {
		return err
	}
	fmt.Printf("connected %d agents in %.1fs (%.0f/s)\n", c.n, time.Since(t0).Seconds(), float64(c.n)/time.Since(t0).Seconds())
	fmt.Printf("HUB_CONNECTED %d\n", c.n)
	os.Stdout.Sync()
	time.Sleep(500 * time.Millisecond) // let the script read the hubs' RSS

	doc := fmt.Sprintf("version: 1\nid: bench\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n" +
		"  - id: relay\n    cron: \"0 0 11 * * MON-FRI\"\n    items:\n      - stream: http://radio.example/qnr.mp3\n        duration: 30m\n" +
		"  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://radio.example/news.mp3\n        duration: 15m\n")
	// The fleets wait for their schedules while the push is sent: each receipt is measured
	// from this instant, whichever process saw it.
	type pushed struct {
		rs  []result
		err error
	}
	got := make(chan pushed, 1)
	go func() {
		rs, err := all(func(int) step { return step{Op: "receipts"} })
		got <- pushed{rs, err}
	}()
	start := time.Now()
	res, err := cl.PushSchedule(ctx, area, "bench.yaml", []byte(doc))
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	pushCall := time.Since(start)
	p := <-got
	if p.err != nil {
		return p.err
	}
	lat, err := latencies(p.rs, start, c.n)
	if err != nil {
		return err
	}
	med, p99, mx := percentiles(lat)
	sample := p.rs[0].Sample
	fmt.Printf("push to %d agents (%d composed, %d sent by the first hub; %d-byte schedule message): API call %.2fs; agent receipt median %.3fs p99 %.3fs max %.3fs\n",
		c.n, res.Devices, res.Sent, len(sample), pushCall.Seconds(), med.Seconds(), p99.Seconds(), mx.Seconds())

	// Confirmations: every agent sends its batches (waiting for each ack) to the hub, then the
	// same to the floor, which answers each with an ack and stores nothing. At most 1,000
	// agents send at once over all fleets: a whole province reporting in the same second is
	// not how plays end, and 10,000 simultaneous batches would measure queueing only.
	ingest := func() (float64, error) {
		rs, err := all(func(int) step { return step{Op: "ingest", Batches: c.batches, Batch: c.batch, Conc: share(1000)} })
		if err != nil {
			return 0, err
		}
		r, _ := rate(rs)
		return r, nil
	}
	hubRate, err := ingest()
	if err != nil {
		return err
	}
	if _, err := all(func(int) step { return step{Op: "close"} }); err != nil {
		return err
	}
	if len(c.floors) == 0 {
		fmt.Printf("PUSH_MEDIAN_S %.3f FLOOR 0 RATIO 0\nPUSH_P99_S %.3f FLOOR 0 RATIO 0\nCONFIRMATIONS_PER_S %.0f FLOOR 0\n", med.Seconds(), p99.Seconds(), hubRate)
		return nil
	}
	time.Sleep(time.Second) // let the hubs drop their side of the connections

	// The floor: processes with no hub logic (as many as the hubs, each with its share of the
	// agents) write the same bytes to as many connections, each with as many writers as a
	// hub's push uses, and ack without storing.
	if _, err := all(func(int) step { return step{Op: "connect", URLs: wsURLs(c.floors), Conc: share(c.conc)} }); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	go func() {
		rs, err := all(func(int) step { return step{Op: "receipts"} })
		got <- pushed{rs, err}
	}()
	fstart := time.Now()
	if err := parallel(len(c.floors), len(c.floors), func(i int) error {
		resp, err := http.Post("http"+strings.TrimPrefix(c.floors[i], "ws")+"/fanout?workers=4", "application/octet-stream", bytes.NewReader(sample))
		if err != nil {
			return fmt.Errorf("floor fanout: %w", err)
		}
		return resp.Body.Close()
	}); err != nil {
		return err
	}
	p = <-got
	if p.err != nil {
		return fmt.Errorf("floor: %w", p.err)
	}
	flat, err := latencies(p.rs, fstart, c.n)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmed, fp99, fmx := percentiles(flat)
	fmt.Printf("PUSH_MEDIAN_S %.3f FLOOR %.3f RATIO %.1f\n", med.Seconds(), fmed.Seconds(), med.Seconds()/max(fmed.Seconds(), 1e-6))
	fmt.Printf("PUSH_P99_S %.3f FLOOR %.3f RATIO %.1f\n", p99.Seconds(), fp99.Seconds(), p99.Seconds()/max(fp99.Seconds(), 1e-6))
	fmt.Printf("PUSH_MAX_S %.3f FLOOR %.3f\n", mx.Seconds(), fmx.Seconds())
	floorRate, err := ingest()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmt.Printf("CONFIRMATIONS_PER_S %.0f FLOOR %.0f (%d agents x %d batches x %d records)\n", hubRate, floorRate, c.n, c.batches, c.batch)
	_, err = all(func(int) step { return step{Op: "close"} })
	return err
}

// serveFloor runs the floor server: a websocket server with no hub logic. It answers hello
// with a fixed welcome, writes the body of POST /fanout to every connection, and acks every
// confirmations message without storing anything.
func serveFloor() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var conns []*floorConn
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	welcome, _ := protocol.Encode(&protocol.Welcome{Header: protocol.Header{ID: "h-1"}, HelloReceivedAt: time.Now(), HubTime: time.Now(), ResendFrom: 1})
	m := http.NewServeMux()
	m.HandleFunc("GET /agent/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		c := &floorConn{ws: ws}
		ws.SetReadLimit(protocol.DefaultMaxMessageBytes)
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		c.write(welcome)
		var ack bytes.Buffer
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var env struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			if json.Unmarshal(b, &env) == nil && env.Type == "confirmations" {
				ack.Reset()
				fmt.Fprintf(&ack, `{"v":1,"type":"ack","id":"h","re":%q,"seq":0}`, env.ID)
				c.write(ack.Bytes())
			}
		}
	})
	m.HandleFunc("POST /fanout", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := io.ReadAll(r.Body)
		workers, _ := strconv.Atoi(r.URL.Query().Get("workers"))
		mu.Lock()
		cs := slices.Clone(conns)
		mu.Unlock()
		parallel(len(cs), max(1, workers), func(i int) error { cs[i].write(msg); return nil })
		fmt.Fprintln(w, len(cs))
	})
	fmt.Printf("FLOOR_URL ws://%s\n", ln.Addr())
	return http.Serve(ln, m)
}

type floorConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *floorConn) write(b []byte) {
	c.wmu.Lock()
	c.ws.WriteMessage(websocket.TextMessage, b)
	c.wmu.Unlock()
}
