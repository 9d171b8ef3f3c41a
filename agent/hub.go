package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// HubConfig connects the agent to its district hub. Without a URL the agent plays stand-alone.
type HubConfig struct {
	URL string `yaml:"url"` // https://hub.example (http:// only on loopback)
	// Secret is this device's secret from `loa device enroll`; SecretFile reads it from a
	// file instead (keep it out of a config that is copied around).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// TrustedKeys are the hub's public signing keys by key id, as `loa-hub keygen` prints
	// them ("ed25519:…"). Pushes signed by anything else are refused.
	TrustedKeys map[string]string  `yaml:"trusted_keys"`
	Heartbeat   scheduler.Duration `yaml:"heartbeat"`
	// ReconnectMax caps the wait between reconnection attempts (default 1m: after a long
	// outage thousands of agents must not all come back in the same second).
	ReconnectMax scheduler.Duration `yaml:"reconnect_max"`
}

// SoftwareVersion is told to the hub in hello. scripts/package stamps the package version in
// with -ldflags -X; a development build says dev.
var SoftwareVersion = "loa-agent/dev"

func (c *Config) pendingPath() string  { return filepath.Join(c.DataDir, "schedule-pending.json") }
func (c *Config) commandsPath() string { return filepath.Join(c.DataDir, "commands.json") }

// hubSecret returns the device secret from the config or its file.
func (c *Config) hubSecret() (string, error) {
	if c.Hub.SecretFile == "" {
		return c.Hub.Secret, nil
	}
	b, err := os.ReadFile(c.Hub.SecretFile)
	if err != nil {
		return "", fmt.Errorf("hub.secret_file: %v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// newLink builds the hub link, or returns nil when no hub is configured.
func (a *Agent) newLink() (*link.Link, error) {
	hc := a.cfg.Hub
	if hc.URL == "" {
		return nil, nil
	}
	secret, err := a.cfg.hubSecret()
	if err != nil {
		return nil, err
	}
	keys, err := protocol.ParseTrustedKeys(hc.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("hub.trusted_keys: %w", err)
	}
	tr, err := link.DeviceTransport(hc.URL, a.cfg.DeviceID, secret, nil)
	if err != nil {
		return nil, err
	}
	return link.New(link.Config{
		HubURL: hc.URL, DeviceID: a.cfg.DeviceID, Secret: secret, SoftwareVersion: SoftwareVersion,
		TrustedKeys: keys, Heartbeat: hc.Heartbeat.D(), Backoff: protocol.Backoff{Max: hc.ReconnectMax.D()},
	}, link.Deps{
		Logger: a.log.With("component", "link"), Clock: a.clock,
		Rand:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Journal:    a.journal, Store: a.store, Schedules: a, Commands: a,
		CommandMemory: link.FileCommandMemory{Path: a.cfg.commandsPath()}, Status: a,
	})
}

// contentClient is the HTTP client the store fetches with: it carries the device's
// credentials to the hub, and to the hub only.
func (a *Agent) contentClient() *http.Client {
	if a.cfg.Hub.URL == "" {
		return nil
	}
	secret, err := a.cfg.hubSecret()
	if err != nil {
		return nil
	}
	tr, err := link.DeviceTransport(a.cfg.Hub.URL, a.cfg.DeviceID, secret, nil)
	if err != nil {
		return nil
	}
	return &http.Client{Transport: tr}
}

func (a *Agent) notifyLink() {
	if a.link != nil {
		a.link.Notify()
	}
}

// Active implements link.Schedules.
func (a *Agent) Active() *protocol.ScheduleRef {
	if d := a.activeDoc(); d != nil {
		return &protocol.ScheduleRef{ID: d.ID, Revision: uint64(d.Revision)}
	}
	return nil
}

// Pending implements link.Schedules.
func (a *Agent) Pending() *protocol.ScheduleRef {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		return nil
	}
	return &protocol.ScheduleRef{ID: a.pending.doc.ID, Revision: uint64(a.pending.doc.Revision)}
}

// HeldRevision implements link.Schedules: the highest revision ever accepted per schedule id.
func (a *Agent) HeldRevision(id string) (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.held[id]
	return uint64(r), ok
}

// rememberRevision records an accepted revision, on disk before returning: a replayed older
// push must be refused even after a reboot.
func (a *Agent) rememberRevision(id string, rev int64) {
	a.mu.Lock()
	if a.held == nil {
		a.held = map[string]int64{}
	}
	if a.held[id] >= rev {
		a.mu.Unlock()
		return
	}
	a.held[id] = rev
	a.mu.Unlock()
	a.saveState()
}

// Offer implements link.Schedules: a verified push, validated like a local file, activated at
// once when complete and otherwise kept pending while the link fetches what it lacks.
func (a *Agent) Offer(ctx context.Context, p *protocol.SchedulePayload) (link.Progress, error) {
	name := fmt.Sprintf("push of %s revision %d", p.ScheduleID, p.Revision)
	act, err := a.prepareSchedule(name, []byte(p.Document), "")
	if err != nil {
		// Everything prepareSchedule refuses is the document's fault as the hub sees it.
		return link.Progress{}, fmt.Errorf("%w: %v", link.ErrInvalidDocument, err)
	}
	a.rememberRevision(act.doc.ID, act.doc.Revision)
	return a.settle(act)
}

// Advance implements link.Schedules: look again at the pending revision.
func (a *Agent) Advance(ctx context.Context, ref protocol.ScheduleRef) (link.Progress, error) {
	a.mu.Lock()
	pend := a.pending
	a.mu.Unlock()
	if pend == nil || pend.doc.ID != ref.ID || uint64(pend.doc.Revision) != ref.Revision {
		if cur := a.Active(); cur != nil && *cur == ref {
			return link.Progress{State: protocol.DeliveryActive}, nil
		}
		return link.Progress{}, fmt.Errorf("revision %d of %s is neither pending nor active here", ref.Revision, ref.ID)
	}
	act, err := a.prepareSchedule(fmt.Sprintf("pending %s revision %d", ref.ID, ref.Revision), pend.data, "")
	if err != nil {
		return link.Progress{}, err
	}
	return a.settle(act)
}

// settle activates a complete revision, or stores it as pending. A revision carrying an
// emergency is activated at once even while its content is still being fetched (it also stays
// pending so the fetch goes on): a warning late by a slow 3G download is worse than one spoken
// from its fallback text.
func (a *Agent) settle(act *activation) (link.Progress, error) {
	if len(act.missing) > 0 && a.urgent(act) {
		if err := atomicfile.Write(a.cfg.pendingPath(), act.data, 0o600); err != nil {
			return link.Progress{}, fmt.Errorf("saving the pending schedule: %w", err)
		}
		a.mu.Lock()
		a.pending = act
		a.mu.Unlock()
		if cur := a.activeDoc(); cur == nil || cur.ID != act.doc.ID || cur.Revision < act.doc.Revision {
			if err := a.activate(act, true); err != nil {
				return link.Progress{}, err
			}
			a.log.Warn("emergency schedule active before all its content arrived; missing items are spoken from their fallback text until fetched",
				"schedule", act.doc.ID, "revision", act.doc.Revision, "missing", len(act.missing))
		}
		return link.Progress{State: protocol.DeliveryActive, Missing: act.missing}, nil
	}
	if len(act.missing) > 0 {
		if err := atomicfile.Write(a.cfg.pendingPath(), act.data, 0o600); err != nil {
			return link.Progress{}, fmt.Errorf("saving the pending schedule: %w", err)
		}
		a.mu.Lock()
		a.pending = act
		keep := append([]content.Ref(nil), act.refs...)
		if a.doc != nil {
			keep = append(keep, a.pendingKeep()...)
		}
		a.mu.Unlock()
		a.store.Keep(keep)
		a.log.Info("schedule received; waiting for its content before it plays", "schedule", act.doc.ID,
			"revision", act.doc.Revision, "missing", len(act.missing))
		return link.Progress{State: protocol.DeliveryReceived, Missing: act.missing}, nil
	}
	a.mu.Lock()
	completed := false
	if a.pending != nil && a.pending.doc.ID == act.doc.ID && a.pending.doc.Revision <= act.doc.Revision {
		a.pending = nil
		os.Remove(a.cfg.pendingPath())
		completed = true
	}
	a.mu.Unlock()
	if cur := a.activeDoc(); cur != nil && cur.ID == act.doc.ID && cur.Revision >= act.doc.Revision {
		if completed && cur.Revision == act.doc.Revision {
			// An emergency that went active early now has its content: plan again with the
			// real lengths, so its next plays are the recording, not the fallback.
			a.log.Info("content of the active emergency schedule arrived", "schedule", cur.ID, "revision", cur.Revision)
			if err := a.plan(cur); err != nil {
				a.log.Error("cannot plan again", "err", err)
			}
		}
		return link.Progress{State: protocol.DeliveryActive}, nil
	}
	if err := a.activate(act, true); err != nil {
		return link.Progress{}, err
	}
	return link.Progress{State: protocol.DeliveryActive}, nil
}

// pendingKeep lists the store items of the active schedule, to keep beside a pending one.
// Called with a.mu held.
func (a *Agent) pendingKeep() []content.Ref {
	var refs []content.Ref
	for _, p := range a.doc.Programs {
		for _, it := range p.Items {
			if r, err := content.ParseRef(it.Content); err == nil {
				refs = append(refs, r)
			}
		}
	}
	return refs
}

// loadPending restores a pushed revision that was waiting for content at the last stop.
func (a *Agent) loadPending() {
	data, err := os.ReadFile(a.cfg.pendingPath())
	if err != nil {
		return
	}
	act, err := a.prepareSchedule(a.cfg.pendingPath(), data, "")
	if err != nil {
		a.log.Warn("the saved pending schedule cannot be used; dropping it", "err", err)
		os.Remove(a.cfg.pendingPath())
		return
	}
	if cur := a.activeDoc(); cur != nil && cur.ID == act.doc.ID && cur.Revision >= act.doc.Revision {
		os.Remove(a.cfg.pendingPath())
		return
	}
	a.settle(act)
}

// Status implements link.StatusSource.
func (a *Agent) Status() protocol.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := protocol.Status{UptimeS: time.Since(a.started).Seconds(), ClockState: "unsynced"}
	if a.synced {
		st.ClockState = protocol.ClockSynced
	}
	for _, np := range a.nowPlaying {
		p := protocol.NowPlaying{Output: np.Output, Program: np.Program, Class: np.Class, Item: np.Ref, Since: np.Since}
		if a.doc != nil {
			p.ScheduleID, p.Revision = a.doc.ID, uint64(a.doc.Revision)
		}
		st.NowPlaying = append(st.NowPlaying, p)
	}
	if free, ok := diskFree(a.cfg.DataDir); ok {
		st.DiskFreeBytes = &free
	}
	if a.volume != nil {
		v := a.volume.now(a.clock.Now(), a.doc)
		st.Volume = &v
	}
	if a.amp != nil {
		as := a.amp.State()
		on := as.Relay == "on"
		st.Amplifier = &on
		if a.cfg.Amplifier.Driver != amplifier.DriverNone {
			st.Relay = &protocol.Part{State: as.Relay, Error: as.Error, Since: as.ErrorSince}
		}
	}
	if a.sign != nil {
		bs := a.sign.State()
		p := &protocol.Part{State: "connected"}
		if !bs.Connected {
			p.State, p.Error, p.Since = "down", orText(bs.LastError, "not connected yet"), bs.DownSince
		}
		st.Sign = p
	}
	if a.screen != nil {
		ss := a.screen.State()
		p := &protocol.Part{State: "running"}
		if !ss.Running {
			p.State, p.Error, p.Since = "down", orText(ss.LastError, "mpv is not running"), ss.LastErrorAt
		}
		st.Screen = p
	}
	if c, ok := temperature(); ok {
		st.TemperatureC = &c
	}
	return st
}

// urgent reports whether an incomplete revision should play now: it carries an emergency
// programme and can be compiled with what is on the device (missing items have a length
// from the hub or from their fallback text).
func (a *Agent) urgent(act *activation) bool {
	emergency := false
	for _, p := range act.doc.Programs {
		if p.Class == scheduler.Emergency {
			emergency = true
		}
	}
	if !emergency {
		return false
	}
	now := a.clock.Now()
	if _, err := scheduler.Compile(act.doc, now.Add(-26*time.Hour), now.Add(6*time.Hour), scheduler.CompileOptions{ItemLength: a.itemLength}); err != nil {
		a.log.Warn("an emergency schedule cannot play before its content arrives", "schedule", act.doc.ID, "revision", act.doc.Revision, "err", err)
		return false
	}
	return true
}

// temperature is the SoC's, from the kernel's first thermal zone (a Pi in a metal box on a
// pole in the sun runs hot; the hub shows it).
func temperature() (float64, bool) {
	b, err := os.ReadFile("/sys/class/thermal/thermal_zone0/temp")
	if err != nil {
		return 0, false
	}
	milli, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return float64(milli) / 1000, true
}
