package screen

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Config sets up the screen. The zero value is a working full-screen setup: DRM/KMS without
// a desktop, the GPU output when DISPLAY or WAYLAND_DISPLAY is set, no sound.
type Config struct {
	// MPV is the mpv binary (default "mpv" from PATH).
	MPV string `yaml:"mpv,omitempty"`
	// VO is mpv's video output: drm (a Pi without desktop), gpu, x11, null… Empty picks drm,
	// or gpu when a desktop is present.
	VO string `yaml:"vo,omitempty"`
	// Audio is where video sound goes. Empty or "none": muted (the loudspeakers belong to the
	// audio player). "auto": mpv's default device. Anything else is an mpv --audio-device,
	// e.g. "alsa/hdmi:CARD=vc4hdmi0,DEV=0" for the screen's own HDMI speakers.
	Audio string `yaml:"audio,omitempty"`
	// Width and Height of the canvas text bulletins are drawn on (default 1920×1080; mpv
	// scales it to the screen).
	Width  int `yaml:"width,omitempty"`
	Height int `yaml:"height,omitempty"`
	// Font is the fontconfig family of bulletins (default "DejaVu Sans", which has every
	// Vietnamese letter).
	Font string `yaml:"font,omitempty"`
	// Colours as #RRGGBB: bulletin background and letters, ticker band and letters.
	Background       string `yaml:"background,omitempty"`
	Foreground       string `yaml:"foreground,omitempty"`
	TickerBackground string `yaml:"ticker_background,omitempty"`
	TickerForeground string `yaml:"ticker_foreground,omitempty"`
	// TickerSpeed is how fast the ticker runs, in canvas pixels per second (default width/12:
	// 160 px/s at 1920).
	TickerSpeed float64 `yaml:"ticker_speed,omitempty"`
	// ImageDuration is how long a still image shows when its item gives no duration (10 s).
	ImageDuration time.Duration `yaml:"image_duration,omitempty"`
	// Args are extra mpv options, after Loa's own (so they override them): --hwdec=…,
	// --drm-connector=…, --vo-image-outdir=… in tests.
	Args []string `yaml:"mpv_args,omitempty"`
	// Dir holds the IPC socket and the rendered bulletins. Empty: a new temporary directory,
	// removed by Close.
	Dir string `yaml:"dir,omitempty"`
	// StartTimeout is how long mpv may take to open its socket (default 10 s).
	StartTimeout time.Duration `yaml:"start_timeout,omitempty"`
}

func withDefaults(c Config) Config {
	if c.MPV == "" {
		c.MPV = "mpv"
	}
	if c.VO == "" {
		c.VO = "drm"
		if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
			c.VO = "gpu"
		}
	}
	if c.Width == 0 {
		c.Width = 1920
	}
	if c.Height == 0 {
		c.Height = 1080
	}
	if c.Font == "" {
		c.Font = "DejaVu Sans"
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Background, "#0B2E59")
	def(&c.Foreground, "#FFFFFF")
	def(&c.TickerBackground, "#FFD200")
	def(&c.TickerForeground, "#000000")
	if c.TickerSpeed <= 0 {
		c.TickerSpeed = float64(c.Width) / 12
	}
	if c.ImageDuration <= 0 {
		c.ImageDuration = 10 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	return c
}

// palette is the configured colours, parsed once.
type palette struct {
	bg, fg rgb // bulletin background and letters
	tb, tf rgb // ticker band and letters
}

// checkConfig refuses a configuration (with defaults applied) mpv or the bulletins cannot
// use, naming the setting, and returns its colours.
func checkConfig(cfg Config) (palette, error) {
	var pal palette
	for _, c := range []struct {
		dst  *rgb
		v    string
		name string
	}{{&pal.bg, cfg.Background, "background"}, {&pal.fg, cfg.Foreground, "foreground"},
		{&pal.tb, cfg.TickerBackground, "ticker_background"}, {&pal.tf, cfg.TickerForeground, "ticker_foreground"}} {
		var err error
		if *c.dst, err = parseColour(c.v); err != nil {
			return palette{}, fmt.Errorf("screen config: %s: %w", c.name, err)
		}
	}
	if strings.ContainsAny(cfg.Font, ",\n") {
		return palette{}, fmt.Errorf("screen config: font %q: a family name cannot hold a comma or a line break", cfg.Font)
	}
	if cfg.Width < 64 || cfg.Height < 64 {
		return palette{}, fmt.Errorf("screen config: canvas %dx%d is too small (at least 64x64)", cfg.Width, cfg.Height)
	}
	// mpv reads per-file option values as lists split on ':' and ','.
	if strings.ContainsAny(cfg.Dir, ":,") {
		return palette{}, fmt.Errorf("screen config: dir %q: mpv cannot take a path with ':' or ','", cfg.Dir)
	}
	return pal, nil
}
