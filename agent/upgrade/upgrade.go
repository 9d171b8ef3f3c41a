// Package upgrade installs the agent releases the hub sends (docs/upgrades.md, "On the
// device"): it verifies a release against the agent's release keys, downloads and checks the
// package and the one to roll back to, waits for the window and a moment without a session or
// an emergency, hands the install to a guard process outside the agent (dpkg restarts the
// agent), checks the new agent's health and rolls back by itself when it is not healthy in
// time. Every step is one state file written atomically.
package upgrade

import (
	"context"
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
	"time"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Config is what the agent tells the upgrader.
type Config struct {
	// Dir holds the state file, the packages and the kept copy (data_dir/upgrade).
	Dir string
	// Keys are the release keys the agent trusts (upgrade.release_keys).
	Keys protocol.TrustedKeys
	// Running is the version of this binary ("1.4.0"), Arch its Debian architecture.
	Running, Arch string
	// Margin: no install when a session starts within it (default 10m).
	Margin time.Duration
	// Poll is how often a waiting upgrade looks at the window and the schedule (default 30s),
	// and how often the new agent runs its health check (a sixth of it, at least 1s).
	Poll time.Duration
}

// StatePath is the state file of dir: what `loa-agent upgrade-guard --state` takes.
func StatePath(dir string) string { return filepath.Join(dir, stateFile) }

// Fetcher downloads a package from the hub with the device's credentials, from byte offset
// from (Range); it returns the body and whether the hub honoured the offset.
type Fetcher interface {
	Fetch(ctx context.Context, path string, from int64) (body io.ReadCloser, resumed bool, err error)
}

// Busy tells whether installing now would cut into a broadcast: it returns why (a session
// playing or due within margin, an emergency active), or "" when the box is quiet.
type Busy interface {
	UpgradeBusy(now time.Time, margin time.Duration) string
}

// Health is the new agent's health check: nil when healthy, or what failed.
type Health interface {
	UpgradeHealth() error
}

// Launcher starts a guard on a state file, detached from the agent.
type Launcher interface {
	Launch(statePath string) error
}

// Deps are what the upgrader uses; all are required.
type Deps struct {
	Log      *slog.Logger
	Now      func() time.Time
	Fetcher  Fetcher
	Busy     Busy
	Health   Health
	Launcher Launcher
}

// Manager is the agent's side of upgrades. Create it with New, run it with Run.
type Manager struct {
	cfg Config
	d   Deps
	in  chan *protocol.Upgrade

	mu sync.Mutex
	st State
}

// New prepares the upgrader and its directory.
func New(cfg Config, d Deps) (*Manager, error) {
	if d.Log == nil || d.Now == nil || d.Fetcher == nil || d.Busy == nil || d.Health == nil || d.Launcher == nil {
		return nil, errors.New("upgrade: Log, Now, Fetcher, Busy, Health and Launcher are all required")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("upgrade: no release keys")
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 10 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 30 * time.Second
	}
	if err := atomicfile.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("upgrade directory: %w", err)
	}
	st, err := LoadState(StatePath(cfg.Dir))
	if err != nil {
		// Never leave a state that blocks the next upgrade: an unreadable one is forgotten.
		d.Log.Error("the upgrade state file is damaged; it is forgotten and the next upgrade starts afresh", "err", err)
		st = State{}
	}
	return &Manager{cfg: cfg, d: d, in: make(chan *protocol.Upgrade, 4), st: st}, nil
}

// Upgrade hands over an upgrade message from the hub; it never blocks (a full queue drops it:
// the hub sends it again on the next connection).
func (m *Manager) Upgrade(u *protocol.Upgrade) {
	select {
	case m.in <- u:
	default:
		m.d.Log.Warn("upgrade message dropped: the upgrader is busy with earlier ones; the hub sends it again", "rollout", u.Rollout)
	}
}

// Status is the upgrade for the agent's status, nil before the first one. A step the guard
// holds is read from the file, where the guard writes it.
func (m *Manager) Status() *protocol.UpgradeStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Phase.guarded() {
		if st, err := LoadState(StatePath(m.cfg.Dir)); err == nil {
			m.st = st
		}
	}
	if m.st.Status.Rollout == "" {
		return nil
	}
	s := m.st.Status
	return &s
}

func (m *Manager) state() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// set moves to a new step: on disk first, then in memory.
func (m *Manager) set(st State) {
	if st.Status.State != m.state().Status.State || st.Status.Since.IsZero() {
		st.Status.Since = m.d.Now()
	}
	if err := SaveState(StatePath(m.cfg.Dir), st); err != nil {
		m.d.Log.Error("cannot write the upgrade state; the step is kept in memory only", "err", err)
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
}

// Run carries out upgrades until ctx ends: it resumes what a restart interrupted, takes the
// hub's messages, starts the install when the box is quiet, and, as the new version, checks
// its own health.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var dlCancel context.CancelFunc
	dlDone := make(chan State, 1)
	startDownload := func(st State) {
		dctx, c := context.WithCancel(ctx)
		dlCancel = c
		wg.Add(1)
		go func() { defer wg.Done(); dlDone <- m.download(dctx, st) }()
	}
	st := m.state()
	switch {
	case st.Phase == PhaseDownload:
		m.d.Log.Info("upgrade: downloading again after a restart", "rollout", st.Status.Rollout, "version", st.Package.Version)
		startDownload(st)
	case st.Phase.guarded():
		m.resumeGuarded(ctx, &wg, st)
	}
	tick := time.NewTicker(m.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-m.in:
			st := m.state()
			if u.Cancel {
				if u.Rollout == st.Status.Rollout && (st.Phase == PhaseDownload || st.Phase == PhaseWait) {
					if dlCancel != nil {
						dlCancel()
					}
					m.drop(st)
				}
				continue
			}
			if dlCancel != nil && st.Phase == PhaseDownload && u.Rollout != st.Status.Rollout {
				dlCancel() // a newer rollout replaces one still downloading
				<-dlDone
				dlCancel = nil
			}
			next, ok := m.accept(u)
			if !ok {
				continue
			}
			if next.Phase == PhaseDownload {
				startDownload(next)
			}
		case st := <-dlDone:
			dlCancel = nil
			if cur := m.state(); cur.Phase == PhaseDownload && cur.Status.Rollout == st.Status.Rollout {
				m.set(st)
				if st.Phase == PhaseWait {
					m.tryInstall()
				}
			}
		case <-tick.C:
			switch st := m.state(); {
			case st.Phase == PhaseWait:
				m.tryInstall()
			case st.Phase == PhaseInstall && st.Package.Version != m.cfg.Running && !guardAlive(m.cfg.Dir) &&
				m.d.Now().Sub(st.Status.Since) > guardStartLimit:
				m.guardNeverStarted(st)
			}
		}
	}
}

// accept checks an upgrade message and makes it the current upgrade: downloading, or refused.
func (m *Manager) accept(u *protocol.Upgrade) (State, bool) {
	cur := m.state()
	log := m.d.Log.With("rollout", u.Rollout, "version", u.Package.Version)
	if cur.Status.Rollout == u.Rollout {
		return cur, false // sent again on a new connection: the status tells the hub where it is
	}
	if cur.Phase.guarded() {
		log.Warn("upgrade ignored: another upgrade is being installed", "installing", cur.Package.Version)
		return cur, false
	}
	if cur.Phase == PhaseDownload || cur.Phase == PhaseWait {
		log.Info("upgrade replaces one not yet installed", "replaced_rollout", cur.Status.Rollout)
		m.removeFiles(cur)
	}
	st := State{Phase: PhaseDownload, Package: u.Package, Window: u.Window, HealthyWithinS: u.HealthyWithinS,
		Status: protocol.UpgradeStatus{Rollout: u.Rollout, Version: u.Package.Version, From: m.cfg.Running, State: protocol.UpgradeDownloading}}
	refuse := func(why string) (State, bool) {
		log.Warn("upgrade refused", "why", why)
		st.Phase, st.Status.State, st.Status.Error = PhaseDone, protocol.UpgradeRefused, clip(why)
		m.set(st)
		return st, true
	}
	if err := protocol.VerifyRelease(&u.Package, m.cfg.Keys); err != nil {
		return refuse("package: " + err.Error())
	}
	if u.Package.Arch != m.cfg.Arch {
		return refuse(fmt.Sprintf("package is for %s; this device is %s", u.Package.Arch, m.cfg.Arch))
	}
	if _, err := protocol.ParseWindow(u.Window); err != nil {
		return refuse("window: " + err.Error())
	}
	if u.Previous != nil {
		if err := protocol.VerifyRelease(u.Previous, m.cfg.Keys); err != nil {
			return refuse("previous: " + err.Error())
		}
		if u.Previous.Arch != m.cfg.Arch {
			return refuse(fmt.Sprintf("previous is for %s; this device is %s", u.Previous.Arch, m.cfg.Arch))
		}
		st.Previous = *u.Previous
	} else if kept, ok := loadKept(m.cfg.Dir); ok && kept.Version == m.cfg.Running && kept.Arch == m.cfg.Arch {
		st.Previous, st.PreviousFile = kept, filepath.Join(m.cfg.Dir, keptDeb)
	} else {
		return refuse(fmt.Sprintf("cannot roll back: the hub sent no previous package and this device keeps no package of the version it runs (%s)", m.cfg.Running))
	}
	log.Info("upgrade accepted: downloading", "previous", st.Previous.Version)
	m.set(st)
	return st, true
}

// drop ends a rollout the hub cancelled before it was installed.
func (m *Manager) drop(st State) {
	m.d.Log.Info("upgrade cancelled by the hub before installing; its downloads are removed", "rollout", st.Status.Rollout)
	m.removeFiles(st)
	st.Phase, st.Status.State, st.Status.Error = PhaseDone, protocol.UpgradeFailed, "the rollout was cancelled before this device installed it"
	st.NewFile, st.PreviousFile = "", ""
	m.set(st)
}

// removeFiles deletes the packages of st, never the kept copy.
func (m *Manager) removeFiles(st State) {
	kept := filepath.Join(m.cfg.Dir, keptDeb)
	for _, f := range []string{st.NewFile, st.PreviousFile} {
		if f != "" && f != kept {
			os.Remove(f)
			os.Remove(f + ".part")
		}
	}
}

// download fetches and checks the packages of st and returns the next step: waiting, or
// refused (a package that does not match its signed size and sha256 is deleted), or failed.
func (m *Manager) download(ctx context.Context, st State) State {
	get := func(p protocol.ReleasePackage) (string, error) {
		path := filepath.Join(m.cfg.Dir, fmt.Sprintf("%s_%s_%s.deb", p.Name, p.Version, p.Arch))
		return path, m.fetch(ctx, p, path)
	}
	havePrevious := st.PreviousFile != "" // the kept copy
	var err error
	var bad badPackage
	for attempt := 1; ; attempt++ {
		var f string
		f, err = get(st.Package)
		st.NewFile = f
		if err == nil && !havePrevious {
			st.PreviousFile, err = get(st.Previous)
		}
		if err == nil || errors.As(err, &bad) || ctx.Err() != nil || attempt == downloadAttempts {
			break
		}
		// A 4G link drops: try again later, resuming where the download stopped.
		wait := min(m.cfg.Poll<<(attempt-1), 30*time.Minute)
		m.d.Log.Warn("upgrade: a download failed; trying again", "rollout", st.Status.Rollout, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return st
		case <-t.C:
		}
	}
	switch {
	case errors.As(err, &bad):
		m.d.Log.Warn("upgrade refused: a downloaded package does not match its signed statement; it is deleted", "rollout", st.Status.Rollout, "err", err)
		m.removeFiles(st)
		st.Phase, st.Status.State, st.Status.Error, st.NewFile = PhaseDone, protocol.UpgradeRefused, clip(err.Error()), ""
	case ctx.Err() != nil:
		return st // cancelled, replaced or stopping: nothing to record
	case err != nil:
		m.d.Log.Warn("upgrade failed: a package could not be downloaded", "rollout", st.Status.Rollout, "attempts", downloadAttempts, "err", err)
		m.removeFiles(st)
		st.Phase, st.Status.State, st.Status.Error, st.NewFile = PhaseDone, protocol.UpgradeFailed, clip(err.Error()), ""
	default:
		m.d.Log.Info("upgrade downloaded and verified: waiting for the window and a quiet moment", "rollout", st.Status.Rollout,
			"version", st.Package.Version, "window", orText(st.Window, "any time"))
		st.Phase, st.Status.State = PhaseWait, protocol.UpgradeWaiting
	}
	return st
}

// downloadAttempts bounds the tries of a download (about 1.5 h of waits with the default
// poll) before the upgrade fails.
const downloadAttempts = 8

// badPackage is a download that is not the package its signed statement describes.
type badPackage struct{ msg string }

func (e badPackage) Error() string { return e.msg }

// fetch downloads p to path through path.part (resumed where a previous try stopped) and
// checks its size and sha256.
func (m *Manager) fetch(ctx context.Context, p protocol.ReleasePackage, path string) error {
	if err := verifyFile(path, p); err == nil {
		return nil // downloaded before a restart
	}
	part := path + ".part"
	var from int64
	if fi, err := os.Stat(part); err == nil && fi.Size() < p.Size {
		from = fi.Size()
	}
	body, resumed, err := m.d.Fetcher.Fetch(ctx, p.URL, from)
	if err != nil {
		return fmt.Errorf("downloading %s %s from %s: %w", p.Name, p.Version, p.URL, err)
	}
	defer body.Close()
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if resumed && from > 0 {
		flags = os.O_WRONLY | os.O_APPEND
	} else {
		from = 0
	}
	f, err := os.OpenFile(part, flags, 0o640)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(body, p.Size-from+1))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s %s from %s: %w (resumed next time)", p.Name, p.Version, p.URL, err)
	}
	if from+n < p.Size {
		return fmt.Errorf("downloading %s %s from %s: the hub sent %d of %d bytes (resumed next time)", p.Name, p.Version, p.URL, from+n, p.Size)
	}
	if from+n > p.Size {
		os.Remove(part)
		return badPackage{fmt.Sprintf("%s %s from %s is longer than its signed size of %d bytes", p.Name, p.Version, p.URL, p.Size)}
	}
	if err := verifyFile(part, p); err != nil {
		os.Remove(part)
		return err
	}
	if err := os.Rename(part, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// verifyFile checks a package file against its signed size and sha256.
func verifyFile(path string, p protocol.ReleasePackage) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != p.Size {
		return badPackage{fmt.Sprintf("%s %s is %d bytes, its signed size is %d", p.Name, p.Version, n, p.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return badPackage{fmt.Sprintf("%s %s has sha256 %s, its signed sha256 is %s: the package was changed after signing", p.Name, p.Version, got, p.SHA256)}
	}
	return nil
}

// tryInstall hands a waiting upgrade to the guard when the window is open and the box quiet.
func (m *Manager) tryInstall() {
	st := m.state()
	now := m.d.Now()
	w, _ := protocol.ParseWindow(st.Window)
	if !w.Contains(now) {
		return
	}
	if why := m.d.Busy.UpgradeBusy(now, m.cfg.Margin); why != "" {
		m.d.Log.Debug("upgrade waits: the box is busy", "why", why)
		return
	}
	// The packages are checked again: days may have passed on an SD card.
	for _, f := range []struct {
		path string
		p    protocol.ReleasePackage
	}{{st.NewFile, st.Package}, {st.PreviousFile, st.Previous}} {
		if err := verifyFile(f.path, f.p); err != nil {
			m.d.Log.Warn("upgrade failed: a downloaded package changed on disk before installing", "err", err)
			m.removeFiles(st)
			st.Phase, st.Status.State, st.Status.Error = PhaseDone, protocol.UpgradeFailed, clip(err.Error())
			m.set(st)
			return
		}
	}
	st.Phase, st.Status.State, st.AgentPID = PhaseInstall, protocol.UpgradeInstalling, os.Getpid()
	m.set(st)
	m.d.Log.Info("upgrade: installing now; the guard takes over and restarts the agent", "rollout", st.Status.Rollout,
		"version", st.Package.Version, "state", StatePath(m.cfg.Dir))
	m.launch(st)
}

// guardStartLimit is how long a launched guard has to take its lock before the agent gives
// the upgrade up (nothing was installed: the old version still runs).
const guardStartLimit = 5 * time.Minute

func (m *Manager) guardNeverStarted(st State) {
	m.d.Log.Error("upgrade failed: the guard did not start; nothing was installed (under systemd: is loa-agent-upgrade.path enabled?)",
		"rollout", st.Status.Rollout, "waited", guardStartLimit)
	m.removeFiles(st)
	st.Phase, st.Status.State = PhaseDone, protocol.UpgradeFailed
	st.Status.Error = fmt.Sprintf("the upgrade guard did not start within %s; nothing was installed", guardStartLimit)
	m.set(st)
}

func (m *Manager) launch(st State) {
	if err := m.d.Launcher.Launch(StatePath(m.cfg.Dir)); err != nil {
		m.d.Log.Error("upgrade failed: the guard could not be started; nothing was installed", "err", err)
		st.Phase, st.Status.State, st.Status.Error = PhaseDone, protocol.UpgradeFailed, clip("starting the upgrade guard: "+err.Error())
		if st.Status.From == "" {
			st.Status.From = m.cfg.Running
		}
		m.set(st)
	}
}

// resumeGuarded acts at start on an upgrade the guard holds: the new version checks its
// health; and a guard that a power cut or a crash killed is started again (it rolls back if
// the deadline passed).
func (m *Manager) resumeGuarded(ctx context.Context, wg *sync.WaitGroup, st State) {
	if !guardAlive(m.cfg.Dir) {
		m.d.Log.Warn("upgrade: the guard is gone (power cut or crash); starting it again to finish", "phase", st.Phase, "rollout", st.Status.Rollout)
		if st.Phase == PhaseInstall && st.Package.Version != m.cfg.Running {
			st.AgentPID = os.Getpid()
			m.set(st)
		}
		m.launch(st)
	}
	if st.Phase == PhaseCheck && st.Package.Version == m.cfg.Running {
		wg.Add(1)
		go func() { defer wg.Done(); m.checkHealth(ctx) }()
	}
}

// checkHealth is the new version's health check: it runs until it passes (and says so in the
// health mark) or the guard stops checking; each failure is written for the guard to report.
func (m *Manager) checkHealth(ctx context.Context) {
	path := filepath.Join(m.cfg.Dir, healthFile)
	every := max(m.cfg.Poll/6, time.Second)
	m.d.Log.Info("upgrade: this is the new version; checking its health", "version", m.cfg.Running)
	last := ""
	for {
		err := m.d.Health.UpgradeHealth()
		mark := HealthMark{Version: m.cfg.Running, PID: os.Getpid(), Healthy: err == nil, At: m.d.Now()}
		if err != nil {
			mark.Failure = clip(err.Error())
		}
		if err == nil || mark.Failure != last {
			if werr := writeJSON(path, mark); werr != nil {
				m.d.Log.Error("cannot write the health mark", "err", werr)
			}
			last = mark.Failure
		}
		if err == nil {
			m.d.Log.Info("upgrade: the new version is healthy", "version", m.cfg.Running)
			return
		}
		m.d.Log.Debug("upgrade: not healthy yet", "failure", mark.Failure)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if st, err := LoadState(StatePath(m.cfg.Dir)); err == nil && st.Phase != PhaseCheck {
			return // the guard decided
		}
	}
}

func clip(s string) string {
	if len(s) > 1000 {
		return s[:1000] + "…"
	}
	return s
}

func orText(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
