package upgrade

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// The fakes stand in for the hub, the schedule and the machine: these tests check the
// upgrader's logic. Real packages, dpkg and restarts are in internal/packaging
// (TestPackages/Upgrade*).

type fakeHub struct {
	mu    sync.Mutex
	files map[string][]byte
	froms []int64 // the offset of each fetch
	// down fails that many fetches; cut sends that many bodies only half way.
	down, cut int
}

func (h *fakeHub) Fetch(ctx context.Context, path string, from int64) (io.ReadCloser, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.froms = append(h.froms, from)
	b, ok := h.files[path]
	if !ok {
		return nil, false, fmt.Errorf("404 %s", path)
	}
	if h.down > 0 {
		h.down--
		return nil, false, errors.New("dial tcp: network is unreachable")
	}
	b = b[from:]
	if h.cut > 0 {
		h.cut--
		b = b[:len(b)/2]
	}
	return io.NopCloser(bytes.NewReader(b)), true, nil
}

type fakeBox struct {
	mu      sync.Mutex
	busy    string
	health  error
	now     time.Time
	launchs []string
}

func (b *fakeBox) UpgradeBusy(time.Time, time.Duration) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy
}
func (b *fakeBox) UpgradeHealth() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health
}
func (b *fakeBox) Launch(statePath string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.launchs = append(b.launchs, statePath)
	return nil
}
func (b *fakeBox) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}
func (b *fakeBox) set(f func(b *fakeBox)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}
func (b *fakeBox) launched() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.launchs)
}

// fixture is a release key, two signed packages on a fake hub, and an upgrade directory.
type fixture struct {
	t       *testing.T
	dir     string
	keys    protocol.TrustedKeys
	priv    ed25519.PrivateKey
	hub     *fakeHub
	box     *fakeBox
	v1, v2  protocol.ReleasePackage
	running string
}

func newFixture(t *testing.T) *fixture {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "upgrade"), keys: protocol.TrustedKeys{"rel-1": pub}, priv: priv,
		hub: &fakeHub{files: map[string][]byte{}}, running: "1.0.0",
		box: &fakeBox{now: time.Date(2026, 12, 5, 3, 0, 0, 0, time.Local)}}
	f.v1 = f.release("1.0.0", []byte("package one"))
	f.v2 = f.release("2.0.0", []byte("package two, a little longer"))
	return f
}

func (f *fixture) release(version string, data []byte) protocol.ReleasePackage {
	sum := sha256.Sum256(data)
	p := protocol.ReleasePackage{Name: protocol.ReleaseName, Version: version, Arch: "arm64", Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), URL: "/api/releases/" + version + "/arm64/package"}
	protocol.SignRelease(&p, "rel-1", f.priv)
	f.hub.files[p.URL] = data
	return p
}

func (f *fixture) manager(running string) *Manager {
	f.t.Helper()
	m, err := New(Config{Dir: f.dir, Keys: f.keys, Running: running, Arch: "arm64", Poll: 10 * time.Millisecond},
		Deps{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Now: f.box.Now, Fetcher: f.hub, Busy: f.box, Health: f.box, Launcher: f.box})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// run runs m until the test ends.
func (f *fixture) run(m *Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	stop := func() { cancel(); <-done }
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) upgrade(rollout string, prev *protocol.ReleasePackage) *protocol.Upgrade {
	return &protocol.Upgrade{Rollout: rollout, Package: f.v2, Previous: prev, HealthyWithinS: 60}
}

// waitState waits for the status to reach state (bounded generously: no timing is asserted).
func waitState(t *testing.T, m *Manager, state string) protocol.UpgradeStatus {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s := m.Status(); s != nil && s.State == state {
			return *s
		}
	}
	t.Fatalf("upgrade never reached %s: status %+v", state, m.Status())
	return protocol.UpgradeStatus{}
}

// onDisk checks that the state file says what the manager says, and that no temporary file
// of an atomic write was left behind.
func (f *fixture) onDisk(phase Phase, state string) State {
	f.t.Helper()
	st, err := LoadState(StatePath(f.dir))
	if err != nil {
		f.t.Fatal(err)
	}
	if st.Phase != phase || st.Status.State != state {
		f.t.Fatalf("state file says %s/%s, want %s/%s", st.Phase, st.Status.State, phase, state)
	}
	left, _ := filepath.Glob(filepath.Join(f.dir, ".*tmp*"))
	if len(left) > 0 {
		f.t.Fatalf("temporary files left: %v", left)
	}
	return st
}

func TestRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		change func(f *fixture, u *protocol.Upgrade)
		want   string
	}{
		"untrusted key": {func(f *fixture, u *protocol.Upgrade) {
			_, other, _ := ed25519.GenerateKey(nil)
			protocol.SignRelease(&u.Package, "rel-2", other)
		}, `release key "rel-2", which is not trusted`},
		"changed statement": {func(f *fixture, u *protocol.Upgrade) { u.Package.Size++ }, "does not match its name, version, size and sha256"},
		"previous badly signed": {func(f *fixture, u *protocol.Upgrade) {
			p := f.v1
			p.SHA256 = strings.Repeat("0", 64)
			u.Previous = &p
		}, "previous: release refused"},
		"other arch": {func(f *fixture, u *protocol.Upgrade) {
			u.Package.Arch = "armhf"
			protocol.SignRelease(&u.Package, "rel-1", f.priv)
		}, "package is for armhf; this device is arm64"},
		"no way back": {func(f *fixture, u *protocol.Upgrade) { u.Previous = nil }, "cannot roll back"},
		"tampered package": {func(f *fixture, u *protocol.Upgrade) {
			f.hub.files[u.Package.URL] = bytes.Replace(f.hub.files[u.Package.URL], []byte("two"), []byte("tw0"), 1)
		}, "the package was changed after signing"},
		"longer package": {func(f *fixture, u *protocol.Upgrade) {
			f.hub.files[u.Package.URL] = append(f.hub.files[u.Package.URL], '!')
		}, "longer than its signed size"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			m := f.manager("1.0.0")
			f.run(m)
			u := f.upgrade("r-1", &f.v1)
			c.change(f, u)
			m.Upgrade(u)
			s := waitState(t, m, protocol.UpgradeRefused)
			if !strings.Contains(s.Error, c.want) || s.Rollout != "r-1" || s.Version != "2.0.0" || s.From != "1.0.0" {
				t.Errorf("refused with %+v, want an error saying %q", s, c.want)
			}
			f.onDisk(PhaseDone, protocol.UpgradeRefused)
			if debs, _ := filepath.Glob(filepath.Join(f.dir, "*.deb*")); len(debs) > 0 {
				t.Errorf("a refused upgrade left packages: %v", debs)
			}
			if f.box.launched() != 0 {
				t.Error("a refused upgrade started the guard")
			}
		})
	}
}

func TestInstallsOnlyInTheWindowAndWhenQuiet(t *testing.T) {
	f := newFixture(t)
	f.box.set(func(b *fakeBox) { b.busy = "programme morning plays on speakers" })
	m := f.manager("1.0.0")
	f.run(m)
	u := f.upgrade("r-1", &f.v1)
	u.Window = "02:00-02:30" // it is 03:00
	m.Upgrade(u)
	waitState(t, m, protocol.UpgradeWaiting)
	st := f.onDisk(PhaseWait, protocol.UpgradeWaiting)
	for _, p := range []string{st.NewFile, st.PreviousFile} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("a verified package is missing: %v", err)
		}
	}
	// Let the poll run many times: outside the window nothing happens.
	time.Sleep(100 * time.Millisecond)
	if f.box.launched() != 0 || m.Status().State != protocol.UpgradeWaiting {
		t.Fatal("installed outside the window")
	}
	// In the window, but a session plays (or an emergency is active: the same Busy answer).
	f.box.set(func(b *fakeBox) { b.now = b.now.Add(-45 * time.Minute) })
	time.Sleep(100 * time.Millisecond)
	if f.box.launched() != 0 || m.Status().State != protocol.UpgradeWaiting {
		t.Fatal("installed while busy")
	}
	f.box.set(func(b *fakeBox) { b.busy = "" })
	waitState(t, m, protocol.UpgradeInstalling)
	st = f.onDisk(PhaseInstall, protocol.UpgradeInstalling)
	if f.box.launched() != 1 || st.AgentPID != os.Getpid() {
		t.Fatalf("guard launched %d times, agent pid %d", f.box.launched(), st.AgentPID)
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	f.box.set(func(b *fakeBox) { b.busy = "emergency storm-warning is active" })
	m := f.manager("1.0.0")
	f.run(m)
	m.Upgrade(f.upgrade("r-1", &f.v1))
	waitState(t, m, protocol.UpgradeWaiting)
	m.Upgrade(&protocol.Upgrade{Rollout: "r-other", Package: f.v2, Cancel: true}) // not ours
	m.Upgrade(&protocol.Upgrade{Rollout: "r-1", Package: f.v2, Cancel: true})
	s := waitState(t, m, protocol.UpgradeFailed)
	if !strings.Contains(s.Error, "cancelled") {
		t.Errorf("cancelled with %+v", s)
	}
	f.onDisk(PhaseDone, protocol.UpgradeFailed)
	if debs, _ := filepath.Glob(filepath.Join(f.dir, "*.deb*")); len(debs) > 0 {
		t.Errorf("a cancelled upgrade left packages: %v", debs)
	}

	// Once installing, a cancel changes nothing.
	f.box.set(func(b *fakeBox) { b.busy = "" })
	m.Upgrade(f.upgrade("r-2", &f.v1))
	waitState(t, m, protocol.UpgradeInstalling)
	m.Upgrade(&protocol.Upgrade{Rollout: "r-2", Package: f.v2, Cancel: true})
	m.Upgrade(f.upgrade("r-3", &f.v1)) // nor does another rollout
	time.Sleep(50 * time.Millisecond)
	if s := m.Status(); s.State != protocol.UpgradeInstalling || s.Rollout != "r-2" {
		t.Errorf("after a cancel while installing: %+v", s)
	}
}

// fakeSystem is the guard's machine: it records installs and restarts.
type fakeSystem struct {
	mu       sync.Mutex
	installs []string
	restarts []int
	fail     map[string]error
	onRun    func(deb string) // runs "the agent" that the install restarts
}

func (s *fakeSystem) Install(deb string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installs = append(s.installs, filepath.Base(deb))
	if err := s.fail[filepath.Base(deb)]; err != nil {
		return "dpkg: error processing archive " + deb, err
	}
	return "Setting up loa-agent", nil
}

func (s *fakeSystem) Restart(pid int) error {
	s.mu.Lock()
	s.restarts = append(s.restarts, pid)
	s.mu.Unlock()
	return nil
}

func (f *fixture) guard(sys System) *Guard {
	return &Guard{StatePath: StatePath(f.dir), Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Now: time.Now, System: sys, Poll: 5 * time.Millisecond}
}

// installing runs an upgrade up to the guard's hand-over, with the old agent.
func (f *fixture) installing(prev *protocol.ReleasePackage, healthyWithin int) {
	m := f.manager(f.running)
	stop := f.run(m)
	u := f.upgrade("r-1", prev)
	u.HealthyWithinS = healthyWithin
	m.Upgrade(u)
	waitState(f.t, m, protocol.UpgradeInstalling)
	stop()
}

// TestHealthyAcrossRestarts: the old agent hands over, the guard installs and restarts it,
// the new agent (a new Manager on the same directory, running the new version) checks its
// health and marks it; the guard keeps the new package and reports healthy. The next upgrade
// without a previous package rolls back to the kept copy.
func TestHealthyAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	f.installing(&f.v1, 60)
	f.box.set(func(b *fakeBox) { b.health = errors.New("not connected to the hub yet") })
	sys := &fakeSystem{}
	done := make(chan error, 1)
	go func() { done <- f.guard(sys).Run(context.Background()) }()

	// The guard installs, sets checking and restarts the agent; the new agent starts.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, _ := LoadState(StatePath(f.dir)); st.Phase == PhaseCheck {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the guard never reached the check")
		}
	}
	newAgent := f.manager("2.0.0")
	f.run(newAgent)
	if s := newAgent.Status(); s == nil || s.State != protocol.UpgradeChecking {
		t.Fatalf("the new agent reports %+v, want checking", s)
	}
	// Unhealthy for a while: the failure is marked for the guard.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if h, err := loadHealth(filepath.Join(f.dir, healthFile)); err == nil && h.Failure == "not connected to the hub yet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the health failure was never marked")
		}
	}
	f.box.set(func(b *fakeBox) { b.health = nil })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := waitState(t, newAgent, protocol.UpgradeHealthy)
	if s.Version != "2.0.0" || s.From != "1.0.0" || s.Error != "" {
		t.Errorf("healthy status %+v", s)
	}
	f.onDisk(PhaseDone, protocol.UpgradeHealthy)
	if len(sys.installs) != 1 || sys.installs[0] != "loa-agent_2.0.0_arm64.deb" || len(sys.restarts) != 1 {
		t.Errorf("installs %v restarts %v", sys.installs, sys.restarts)
	}
	if kept, ok := loadKept(f.dir); !ok || kept.Version != "2.0.0" {
		t.Errorf("kept copy %+v %v, want 2.0.0", kept, ok)
	}
	if debs, _ := filepath.Glob(filepath.Join(f.dir, "*_*.deb")); len(debs) != 0 {
		t.Errorf("old packages left: %v", debs)
	}
	// A guard started on a finished upgrade has nothing to do.
	if err := f.guard(sys).Run(context.Background()); err != nil {
		t.Errorf("a guard on a done upgrade: %v", err)
	}

	// The next release, without a previous package: the kept copy of 2.0.0 is the way back.
	v3 := f.release("3.0.0", []byte("package three"))
	u := &protocol.Upgrade{Rollout: "r-2", Package: v3, HealthyWithinS: 60}
	newAgent.Upgrade(u)
	waitState(t, newAgent, protocol.UpgradeInstalling)
	st := f.onDisk(PhaseInstall, protocol.UpgradeInstalling)
	if st.Previous.Version != "2.0.0" || st.PreviousFile != filepath.Join(f.dir, keptDeb) {
		t.Errorf("previous %s from %s, want the kept 2.0.0", st.Previous.Version, st.PreviousFile)
	}
}

// TestRollsBackWhenNotHealthy: the new agent never reports healthy; the guard reinstalls the
// previous package by itself, says why, and keeps it for the next time.
func TestRollsBackWhenNotHealthy(t *testing.T) {
	for _, c := range []struct {
		name, failure, why string
	}{
		{"did not start", "", "2.0.0 did not report healthy within 1 s: it did not start"},
		{"unhealthy", "the audio output consumes no samples", "2.0.0 did not report healthy within 1 s: the audio output consumes no samples"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.installing(&f.v1, 1)
			sys := &fakeSystem{}
			if c.failure != "" {
				f.box.set(func(b *fakeBox) { b.health = errors.New(c.failure) })
				go func() {
					for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
						if st, _ := LoadState(StatePath(f.dir)); st.Phase == PhaseCheck {
							break
						}
					}
					f.run(f.manager("2.0.0"))
				}()
			}
			if err := f.guard(sys).Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := f.onDisk(PhaseDone, protocol.UpgradeRolledBack)
			if st.Status.Error != c.why {
				t.Errorf("rolled back saying %q, want %q", st.Status.Error, c.why)
			}
			if got := strings.Join(sys.installs, " "); got != "loa-agent_2.0.0_arm64.deb loa-agent_1.0.0_arm64.deb" {
				t.Errorf("installs %s", got)
			}
			if kept, ok := loadKept(f.dir); !ok || kept.Version != "1.0.0" {
				t.Errorf("kept %+v %v, want 1.0.0", kept, ok)
			}
			// The old agent, back, reports the outcome and takes the next upgrade.
			old := f.manager("1.0.0")
			f.run(old)
			if s := old.Status(); s == nil || s.State != protocol.UpgradeRolledBack {
				t.Fatalf("after the rollback the agent reports %+v", s)
			}
			u := f.upgrade("r-2", nil) // no previous: the kept 1.0.0 serves
			old.Upgrade(u)
			waitState(t, old, protocol.UpgradeInstalling)
		})
	}
}

// TestDpkgFailure: a package dpkg refuses leaves the previous version installed and the
// upgrade failed, with dpkg's words.
func TestDpkgFailure(t *testing.T) {
	f := newFixture(t)
	f.installing(&f.v1, 60)
	sys := &fakeSystem{fail: map[string]error{"loa-agent_2.0.0_arm64.deb": errors.New("exit status 1")}}
	if err := f.guard(sys).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := f.onDisk(PhaseDone, protocol.UpgradeFailed)
	if !strings.Contains(st.Status.Error, "dpkg could not install 2.0.0: exit status 1: dpkg: error processing archive") {
		t.Errorf("failed with %q", st.Status.Error)
	}
	if got := strings.Join(sys.installs, " "); got != "loa-agent_2.0.0_arm64.deb loa-agent_1.0.0_arm64.deb" {
		t.Errorf("installs %s", got)
	}
}

// TestGuardGoneAtStart: a power cut killed the guard while it checked; the agent that starts
// (here the new version, unhealthy, after the deadline) starts a guard again, which rolls back.
func TestGuardGoneAtStart(t *testing.T) {
	f := newFixture(t)
	f.installing(&f.v1, 60)
	st, _ := LoadState(StatePath(f.dir))
	st.Phase, st.Status.State, st.Deadline = PhaseCheck, protocol.UpgradeChecking, time.Now().Add(-time.Minute)
	if err := SaveState(StatePath(f.dir), st); err != nil {
		t.Fatal(err)
	}
	before := f.box.launched()
	f.box.set(func(b *fakeBox) { b.health = errors.New("schedule not active") })
	m := f.manager("2.0.0")
	f.run(m)
	for deadline := time.Now().Add(10 * time.Second); f.box.launched() != before+1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not start a guard again (%d launches)", f.box.launched()-before)
		}
	}
	sys := &fakeSystem{}
	if err := f.guard(sys).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = f.onDisk(PhaseDone, protocol.UpgradeRolledBack)
	if !strings.HasPrefix(st.Status.Error, "2.0.0 did not report healthy within 60 s: ") {
		t.Errorf("rolled back saying %q", st.Status.Error)
	}
	// A second guard while one holds the lock refuses to run.
	lock, err := lockGuard(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if !guardAlive(f.dir) {
		t.Error("guardAlive does not see a held lock")
	}
}

func TestDamagedStateIsForgotten(t *testing.T) {
	f := newFixture(t)
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(StatePath(f.dir), []byte(`{"phase":"insta`), 0o640)
	m := f.manager("1.0.0")
	if m.Status() != nil {
		t.Fatalf("a damaged state gives %+v", m.Status())
	}
	f.run(m)
	m.Upgrade(f.upgrade("r-1", &f.v1))
	waitState(t, m, protocol.UpgradeInstalling)
}

// A link that drops: the download is tried again and resumed where it stopped; a hub that
// stays unreachable fails the upgrade after the last attempt.
func TestDownloadRetriedAndResumed(t *testing.T) {
	f := newFixture(t)
	f.box.set(func(b *fakeBox) { b.busy = "programme morning plays on speakers" })
	f.hub.down, f.hub.cut = 1, 1
	m := f.manager("1.0.0")
	f.run(m)
	m.Upgrade(f.upgrade("r-1", &f.v1))
	waitState(t, m, protocol.UpgradeWaiting)
	f.hub.mu.Lock()
	froms := fmt.Sprint(f.hub.froms)
	f.hub.mu.Unlock()
	half := int64(len(f.hub.files[f.v2.URL]) / 2)
	if want := fmt.Sprint([]int64{0, 0, half, 0}); froms != want {
		t.Errorf("fetches from offsets %s, want %s (down, cut half way, resumed, then the previous package)", froms, want)
	}

	f.hub.mu.Lock()
	f.hub.down = downloadAttempts
	f.hub.mu.Unlock()
	m.Upgrade(&protocol.Upgrade{Rollout: "r-2", Package: f.release("3.0.0", []byte("three")), Previous: &f.v1, HealthyWithinS: 60})
	s := waitState(t, m, protocol.UpgradeFailed)
	if s.Rollout != "r-2" || !strings.Contains(s.Error, "network is unreachable") {
		t.Errorf("failed with %+v", s)
	}
}

// Under systemd the agent only asks: the request file is what loa-agent-upgrade.path watches.
func TestSystemdLaunchWritesTheRequest(t *testing.T) {
	dir := t.TempDir()
	if err := (Detached{Exe: "/usr/bin/loa-agent", Systemd: true}).Launch(StatePath(dir)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, RequestFile))
	if err != nil || string(b) != StatePath(dir)+"\n" {
		t.Fatalf("request file %q %v", b, err)
	}
	unit, err := os.ReadFile("../../firmware-config/systemd/loa-agent-upgrade.path")
	if err != nil || !strings.Contains(string(unit), "PathExists=/var/lib/loa/upgrade/"+RequestFile+"\n") {
		t.Errorf("loa-agent-upgrade.path does not watch the request file: %v\n%s", err, unit)
	}
	// A process that is not an agent is never sent the guard's SIGTERM.
	if isAgent(os.Getpid()) {
		t.Error("the test process is taken for an agent")
	}
}
