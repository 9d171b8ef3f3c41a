package screen

// Each item becomes one mpv loadfile: a URL and per-file options. Bulletins and tickers are
// written as ASS scripts in the runtime directory first.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// prepared is one item turned into an mpv loadfile.
type prepared struct {
	url  string
	opts []string
	kind string
	err  error
}

// prepare turns an item into a loadfile URL and per-file options.
func (s *Screen) prepare(it Item, seq, i int, at time.Duration) prepared {
	if it.Path == "" && it.Text == "" {
		return prepared{kind: "text", err: errors.New("item has neither a file nor a text")}
	}
	if it.Path == "" {
		return s.prepareBulletin(it, seq, i, at)
	}
	pr := s.prepareFile(it, at)
	if pr.err != nil || it.Ticker == "" {
		return pr
	}
	d := it.Duration
	if d <= 0 {
		d = 24 * time.Hour // the ticker runs as long as the video does
	}
	ass, err := s.writeBulletin(Item{Ticker: it.Ticker}, seq, i, d)
	if err != nil {
		pr.err = err
		return pr
	}
	pr.opts = append(pr.opts, "sub-files="+quoteOpt(ass))
	return pr
}

// prepareBulletin draws a text bulletin (and its ticker) over a plain colour source of the
// bulletin's duration.
func (s *Screen) prepareBulletin(it Item, seq, i int, at time.Duration) prepared {
	pr := prepared{kind: "text"}
	if it.Duration <= 0 {
		pr.err = fmt.Errorf("text bulletin %.40q has no duration", it.Text)
		return pr
	}
	bg := s.bg
	if it.Background != "" {
		c, err := parseColour(it.Background)
		if err != nil {
			pr.err = fmt.Errorf("text bulletin background: %w", err)
			return pr
		}
		bg = c
	}
	ass, err := s.writeBulletin(it, seq, i, it.Duration)
	if err != nil {
		pr.err = err
		return pr
	}
	// A ticker needs frames to move; a still bulletin needs few.
	rate := 5
	if it.Ticker != "" {
		rate = 25
	}
	pr.url = fmt.Sprintf("av://lavfi:color=c=%s:s=%dx%d:r=%d:d=%s", bg.lavfi(), s.cfg.Width, s.cfg.Height, rate, secs(it.Duration))
	// A bulletin shorter than two frames is one frame, which mpv treats as a still image.
	pr.opts = append(pr.opts, "sub-files="+quoteOpt(ass), "image-display-duration="+secs(it.Duration))
	if at > 0 {
		pr.opts = append(pr.opts, "start="+secs(at))
	}
	return pr
}

// prepareFile plays a video or shows a still image, told apart by the file's first bytes;
// the item's ticker, if any, is added by prepare.
func (s *Screen) prepareFile(it Item, at time.Duration) prepared {
	var pr prepared
	abs, err := filepath.Abs(it.Path)
	if err != nil {
		pr.err = fmt.Errorf("%s: %w", it.Path, err)
		return pr
	}
	kind, err := sniff(abs)
	pr.kind = kind
	if err != nil {
		pr.err = err
		return pr
	}
	pr.url = abs
	if kind == "image" {
		d := it.Duration
		if d <= 0 {
			d = s.cfg.ImageDuration
		}
		if at > 0 && at < d {
			d -= at // a still joined mid-way shows for what is left of its time
		}
		if it.Ticker != "" {
			// A still is one frame and subtitles move only when frames come: repeat it at
			// 25 fps on the bulletin canvas so the ticker runs, and cut it at its duration.
			w, h := s.cfg.Width, s.cfg.Height
			vf := fmt.Sprintf("lavfi=[loop=loop=-1:size=1,fps=25,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2]", w, h, w, h)
			pr.opts = append(pr.opts, "vf="+quoteOpt(vf), "end="+secs(d))
		} else {
			pr.opts = append(pr.opts, "image-display-duration="+secs(d))
		}
		return pr
	}
	if it.Duration > 0 {
		pr.opts = append(pr.opts, "end="+secs(it.Duration))
	}
	if at > 0 {
		pr.opts = append(pr.opts, "start="+secs(at))
	}
	return pr
}

// secs is a duration as mpv's option value in seconds.
func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// quoteOpt protects a per-file option value that may hold ',' or ':' (mpv's %len% quoting).
func quoteOpt(v string) string { return fmt.Sprintf("%%%d%%%s", len(v), v) }

// writeBulletin renders the ASS script of a bulletin or ticker into the runtime directory.
func (s *Screen) writeBulletin(it Item, seq, i int, d time.Duration) (string, error) {
	l := layout{W: s.cfg.Width, H: s.cfg.Height, Font: s.cfg.Font, Text: it.Text, Ticker: it.Ticker,
		Foreground: s.fg, TickerBand: s.tb, TickerText: s.tf, TickerSpeed: s.cfg.TickerSpeed, Duration: d}
	path := filepath.Join(s.dir, fmt.Sprintf("bulletin-%d-%d.ass", seq, i))
	if err := os.WriteFile(path, []byte(buildASS(l)), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the bulletin for %s: %w", it, err)
	}
	return path, nil
}

// removeOldBulletins deletes the scripts of programs before the previous one (the previous
// one may still be on screen while the new one loads).
func (s *Screen) removeOldBulletins(seq int) {
	files, _ := filepath.Glob(filepath.Join(s.dir, "bulletin-*.ass"))
	for _, f := range files {
		var n, i int
		if _, err := fmt.Sscanf(filepath.Base(f), "bulletin-%d-%d.ass", &n, &i); err == nil && n < seq-1 {
			os.Remove(f)
		}
	}
}

// sniff tells a still image from a video by the file's first bytes (content-addressed files
// have no extension).
func sniff(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "video", fmt.Errorf("file not found: %s", path)
		}
		return "video", fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "video", fmt.Errorf("%s: %w", path, err)
	}
	if fi.IsDir() {
		return "video", fmt.Errorf("%s is a directory, not a video or image", path)
	}
	head := make([]byte, 16)
	n, _ := f.Read(head)
	return sniffBytes(head[:n]), nil
}

// sniffBytes is "image" for PNG, JPEG, GIF, BMP and WebP signatures, else "video".
func sniffBytes(b []byte) string {
	switch {
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n",
		len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF,
		len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"),
		len(b) >= 2 && string(b[:2]) == "BM",
		len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image"
	}
	return "video"
}
