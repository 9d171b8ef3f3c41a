package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Phase says who holds an upgrade and what it does next. The agent holds download and wait;
// the guard holds install, check and rollback; done is final (Status says how it ended).
type Phase string

const (
	PhaseDownload Phase = "download" // the agent fetches and verifies the packages
	PhaseWait     Phase = "wait"     // the agent waits for the window and a quiet moment
	PhaseInstall  Phase = "install"  // the guard installs Package
	PhaseCheck    Phase = "check"    // the guard waits for the new agent's health mark
	PhaseRollback Phase = "rollback" // the guard reinstalls Previous
	PhaseDone     Phase = "done"     // final: healthy, rolled back, refused or failed
)

// guarded reports whether the guard, not the agent, holds p.
func (p Phase) guarded() bool { return p == PhaseInstall || p == PhaseCheck || p == PhaseRollback }

// State is the upgrade state file (Config.StatePath): the one place an upgrade lives, written
// whole and atomically at every step so that a power cut leaves the last step taken.
type State struct {
	Phase  Phase                  `json:"phase"`
	Status protocol.UpgradeStatus `json:"status"` // what the hub is told
	// Package is the release to install; Previous the one to reinstall if it is not healthy
	// in time (the hub's, or the kept copy of the running version's package).
	Package  protocol.ReleasePackage `json:"package"`
	Previous protocol.ReleasePackage `json:"previous"`
	// NewFile and PreviousFile are the verified packages on disk.
	NewFile        string `json:"new_file,omitempty"`
	PreviousFile   string `json:"previous_file,omitempty"`
	Window         string `json:"window,omitempty"`
	HealthyWithinS int    `json:"healthy_within_s"`
	// Deadline ends the check phase: the new agent has until then to mark itself healthy.
	Deadline time.Time `json:"deadline,omitzero"`
	// AgentPID is the agent the guard restarts when there is no systemd (a supervisor starts
	// it again); Systemd: restart through systemctl.
	AgentPID int  `json:"agent_pid,omitempty"`
	Systemd  bool `json:"systemd,omitempty"`
}

// HealthMark is what the new agent writes (Config.HealthPath) while the guard checks it: its
// version, and whether its health check passed or what failed last. Only the agent writes it,
// only the guard reads it, so the two never overwrite each other's steps.
type HealthMark struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Healthy bool      `json:"healthy"`
	Failure string    `json:"failure,omitempty"` // the last check that failed
	At      time.Time `json:"at"`
}

// Files of an upgrade directory.
const (
	stateFile  = "state.json"
	healthFile = "health.json"
	keptDeb    = "kept.deb"  // the package of the version running, for the next rollback
	keptJSON   = "kept.json" // its signed statement
	guardLock  = "guard.lock"
	// RequestFile starts the guard under systemd: loa-agent-upgrade.path watches for it.
	RequestFile = "guard.request"
)

// LoadState reads a state file; a missing one is the zero State (no upgrade yet).
func LoadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("upgrade state %s is unreadable: %v", path, err)
	}
	return s, nil
}

// SaveState replaces the state file atomically. The file keeps the directory's owner: the
// guard runs as root and the agent (user loa) must still read and replace it.
func SaveState(path string, s State) error {
	return writeJSON(path, s)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, 0o640); err != nil {
		return err
	}
	return sameOwner(path)
}

// sameOwner gives path the owner of its directory when they differ (root writing into the
// agent's directory).
func sameOwner(path string) error {
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	ds, ok1 := di.Sys().(*syscall.Stat_t)
	fs, ok2 := fi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || (ds.Uid == fs.Uid && ds.Gid == fs.Gid) {
		return nil
	}
	return os.Chown(path, int(ds.Uid), int(ds.Gid))
}

func loadHealth(path string) (HealthMark, error) {
	var h HealthMark
	b, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

func loadKept(dir string) (protocol.ReleasePackage, bool) {
	var p protocol.ReleasePackage
	b, err := os.ReadFile(filepath.Join(dir, keptJSON))
	if err != nil || json.Unmarshal(b, &p) != nil {
		return p, false
	}
	if _, err := os.Stat(filepath.Join(dir, keptDeb)); err != nil {
		return p, false
	}
	return p, true
}

// keep makes file (a verified package) the kept copy for the next rollback.
func keep(dir, file string, p protocol.ReleasePackage) error {
	kept := filepath.Join(dir, keptDeb)
	if file != kept {
		if err := os.Rename(file, kept); err != nil {
			return err
		}
	}
	p.URL = ""
	if err := writeJSON(filepath.Join(dir, keptJSON), p); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

// guardAlive reports whether a guard holds the lock of dir (a power cut frees it).
func guardAlive(dir string) bool {
	f, err := os.Open(filepath.Join(dir, guardLock))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// lockGuard takes the guard lock for the life of the process, or says another guard has it.
func lockGuard(dir string) (*os.File, error) {
	path := filepath.Join(dir, guardLock)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	sameOwner(path)
	// A few tries: the agent's guardAlive holds the lock for an instant when it looks.
	for try := 0; ; try++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if try == 20 {
			f.Close()
			return nil, fmt.Errorf("another upgrade guard holds %s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
