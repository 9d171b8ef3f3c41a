package upgrade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/protocol"
)

// System is what the guard does to the machine: install a package, restart the agent.
// Debian is the real one.
type System interface {
	// Install installs a .deb keeping the technician's config; out is dpkg's output.
	Install(deb string) (out string, err error)
	// Restart restarts the agent: pid is the agent process to stop when no service manager
	// restarts it (0: none known).
	Restart(pid int) error
}

// Guard installs an upgrade from outside the agent's process: dpkg restarts the agent, which
// would kill a dpkg the agent ran itself. It picks up the state file wherever the last step
// left it, so it can be started again after a power cut (`loa-agent upgrade-guard`).
type Guard struct {
	StatePath string
	Log       *slog.Logger
	Now       func() time.Time
	System    System
	// Poll is how often the health mark is read while checking (default 1s).
	Poll time.Duration
}

// ErrNothingToDo: the state holds no step for a guard (already done, or never installing).
var ErrNothingToDo = errors.New("the upgrade state holds nothing for the guard to do")

// Run carries the upgrade from its current step to a final one and returns; an error means it
// could not start (another guard runs, no state) or a step could not be written.
func (g *Guard) Run(ctx context.Context) error {
	if g.Poll <= 0 {
		g.Poll = time.Second
	}
	dir := filepath.Dir(g.StatePath)
	lock, err := lockGuard(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	// Under systemd the request started this guard; it goes when the guard is done, so that
	// a guard a power cut killed is started again at boot (PathExists).
	defer os.Remove(filepath.Join(dir, RequestFile))
	for {
		st, err := LoadState(g.StatePath)
		if err != nil {
			return err
		}
		log := g.Log.With("rollout", st.Status.Rollout, "version", st.Package.Version, "previous", st.Previous.Version)
		switch st.Phase {
		case PhaseInstall:
			err = g.install(log, st)
		case PhaseCheck:
			err = g.check(ctx, log, st)
		case PhaseRollback:
			err = g.rollback(log, st)
		default:
			if st.Phase == PhaseDone {
				return nil
			}
			return fmt.Errorf("%w (phase %q in %s)", ErrNothingToDo, st.Phase, g.StatePath)
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (g *Guard) save(st State, state string) error {
	if st.Status.State != state {
		st.Status.Since = g.Now()
	}
	st.Status.State = state
	if err := SaveState(g.StatePath, st); err != nil {
		return fmt.Errorf("upgrade guard: writing the state: %w", err)
	}
	return nil
}

func (g *Guard) install(log *slog.Logger, st State) error {
	dir := filepath.Dir(g.StatePath)
	os.Remove(filepath.Join(dir, healthFile)) // a mark from an earlier upgrade says nothing
	log.Info("upgrade guard: installing", "package", st.NewFile)
	out, err := g.System.Install(st.NewFile)
	if err != nil {
		log.Error("upgrade guard: dpkg could not install the new version; reinstalling the previous one", "err", err, "dpkg", tail(out))
		why := fmt.Sprintf("dpkg could not install %s: %v: %s", st.Package.Version, err, tail(out))
		if out2, err2 := g.System.Install(st.PreviousFile); err2 != nil {
			log.Error("upgrade guard: reinstalling the previous version failed too; install it by hand", "package", st.PreviousFile, "err", err2, "dpkg", tail(out2))
			why += fmt.Sprintf("; reinstalling %s failed too (%v): install %s by hand", st.Previous.Version, err2, st.PreviousFile)
		} else {
			g.keepPrevious(log, st)
		}
		g.restart(log, st.AgentPID)
		st.Phase, st.Status.Error = PhaseDone, clip(why)
		return g.save(st, protocol.UpgradeFailed)
	}
	st.Phase, st.Deadline = PhaseCheck, g.Now().Add(time.Duration(st.HealthyWithinS)*time.Second)
	if err := g.save(st, protocol.UpgradeChecking); err != nil {
		return err
	}
	log.Info("upgrade guard: installed; restarting the agent, which has until the deadline to report healthy",
		"deadline", st.Deadline.Format(time.RFC3339), "healthy_within_s", st.HealthyWithinS)
	g.restart(log, st.AgentPID)
	return nil
}

func (g *Guard) check(ctx context.Context, log *slog.Logger, st State) error {
	dir := filepath.Dir(g.StatePath)
	// Waited on monotonic time from here, and never longer than the whole allowance: the
	// clock of a box without RTC may be far behind after a power cut, until NTP steps it.
	left := min(st.Deadline.Sub(g.Now()), time.Duration(st.HealthyWithinS)*time.Second)
	timeout := time.NewTimer(max(left, 0))
	defer timeout.Stop()
	tick := time.NewTicker(g.Poll)
	defer tick.Stop()
	var mark HealthMark
	for {
		m, err := loadHealth(filepath.Join(dir, healthFile))
		if err == nil && m.Version == st.Package.Version {
			mark = m
			if m.Healthy {
				return g.healthy(log, st)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			continue
		case <-timeout.C:
		}
		break
	}
	why := "it did not start"
	if mark.Version != "" {
		why = orText(mark.Failure, "it started but did not finish its health check")
	}
	st.Phase = PhaseRollback
	st.Status.Error = clip(fmt.Sprintf("%s did not report healthy within %d s: %s", st.Package.Version, st.HealthyWithinS, why))
	st.AgentPID = mark.PID
	log.Warn("upgrade guard: the new version is not healthy in time; rolling back", "why", st.Status.Error)
	return g.save(st, protocol.UpgradeChecking)
}

func (g *Guard) healthy(log *slog.Logger, st State) error {
	dir := filepath.Dir(g.StatePath)
	if err := keep(dir, st.NewFile, st.Package); err != nil {
		log.Warn("upgrade guard: the new package could not be kept for the next rollback", "err", err)
	}
	if st.PreviousFile != filepath.Join(dir, keptDeb) {
		os.Remove(st.PreviousFile)
	}
	os.Remove(filepath.Join(dir, healthFile))
	st.Phase, st.NewFile, st.PreviousFile, st.Status.Error = PhaseDone, "", "", ""
	log.Info("upgrade guard: the new version is healthy; upgrade done")
	return g.save(st, protocol.UpgradeHealthy)
}

func (g *Guard) rollback(log *slog.Logger, st State) error {
	log.Info("upgrade guard: reinstalling the previous version", "package", st.PreviousFile)
	out, err := g.System.Install(st.PreviousFile)
	if err != nil {
		log.Error("upgrade guard: reinstalling the previous version failed; install it by hand", "package", st.PreviousFile, "err", err, "dpkg", tail(out))
		st.Phase = PhaseDone
		st.Status.Error = clip(fmt.Sprintf("%s; reinstalling %s failed (%v: %s): install %s by hand",
			st.Status.Error, st.Previous.Version, err, tail(out), st.PreviousFile))
		return g.save(st, protocol.UpgradeFailed)
	}
	g.restart(log, st.AgentPID)
	g.keepPrevious(log, st)
	if st.NewFile != "" {
		os.Remove(st.NewFile)
	}
	os.Remove(filepath.Join(filepath.Dir(g.StatePath), healthFile))
	st.Phase, st.NewFile, st.PreviousFile = PhaseDone, "", ""
	log.Warn("upgrade guard: rolled back", "why", st.Status.Error)
	return g.save(st, protocol.UpgradeRolledBack)
}

// keepPrevious keeps the reinstalled previous package for the next rollback.
func (g *Guard) keepPrevious(log *slog.Logger, st State) {
	if err := keep(filepath.Dir(g.StatePath), st.PreviousFile, st.Previous); err != nil {
		log.Warn("upgrade guard: the previous package could not be kept for the next rollback", "err", err)
	}
}

func (g *Guard) restart(log *slog.Logger, pid int) {
	if err := g.System.Restart(pid); err != nil {
		log.Warn("upgrade guard: restarting the agent failed", "err", err)
	}
}

// tail is the end of dpkg's output, where it says what went wrong.
func tail(out string) string {
	out = strings.TrimSpace(out)
	if len(out) > 400 {
		out = "…" + out[len(out)-400:]
	}
	return out
}
