// Package e2e runs the whole loop with real processes on loopback: a hub, the staff CLI and
// agents playing through real ALSA into FIFO-paced sound cards.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/alsafifo"
	"github.com/loa-project/loa/internal/faultnet"
	"github.com/loa-project/loa/internal/pgtest"
	"github.com/loa-project/loa/internal/testkit"
)

type binaries struct{ hub, cli, agent string }

// hubBox is a hub on loopback with an admin user, which a test may kill and start again on
// the same address and data.
type hubBox struct {
	bins                   binaries
	dir, addr, url, config string
	keyLine                string // the agents' trusted key line
	token                  string // the admin's
	env                    []string
	proc                   *proc
}

// newHub makes a hub's key, config and admin user, and starts it.
func newHub(t *testing.T, bins binaries) *hubBox {
	t.Helper()
	return newHubWith(t, bins, "")
}

// newHubWith is newHub with lines added to its config.
func newHubWith(t *testing.T, bins binaries, extra string) *hubBox {
	t.Helper()
	h := &hubBox{bins: bins, dir: t.TempDir(), addr: testkit.FreeAddr(t)}
	h.url, h.config = "http://"+h.addr, filepath.Join(h.dir, "hub.yaml")
	keyOut := testkit.Run(t, nil, bins.hub, "keygen", "--out", filepath.Join(h.dir, "key"), "--key-id", "hub-e2e")
	h.keyLine = strings.TrimSpace(regexp.MustCompile(`(?m)^\s*(hub-e2e: "ed25519:[^"]+")`).FindStringSubmatch(keyOut)[1])
	os.WriteFile(h.config, []byte(fmt.Sprintf("listen: %s\ndata_dir: data\nsigning_key_file: key\nsigning_key_id: hub-e2e\nstatus_interval: 2s\n%s", h.addr, extra)), 0o644)
	userOut := testkit.Run(t, nil, bins.hub, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", h.config)
	h.token = regexp.MustCompile(`loa-st1-[a-z0-9]+`).FindString(userOut)
	h.env = []string{"LOA_HUB=" + h.url, "LOA_TOKEN=" + h.token}
	h.start(t)
	return h
}

// start runs the hub and waits until it listens.
func (h *hubBox) start(t *testing.T) *proc {
	t.Helper()
	h.proc = start(t, nil, h.bins.hub, "serve", "--config", h.config)
	waitFor(t, "the hub to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", h.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, h.proc.String)
	return h.proc
}

// build is the three programs, built once for the package's tests.
func build(t *testing.T) binaries {
	t.Helper()
	return binaries{testkit.Binary(t, "loa-hub"), testkit.Binary(t, "loa"), testkit.Binary(t, "loa-agent")}
}

// TestMain removes the programs built and stops the PostgreSQL server a test started.
func TestMain(m *testing.M) { testkit.Main(runner(func() int { return pgtest.Main(m, nil) })) }

// runner is a function as what testkit.Main runs.
type runner func() int

func (r runner) Run() int { return r() }

// proc is a background process whose stderr is kept for failure messages.
type proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.out.Write(b) }
func (p *proc) String() string              { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...)}
	p.cmd.Env = append(append(os.Environ(), "GOTRACEBACK=all"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running.Store(p, t)
	t.Cleanup(func() { p.signal(syscall.SIGKILL); running.Delete(p) })
	return p
}

// running holds every started process with its test, so that a test that times out can ask
// its processes where they are stuck (dumpRunning).
var running sync.Map // *proc -> *testing.T

// dumpRunning makes every process of t still running print its goroutines (SIGQUIT: the Go
// runtime prints them all and exits) into its log, which the failure then shows.
func dumpRunning(t *testing.T) {
	running.Range(func(k, v any) bool {
		if p := k.(*proc); v.(*testing.T) == t {
			p.signal(syscall.SIGQUIT)
			running.Delete(p)
		}
		return true
	})
}

func (p *proc) signal(s syscall.Signal) {
	if p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(s)
		p.cmd.Wait()
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, context func() string) {
	t.Helper()
	// Conditions here read journals and ask the hub: checked less often than testkit.WaitFor's.
	if !testkit.Poll(d, 300*time.Millisecond, cond) {
		dumpRunning(t)
		t.Fatalf("timed out waiting for %s\n%s", what, context())
	}
}

// newLink is a TCP relay between an agent and the hub that the test can cut (Down) and
// restore (Up), standing in for a 4G link that drops.
func newLink(t *testing.T, target string) *faultnet.Proxy {
	p, err := faultnet.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type confirmation struct {
	Device  string `json:"device"`
	Seq     uint64 `json:"seq"`
	Program string `json:"program"`
	Result  string `json:"result"`
}

// agentBox is one cluster: its config, data and the sound card standing in for ALSA.
type agentBox struct {
	dir, config, alsaConf, fifo string
	proc                        *proc
	stopCard                    context.CancelFunc
}

func newAgent(t *testing.T, bins binaries, id, secret, hubURL, keyLine string) *agentBox {
	t.Helper()
	dir := t.TempDir()
	conf, fifo, err := alsafifo.Setup(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &agentBox{dir: dir, config: filepath.Join(dir, "agent.yaml"), alsaConf: conf, fifo: fifo}
	cfg := fmt.Sprintf("device_id: %s\ndata_dir: data\naudio: {output: alsa}\ngrace: 1m\nlog: {format: json, level: debug}\n"+
		"hub:\n  url: %s\n  secret: %s\n  heartbeat: 2s\n  reconnect_max: 3s\n  trusted_keys:\n    %s\n", id, hubURL, secret, keyLine)
	if err := os.WriteFile(b.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *agentBox) start(t *testing.T, bins binaries) {
	ctx, cancel := context.WithCancel(context.Background())
	if _, _, err := alsafifo.Drain(ctx, b.fifo, 48000, false, ""); err != nil {
		t.Fatal(err)
	}
	b.stopCard = cancel
	b.proc = start(t, []string{"ALSA_CONFIG_PATH=" + b.alsaConf}, bins.agent, "run", "--config", b.config)
	t.Cleanup(cancel)
}

type record struct {
	Seq     uint64 `json:"seq"`
	Program string `json:"program"`
	Result  string `json:"result"`
}

func (b *agentBox) journal(t *testing.T, bins binaries) []record { return journalOf[record](b, bins) }

func completed(recs []record, program string) int {
	n := 0
	for _, r := range recs {
		if r.Result == "completed" && strings.HasSuffix(r.Program, program) {
			n++
		}
	}
	return n
}

func TestPushPlayConfirmWithOutages(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	bins := build(t)
	h := newHub(t, bins)
	hubURL, addr, keyLine, env, token, hub := h.url, h.addr, h.keyLine, h.env, h.token, h.proc
	startHub := func() *proc { return h.start(t) }

	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk", "--name", "Tam Kỳ")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	s1 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]
	s2 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-02", "--area", "qn/tk"))[1]
	media := t.TempDir()
	for i, f := range []string{"a", "b"} {
		if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", filepath.Join(media, f+".wav"), "synth", "1", "sine", fmt.Sprint(400+200*i)).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
	}
	refRe := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	refA := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add", filepath.Join(media, "a.wav"), "--title", "Bản tin", "--language", "vi"))
	refB := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add", filepath.Join(media, "b.wav"), "--title", "Thông báo", "--language", "vi"))

	// Agent 2 reaches the hub through a link the test can cut.
	link2 := newLink(t, addr)
	a1 := newAgent(t, bins, "qn/tk/cl-01", s1, hubURL, keyLine)
	a2 := newAgent(t, bins, "qn/tk/cl-02", s2, "http://"+link2.Addr(), keyLine)
	a1.start(t, bins)
	a2.start(t, bins)
	logs := func() string {
		return "hub:\n" + hub.String() + "\nagent 1:\n" + a1.proc.String() + "\nagent 2:\n" + a2.proc.String()
	}

	// Revision 1: a bulletin every 4 seconds for the commune.
	sched := filepath.Join(media, "commune.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - {id: bulletin, cron: \"*/4 * * * * *\", items: [{content: %q}]}\n", refA)), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	both := func(n int) func() bool {
		return func() bool {
			return completed(a1.journal(t, bins), "bulletin") >= n && completed(a2.journal(t, bins), "bulletin") >= n
		}
	}
	waitFor(t, "both agents to play the pushed bulletin", 40*time.Second, both(1), logs)

	// The hub dies mid-schedule: the agents play on.
	hub.signal(syscall.SIGKILL)
	n1 := completed(a1.journal(t, bins), "bulletin")
	waitFor(t, "agents to keep playing without the hub", 20*time.Second, func() bool {
		return completed(a1.journal(t, bins), "bulletin") >= n1+2
	}, logs)
	hub = startHub()

	// Agent 2 is cut off for more than two bulletins; meanwhile revision 2 adds a notice.
	link2.Down()
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 2\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: bulletin, cron: \"*/4 * * * * *\", items: [{content: %q}]}\n"+
		"  - {id: notice, cron: \"2/4 * * * * *\", items: [{content: %q}]}\n", refA, refB)), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	n2 := completed(a2.journal(t, bins), "bulletin")
	waitFor(t, "agent 2 to play on while cut off", 20*time.Second, func() bool {
		return completed(a2.journal(t, bins), "bulletin") >= n2+2
	}, logs)
	if completed(a2.journal(t, bins), "notice") != 0 {
		t.Fatal("agent 2 played revision 2 while cut off from the hub")
	}
	link2.Up()
	waitFor(t, "agent 2 to catch up with revision 2 and play it", 40*time.Second, func() bool {
		return completed(a2.journal(t, bins), "notice") >= 1 && completed(a1.journal(t, bins), "notice") >= 1
	}, logs)

	// Every closed record of each agent reaches the hub exactly once.
	a1.proc.signal(syscall.SIGTERM)
	a2.proc.signal(syscall.SIGTERM)
	j1, j2 := a1.journal(t, bins), a2.journal(t, bins)
	a1.start(t, bins) // running again, they send what the hub lacks
	a2.start(t, bins)
	var confs []confirmation
	waitFor(t, "every confirmation at the hub", 40*time.Second, func() bool {
		out, err := exec.Command(bins.cli, "--hub", hubURL, "--token", token, "confirmations", "--json", "--limit", "100000").Output()
		if err != nil {
			return false
		}
		confs = nil
		if json.Unmarshal(out, &confs) != nil {
			return false
		}
		got := map[string]int{}
		for _, c := range confs {
			got[c.Device]++
		}
		return got["qn/tk/cl-01"] >= len(j1) && got["qn/tk/cl-02"] >= len(j2)
	}, logs)
	seen := map[string]bool{}
	for _, c := range confs {
		k := fmt.Sprintf("%s#%d", c.Device, c.Seq)
		if seen[k] {
			t.Errorf("confirmation %s stored twice at the hub", k)
		}
		seen[k] = true
	}
	for dev, j := range map[string][]record{"qn/tk/cl-01": j1, "qn/tk/cl-02": j2} {
		for _, r := range j {
			if r.Result != "playing" && !seen[fmt.Sprintf("%s#%d", dev, r.Seq)] {
				t.Errorf("%s record %d (%s %s) never reached the hub", dev, r.Seq, r.Program, r.Result)
			}
		}
	}
	status := testkit.Run(t, env, bins.cli, "status")
	if !strings.Contains(status, "qn/tk/cl-02") || !strings.Contains(status, "active") {
		t.Errorf("loa status does not show the devices with an active revision:\n%s", status)
	}
}
