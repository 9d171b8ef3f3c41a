package upgrades

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// The rollout engine. Its state is the store's (rollouts, rollout_devices), so any hub sharing
// a PostgreSQL store may advance a rollout: each move is a conditional update that happens
// once whichever replica makes it. Each hub sends upgrades only to the devices connected to
// it, and remembers per connection what it wrote (sentMarks), so a device that reconnects
// (here or to another replica) is sent its upgrade again while its part is not final. A
// replica learns of another's stage move at its next tick (Options.Tick), not at once.

// sentMark is what the engine last wrote to a device's connection.
type sentMark struct {
	conn    uint64
	rollout string
	cancel  bool
}

type sentMarks struct {
	mu sync.Mutex
	m  map[string]sentMark
}

func (s *sentMarks) has(device string, m sentMark) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[device] == m
}

func (s *sentMarks) set(device string, m sentMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[device] = m
}

// poke wakes the engine (a status changed a device's state, a device connected, a rollout
// started).
func (rm *Room) poke() {
	select {
	case rm.wake <- struct{}{}:
	default:
	}
}

// Connected is told by the agent link of each welcomed connection.
func (rm *Room) Connected(device string) { rm.poke() }

// Changed is told by the agent link that another replica changed a rollout.
func (rm *Room) Changed() { rm.poke() }

// changed tells the other replicas that rollout id changed (started, moved on, stopped).
func (rm *Room) changed(ctx context.Context, id string) {
	if rm.o.Announce != nil {
		rm.o.Announce(ctx, id)
	}
}

// Report stores the upgrade state a device's status carries and wakes the engine if it
// changed.
func (rm *Room) Report(ctx context.Context, device string, u protocol.UpgradeStatus) {
	changed, err := rm.o.Store.ReportUpgrade(ctx, device, u)
	if err != nil {
		rm.o.Log.Warn("upgrade state not stored", "device", device, "rollout", u.Rollout, "state", u.State, "err", err)
		return
	}
	if !changed {
		return
	}
	switch {
	case store.UpgradeFailure(u.State):
		rm.o.Log.Warn("device did not take its upgrade", "device", device, "rollout", u.Rollout, "version", u.Version, "state", u.State, "error", u.Error)
	default:
		rm.o.Log.Info("device upgrade state", "device", device, "rollout", u.Rollout, "version", u.Version, "state", u.State)
	}
	rm.poke()
}

// Run drives the rollouts until ctx ends: at each tick, when woken, and when a canary's
// healthy_for runs out.
func (rm *Room) Run(ctx context.Context) {
	t := time.NewTimer(rm.o.Tick)
	defer t.Stop()
	for {
		wait := rm.o.Tick
		if due := rm.Step(ctx); !due.IsZero() {
			wait = min(wait, max(due.Sub(rm.o.Now()), 10*time.Millisecond))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rm.wake:
		}
	}
}

// Step advances every open rollout once: stop it if too many failed, move it on a stage if
// its canaries (or everyone) are done, send what its stage calls for to the devices
// connected here. It returns when a canary's healthy_for runs out next (zero: none waits).
func (rm *Room) Step(ctx context.Context) time.Time {
	ros, err := rm.o.Store.OpenRollouts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			rm.o.Log.Error("rollouts not read: upgrades wait until the store answers", "err", err)
		}
		return time.Time{}
	}
	var next time.Time
	counts := map[string]int{}
	for _, ro := range ros {
		due, err := rm.step(ctx, ro, counts)
		if err != nil && ctx.Err() == nil {
			rm.o.Log.Error("rollout not advanced; tried again at the next tick", "rollout", ro.ID, "err", err)
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	if rm.o.Metrics != nil {
		rm.o.Metrics.Upgrades(counts)
	}
	return next
}

// step advances one rollout; counts gains the states of its devices while it runs.
func (rm *Room) step(ctx context.Context, ro store.Rollout, counts map[string]int) (due time.Time, err error) {
	rows, err := rm.o.Store.RolloutDevices(ctx, ro.ID)
	if err != nil {
		return time.Time{}, err
	}
	defer func() {
		if ro.Stage == store.RolloutCanary || ro.Stage == store.RolloutRest {
			for _, x := range rows {
				counts[x.State]++
			}
		}
	}()
	if ro.Stage == store.RolloutCanary || ro.Stage == store.RolloutRest {
		if why := failureShare(ro, rows); why != "" {
			_, err := rm.stop(ctx, ro, why)
			return time.Time{}, err // the next step cancels
		}
		var next string
		if next, due = rm.nextStage(ctx, ro, rows); next != "" {
			moved, err := rm.o.Store.AdvanceRollout(ctx, ro.ID, ro.Stage, next, "")
			if err != nil {
				return time.Time{}, err
			}
			if moved {
				rm.o.Log.Info("rollout moved on", "rollout", ro.ID, "version", ro.Version, "area", ro.Area, "from", ro.Stage, "to", next)
				ro.Stage = next
				rm.changed(ctx, ro.ID)
			}
		}
	}
	switch ro.Stage {
	case store.RolloutCanary, store.RolloutRest:
		rm.sendUpgrades(ctx, ro, rows)
	case store.RolloutStopped:
		rm.sendCancels(ctx, ro, rows)
	}
	return due, nil
}

// failureShare says why a rollout must stop: the devices that rolled back, refused or failed
// are more than its max_failure_percent of those sent the upgrade so far ("" if not).
func failureShare(ro store.Rollout, rows []store.RolloutDevice) string {
	sent, failed := 0, 0
	for _, x := range rows {
		if x.Stage == store.DeviceNone || x.State == store.UpgradePending {
			continue
		}
		sent++
		if store.UpgradeFailure(x.State) {
			failed++
		}
	}
	if sent == 0 || failed*100 <= ro.MaxFailurePercent*sent {
		return ""
	}
	return fmt.Sprintf("%d of the %d devices sent version %s rolled back, refused it or failed: more than the %d%% allowed",
		failed, sent, ro.Version, ro.MaxFailurePercent)
}

// nextStage is the stage a rollout moves to now, "" if it stays: from canary to rest when
// every canary is final and each healthy one has stayed healthy and connected for
// healthy_for; to done when every eligible device is final. Staying, due is when a canary's
// healthy_for runs out (zero if none is waiting for that).
func (rm *Room) nextStage(ctx context.Context, ro store.Rollout, rows []store.RolloutDevice) (next string, due time.Time) {
	now := rm.o.Now()
	var lastSeen map[string]time.Time
	allFinal, wait := true, false
	for _, x := range rows {
		if x.Stage == store.DeviceNone {
			continue
		}
		final := store.UpgradeFinal(x.State)
		if !final {
			allFinal = false
		}
		if ro.Stage != store.RolloutCanary || x.Stage != store.DeviceCanary {
			continue
		}
		if !final {
			wait = true
			continue
		}
		if x.State != protocol.UpgradeHealthy {
			continue
		}
		if at := x.HealthyAt.Add(ro.HealthyFor); x.HealthyAt.IsZero() || now.Before(at) {
			if !x.HealthyAt.IsZero() && (due.IsZero() || at.Before(due)) {
				due = at
			}
			wait = true
			continue
		}
		if lastSeen == nil {
			lastSeen = rm.lastSeen(ctx, ro.Area)
		}
		if t, ok := lastSeen[x.Device]; !ok || !rm.o.Online(x.Device, t) {
			wait = true // healthy, but not connected now
		}
	}
	switch {
	case wait:
		return "", due
	case allFinal:
		return store.RolloutDone, time.Time{}
	case ro.Stage == store.RolloutCanary:
		return store.RolloutRest, time.Time{}
	}
	return "", time.Time{}
}

func (rm *Room) lastSeen(ctx context.Context, area string) map[string]time.Time {
	devs, err := rm.o.Store.ListDevices(ctx, area)
	if err != nil {
		rm.o.Log.Warn("devices of a rollout not read", "area", area, "err", err)
		return map[string]time.Time{}
	}
	out := make(map[string]time.Time, len(devs))
	for _, d := range devs {
		out[d.ID] = d.LastSeen
	}
	return out
}

// sendUpgrades writes the upgrade to each device of the rollout's stage that is connected
// here, has not finished, and was not sent it on this connection.
func (rm *Room) sendUpgrades(ctx context.Context, ro store.Rollout, rows []store.RolloutDevice) {
	releases := map[string]*protocol.ReleasePackage{} // version/arch -> release (nil: not held)
	release := func(version, arch string) *protocol.ReleasePackage {
		k := version + "/" + arch
		if p, ok := releases[k]; ok {
			return p
		}
		var p *protocol.ReleasePackage
		if r, err := rm.o.Store.GetRelease(ctx, version, arch); err == nil {
			pkg := r.ReleasePackage
			pkg.URL = PackagePath(version, arch)
			p = &pkg
		}
		releases[k] = p
		return p
	}
	for _, x := range rows {
		if x.Stage == store.DeviceNone || store.UpgradeFinal(x.State) || ro.Stage == store.RolloutCanary && x.Stage != store.DeviceCanary {
			continue
		}
		conn, ok := rm.o.Link.Conn(x.Device)
		mark := sentMark{conn: conn, rollout: ro.ID}
		if !ok || rm.sent.has(x.Device, mark) {
			continue
		}
		pkg := release(ro.Version, x.Arch)
		if pkg == nil {
			rm.o.Log.Error("rollout's release is gone from the hub: upload it again", "rollout", ro.ID, "version", ro.Version, "arch", x.Arch)
			continue
		}
		m := &protocol.Upgrade{Rollout: ro.ID, Package: *pkg, Window: ro.Window, HealthyWithinS: ro.HealthyWithinS}
		if x.From != "" && x.From != ro.Version {
			m.Previous = release(x.From, x.Arch)
		}
		if err := rm.o.Link.SendOn(x.Device, conn, m); err != nil {
			rm.o.Log.Info("upgrade not sent; sent again at the device's next connection", "device", x.Device, "rollout", ro.ID, "err", err)
			continue
		}
		rm.sent.set(x.Device, mark)
		if x.State == store.UpgradePending {
			if _, err := rm.o.Store.SetRolloutDevice(ctx, ro.ID, x.Device, []string{store.UpgradePending}, store.UpgradeSent, ""); err != nil {
				rm.o.Log.Warn("device's upgrade state not stored", "device", x.Device, "rollout", ro.ID, "err", err)
			}
		}
		rm.o.Log.Info("upgrade sent", "device", x.Device, "rollout", ro.ID, "version", ro.Version, "stage", x.Stage, "previous", m.Previous != nil)
	}
}

// cancellable are the states in which a device has an upgrade it has not begun installing.
var cancellable = []string{store.UpgradeSent, protocol.UpgradeDownloading, protocol.UpgradeWaiting}

// sendCancels tells the devices connected here that were sent a stopped rollout and have not
// begun installing to drop it.
func (rm *Room) sendCancels(ctx context.Context, ro store.Rollout, rows []store.RolloutDevice) {
	for _, x := range rows {
		if !slices.Contains(cancellable, x.State) {
			continue
		}
		conn, ok := rm.o.Link.Conn(x.Device)
		mark := sentMark{conn: conn, rollout: ro.ID, cancel: true}
		if !ok || rm.sent.has(x.Device, mark) {
			continue
		}
		pkg := protocol.ReleasePackage{}
		if r, err := rm.o.Store.GetRelease(ctx, ro.Version, x.Arch); err == nil {
			pkg = r.ReleasePackage
			pkg.URL = PackagePath(ro.Version, x.Arch)
		} else {
			continue // a cancel names the package it cancels; without it the agent would refuse the message
		}
		m := &protocol.Upgrade{Rollout: ro.ID, Package: pkg, Window: ro.Window, HealthyWithinS: ro.HealthyWithinS, Cancel: true}
		if err := rm.o.Link.SendOn(x.Device, conn, m); err != nil {
			continue
		}
		rm.sent.set(x.Device, mark)
		if _, err := rm.o.Store.SetRolloutDevice(ctx, ro.ID, x.Device, cancellable, store.UpgradeCancelled, "the rollout stopped before it began installing"); err != nil {
			rm.o.Log.Warn("device's upgrade state not stored", "device", x.Device, "rollout", ro.ID, "err", err)
		}
		rm.o.Log.Info("upgrade cancelled", "device", x.Device, "rollout", ro.ID)
	}
}

// stop stops a running rollout with why; devices never sent it are marked cancelled at once,
// those sent it are told at the next step. It reports false if the rollout had already left
// its stage (another replica, or staff, moved it first).
func (rm *Room) stop(ctx context.Context, ro store.Rollout, why string) (bool, error) {
	stopped, err := rm.o.Store.AdvanceRollout(ctx, ro.ID, ro.Stage, store.RolloutStopped, why)
	if err != nil || !stopped {
		return stopped, err
	}
	rm.o.Log.Warn("rollout stopped", "rollout", ro.ID, "version", ro.Version, "area", ro.Area, "reason", why)
	defer rm.changed(ctx, ro.ID)
	rows, err := rm.o.Store.RolloutDevices(ctx, ro.ID)
	if err != nil {
		return true, err
	}
	for _, x := range rows {
		if x.State == store.UpgradePending {
			if _, err := rm.o.Store.SetRolloutDevice(ctx, ro.ID, x.Device, []string{store.UpgradePending}, store.UpgradeCancelled, "not sent: the rollout stopped"); err != nil {
				return true, err
			}
		}
	}
	rm.poke()
	return true, nil
}
