package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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

// stormAgent keeps one device connected the way loa-agent's link does: capped exponential
// backoff with full jitter after a lost or failed connection (protocol.Backoff, the link's
// defaults), and the hub's retry_after_s plus jitter after a busy answer. It reports the
// schedule revisions it holds, and counts its dials.
type stormAgent struct {
	id, secret string
	rev        atomic.Uint64 // newest schedule revision received
	dials      atomic.Int64
	busy       atomic.Int64
	upAt       atomic.Int64 // unix ns of the last welcome
	dialTimes  []time.Time  // owned by the agent's goroutine
}

type stormStats struct {
	busy, failed atomic.Int64
}

func (a *stormAgent) run(ctx context.Context, wsURL string, st *stormStats, rng *rand.Rand) {
	backoff := protocol.DefaultBackoff()
	attempt := 0
	for ctx.Err() == nil {
		a.dials.Add(1)
		a.dialTimes = append(a.dialTimes, time.Now())
		lasted, retry, err := a.session(ctx, wsURL)
		if ctx.Err() != nil {
			return
		}
		if lasted > backoff.Max {
			attempt = 0
		}
		wait := backoff.Delay(attempt, rng)
		if retry > 0 {
			a.busy.Add(1)
			st.busy.Add(1)
			wait = max(wait, protocol.RetryAfter(retry, rng))
		} else if err != nil && lasted == 0 {
			st.failed.Add(1)
		}
		attempt++
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// session is one connection: hello with the revision held, then schedules until it drops.
// It returns how long it lasted after the welcome and the hub's retry_after when turned away.
func (a *stormAgent) session(ctx context.Context, wsURL string) (time.Duration, time.Duration, error) {
	d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, HandshakeTimeout: 30 * time.Second}
	ws, resp, err := d.DialContext(ctx, wsURL, http.Header{"Authorization": {protocol.FormatDeviceAuth(a.id, a.secret)}})
	if err != nil {
		if resp != nil && resp.Header.Get("Retry-After") != "" {
			if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); n > 0 {
				return 0, time.Duration(n) * time.Second, err
			}
		}
		return 0, 0, err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	hello := &protocol.Hello{Header: protocol.Header{ID: "a-0"}, DeviceID: a.id, SoftwareVersion: "loadgen-storm"}
	if r := a.rev.Load(); r > 0 {
		hello.ActiveSchedule = &protocol.ScheduleRef{ID: "dev-" + a.id, Revision: r}
	}
	b, _ := protocol.Encode(hello)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return 0, 0, err
	}
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, b, err = ws.ReadMessage()
	if err != nil {
		return 0, 0, err
	}
	m, err := protocol.Decode(b)
	if err != nil {
		return 0, 0, err
	}
	switch m := m.(type) {
	case *protocol.ErrorMessage:
		return 0, time.Duration(m.RetryAfterS) * time.Second, errors.New(m.Code)
	case *protocol.Welcome:
	default:
		return 0, 0, fmt.Errorf("first answer %s", m.Type())
	}
	up := time.Now()
	a.upAt.Store(up.UnixNano())
	ws.SetReadDeadline(time.Time{})
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return time.Since(up), 0, err
		}
		m, err := protocol.Decode(b)
		if err != nil {
			continue
		}
		if s, ok := m.(*protocol.Schedule); ok {
			var p protocol.SchedulePayload
			if s.Signed != nil && json.Unmarshal(s.Signed.Payload, &p) == nil && p.Revision > a.rev.Load() {
				a.rev.Store(p.Revision)
				d, _ := protocol.Encode(&protocol.Delivery{Header: protocol.Header{ID: "d-" + s.ID, Re: s.ID},
					ScheduleID: p.ScheduleID, Revision: p.Revision, State: protocol.DeliveryActive})
				ws.WriteMessage(websocket.TextMessage, d)
			}
		}
	}
}

// storm measures a reconnection storm: n agents connected and up to date; the hub is
// restarted (by the script, which writes a line on stdin as the old hub goes); a new
// revision is pushed at once; every agent reconnects as loa-agent does. It prints, from the
// restart: when every agent was connected and when every agent held the new revision
// (median, p99, max), the busy answers and failed dials, and the most dials one agent made in
// any minute.
func storm(hubURL, token, parent string, n, conc int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl := &client.Client{BaseURL: hubURL, Token: token, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
	area := parent + "/storm-" + strconv.FormatInt(time.Now().Unix(), 36)
	if _, err := cl.AddArea(ctx, area, "storm"); err != nil {
		return err
	}
	agents := make([]*stormAgent, n)
	if err := parallel(n, conc, func(i int) error {
		id := fmt.Sprintf("s%d/a-%05d", time.Now().Unix()%100000, i)
		r, err := cl.Enrol(ctx, api.EnrolRequest{ID: id, Area: area})
		agents[i] = &stormAgent{id: id, secret: r.Secret}
		return err
	}); err != nil {
		return fmt.Errorf("enrol: %w", err)
	}
	doc := func(rev int) []byte { // each revision moves the news, so the hub has something new to send
		return fmt.Appendf(nil, "version: 1\nid: storm\nrevision: %d\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
			"  - id: news\n    cron: \"0 %d 6 * * *\"\n    items:\n      - stream: http://radio.example/news.mp3\n        duration: 15m\n", rev, 30+rev)
	}
	if _, err := cl.PushSchedule(ctx, area, "storm.yaml", doc(1)); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	wsURL := "ws" + strings.TrimPrefix(hubURL, "http") + "/agent/ws"
	var st stormStats
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, a := range agents {
		rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		wg.Go(func() { a.run(ctx, wsURL, &st, rng) })
	}
	t0 := time.Now()
	if err := waitUntil(10*time.Minute, func() bool { return countRev(agents, 1) == n }); err != nil {
		return fmt.Errorf("first connection: %d of %d agents hold revision 1: %w", countRev(agents, 1), n, err)
	}
	fmt.Printf("%d agents connected and up to date in %.1fs (a cold start; %d busy answers)\n", n, time.Since(t0).Seconds(), st.busy.Load())
	for _, a := range agents {
		a.dials.Store(0)
		a.busy.Store(0)
	}
	st.busy.Store(0)
	st.failed.Store(0)
	fmt.Println("STORM_READY")
	os.Stdout.Sync()
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the restart: %w", err)
	}
	// The line comes when the old hub is gone: times count from there, the new hub's start
	// included, as a technician would count them.
	restart := time.Now()
	if err := waitUntil(2*time.Minute, func() bool {
		resp, err := http.Get(hubURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return fmt.Errorf("the hub did not come back: %w", err)
	}
	hubUp := time.Since(restart)
	if _, err := cl.PushSchedule(ctx, area, "storm.yaml", doc(2)); err != nil {
		return fmt.Errorf("push after the restart: %w", err)
	}
	pushed := time.Since(restart)
	connected := make([]time.Duration, 0, n)
	current := make([]time.Duration, 0, n)
	seen := make([]bool, n)
	seenConn := make([]bool, n)
	lastSay := time.Now()
	err := waitUntil(10*time.Minute, func() bool {
		if time.Since(lastSay) > 10*time.Second {
			lastSay = time.Now()
			fmt.Printf("  %.0fs after the kill: %d connected, %d hold revision 2, %d busy answers, %d failed dials\n",
				time.Since(restart).Seconds(), len(connected), len(current), st.busy.Load(), st.failed.Load())
		}
		for i, a := range agents {
			if !seenConn[i] && a.upAt.Load() > restart.UnixNano() {
				seenConn[i] = true
				connected = append(connected, time.Duration(a.upAt.Load()-restart.UnixNano()))
			}
			if !seen[i] && a.rev.Load() >= 2 {
				seen[i] = true
				current = append(current, time.Since(restart))
			}
		}
		return len(current) == n
	})
	if err != nil {
		return fmt.Errorf("after the restart: %d of %d agents hold revision 2: %w", len(current), n, err)
	}
	cancel()
	wg.Wait()
	perMinute := 0
	total := int64(0)
	for _, a := range agents {
		total += a.dials.Load()
		perMinute = max(perMinute, mostInAMinute(a.dialTimes, restart))
	}
	cm, cp, cx := percentiles(connected)
	um, up, ux := percentiles(current)
	fmt.Printf("hub answering %.2fs after the old one went; push of revision 2 answered at %.2fs\n", hubUp.Seconds(), pushed.Seconds())
	fmt.Printf("STORM_CONNECTED_S median %.1f p99 %.1f max %.1f\n", cm.Seconds(), cp.Seconds(), cx.Seconds())
	fmt.Printf("STORM_CURRENT_S median %.1f p99 %.1f max %.1f\n", um.Seconds(), up.Seconds(), ux.Seconds())
	fmt.Printf("STORM_DIALS total %d per_agent %.2f busy %d failed %d most_in_a_minute %d\n", total, float64(total)/float64(n),
		st.busy.Load(), st.failed.Load(), perMinute)
	return nil
}

func countRev(agents []*stormAgent, rev uint64) int {
	k := 0
	for _, a := range agents {
		if a.rev.Load() >= rev {
			k++
		}
	}
	return k
}

func waitUntil(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// mostInAMinute is the most dials in any 60 s window after since.
func mostInAMinute(ts []time.Time, since time.Time) int {
	ts = slices.DeleteFunc(slices.Clone(ts), func(t time.Time) bool { return t.Before(since) })
	most, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) > time.Minute {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}
