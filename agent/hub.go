package agent

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/player"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// HubConfig connects the agent to its district hub. Without a URL the agent plays stand-alone.
type HubConfig struct {
	URL string `yaml:"url"` // https://hub.example (http:// only on loopback)
	// URLs lists several hubs sharing one store (replicas), instead of url: the agent stays
	// with the one it reached and moves to the next when that one fails.
	URLs []string `yaml:"urls"`
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
	urls := a.cfg.HubURLs()
	if len(urls) == 0 {
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
	tr, err := link.DeviceTransportAll(urls, a.cfg.DeviceID, secret, nil)
	if err != nil {
		return nil, err
	}
	return link.New(link.Config{
		HubURLs: urls, DeviceID: a.cfg.DeviceID, Secret: secret, SoftwareVersion: SoftwareVersion,
		TrustedKeys: keys, Heartbeat: hc.Heartbeat.D(), Backoff: protocol.Backoff{Max: hc.ReconnectMax.D()},
		Arch: DebianArch(), Upgrades: a.cfg.upgradesOn(),
	}, link.Deps{
		Logger: a.log.With("component", "link"), Clock: a.clock,
		Rand:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Journal:    a.journal, Store: a.store, Schedules: a.sched, Commands: a,
		CommandMemory: link.FileCommandMemory{Path: a.cfg.commandsPath()}, Status: a,
		Neighbours: a.linkNeighbours(),
		Upgrades:   a.upgradesFor(),
	})
}

// contentClient is the HTTP client the store fetches with: it carries the device's
// credentials to the hubs, and to the hubs only.
func (a *Agent) contentClient() *http.Client {
	urls := a.cfg.HubURLs()
	if len(urls) == 0 {
		return nil
	}
	secret, err := a.cfg.hubSecret()
	if err != nil {
		return nil
	}
	tr, err := link.DeviceTransportAll(urls, a.cfg.DeviceID, secret, nil)
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

// Status implements link.StatusSource.
func (a *Agent) Status() protocol.Status {
	doc := a.sched.active()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := protocol.Status{UptimeS: (a.clock.Monotonic() - a.started).Seconds(), ClockState: protocol.ClockUnsynced}
	if a.synced {
		st.ClockState = protocol.ClockSynced
	}
	if r := a.ntp.Load(); r != nil && r.Synced {
		e := r.ErrorS
		st.ClockErrorS, st.ClockSource = &e, r.Source
	}
	for _, np := range a.nowPlaying {
		p := protocol.NowPlaying{Output: np.Output, Program: np.Program, Class: np.Class, Item: np.Ref, Since: np.Since}
		if doc != nil {
			p.ScheduleID, p.Revision = doc.ID, uint64(doc.Revision)
		}
		st.NowPlaying = append(st.NowPlaying, p)
	}
	if free, ok := diskFree(a.cfg.DataDir); ok {
		st.DiskFreeBytes = &free
	}
	if a.neighbours != nil {
		st.ContentAddr = a.neighbours.ContentAddr()
	}
	if a.volume != nil {
		v := a.volume.now(a.clock.Now(), doc)
		st.Volume = &v
	}
	if a.cfg.has("speakers") {
		st.Audio = a.deadAir.part()
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
	if a.upgrader != nil {
		st.Upgrade = a.upgrader.Status()
	}
	if c, ok := temperature(); ok {
		st.TemperatureC = &c
	}
	return st
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

// stamping is how the speakers play a live relay the hub stamps (docs/sync.md): from the
// hub's feed, with the device's credentials, at stamp + relay.delay on this clock, and from
// the upstream itself if the hub does not serve it. Without a hub it is nil: the upstream.
func (a *Agent) stamping(it scheduler.Item) (string, *player.Stamping) {
	if a.link == nil {
		return "", nil
	}
	secret, err := a.cfg.hubSecret()
	if err != nil {
		a.log.Warn("live relay: the device secret cannot be read; playing the upstream directly", "err", err)
		return "", nil
	}
	sep := "?"
	if strings.Contains(it.Stamped, "?") {
		sep = "&"
	}
	delay := a.cfg.Relay.Delay.D()
	u := a.link.URL(it.Stamped) + sep + "delay=" + url.QueryEscape(delay.String())
	return u, &player.Stamping{Delay: delay, Offset: a.hubOffset, Auth: protocol.FormatDeviceAuth(a.cfg.DeviceID, secret), Direct: it.Stream}
}

// hubOffset is the hub's clock minus this one, as far as it is known better than the system
// clock does: an offset within its own error (half the round trip of its sample, tens of
// milliseconds over 3G) says only that both clocks agree, and then the NTP-synced system clock
// is the better reference (docs/sync.md); a larger one is a clock that is off, and corrected.
func (a *Agent) hubOffset() (time.Duration, bool) {
	off, ok := a.link.ClockOffset()
	if !ok || off.Abs() <= a.link.ClockError()+5*time.Millisecond {
		return 0, false
	}
	return off, true
}
