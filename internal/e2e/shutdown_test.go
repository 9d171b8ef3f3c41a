package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// buildRace builds the hub and the agent with the race detector.
func buildRace(t *testing.T) binaries {
	t.Helper()
	return binaries{testkit.Binary(t, "loa-hub", "-race"), testkit.Binary(t, "loa", "-race"), testkit.Binary(t, "loa-agent", "-race")}
}

// useAfterClose is what the journal (bbolt), the content store and the hub's SQLite say when
// they are used after being closed, and the race detector's report. (Not "use of closed
// network connection": that is the hub closing an agent's websocket on its way out.)
var useAfterClose = regexp.MustCompile(`(?i)database not open|database is closed|store is closed|journal is closed|DATA RACE`)

// TestShutdownWhileBusy stops the agent and then the hub (race-detector builds) while they are
// busy — a programme playing, a command being carried out, confirmations on their way, the
// agent reconnecting — and checks that each stops cleanly within its bound and that nothing
// touched the journal, the store or the database after they were closed.
func TestShutdownWhileBusy(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	if testing.Short() {
		t.Skip("race-detector builds and real processes")
	}
	bins := buildRace(t)
	h := newHub(t, bins)
	testkit.Run(t, h.env, bins.cli, "area", "add", "qn/tk")
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(testkit.Run(t, h.env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]
	media := t.TempDir()
	wav := filepath.Join(media, "tone.wav")
	if out, err := exec.Command("sox", "-n", "-r", "48000", "-c", "1", wav, "synth", "4", "sine", "600").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(testkit.Run(t, h.env, bins.cli, "content", "add", wav, "--title", "Bản tin"))
	sched := filepath.Join(media, "s.yaml")
	os.WriteFile(sched, []byte("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: news, cron: \"*/5 * * * * *\", items: [{content: \""+ref+"\"}]}\n"), 0o644)
	testkit.Run(t, h.env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	a := newAgent(t, bins, "qn/tk/cl-01", secret, h.url, h.keyLine)
	a.start(t, bins)
	logs := func() string { return "hub:\n" + h.proc.String() + "\nagent:\n" + a.proc.String() }
	waitFor(t, "plays confirmed at the hub", 60*time.Second, func() bool {
		out, err := exec.Command(bins.cli, "--hub", h.url, "--token", h.token, "confirmations", "--device", "qn/tk/cl-01", "--json").Output()
		return err == nil && strings.Count(string(out), `"seq"`) >= 2
	}, logs)

	// The agent: stopped in the middle of a play, with a stop command on its way.
	waitFor(t, "a play going on", 20*time.Second, func() bool { return len(having(a.records(bins), prog("qn/tk/news", "playing"))) > 0 }, logs)
	exec.Command(bins.cli, "--hub", h.url, "--token", h.token, "stop", "--to", "qn/tk/cl-01", "--wait", "0").Run()
	stopped := stopWithin(t, a.proc, 20*time.Second)
	if !stopped || useAfterClose.MatchString(a.proc.String()) {
		t.Fatalf("agent stopped cleanly: %v\n%s", stopped, logs())
	}
	if recs := a.records(bins); len(recs) == 0 || len(having(recs, prog("qn/tk/news", "playing"))) > 0 {
		t.Errorf("after a clean stop the journal has an open record (or none):\n%s", dumpJournal(recs))
	}

	// The hub: stopped while the agent (started again) reconnects and sends what it has.
	a.start(t, bins)
	time.Sleep(1500 * time.Millisecond)
	hubStopped := stopWithin(t, h.proc, 30*time.Second)
	if !hubStopped || useAfterClose.MatchString(h.proc.String()) {
		t.Fatalf("hub stopped cleanly: %v\n%s", hubStopped, logs())
	}
	if !stopWithin(t, a.proc, 20*time.Second) || useAfterClose.MatchString(a.proc.String()) {
		t.Fatalf("agent (second run) did not stop cleanly\n%s", logs())
	}
}

// stopWithin sends SIGTERM and reports whether the process exited with status 0 in time.
func stopWithin(t *testing.T, p *proc, d time.Duration) bool {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(d):
		p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, for the log
		<-done
		return false
	}
}
