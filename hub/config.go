package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/broadcast"
	"github.com/loa-project/loa/protocol"
)

// DefaultListen is where the hub listens when the config names no address: loopback only, so a
// hub started without TLS is not reachable from the network by accident.
const DefaultListen = "127.0.0.1:8470"

// Config is the hub's configuration file (YAML). Unknown fields are refused so that a typo
// does not silently leave a setting at its default.
type Config struct {
	// Listen is the address the HTTP and websocket server listens on.
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite file (hub.db) and the content library (content/).
	DataDir string `yaml:"data_dir"`
	// Database is where the store is when it is not data_dir/hub.db: a PostgreSQL URL
	// (postgres://user@host/db; docs/hub-storage.md) or sqlite:PATH. The content library
	// stays in data_dir either way (or in content_dir).
	Database string `yaml:"database"`
	// ContentDir is where the content library's files are (default data_dir/content). Several
	// hubs on one PostgreSQL database name the same shared directory, so each serves every
	// item (docs/scale.md); screenshots go beside it.
	ContentDir string `yaml:"content_dir"`
	// SigningKeyFile holds the ed25519 private key ("ed25519-seed:…") schedules are signed with.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningKeyID is the id agents know the public key by (their trusted_keys).
	SigningKeyID string `yaml:"signing_key_id"`
	// TLSCert and TLSKey enable HTTPS/WSS. Without them the hub serves plain HTTP, which is
	// refused on a non-loopback address unless InsecureListen is set.
	TLSCert        string `yaml:"tls_cert"`
	TLSKey         string `yaml:"tls_key"`
	InsecureListen bool   `yaml:"insecure_listen"`
	// PublicURL is the base URL agents fetch content from (e.g. https://hub.example.vn).
	PublicURL string `yaml:"public_url"`
	// Loudness is the integrated loudness target of transcoded content, in LUFS (EBU R128);
	// speech is usually normalised to -16.
	LoudnessLUFS float64 `yaml:"loudness_lufs"`
	// MaxUploadBytes bounds one content upload.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// TranscodeTimeout bounds one upload's probe and transcode (default 30m); MaxTranscodes
	// run at once (default 2, four times as many wait); MaxContentDuration is the longest
	// media taken (default 4h).
	TranscodeTimeout   time.Duration `yaml:"transcode_timeout"`
	MaxTranscodes      int           `yaml:"max_transcodes"`
	MaxContentDuration time.Duration `yaml:"max_content_duration"`
	// FFmpeg and FFprobe are the programs used to transcode and probe content.
	FFmpeg  string `yaml:"ffmpeg"`
	FFprobe string `yaml:"ffprobe"`
	// ReadTimeout and WriteTimeout bound reading one request and writing its answer (default
	// 1m); for content uploads and downloads they bound a pause in the transfer instead, so a
	// large file over 3G still goes through. IdleTimeout closes a keep-alive connection left
	// unused (default 2m). MaxConnections caps open connections, agents' websockets included
	// (default 10000; raise LimitNOFILE with it); connections beyond it are closed at once.
	ReadTimeout    time.Duration `yaml:"read_timeout"`
	WriteTimeout   time.Duration `yaml:"write_timeout"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	MaxConnections int           `yaml:"max_connections"`
	// AuthFailureLimit is how many failed tokens or device secrets one address may present in
	// a minute before it is answered 429 until the minute ends (default 60; -1: off, e.g.
	// behind a proxy, where every request comes from the proxy's address).
	AuthFailureLimit int `yaml:"auth_failure_limit"`
	// MaxHellos bounds agents being welcomed at once; more are told busy and come back later
	// (default 64; -1: off).
	MaxHellos int `yaml:"max_hellos"`
	// StatusInterval is how often agents are asked to send their status.
	StatusInterval time.Duration `yaml:"status_interval"`
	// Timezone is the zone staff dates and times are read and shown in (IANA name; default
	// Asia/Ho_Chi_Minh); a user's CLI may name another.
	Timezone string `yaml:"timezone"`
	// MetricsListen is where GET /metrics answers in the Prometheus text format, on a listener
	// of its own without a token (empty: off): bind it to the district network's interface, or
	// loopback, never the address agents reach over the internet (docs/operations.md).
	MetricsListen string `yaml:"metrics_listen"`
	// ReleaseKeys are the public keys agent releases must be signed with to be uploaded
	// (id: key, the forms agents' trusted_keys take; docs/upgrades.md). Not the schedule
	// key: whoever pushes schedules must not be able to replace the agents' software. None:
	// release uploads are refused.
	ReleaseKeys map[string]string `yaml:"release_keys"`
	// RelayThroughHub has the hub read each live relay's upstream once and serve it to the
	// devices stamped with its clock, so that every cluster plays it in step (default true;
	// docs/sync.md). A device whose hub cannot reach an upstream plays it directly.
	RelayThroughHub *bool `yaml:"relay_through_hub"`
	// CAP turns on CAP 1.2 alerts (POST /api/cap and an optional polled feed); see docs/cap.md.
	CAP *broadcast.CAPConfig `yaml:"cap"`
}

// Defaults fills the fields left empty.
func (c *Config) Defaults() {
	if c.ContentDir == "" && c.DataDir != "" {
		c.ContentDir = filepath.Join(c.DataDir, "content")
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.SigningKeyID == "" {
		c.SigningKeyID = "hub"
	}
	if c.LoudnessLUFS == 0 {
		c.LoudnessLUFS = -16
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 512 << 20
	}
	if c.TranscodeTimeout == 0 {
		c.TranscodeTimeout = 30 * time.Minute
	}
	if c.MaxTranscodes == 0 {
		c.MaxTranscodes = 2
	}
	if c.MaxContentDuration == 0 {
		c.MaxContentDuration = 4 * time.Hour
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = 60 * time.Second
	}
	if c.Timezone == "" {
		c.Timezone = "Asia/Ho_Chi_Minh"
	}
	if c.RelayThroughHub == nil {
		c.RelayThroughHub = new(true)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = time.Minute
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = time.Minute
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 10000
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLSCert != "" {
			scheme = "https"
		}
		c.PublicURL = scheme + "://" + c.Listen
	}
}

// StoreSource is what store.Open is given: Database, or the SQLite file in DataDir.
func (c *Config) StoreSource() string {
	if c.Database != "" {
		return c.Database
	}
	return filepath.Join(c.DataDir, "hub.db")
}

// Check validates a config after Defaults; errors name the field and what to do.
func (c *Config) Check() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is required (the directory for hub.db and content/)")
	}
	if c.SigningKeyFile == "" {
		return errors.New("config: signing_key_file is required; create one with `loa-hub keygen --out FILE`")
	}
	if d := c.Database; d != "" && !strings.HasPrefix(d, "postgres://") && !strings.HasPrefix(d, "postgresql://") && !strings.HasPrefix(d, "sqlite:") {
		// Not echoed: a mistyped URL may still hold a password.
		return errors.New("config: database is neither a PostgreSQL URL nor sqlite:PATH " +
			"(write e.g. postgres://loa@db.example.vn/loa, or leave it out for data_dir/hub.db)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: tls_cert and tls_key must be given together")
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("config: listen %q: %v (write host:port, e.g. 127.0.0.1:8470)", c.Listen, err)
	}
	if c.TLSCert == "" && !c.InsecureListen && !isLoopback(host) {
		return fmt.Errorf("config: listen %q is not a loopback address and no tls_cert is given: "+
			"device secrets and staff tokens would cross the network in clear; give tls_cert/tls_key, "+
			"or set insecure_listen: true behind a TLS-terminating proxy", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("config: metrics_listen %q: %v (write host:port, e.g. 10.0.0.5:9469)", c.MetricsListen, err)
		}
		if c.MetricsListen == c.Listen {
			return fmt.Errorf("config: metrics_listen %q is the listen address: give metrics a port of their own on the district network", c.MetricsListen)
		}
	}
	if c.LoudnessLUFS > -5 || c.LoudnessLUFS < -70 {
		return fmt.Errorf("config: loudness_lufs %v is outside -70..-5 (speech is usually -16)", c.LoudnessLUFS)
	}
	if len(c.ReleaseKeys) > 0 {
		if _, err := protocol.ParseTrustedKeys(c.ReleaseKeys); err != nil {
			return fmt.Errorf("config: release_keys: %v (write id: ed25519:… as `loa release keygen` prints it)", err)
		}
	}
	if _, err := api.LoadZone(c.Timezone); err != nil {
		return fmt.Errorf("config: timezone: %v", err)
	}
	if c.TranscodeTimeout < time.Second || c.MaxTranscodes < 1 || c.MaxContentDuration < time.Second {
		return fmt.Errorf("config: transcode_timeout (%v), max_transcodes (%d) and max_content_duration (%v) must be positive (leave them out for 30m, 2 and 4h)",
			c.TranscodeTimeout, c.MaxTranscodes, c.MaxContentDuration)
	}
	if c.ReadTimeout < 100*time.Millisecond || c.WriteTimeout < 100*time.Millisecond || c.IdleTimeout < 100*time.Millisecond || c.MaxConnections < 1 {
		return fmt.Errorf("config: read_timeout (%v), write_timeout (%v), idle_timeout (%v) and max_connections (%d) must be positive (leave them out for 1m, 1m, 2m and 10000)",
			c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.MaxConnections)
	}
	if c.StatusInterval < time.Second {
		return fmt.Errorf("config: status_interval %v is under a second", c.StatusInterval)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseConfig reads a config document; relative paths are resolved against dir (the
// directory of the config file).
func ParseConfig(data []byte, dir string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %v", err)
	}
	paths := []*string{&c.DataDir, &c.ContentDir, &c.SigningKeyFile, &c.TLSCert, &c.TLSKey}
	if c.CAP != nil {
		paths = append(paths, &c.CAP.AreaMap)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if f, ok := strings.CutPrefix(c.Database, "sqlite:"); ok && f != "" && !filepath.IsAbs(f) {
		c.Database = "sqlite:" + filepath.Join(dir, f)
	}
	c.Defaults()
	if err := c.Check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and checks the config file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %v", err)
	}
	c, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
