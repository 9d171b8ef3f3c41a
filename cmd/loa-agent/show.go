package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/device/sign"
)

// showCmd shows one file or text on the screen (mpv) or the LED board and prints its proof of
// display as one JSON line.
func showCmd(fs *pflag.FlagSet) runFunc {
	out := fs.String("out", "screen", "output: screen (HDMI, through mpv) or board (serial LED sign)")
	dur := fs.Duration("duration", 0, "how long to show: text and images (default 10s); cuts a video; on the board, clear after it (0: leave the text up)")
	ticker := fs.String("ticker", "", "screen: a line scrolling along the bottom")
	asText := fs.Bool("text", false, "show the argument as text even if a file of that name exists")
	vo := fs.String("vo", "", "screen: mpv video output (drm, gpu, x11, null…; default drm, or gpu on a desktop)")
	audio := fs.String("audio", "", `screen: video sound: "" (muted), auto, or an mpv audio device`)
	bg := fs.String("background", "", "screen: bulletin background #RRGGBB")
	shotPath := fs.String("screenshot", "", "screen: write a screenshot here once the item is on screen")
	mpvArgs := fs.StringArray("mpv-arg", nil, "screen: an extra mpv option (repeatable), e.g. --mpv-arg=--drm-connector=HDMI-A-1")
	port := fs.String("port", "", "board: serial port of the Alpha-protocol sign (default: board.port of --config, else /dev/loa-sign)")
	cfgPath := fs.String("config", "/etc/loa/agent.yaml", "board: the agent config whose board: block gives the port and serial settings")
	mode := fs.String("mode", "", "board: auto, hold, rotate, scroll, flash, roll_up, wipe_in, compressed_rotate")
	return func(ctx context.Context, pos []string, log *slog.Logger) int {
		arg := pos[0]
		isFile := false
		if !*asText {
			if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
				isFile = true
			}
		}
		switch *out {
		case "screen":
			it := screen.Item{Ticker: *ticker, Duration: *dur, Background: *bg}
			if isFile {
				it.Path = arg
			} else {
				it.Text = arg
				if it.Duration == 0 {
					it.Duration = 10 * time.Second
				}
			}
			return showScreen(ctx, it, screen.Config{VO: *vo, Audio: *audio, Args: *mpvArgs}, *shotPath, log)
		case "board":
			if isFile {
				fmt.Fprintf(os.Stderr, "loa-agent show: %s is a file; the LED board shows text only (use --text to show the name)\n", arg)
				return 2
			}
			bc, err := boardSettings(*cfgPath, *port)
			if err != nil {
				fmt.Fprintln(os.Stderr, "loa-agent show:", err)
				return 1
			}
			return showBoard(ctx, arg, bc, sign.Mode(*mode), *dur, log)
		}
		fmt.Fprintf(os.Stderr, "loa-agent show: --out %q: want screen or board\n", *out)
		return 2
	}
}

func showScreen(ctx context.Context, it screen.Item, cfg screen.Config, shotPath string, log *slog.Logger) int {
	scr, err := screen.Open(cfg, screen.SystemClock{}, log.With("component", "screen"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-agent show:", err)
		return 1
	}
	defer scr.Close()
	started := make(chan struct{})
	prog := screen.Program{Items: []screen.Item{it}, OnItemStart: func(int, time.Time) { close(started) }}
	// Ctrl-C or SIGTERM takes the item off the screen (the proof then says "stopped").
	sh, err := scr.Show(context.WithoutCancel(ctx), prog)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-agent show:", err)
		return 1
	}
	if shotPath != "" {
		select {
		case <-started:
			if err := scr.Screenshot(ctx, shotPath); err != nil {
				fmt.Fprintln(os.Stderr, "loa-agent show:", err)
			}
		case <-sh.Done():
		case <-ctx.Done():
		}
	}
	var res screen.Result
	select {
	case <-sh.Done():
		res = sh.Wait()
	case <-ctx.Done():
		res = sh.Stop()
	}
	return printProof("show", res.Items[0], res.Items[0].Ended == screen.EndFailed)
}

// boardProof is what `show --out board` prints: the board has no playback events, so the
// proof is that the sign took the text (and, with --duration, the clear).
type boardProof struct {
	Output string    `json:"output"`
	Port   string    `json:"port"`
	Text   string    `json:"text"`
	Sent   string    `json:"sent"` // as the sign's character set shows it
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Ended  string    `json:"ended"`
	Error  string    `json:"error,omitempty"`
}

// boardSettings reads the sign's port and serial settings from the agent config's board:
// block, so a test from the shell talks to the sign as the agent does; a missing config is
// fine (the package's udev name /dev/loa-sign and the Alpha defaults are used). Only that
// block is read: an unfinished config (no device_id yet) must not stop a technician's test.
func boardSettings(path, port string) (sign.AlphaConfig, error) {
	var c struct {
		Board agent.BoardConfig `yaml:"board"`
	}
	if b, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(b, &c); err != nil {
			return sign.AlphaConfig{}, fmt.Errorf("%s: %v (fix the board: block, or give --port)", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return sign.AlphaConfig{}, fmt.Errorf("%s: %v (give --port, or --config FILE)", path, err)
	}
	a := sign.AlphaConfig{Port: c.Board.Port, Baud: c.Board.Baud, Parity: c.Board.Parity, DataBits: c.Board.DataBits,
		StopBits: c.Board.StopBits, Address: c.Board.Address, Verify: c.Board.Verify}
	if port != "" {
		a.Port = port
	}
	if a.Port == "" {
		a.Port = "/dev/loa-sign"
	}
	return a, nil
}

func showBoard(ctx context.Context, text string, ac sign.AlphaConfig, mode sign.Mode, dur time.Duration, log *slog.Logger) int {
	clk := screen.SystemClock{}
	port := ac.Port
	s, err := sign.Open(sign.Config{Alpha: ac}, clk, log.With("component", "sign"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-agent show:", err)
		return 1
	}
	defer s.Close()
	p := boardProof{Output: "board", Port: port, Text: text, Sent: sign.Sanitize(text)}
	// The driver opens the port in the background; give it a moment before calling it away.
	for deadline := time.Now().Add(3 * time.Second); !s.State().Connected && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	p.Start = clk.Now()
	err = s.Show(ctx, sign.Text{Message: text, Mode: mode})
	if err == nil && dur > 0 {
		select {
		case <-time.After(dur):
		case <-ctx.Done():
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = s.Clear(cctx)
		cancel()
		p.End = clk.Now()
	}
	p.Ended = screen.EndCompleted
	if err != nil {
		p.Ended, p.Error = screen.EndFailed, err.Error()
		if errors.Is(err, sign.ErrUnavailable) {
			p.Error += " (check the cable, the sign's power, and the port: board.port in " +
				"/etc/loa/agent.yaml or --port; `ls -l /dev/loa-sign /dev/serial/by-path/` lists the adapters)"
		}
	}
	line, _ := json.Marshal(p)
	fmt.Println(string(line))
	if err != nil {
		return 1
	}
	return 0
}
