package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/powercut"
	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// TestHubSurvivesPowerCuts runs loa-hub with its data directory (the SQLite store and the
// content) on internal/powercut while a device sends confirmations and staff push schedules,
// and cuts the power at random moments (LOA_HUB_POWERCUTS of them: 5 in make test, about 5 s
// each; `make soak` runs 100): the filesystem drops every write not yet fsynced, the hub is
// SIGKILLed at the same moment and started again on what survived. After each cut the hub
// must start, and everything it acknowledged before the cut must be there: every confirmation
// it acked (field by field), every push it answered 200 to (the revision, its document's
// programme), the device and the staff token. The device then resends what was not
// acknowledged, as an agent's journal does, and the hub takes it once.
//
// The filesystem is served by this test process and used only by the hub process: a process
// that serves a FUSE mount and uses it itself can deadlock (internal/powercut.InProcessEnv).
func TestHubSurvivesPowerCuts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	cuts, rng := powercut.Schedule(t, "LOA_HUB_POWERCUTS", 5, 23)

	hubBin, _, _ := bins(t)
	dir := t.TempDir()
	backing, data := filepath.Join(dir, "disk"), filepath.Join(dir, "data")
	var pc *powercut.FS
	mount := func() {
		var err error
		pc, err = powercut.Mount(backing, data, powercut.Options{Reorder: rand.New(rand.NewPCG(rng.Uint64(), 3))})
		if err != nil {
			t.Skipf("cannot mount the power-cut filesystem: %v", err)
		}
	}
	mount()

	addr := testkit.FreeAddr(t)
	base := "http://" + addr
	testkit.Run(t, nil, hubBin, "keygen", "--out", filepath.Join(dir, "hub.key"), "--key-id", "hub-test")
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\ndata_dir: %s\nsigning_key_file: hub.key\nsigning_key_id: hub-test\n", addr, data)), 0o644)
	admin := lastLine(testkit.Run(t, nil, hubBin, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", cfg))

	var (
		hub  *exec.Cmd
		logs []string // each run's log, for a failure
		logf *os.File
	)
	startHub := func() {
		t.Helper()
		var err error
		logf, err = os.Create(filepath.Join(dir, fmt.Sprintf("hub-%d.log", len(logs))))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, logf.Name())
		hub = exec.Command(hubBin, "serve", "--config", cfg)
		hub.Stdout, hub.Stderr = logf, logf
		if err := hub.Start(); err != nil {
			t.Fatal(err)
		}
		if !testkit.Poll(30*time.Second, 50*time.Millisecond, func() bool {
			resp, err := http.Get(base + "/api/areas")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		}) {
			t.Fatalf("the hub did not listen again after the cut:\n%s", lastLog(logs))
		}
	}
	kill := func() {
		if hub != nil && hub.Process != nil {
			hub.Process.Signal(syscall.SIGKILL)
			hub.Wait()
			hub = nil
		}
		if logf != nil {
			logf.Close()
		}
	}
	t.Cleanup(func() { kill(); pc.Unmount() })
	call := func(method, path string, body, out any) (int, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		c := http.Client{Timeout: 20 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(b, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: %v: %s", method, path, err, b)
			}
		}
		if resp.StatusCode/100 != 2 {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, nil
	}

	startHub()
	const device, area = "c1/cl-01", "qn/c1"
	if _, err := call("POST", "/api/areas", api.AreaJSON{ID: area, Name: "Xã 1"}, nil); err != nil {
		t.Fatal(err)
	}
	var enrol api.EnrolResponse
	if _, err := call("POST", "/api/devices", api.EnrolRequest{ID: device, Area: area}, &enrol); err != nil {
		t.Fatal(err)
	}

	var (
		acked     uint64               // the highest confirmation the hub acknowledged
		revisions = map[int64]string{} // acknowledged push revision -> its programme
		pushes    int
		restarts  []time.Duration
		checked   int
	)
	for cut := 0; cut <= cuts; cut++ {
		if cut > 0 {
			// Reboot: mount what survived and start the hub on it.
			mount()
			t0 := time.Now()
			startHub()
			restarts = append(restarts, time.Since(t0))
			checked += checkSurvived(t, call, device, area, acked, revisions, logs)
		}
		if cut == cuts {
			break
		}
		// Work until the power goes: confirmations in batches (acknowledged or not) and pushes.
		ws := dialDevice(t, base, device, enrol.Secret, logs)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		batch, staffRng := rng.IntN(40)+1, rand.New(rand.NewPCG(rng.Uint64(), 5))
		wg.Add(2)
		go func() { // the device
			defer wg.Done()
			acked = sendUntilCut(ws, device, acked, batch, stop)
		}()
		var pushed []struct {
			rev  int64
			prog string
		}
		go func() { // the staff
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pushes++
				prog := fmt.Sprintf("news-%d", pushes)
				doc := fmt.Sprintf("version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: %s\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n", prog)
				var res api.PushResponse
				if code, err := call("POST", "/api/schedules", api.PushRequest{To: "area:" + area, Document: doc}, &res); err == nil && code == http.StatusOK {
					pushed = append(pushed, struct {
						rev  int64
						prog string
					}{res.Revision, "qn/c1/" + prog})
				}
				time.Sleep(time.Duration(staffRng.IntN(100)) * time.Millisecond)
			}
		}()
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		if _, err := pc.Cut(); err != nil {
			t.Fatal(err)
		}
		kill()
		close(stop)
		ws.Close()
		wg.Wait()
		for _, p := range pushed {
			revisions[p.rev] = p.prog
		}
		if err := pc.Unmount(); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(restarts)
	t.Logf("HUBPOWERCUT cuts %d confirmations acked %d pushes acked %d checked %d lost 0; restart median %s max %s",
		cuts, acked, len(revisions), checked, restarts[len(restarts)/2].Round(time.Millisecond), restarts[len(restarts)-1].Round(time.Millisecond))
}

// cutConfirmation is the record of seq the device sends, the same every time it is resent.
func cutConfirmation(device string, seq uint64) protocol.Confirmation {
	at := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)
	return protocol.Confirmation{Device: device, Seq: seq, Output: "speakers", ScheduleID: "c1", Revision: 1,
		Program: fmt.Sprintf("qn/c1/p%d", seq%7), Item: "sha256:" + strings.Repeat("ab", 32), Scheduled: at, Start: at,
		End: at.Add(30 * time.Second), Proof: protocol.Proof{PlayedS: float64(seq%29 + 1)}, Result: protocol.ResultCompleted,
		Clock: protocol.ClockSynced}
}

// dialDevice connects the device and reads the welcome.
func dialDevice(t *testing.T, base, device, secret string, logs []string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/agent/ws"
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth(device, secret)}})
	if err != nil {
		t.Fatalf("the device cannot connect after a restart (was it or its secret lost?): %v\n%s", err, lastLog(logs))
	}
	b, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "hello"}, DeviceID: device, SoftwareVersion: "test"})
	ws.WriteMessage(websocket.TextMessage, b)
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err = ws.ReadMessage()
	if m, derr := protocol.Decode(b); err != nil || derr != nil || m.Type() != protocol.TypeWelcome {
		t.Fatalf("no welcome after a restart: %v %v %s\n%s", err, derr, b, lastLog(logs))
	}
	ws.SetReadDeadline(time.Time{})
	return ws
}

// sendUntilCut sends batches of n records from acked+1 until the link fails or stop closes,
// and returns the highest seq the hub acknowledged. Like an agent's journal it starts again
// after the last acknowledgement, so records stored but not acknowledged are resent.
func sendUntilCut(ws *websocket.Conn, device string, acked uint64, n int, stop <-chan struct{}) uint64 {
	for id := 0; ; id++ {
		select {
		case <-stop:
			return acked
		default:
		}
		m := &protocol.Confirmations{Header: protocol.Header{ID: fmt.Sprintf("c-%d", id)}}
		for seq := acked + 1; seq <= acked+uint64(n); seq++ {
			m.Records = append(m.Records, cutConfirmation(device, seq))
		}
		b, _ := protocol.Encode(m)
		if ws.WriteMessage(websocket.TextMessage, b) != nil {
			return acked
		}
		for answered := false; !answered; {
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil {
				return acked
			}
			switch a, _ := protocol.Decode(b); a := a.(type) {
			case *protocol.Ack:
				acked, answered = max(acked, a.Seq), true
			case *protocol.ErrorMessage:
				return acked // not stored: the disk is gone
			}
		}
	}
}

// checkSurvived compares what the restarted hub holds with what it acknowledged, and returns
// how many things it checked.
func checkSurvived(t *testing.T, call func(method, path string, body, out any) (int, error), device, area string, acked uint64, revisions map[int64]string, logs []string) int {
	t.Helper()
	var cs []api.ConfirmationJSON
	if _, err := call("GET", "/api/confirmations?device="+device, nil, &cs); err != nil {
		t.Fatalf("after the cut: %v (was the staff token lost?)\n%s", err, lastLog(logs))
	}
	bySeq := map[int64]api.ConfirmationJSON{}
	for _, c := range cs {
		if _, dup := bySeq[c.Seq]; dup {
			t.Errorf("after the cut: confirmation %d is stored twice", c.Seq)
		}
		bySeq[c.Seq] = c
	}
	for seq := uint64(1); seq <= acked; seq++ {
		c, ok := bySeq[int64(seq)]
		want := cutConfirmation(device, seq)
		switch {
		case !ok:
			t.Errorf("after the cut: confirmation %d was acknowledged but is not stored", seq)
		case c.Program != want.Program || c.PlayedS != want.PlayedS || !c.Start.Equal(want.Start) || c.Result != string(want.Result):
			t.Errorf("after the cut: confirmation %d is %s %g s %s %s, acknowledged as %s %g s %s %s", seq,
				c.Program, c.PlayedS, c.Start, c.Result, want.Program, want.PlayedS, want.Start, want.Result)
		}
	}
	var revs []api.ScheduleJSON
	if _, err := call("GET", "/api/schedules?to=area:"+area, nil, &revs); err != nil {
		t.Fatalf("after the cut: %v\n%s", err, lastLog(logs))
	}
	stored := map[int64]bool{}
	for _, r := range revs {
		stored[r.Revision] = true
	}
	newest := int64(0)
	for rev := range revisions {
		newest = max(newest, rev)
	}
	n := int(acked)
	for rev, prog := range revisions {
		if rev <= newest-90 { // the list shows the newest 100
			continue
		}
		n++
		if !stored[rev] {
			t.Errorf("after the cut: push of %s was answered with revision %d, which is not stored", prog, rev)
			continue
		}
		var sc api.ScheduleJSON
		if _, err := call("GET", fmt.Sprintf("/api/schedules/show?to=area:%s&revision=%d", area, rev), nil, &sc); err != nil {
			t.Errorf("after the cut: revision %d: %v", rev, err)
		} else if !regexp.MustCompile(`(?m)id: ` + regexp.QuoteMeta(prog[len(area)+1:]) + `$`).MatchString(sc.Document) {
			t.Errorf("after the cut: revision %d does not hold programme %s:\n%s", rev, prog, sc.Document)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return n
}

func lastLog(logs []string) string {
	if len(logs) == 0 {
		return ""
	}
	b, _ := os.ReadFile(logs[len(logs)-1])
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "hub log (end):\n" + string(b)
}
