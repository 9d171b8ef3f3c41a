// Package media turns what staff and CAP feeds upload into the library's form: it recognises
// a file's format from its first bytes (Sniff), refuses what is not media the hub takes, and
// probes and transcodes with ffmpeg under bounds of time, length and concurrency (Transcoder).
package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transcoder turns any common audio file into the library's form: MP3 at 48 kHz, mono kept
// mono (most speech is), loudness-normalised to an EBU R128 target, at a speech-friendly
// bitrate. Everything it is given comes from outside (staff uploads, CAP feeds), so it reads
// only the formats Sniff recognises, each with its own demuxer and the file protocol
// only, runs at most MaxConcurrent jobs, and stops one after Timeout.
type Transcoder struct {
	FFmpeg, FFprobe string
	LoudnessLUFS    float64 // e.g. -16
	TempDir         string  // "" = the OS default
	// Timeout bounds one job (probe and transcode); default 30 min.
	Timeout time.Duration
	// MaxDuration is the longest media taken; default 4 h.
	MaxDuration time.Duration
	// MaxConcurrent jobs run at once (default 2); MaxQueued more wait (default 4×MaxConcurrent)
	// and any beyond are answered ErrBusy.
	MaxConcurrent, MaxQueued int

	once   sync.Once
	slots  chan struct{}
	queued atomic.Int64
}

var (
	// ErrNotAudio is returned for an upload that is not media the hub takes.
	ErrNotAudio = errors.New("not audio")
	// ErrTooLong is returned for media longer than MaxDuration.
	ErrTooLong = errors.New("too long")
	// ErrBusy is returned when MaxConcurrent jobs run and MaxQueued wait.
	ErrBusy = errors.New("transcoder busy")
	// ErrTimeout is returned for a job stopped after Timeout.
	ErrTimeout = errors.New("transcode timed out")
)

func (t *Transcoder) init() {
	t.once.Do(func() {
		if t.Timeout <= 0 {
			t.Timeout = 30 * time.Minute
		}
		if t.MaxDuration <= 0 {
			t.MaxDuration = 4 * time.Hour
		}
		if t.MaxConcurrent <= 0 {
			t.MaxConcurrent = 2
		}
		if t.MaxQueued < 0 {
			t.MaxQueued = 0
		} else if t.MaxQueued == 0 {
			t.MaxQueued = 4 * t.MaxConcurrent
		}
		t.slots = make(chan struct{}, t.MaxConcurrent)
	})
}

// start recognises src's format, waits for a free slot and bounds the job by Timeout; done
// must be called when the job ends.
func (t *Transcoder) start(ctx context.Context, src string) (context.Context, Format, func(), error) {
	f, err := sniffFile(src)
	if err != nil {
		return nil, f, nil, err
	}
	release, err := t.Acquire(ctx)
	if err != nil {
		return nil, f, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	return ctx, f, func() { cancel(); release() }, nil
}

// Acquire takes one of the MaxConcurrent job slots, waiting in the queue of MaxQueued while
// there is room in it, and answers ErrBusy when there is none. Prepare and Transcode take
// theirs themselves; release gives it back.
func (t *Transcoder) Acquire(ctx context.Context) (release func(), err error) {
	t.init()
	select {
	case t.slots <- struct{}{}:
	default:
		if t.queued.Add(1) > int64(t.MaxQueued) {
			t.queued.Add(-1)
			return nil, fmt.Errorf("%w: %d transcodes are running and %d waiting", ErrBusy, t.MaxConcurrent, t.MaxQueued)
		}
		select {
		case t.slots <- struct{}{}:
			t.queued.Add(-1)
		case <-ctx.Done():
			t.queued.Add(-1)
			return nil, ctx.Err()
		}
	}
	return func() { <-t.slots }, nil
}

type probeResult struct {
	Streams []struct {
		CodecType   string `json:"codec_type"`
		CodecName   string `json:"codec_name"`
		PixFmt      string `json:"pix_fmt"`
		Channels    int    `json:"channels"`
		Disposition struct {
			AttachedPic int `json:"attached_pic"` // an MP3's cover art, not a video
		} `json:"disposition"`
	} `json:"streams"`
	Format struct {
		Duration   string `json:"duration"`
		FormatName string `json:"format_name"`
	} `json:"format"`
}

// visual is what a probe says of a picture: "" for sound, else "image" or "video".
func (pr probeResult) visual() string {
	for _, s := range pr.Streams {
		if s.CodecType != "video" || s.Disposition.AttachedPic != 0 {
			continue
		}
		if strings.Contains(pr.Format.FormatName, "image2") || strings.HasSuffix(pr.Format.FormatName, "_pipe") {
			return "image"
		}
		return "video"
	}
	return ""
}

func (pr probeResult) duration() time.Duration {
	d, err := strconv.ParseFloat(pr.Format.Duration, 64)
	if err != nil || d < 0 || d > 1e9 {
		return 0
	}
	return time.Duration(d * float64(time.Second))
}

// run runs one of the tools and says what went wrong in staff's terms.
func (t *Transcoder) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // a killed tool's pipes must not hold the request
	err := cmd.Run()
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.Is(err, exec.ErrNotFound):
		return nil, fmt.Errorf("%s is not installed on the hub (apt-get install ffmpeg): %w", filepath.Base(tool), err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: %s ran longer than the hub's transcode_timeout (%v)", ErrTimeout, filepath.Base(tool), t.Timeout)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%w: %s cannot read it: %s", ErrNotAudio, filepath.Base(tool), firstLine(strings.TrimSpace(stderr.String())))
}

func (t *Transcoder) probe(ctx context.Context, f Format, path string) (probeResult, error) {
	var pr probeResult
	out, err := t.run(ctx, t.FFprobe, append([]string{"-v", "error", "-print_format", "json", "-show_streams", "-show_format"}, f.InputArgs(path)...)...)
	if err != nil {
		return pr, err
	}
	if err := json.Unmarshal(out, &pr); err != nil {
		return pr, fmt.Errorf("ffprobe output: %w", err)
	}
	if d := pr.duration(); d > t.MaxDuration {
		return pr, fmt.Errorf("%w: it lasts %v; the hub takes at most %v (max_content_duration)", ErrTooLong, d.Round(time.Second), t.MaxDuration)
	}
	return pr, nil
}

// Prepare turns an upload into the library's form: sound as Transcode does; a video for
// the screens as H.264 in MP4 (what a Pi decodes in hardware), at most 1080p, its sound kept
// as AAC (screens mute it unless told otherwise), copied as it is when it is that already; a
// PNG or JPEG still as it is. It returns the stored form's duration (0 for a still) and MIME.
func (t *Transcoder) Prepare(ctx context.Context, src, dst string) (time.Duration, string, error) {
	ctx, f, done, err := t.start(ctx, src)
	if err != nil {
		return 0, "", err
	}
	defer done()
	pr, err := t.probe(ctx, f, src)
	if err != nil {
		return 0, "", err
	}
	switch v := pr.visual(); {
	case f.Kind == "image" && v != "image", f.Kind != "image" && v == "image":
		return 0, "", fmt.Errorf("%w: it starts as %s but ffprobe reads it as something else", ErrNotAudio, f.Name)
	case v == "image":
		mime := map[string]string{"png": "image/png", "mjpeg": "image/jpeg"}[pr.Streams[0].CodecName]
		if mime == "" {
			return 0, "", fmt.Errorf("%w: a %s still; upload PNG or JPEG", ErrNotAudio, pr.Streams[0].CodecName)
		}
		return 0, mime, copyFile(src, dst)
	case v == "video":
		args := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, f.InputArgs(src)...)
		args = append(args, "-map_metadata", "-1", "-t", durationArg(t.MaxDuration))
		h264 := false
		for _, s := range pr.Streams {
			h264 = h264 || (s.CodecType == "video" && s.CodecName == "h264" && s.PixFmt == "yuv420p")
		}
		if h264 && strings.Contains(pr.Format.FormatName, "mp4") {
			args = append(args, "-c", "copy")
		} else {
			args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
				"-vf", "scale='min(1920,iw)':'min(1080,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2",
				"-c:a", "aac", "-b:a", "96k")
		}
		args = append(args, "-movflags", "+faststart", "-f", "mp4", dst)
		if _, err := t.run(ctx, t.FFmpeg, args...); err != nil {
			return 0, "", fmt.Errorf("making an MP4 of it: %w", err)
		}
		out, err := t.probe(ctx, fmtMP4, dst)
		if err != nil {
			return 0, "", fmt.Errorf("transcoded video: %w", err)
		}
		return out.duration(), "video/mp4", nil
	}
	d, err := t.transcode(ctx, f, pr, src, dst)
	return d, "audio/mpeg", err
}

func durationArg(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// decodedLength is how long an MP3 plays as decoded: ffprobe's duration counts whole frames,
// including the encoder's delay and padding that a gapless decoder (the agent's libmpg123)
// leaves out, about 45 ms too long per item; a schedule built on it drifts from what is heard
// by that much at every item of a programme.
func (t *Transcoder) decodedLength(ctx context.Context, path string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, t.FFmpeg, "-nostdin", "-v", "error", "-f", "mp3", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second // a killed tool's pipes must not hold the request
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("ffmpeg: %w", err)
	}
	n, cerr := io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil || cerr != nil {
		return 0, fmt.Errorf("%w: ffmpeg cannot decode it: %s", ErrNotAudio, firstLine(strings.TrimSpace(stderr.String())))
	}
	return time.Duration(n/2) * time.Second / 48000, nil
}

// Transcode converts src into dst (MP3) and returns the duration of dst as it plays.
func (t *Transcoder) Transcode(ctx context.Context, src, dst string) (time.Duration, error) {
	ctx, f, done, err := t.start(ctx, src)
	if err != nil {
		return 0, err
	}
	defer done()
	pr, err := t.probe(ctx, f, src)
	if err != nil {
		return 0, err
	}
	return t.transcode(ctx, f, pr, src, dst)
}

func (t *Transcoder) transcode(ctx context.Context, f Format, pr probeResult, src, dst string) (time.Duration, error) {
	ch := 0
	for _, s := range pr.Streams {
		if s.CodecType == "audio" {
			ch = s.Channels
			break
		}
	}
	if ch == 0 {
		return 0, fmt.Errorf("%w: the file has no audio stream", ErrNotAudio)
	}
	// Mono is speech for horn loudspeakers: 48 kbit/s keeps it clear and small over 3G (an
	// emergency clip not yet on a device is fetched while its issue time is spoken).
	channels, bitrate := "1", "48k"
	if ch >= 2 {
		channels, bitrate = "2", "96k"
	}
	af := fmt.Sprintf("loudnorm=I=%g:TP=-1.5:LRA=11", t.LoudnessLUFS)
	args := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, f.InputArgs(src)...)
	args = append(args, "-vn", "-map_metadata", "-1", "-t", durationArg(t.MaxDuration), "-af", af, "-ac", channels, "-ar", "48000",
		"-c:a", "libmp3lame", "-b:a", bitrate, "-f", "mp3", dst)
	if _, err := t.run(ctx, t.FFmpeg, args...); err != nil {
		return 0, fmt.Errorf("transcoding it: %w", err)
	}
	dur, err := t.decodedLength(ctx, dst)
	if err != nil {
		return 0, fmt.Errorf("transcoded file: %w", err)
	}
	return dur, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
