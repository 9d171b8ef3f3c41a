package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

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
}

func newLengthCache(rate int, log *slog.Logger) *lengthCache {
	return &lengthCache{rate: rate, log: log, m: map[string]time.Duration{}}
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
	if err != nil {
		c.log.Warn("cannot tell how long a media file plays", "file", path, "err", err)
		return 0
	}
	return time.Duration(frames) * time.Second / time.Duration(c.rate)
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
