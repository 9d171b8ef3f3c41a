package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/internal/pgtest"
	"github.com/loa-project/loa/internal/testkit"
)

// TestTwoHubReplicas runs two loa-hub processes on one real PostgreSQL database (one signing
// key, one content directory) and two real agents that list both hubs, B first:
//   - an emergency sent through replica A is played by the agents connected to B;
//   - PostgreSQL is stopped (both replicas answer /readyz 503) and started again: both are
//     ready again by themselves, and a second emergency through A reaches the agents on B;
//   - B is SIGKILLed: its agents move to A (the time is logged: docs/scale.md), and at the
//     end A holds every play of each agent's journal exactly once, field by field.
func TestTwoHubReplicas(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	if testing.Short() {
		t.Skip("real processes and a PostgreSQL server")
	}
	db := pgtest.NewDatabase(t)
	bins := build(t)
	dir := t.TempDir()
	keyOut := testkit.Run(t, nil, bins.hub, "keygen", "--out", filepath.Join(dir, "key"), "--key-id", "province")
	keyLine := strings.TrimSpace(regexp.MustCompile(`(?m)^\s*(province: "ed25519:[^"]+")`).FindStringSubmatch(keyOut)[1])
	hubs := map[string]*hubBox{}
	for _, name := range []string{"a", "b"} {
		h := &hubBox{bins: bins, dir: dir, addr: testkit.FreeAddr(t), keyLine: keyLine}
		h.url, h.config = "http://"+h.addr, filepath.Join(dir, name+".yaml")
		os.WriteFile(h.config, []byte(fmt.Sprintf("listen: %s\ndata_dir: data-%s\ndatabase: %s\ncontent_dir: content\n"+
			"signing_key_file: key\nsigning_key_id: province\nstatus_interval: 2s\n", h.addr, name, db)), 0o644)
		hubs[name] = h
	}
	a, b := hubs["a"], hubs["b"]
	a.token = regexp.MustCompile(`loa-st1-[a-z0-9]+`).FindString(
		testkit.Run(t, nil, bins.hub, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", a.config))
	b.token = a.token // one database: one user
	a.start(t)
	b.start(t)
	env := []string{"LOA_HUB=" + a.url, "LOA_TOKEN=" + a.token}

	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	media := t.TempDir()
	alarm := filepath.Join(media, "alarm.wav")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", alarm, "synth", "2", "sine", "900").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(testkit.Run(t, env, bins.cli, "content", "add", alarm, "--title", "Còi báo"))
	var agents []*agentBox
	var ids []string
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("qn/tk/cl-%02d", i)
		secret := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", id, "--area", "qn/tk"))[1]
		ag := newAgent(t, bins, id, secret, b.url, keyLine)
		cfg, _ := os.ReadFile(ag.config)
		os.WriteFile(ag.config, []byte(strings.Replace(string(cfg), "url: "+b.url, fmt.Sprintf("urls: [%s, %s]", b.url, a.url), 1)), 0o644)
		ag.start(t, bins)
		agents, ids = append(agents, ag), append(ids, id)
	}
	logs := func() string {
		var s strings.Builder
		fmt.Fprintf(&s, "hub A:\n%s\nhub B:\n%s\n", a.proc, b.proc)
		for i, ag := range agents {
			fmt.Fprintf(&s, "agent %d:\n%s\njournal %d:\n%s\n", i+1, ag.proc, i+1, dumpJournal(ag.records(bins)))
		}
		return s.String()
	}
	on := func(ag *agentBox, h *hubBox) bool { return strings.Contains(lastHubUp(ag.proc.String()), h.addr) }
	waitFor(t, "both agents connected to replica B", 60*time.Second, func() bool { return on(agents[0], b) && on(agents[1], b) }, logs)

	emergency := func(text string) string {
		out := testkit.Run(t, env, bins.cli, "emergency", "--to", "qn/tk", "--content", ref, "--text", text, "--until", "2m")
		m := regexp.MustCompile(`emergency (\d+) \(series`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("loa emergency:\n%s", out)
		}
		return "emergency:" + m[1] + "/speakers"
	}
	playedOnAll := func(what, program string) {
		t.Helper()
		for i, ag := range agents {
			waitFor(t, fmt.Sprintf("agent %d to play %s", i+1, what), 60*time.Second, func() bool {
				return len(having(ag.records(bins), prog(program, "completed"))) > 0
			}, logs)
		}
	}
	// Sent through A, played by the agents on B.
	playedOnAll("the emergency sent through replica A", emergency("Bão số 13 sắp đổ bộ"))

	// The database restarts under both replicas: they are ready again by themselves, and a
	// replica's action still reaches the other's agents.
	pgtest.Stop(t)
	for _, h := range []*hubBox{a, b} {
		waitFor(t, h.url+"/readyz to answer 503 while PostgreSQL is down", 30*time.Second, func() bool { return !ready(h.url) }, logs)
	}
	pgtest.Restart(t)
	for _, h := range []*hubBox{a, b} {
		waitFor(t, h.url+"/readyz to answer 200 after PostgreSQL restarted", 60*time.Second, func() bool { return ready(h.url) }, logs)
	}
	playedOnAll("the emergency sent through A after the database restart", emergency("Lũ quét ở thượng nguồn"))

	// B dies: its agents move to A, and A ends with every play once.
	b.proc.signal(syscall.SIGKILL)
	killed := time.Now()
	moved := make([]time.Duration, len(agents))
	for i, ag := range agents {
		waitFor(t, fmt.Sprintf("agent %d to move to replica A", i+1), 60*time.Second, func() bool {
			if on(ag, a) {
				moved[i] = time.Since(killed)
				return true
			}
			return false
		}, logs)
	}
	t.Logf("REPLICAS agents moved from the killed replica to the other in %s and %s", moved[0].Round(100*time.Millisecond), moved[1].Round(100*time.Millisecond))
	for i, ag := range agents {
		var recs []journal.Record
		waitFor(t, fmt.Sprintf("replica A to hold agent %d's whole journal", i+1), 60*time.Second, func() bool {
			recs = closedRecords(ag.fullJournal(bins))
			hubRecs, ok := a.confirmationsOf(ids[i])
			return ok && len(hubRecs) >= len(recs) && len(hubDiffers(recs, hubRecs)) == 0
		}, logs)
		hubRecs, _ := a.confirmationsOf(ids[i])
		seen := map[int64]bool{}
		for _, c := range hubRecs {
			if seen[c.Seq] {
				t.Errorf("agent %d: confirmation %d stored twice", i+1, c.Seq)
			}
			seen[c.Seq] = true
		}
		for _, r := range recs {
			if !seen[int64(r.Seq)] {
				t.Errorf("agent %d: play %d is not at the hub", i+1, r.Seq)
			}
		}
		if len(recs) < 2 {
			t.Errorf("agent %d journalled %d closed plays, want the two emergencies at least", i+1, len(recs))
		}
	}
}

// closedRecords leaves out the play still open (the hub gets a record once it is closed).
func closedRecords(recs []journal.Record) []journal.Record {
	var out []journal.Record
	for _, r := range recs {
		if r.Result != "playing" {
			out = append(out, r)
		}
	}
	return out
}

// lastHubUp is the hub URL of the agent's newest "hub link up" log line.
func lastHubUp(log string) string {
	hub := ""
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Msg string `json:"msg"`
			Hub string `json:"hub"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "hub link up" {
			hub = e.Hub
		}
	}
	return hub
}

// ready says whether the hub at url answers /readyz with 200.
func ready(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
