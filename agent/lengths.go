package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/player"
	"github.com/loa-project/loa/scheduler"
)

// lengthCache knows how long media files play (player.Length reads headers or scans frames),
// remembering the answer by path, size and modification time.
type lengthCache struct {
	rate int
	log  *slog.Logger
	mu   sync.Mutex
	m    map[string]time.Duration
	// last is each item's (file or content reference) length when last seen on the device:
	// a file that vanishes (or an item that rots) after its schedule was accepted keeps the
	// place it had, and fails at its turn saying why, instead of leaving the whole schedule
	// uncompilable and the device silent.
	last map[string]time.Duration
}

func newLengthCache(rate int, log *slog.Logger) *lengthCache {
	return &lengthCache{rate: rate, log: log, m: map[string]time.Duration{}, last: map[string]time.Duration{}}
}

// remember keeps an item's length as last seen; lastSeen answers it.
func (c *lengthCache) remember(item string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.last) > 10_000 { // a bound: schedules name far fewer items
		clear(c.last)
	}
	c.last[item] = d
}

func (c *lengthCache) lastSeen(item string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.last[item]
	return d, ok && d > 0
}

func (c *lengthCache) lengthOf(path string) (time.Duration, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	key := fmt.Sprintf("%s|%d|%d", path, fi.Size(), fi.ModTime().UnixNano())
	c.mu.Lock()
	d, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return d, d > 0
	}
	d = c.probe(path)
	c.mu.Lock()
	c.m[key] = d
	c.mu.Unlock()
	return d, d > 0
}

func (c *lengthCache) probe(path string) time.Duration {
	frames, err := player.Length(path, c.rate)
	if err == nil {
		return time.Duration(frames) * time.Second / time.Duration(c.rate)
	}
	// Not audio: a video or a still for the screen. ffprobe (with mpv's ffmpeg libraries on
	// a screen device) tells a video's length; a still shows for stillDuration.
	if d, ok := visualLength(path); ok {
		return d
	}
	c.log.Warn("cannot tell how long a media file plays; give the item a duration", "file", path, "err", err)
	return 0
}

// stillDuration is how long a still image without a duration shows (as device/screen does).
const stillDuration = 10 * time.Second

// visualLength asks ffprobe for a video's length, or recognises a still image.
func visualLength(path string) (time.Duration, bool) {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration,format_name",
		"-of", "default=noprint_wrappers=1", path).Output()
	if err != nil {
		return 0, false
	}
	var dur, format string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "duration="); ok {
			dur = v
		}
		if v, ok := strings.CutPrefix(line, "format_name="); ok {
			format = v
		}
	}
	if s, err := strconv.ParseFloat(dur, 64); err == nil && s > 0 && !strings.Contains(format, "image2") && !strings.HasSuffix(format, "_pipe") {
		return time.Duration(s * float64(time.Second)), true
	}
	if strings.Contains(format, "image2") || strings.HasSuffix(format, "_pipe") {
		return stillDuration, true
	}
	return 0, false
}

// FileLengths returns compile options that learn the length of `file:` items by decoding
// them, with relative paths read from base (the schedule file's directory). `loa-agent plan`
// uses it so a plan of local files shows their real lengths.
func FileLengths(base string, rate int, log *slog.Logger) scheduler.CompileOptions {
	c := newLengthCache(rate, log)
	return scheduler.CompileOptions{ItemLength: func(it scheduler.Item) (time.Duration, bool) {
		if it.File == "" {
			return 0, false
		}
		p := it.File
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		return c.lengthOf(p)
	}}
}

// itemLength tells the compiler how long an item without a written duration lasts, by
// decoding it once (cached by path and modification time).
func (a *Agent) itemLength(it scheduler.Item) (time.Duration, bool) {
	path := ""
	switch {
	case it.File != "":
		path = it.File
	case it.Content != "":
		ref, err := content.ParseRef(it.Content)
		if err != nil {
			return 0, false
		}
		path, _ = a.store.Path(ref)
	default:
		return 0, false
	}
	item := it.File + it.Content
	if path != "" {
		if d, ok := a.lengths.lengthOf(path); ok {
			a.lengths.remember(item, d)
			return d, true
		}
		if _, err := os.Stat(path); err == nil {
			return 0, false // on the device, but of no length we can tell: not a missing item
		}
	}
	// Missing on the device: the fallback text is what will be heard, if any; without one,
	// the length it had when last seen (it fails at its turn, saying it is missing).
	if it.Fallback == "" || a.speech == nil {
		return a.lengths.lastSeen(item)
	}
	p, err := a.speech.path(context.Background(), it.Fallback)
	if err != nil {
		a.log.Warn("cannot speak the fallback text of a missing item", "err", err)
		return 0, false
	}
	return a.lengths.lengthOf(p)
}
