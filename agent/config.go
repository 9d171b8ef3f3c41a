// Package agent is the daemon on each cluster box: it keeps the active schedule, runs its
// timeline through the scheduler's runner, plays through the player, and writes a
// confirmation for every play to the journal.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/scheduler"
)

// Config is the agent's configuration file (docs/agent.md; firmware-config/agent.yaml).
type Config struct {
	DeviceID string `yaml:"device_id"`
	// DataDir holds the content store, the journal, the active schedule and the state file.
	DataDir string `yaml:"data_dir"`
	// Schedule is a local schedule file, for a device used without a hub (optional).
	Schedule string `yaml:"schedule"`
	// Outputs this device has (default: speakers). Programmes for others are not played.
	Outputs []string    `yaml:"outputs"`
	Audio   AudioConfig `yaml:"audio"`
	// Grace is how late a missed start may still play (default 5m).
	Grace scheduler.Duration `yaml:"grace"`
	// Timezone is used to show times when no schedule is active (default: the system's).
	Timezone string      `yaml:"timezone"`
	Clock    ClockConfig `yaml:"clock"`
	Content  struct {
		// BudgetMB caps the content store (0: no cap).
		BudgetMB int64 `yaml:"budget_mb"`
	} `yaml:"content"`
	Journal struct {
		// MaxRecords caps the journal; only acknowledged records are dropped (default 200000).
		MaxRecords int `yaml:"max_records"`
		// Checkpoint is how often a playing record is brought up to date (default 5s; SD
		// cards wear with every write).
		Checkpoint scheduler.Duration `yaml:"checkpoint"`
	} `yaml:"journal"`
	Log LogConfig `yaml:"log"`
	// Amplifier is the relay that switches the loudspeaker amplifier (docs/amplifier.md);
	// without it the amplifier is taken to be always on.
	Amplifier amplifier.Config `yaml:"amplifier"`
	// Volume is this device's volume, 0..1 (default 1), applied on top of each programme's.
	Volume *float64 `yaml:"volume"`
	// VolumeSchedule changes the device volume at times of day (not for emergencies).
	VolumeSchedule []VolumeStep `yaml:"volume_schedule"`
	// Screen is the HDMI screen of the screen output, driven through mpv (docs/screen.md).
	Screen screen.Config `yaml:"screen"`
	// Board is the LED text sign of the board output (docs/signs.md).
	Board BoardConfig `yaml:"board"`
	// Voice is the espeak-ng voice that speaks text items on the speakers (default vi).
	Voice string `yaml:"voice"`
	// Hub connects the agent to the district hub (optional: without it the agent plays its
	// local schedule stand-alone).
	Hub HubConfig `yaml:"hub"`
	// InsecureHub lets hub.url (or hub.urls) be plaintext (http://, ws://) to a host that is not this
	// machine: only when something else (a VPN, an SSH or stunnel tunnel) encrypts the way.
	InsecureHub bool `yaml:"insecure_hub"`
	// MetricsListen serves GET /metrics (Prometheus) on this loopback address, e.g.
	// 127.0.0.1:9470; empty: off. Loopback only: it has no token (docs/operations.md).
	MetricsListen string `yaml:"metrics_listen"`
	// Neighbours shares content with the agents of the commune on the LAN (neighbours.go).
	Neighbours NeighboursConfig `yaml:"neighbours"`
	// Upgrade trusts release keys: the hub's upgrade messages are installed (upgrades.go).
	Upgrade UpgradeConfig `yaml:"upgrade"`
	// Relay is how live relays the hub stamps are played (docs/sync.md).
	Relay RelayConfig `yaml:"relay"`
}

// RelayConfig plays live relays through the hub in step with the other clusters.
type RelayConfig struct {
	// Delay is how long after the hub's stamp each moment of a relay is heard (default 3s):
	// the same on every cluster of an area, and longer than the way from the hub takes.
	Delay scheduler.Duration `yaml:"delay"`
}

// AudioConfig chooses the audio output.
type AudioConfig struct {
	// Output is "alsa", "alsa:DEVICE", "wav:PATH" or "null" (default alsa).
	Output string `yaml:"output"`
	// Buffer is the ALSA buffer length (default 100ms; raise it on a Pi that underruns).
	Buffer scheduler.Duration `yaml:"buffer"`
	// Rate is the output sample rate (default 48000).
	Rate int `yaml:"rate"`
	// Sync holds plays to the wall clock, so that neighbouring clusters sound as one.
	Sync SyncConfig `yaml:"sync"`
	// DeadAir ends an item whose sound stays below a level too long (docs/agent.md).
	DeadAir DeadAirConfig `yaml:"dead_air"`
}

// DeadAirConfig says what dead air is: an item (a file, a relay) whose sound stays below
// LevelDBFS for After is ended, the programme goes on with its next item, the play is
// recorded failed ("dead air: …") and the hub shows an alarm until sound comes back.
type DeadAirConfig struct {
	// After is how long the silence must last (default 30s; "off" is not a duration: set
	// enabled: false to stop watching).
	After scheduler.Duration `yaml:"after"`
	// LevelDBFS is the level under which a 10 ms block counts as silence (default -50).
	LevelDBFS float64 `yaml:"level_dbfs"`
	// Enabled turns the watch on or off (default on).
	Enabled *bool `yaml:"enabled"`
	// FallbackFile is played in place of an item found dead that has no fallback_text of its
	// own: a station identification on the device (MP3, MP2 or WAV). Empty: the programme
	// goes on with its next item.
	FallbackFile string `yaml:"fallback_file"`
}

// SyncConfig holds the speakers' plays to the wall clock (docs/sync.md).
type SyncConfig struct {
	// InStep holds plays to the clock (default true): a play on free speakers starts ahead
	// of its time, its first sample is heard at that time and the rest is kept on the clock.
	// Other plays start at once. False plays each as soon as it starts, as before issue 19.
	InStep *bool `yaml:"in_step"`
	// StartDelay is no longer used (plays in step start ahead of their time); kept so that
	// an agent.yaml written for an earlier version still loads.
	StartDelay scheduler.Duration `yaml:"start_delay"`
	// CorrectRate follows the sound card's crystal by resampling slightly (default true).
	// False: a play starts on time and then drifts by the card's own skew (up to 180 ms over
	// 30 minutes at 100 ppm) until it is 100 ms off and put back with a gap.
	CorrectRate *bool `yaml:"correct_rate"`
	// OutputDelay is the time from ALSA taking a sample to the loudspeaker playing it
	// (default: estimated from audio.buffer). Measure it on one box of a model and set it on all.
	OutputDelay scheduler.Duration `yaml:"output_delay"`
}

// ClockConfig says when the wall clock is trusted.
type ClockConfig struct {
	// SyncFile, when set, must exist before the clock is trusted, e.g.
	// /run/systemd/timesync/synchronized (systemd-timesyncd creates it on first sync).
	SyncFile string `yaml:"sync_file"`
}

// LogConfig sets the log format.
type LogConfig struct {
	Format string `yaml:"format"` // text | json (default text)
	Level  string `yaml:"level"`  // debug | info | warn | error (default info)
}

// LoadConfig reads and checks a config file; unknown fields are errors, so a misspelt key
// does not silently fall back to a default.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	c := Config{Amplifier: amplifier.DefaultConfig()}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if c.Schedule != "" && !filepath.IsAbs(c.Schedule) {
		c.Schedule = filepath.Join(filepath.Dir(path), c.Schedule)
	}
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
	}
	if c.Hub.SecretFile != "" && !filepath.IsAbs(c.Hub.SecretFile) {
		c.Hub.SecretFile = filepath.Join(filepath.Dir(path), c.Hub.SecretFile)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) check() error {
	c.defaults()
	var errs []error
	if c.DeviceID == "" {
		errs = append(errs, errors.New("device_id is missing"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is missing"))
	}
	if c.has("board") && c.Board.Port == "" {
		errs = append(errs, errors.New("outputs has board but board: port is missing (e.g. port: /dev/loa-sign)"))
	}
	if _, err := parseMode(c.Board.Mode); err != nil {
		errs = append(errs, err)
	}
	if err := c.Amplifier.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := newVolume(c.Volume, c.VolumeSchedule); err != nil {
		errs = append(errs, err)
	}
	for _, o := range c.Outputs {
		if o != "speakers" && o != "screen" && o != "board" {
			errs = append(errs, fmt.Errorf("outputs: %q is not speakers, screen or board", o))
		}
	}
	out := c.Audio.Output
	if out != "null" && out != "alsa" && !strings.HasPrefix(out, "alsa:") && !strings.HasPrefix(out, "wav:") {
		errs = append(errs, fmt.Errorf("audio.output %q: use alsa, alsa:DEVICE, wav:PATH or null", out))
	}
	if c.Audio.Rate < 8000 || c.Audio.Rate > 192000 {
		errs = append(errs, fmt.Errorf("audio.rate %d is not a sample rate", c.Audio.Rate))
	}
	if d := c.Audio.Sync.StartDelay.D(); d < 0 || d > 10*time.Second {
		errs = append(errs, fmt.Errorf("audio.sync.start_delay %s: give 0 to 10s", d))
	}
	if d := c.Audio.Sync.OutputDelay.D(); d < 0 || d > 2*time.Second {
		errs = append(errs, fmt.Errorf("audio.sync.output_delay %s: give 0 to 2s", d))
	}
	if d := c.Relay.Delay.D(); d < 500*time.Millisecond || d > 8*time.Second {
		errs = append(errs, fmt.Errorf("relay.delay %s: give 500ms to 8s, the same on every cluster of an area (e.g. delay: 3s)", d))
	}
	if d := c.Audio.DeadAir.After.D(); d < time.Second || d > time.Hour {
		errs = append(errs, fmt.Errorf("audio.dead_air.after %s: give 1s to 1h, e.g. after: 30s", d))
	}
	if l := c.Audio.DeadAir.LevelDBFS; l < -100 || l > -10 {
		errs = append(errs, fmt.Errorf("audio.dead_air.level_dbfs %g: give -100 to -10, e.g. level_dbfs: -50", l))
	}
	if f := c.Audio.DeadAir.FallbackFile; f != "" {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("audio.dead_air.fallback_file %q: not a file on this device (%v); give the path of a station identification, e.g. /var/lib/loa-agent/ident.mp3", f, err))
		}
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			errs = append(errs, fmt.Errorf("timezone %q is not an IANA zone name", c.Timezone))
		}
	}
	errs = append(errs, c.checkHub()...)
	if c.MetricsListen != "" {
		if host, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("metrics_listen %q: %v (write 127.0.0.1:9470)", c.MetricsListen, err))
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			errs = append(errs, fmt.Errorf("metrics_listen %q is not a loopback address: the agent's metrics have no token, so they stay on the box (write 127.0.0.1:9470 and scrape through an SSH tunnel or a local exporter)", c.MetricsListen))
		}
	}
	errs = append(errs, c.Neighbours.check(c.Hub.URL)...)
	errs = append(errs, c.Upgrade.check(c.HubURLs())...)
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: use text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}

func (c *Config) defaults() {
	if len(c.Outputs) == 0 {
		c.Outputs = []string{"speakers"}
	}
	if c.Amplifier.Driver == "" || c.Amplifier.Driver == amplifier.DriverNone {
		c.Amplifier.Driver, c.Amplifier.WarmUp = amplifier.DriverNone, 0 // no relay: nothing warms up
	}
	if c.Audio.Output == "" {
		c.Audio.Output = "alsa"
	}
	if c.Audio.Buffer == 0 {
		c.Audio.Buffer = scheduler.Duration(100 * time.Millisecond)
	}
	if c.Audio.Rate == 0 {
		c.Audio.Rate = 48000
	}
	if c.Audio.Sync.StartDelay == 0 {
		c.Audio.Sync.StartDelay = scheduler.Duration(time.Second)
	}
	if c.Audio.Sync.CorrectRate == nil {
		c.Audio.Sync.CorrectRate = new(true)
	}
	if c.Audio.Sync.InStep == nil {
		c.Audio.Sync.InStep = new(true)
	}
	if c.Relay.Delay == 0 {
		c.Relay.Delay = scheduler.Duration(3 * time.Second)
	}
	if c.Audio.DeadAir.After == 0 {
		c.Audio.DeadAir.After = scheduler.Duration(30 * time.Second)
	}
	if c.Audio.DeadAir.LevelDBFS == 0 {
		c.Audio.DeadAir.LevelDBFS = -50
	}
	if c.Audio.DeadAir.Enabled == nil {
		c.Audio.DeadAir.Enabled = new(true)
	}
	if c.Grace == 0 {
		c.Grace = scheduler.Duration(5 * time.Minute)
	}
	if c.Journal.MaxRecords == 0 {
		c.Journal.MaxRecords = 200000
	}
	if c.Journal.Checkpoint == 0 {
		c.Journal.Checkpoint = scheduler.Duration(5 * time.Second)
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// checkHub checks the hub section when one is configured: every problem, each naming its
// field (and index in hub.urls).
func (c *Config) checkHub() []error {
	var errs []error
	if c.Hub.URL != "" && len(c.Hub.URLs) > 0 {
		errs = append(errs, errors.New("hub.url and hub.urls are both set: give one, e.g. hub.urls: [https://hub-a.example, https://hub-b.example]"))
	}
	urls := c.HubURLs()
	if len(urls) == 0 {
		return errs
	}
	if c.Hub.Secret == "" && c.Hub.SecretFile == "" {
		errs = append(errs, errors.New("hub.secret (or hub.secret_file) is missing: run `loa device enroll` at the hub to get one"))
	}
	if len(c.Hub.TrustedKeys) == 0 {
		errs = append(errs, errors.New("hub.trusted_keys is empty: add the key `loa-hub keygen` printed, or every push will be refused"))
	}
	seen := map[string]string{}
	for i, u := range urls {
		field := "hub.url"
		if len(c.Hub.URLs) > 0 {
			field = fmt.Sprintf("hub.urls[%d]", i)
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") &&
			!strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			errs = append(errs, fmt.Errorf("%s %q: give the hub's base URL, e.g. https://hub.example", field, u))
		} else if err := link.CheckHubURL(u, c.InsecureHub); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", field, strings.TrimPrefix(err.Error(), "link: ")))
		} else if first, dup := seen[strings.TrimSuffix(u, "/")]; dup {
			errs = append(errs, fmt.Errorf("%s %q is %s again: list each hub once", field, u, first))
		} else {
			seen[strings.TrimSuffix(u, "/")] = field
		}
	}
	return errs
}

// HubURLs are the hubs the agent connects to, in the order it tries them: hub.urls, or
// hub.url as a list of one; none when the agent plays stand-alone.
func (c *Config) HubURLs() []string {
	if len(c.Hub.URLs) > 0 {
		return c.Hub.URLs
	}
	if c.Hub.URL != "" {
		return []string{c.Hub.URL}
	}
	return nil
}

// Paths inside the data directory.
func (c *Config) contentDir() string  { return filepath.Join(c.DataDir, "content") }
func (c *Config) journalPath() string { return filepath.Join(c.DataDir, "journal.db") }
func (c *Config) activePath() string  { return filepath.Join(c.DataDir, "schedule-active.json") }
func (c *Config) statePath() string   { return filepath.Join(c.DataDir, "state.json") }
func (c *Config) SocketPath() string  { return filepath.Join(c.DataDir, "agent.sock") }
func (c *Config) JournalPath() string { return c.journalPath() }
func (c *Config) StatusPath() string  { return filepath.Join(c.DataDir, "status.json") }
func (c *Config) ContentDir() string  { return c.contentDir() }
