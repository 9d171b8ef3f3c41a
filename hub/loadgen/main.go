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

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/protocol"
)

func main() {
	hubURL := flag.String("hub", "", "hub base URL (http://127.0.0.1:8470)")
	token := flag.String("token", "", "staff token scoped to --parent or above")
	parent := flag.String("parent", "", "existing area to create the bench area under")
	n := flag.Int("agents", 1000, "simulated agents")
	batches := flag.Int("batches", 4, "confirmation batches per agent")
	batch := flag.Int("batch", 100, "records per batch")
	conc := flag.Int("concurrency", 64, "parallel enrolments and dials")
	floorURL := flag.String("floor", "", "URL of a `loadgen floor` server (ws://host:port)")
	hub2 := flag.String("hub2", "", "a second hub replica on the same database: every other agent connects to it, the push goes through --hub")
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
	flag.Parse()
	if err := run(*hubURL, *hub2, *token, *parent, *floorURL, *n, *batches, *batch, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type agent struct {
	id, secret string
	ws         *websocket.Conn
	wmu        sync.Mutex
	got        chan time.Time // receipt of a schedule
	acks       chan uint64
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
			close(a.got)
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
	a.got, a.acks = make(chan time.Time, 4), make(chan uint64, 64)
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

// waitAll waits for one schedule receipt per agent and returns the latencies from start.
func waitAll(agents []*agent, start time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, len(agents))
	timeout := time.After(5 * time.Minute)
	for i, a := range agents {
		select {
		case at, ok := <-a.got:
			if !ok {
				return nil, fmt.Errorf("agent %s lost its connection", a.id)
			}
			out[i] = at.Sub(start)
		case <-timeout:
			return nil, errors.New("timed out waiting for schedules")
		}
	}
	return out, nil
}

func run(hubURL, hub2, token, parent, floorURL string, n, batches, batchSize, conc int) error {
	ctx := context.Background()
	cl := &client.Client{BaseURL: hubURL, Token: token, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	area := parent + "/bench-" + strconv.FormatInt(time.Now().Unix(), 36)
	if _, err := cl.AddArea(ctx, area, "bench"); err != nil {
		return err
	}
	agents := make([]*agent, n)
	t0 := time.Now()
	if err := parallel(n, conc, func(i int) error {
		id := fmt.Sprintf("b%d/a-%05d", time.Now().Unix()%100000, i)
		r, err := cl.Enrol(ctx, api.EnrolRequest{ID: id, Area: area})
		agents[i] = &agent{id: id, secret: r.Secret}
		return err
	}); err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	fmt.Printf("enrolled %d agents in %.1fs\n", n, time.Since(t0).Seconds())
	wsURLs := []string{"ws" + strings.TrimPrefix(hubURL, "http") + "/agent/ws"}
	if hub2 != "" {
		wsURLs = append(wsURLs, "ws"+strings.TrimPrefix(hub2, "http")+"/agent/ws")
	}
	t0 = time.Now()
	if err := parallel(n, conc, func(i int) error { _, err := dial(wsURLs[i%len(wsURLs)], agents[i]); return err }); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	fmt.Printf("connected %d agents in %.1fs (%.0f/s)\n", n, time.Since(t0).Seconds(), float64(n)/time.Since(t0).Seconds())
	fmt.Printf("HUB_CONNECTED %d\n", n)
	os.Stdout.Sync()
	time.Sleep(500 * time.Millisecond) // let the script read the hub's RSS

	doc := fmt.Sprintf("version: 1\nid: bench\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n" +
		"  - id: relay\n    cron: \"0 0 11 * * MON-FRI\"\n    items:\n      - stream: http://radio.example/qnr.mp3\n        duration: 30m\n" +
		"  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://radio.example/news.mp3\n        duration: 15m\n")
	start := time.Now()
	res, err := cl.PushSchedule(ctx, area, "bench.yaml", []byte(doc))
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	pushCall := time.Since(start)
	lat, err := waitAll(agents, start)
	if err != nil {
		return err
	}
	med, p99, mx := percentiles(lat)
	sample := *agents[0].sample.Load()
	fmt.Printf("push to %d agents (%d composed, %d sent; %d-byte schedule message): API call %.2fs; agent receipt median %.3fs p99 %.3fs max %.3fs\n",
		n, res.Devices, res.Sent, len(sample), pushCall.Seconds(), med.Seconds(), p99.Seconds(), mx.Seconds())

	// Confirmations: every agent sends its batches (waiting for each ack) to the hub, then the
	// same to the floor, which answers each with an ack and stores nothing.
	ingest := func(as []*agent) (float64, error) {
		start := time.Now()
		// At most 1,000 agents send at once: a whole province reporting in the same second is
		// not how plays end, and 10,000 simultaneous batches would measure queueing only.
		err := parallel(len(as), min(len(as), 1000), func(i int) error {
			a := as[i]
			for b := range batches {
				m := &protocol.Confirmations{Header: protocol.Header{ID: "c-" + strconv.Itoa(b)}}
				for k := range batchSize {
					seq := uint64(b*batchSize + k + 1)
					t := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
					pk, rms := -1.0, -18.0
					m.Records = append(m.Records, protocol.Confirmation{Device: a.id, Seq: seq, Output: "speakers", ScheduleID: "dev-" + a.id,
						Revision: 1, Program: "bench/relay", Item: "http://radio.example/qnr.mp3", Scheduled: t, Start: t, End: t.Add(time.Second),
						Proof: protocol.Proof{PlayedS: 1, PeakDBFS: &pk, RMSDBFS: &rms}, Result: protocol.ResultCompleted, Clock: protocol.ClockSynced})
				}
				bts, err := protocol.Encode(m)
				if err != nil {
					return err
				}
				if err := a.write(bts); err != nil {
					return err
				}
				select {
				case got := <-a.acks:
					if got != uint64((b+1)*batchSize) && got != 0 {
						return fmt.Errorf("%s: ack %d after batch %d", a.id, got, b)
					}
				case <-time.After(5 * time.Minute):
					return fmt.Errorf("%s: no ack", a.id)
				}
			}
			return nil
		})
		return float64(len(as)*batches*batchSize) / time.Since(start).Seconds(), err
	}
	rate, err := ingest(agents)
	if err != nil {
		return fmt.Errorf("confirmations: %w", err)
	}
	for _, a := range agents {
		a.ws.Close()
	}
	if floorURL == "" {
		fmt.Printf("PUSH_MEDIAN_S %.3f FLOOR 0 RATIO 0\nPUSH_P99_S %.3f FLOOR 0 RATIO 0\nCONFIRMATIONS_PER_S %.0f FLOOR 0\n", med.Seconds(), p99.Seconds(), rate)
		return nil
	}
	time.Sleep(time.Second) // let the hub drop its side of the connections

	// The floor: a separate process with no hub logic writes the same bytes to as many
	// connections, with as many writers as the hub's push uses, and acks without storing.
	fagents := make([]*agent, n)
	if err := parallel(n, conc, func(i int) error {
		fagents[i] = &agent{id: agents[i].id, secret: "x"}
		_, err := dial(floorURL+"/agent/ws", fagents[i])
		return err
	}); err != nil {
		return fmt.Errorf("floor connect: %w", err)
	}
	ctl := "http" + strings.TrimPrefix(floorURL, "ws")
	fstart := time.Now()
	resp, err := http.Post(ctl+"/fanout?workers=4", "application/octet-stream", bytes.NewReader(sample))
	if err != nil {
		return fmt.Errorf("floor fanout: %w", err)
	}
	resp.Body.Close()
	flat, err := waitAll(fagents, fstart)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmed, fp99, fmx := percentiles(flat)
	fmt.Printf("PUSH_MEDIAN_S %.3f FLOOR %.3f RATIO %.1f\n", med.Seconds(), fmed.Seconds(), med.Seconds()/max(fmed.Seconds(), 1e-6))
	fmt.Printf("PUSH_P99_S %.3f FLOOR %.3f RATIO %.1f\n", p99.Seconds(), fp99.Seconds(), p99.Seconds()/max(fp99.Seconds(), 1e-6))
	fmt.Printf("PUSH_MAX_S %.3f FLOOR %.3f\n", mx.Seconds(), fmx.Seconds())
	frate, err := ingest(fagents)
	if err != nil {
		return fmt.Errorf("floor confirmations: %w", err)
	}
	fmt.Printf("CONFIRMATIONS_PER_S %.0f FLOOR %.0f (%d agents x %d batches x %d records)\n", rate, frate, n, batches, batchSize)
	return nil
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
