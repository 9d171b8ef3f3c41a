package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loa-project/loa/hub/api"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Transcoder turns any common audio file into the library's form: MP3 at 48 kHz, mono kept
// mono (most speech is), loudness-normalised to an EBU R128 target, at a speech-friendly
// bitrate. Everything it is given comes from outside (staff uploads, CAP feeds), so it reads
// only the formats sniffFormat recognises, each with its own demuxer and the file protocol
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
func (t *Transcoder) start(ctx context.Context, src string) (context.Context, inputFormat, func(), error) {
	t.init()
	f, err := sniffFile(src)
	if err != nil {
		return nil, f, nil, err
	}
	select {
	case t.slots <- struct{}{}:
	default:
		if t.queued.Add(1) > int64(t.MaxQueued) {
			t.queued.Add(-1)
			return nil, f, nil, fmt.Errorf("%w: %d transcodes are running and %d waiting", ErrBusy, t.MaxConcurrent, t.MaxQueued)
		}
		select {
		case t.slots <- struct{}{}:
			t.queued.Add(-1)
		case <-ctx.Done():
			t.queued.Add(-1)
			return nil, f, nil, ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	return ctx, f, func() { cancel(); <-t.slots }, nil
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

func (t *Transcoder) probe(ctx context.Context, f inputFormat, path string) (probeResult, error) {
	var pr probeResult
	out, err := t.run(ctx, t.FFprobe, append([]string{"-v", "error", "-print_format", "json", "-show_streams", "-show_format"}, f.inputArgs(path)...)...)
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
		args := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, f.inputArgs(src)...)
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

func (t *Transcoder) transcode(ctx context.Context, f inputFormat, pr probeResult, src, dst string) (time.Duration, error) {
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
	args := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, f.inputArgs(src)...)
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

func contentJSON(c store.Content, base string) api.ContentJSON {
	j := api.ContentJSON{Ref: c.Ref, Size: c.Size, DurationS: c.Duration.Seconds(), MIME: c.MIME, Title: c.Title,
		Theme: c.Theme, Language: c.Language, Format: c.Format, Unit: c.ProducingUnit, By: c.UploadedBy, At: c.UploadedAt}
	if base != "" {
		j.URL = strings.TrimRight(base, "/") + "/content/" + c.Ref
	}
	return j
}

func (s *Server) apiListContent(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	in := map[string]*string{}
	for _, k := range []string{"language", "theme", "format", "unit"} {
		if v := q.Get(k); v != "" {
			in[k] = &v
		}
	}
	m, err := s.resolveMeta(r.Context(), in)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	f := store.ContentFilter{Title: q.Get("title"), UploadedBy: q.Get("by")}
	for _, x := range []struct {
		dst *string
		v   *string
	}{{&f.Language, m.language}, {&f.Theme, m.theme}, {&f.Format, m.format}, {&f.ProducingUnit, m.unit}} {
		if x.v != nil {
			*x.dst = *x.v
		}
	}
	now := s.clock.Now()
	if f.Since, err = ParseTimeParam("since", q.Get("since"), now, p.Zone); err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Until, err = ParseTimeParam("until", q.Get("until"), now, p.Zone); err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	cs, err := s.st.ListContent(r.Context(), f)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	labels := s.labels(r.Context())
	out := make([]api.ContentJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, withLabels(contentJSON(c, s.opts.PublicURL), labels))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// apiUploadContent takes multipart/form-data (a "file" part and title, language, theme, format,
// unit fields) or a raw body with those as query parameters.
func (s *Server) apiUploadContent(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	if s.tc == nil {
		staffapi.Error(w, http.StatusServiceUnavailable, "this hub has no transcoder configured; uploads are disabled")
		return
	}
	tmpDir := s.tc.TempDir
	if tmpDir != "" {
		os.MkdirAll(tmpDir, 0o750)
	}
	in, err := os.CreateTemp(tmpDir, "upload-*")
	if err != nil {
		s.uploadFailed(w, err)
		return
	}
	defer os.Remove(in.Name())
	defer in.Close()
	meta, err := readUpload(r, in)
	if err != nil {
		s.uploadReadError(w, err)
		return
	}
	if meta["title"] == "" {
		staffapi.Error(w, http.StatusBadRequest, "content needs a title: use --title")
		return
	}
	// Metadata is checked before the (long) transcode and before anything is stored, so a
	// refusal costs nothing and leaves nothing behind.
	given := map[string]*string{}
	for _, k := range []string{"language", "theme", "format", "unit"} {
		v := meta[k]
		given[k] = &v
	}
	m, err := s.resolveMeta(r.Context(), given)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if err := in.Sync(); err != nil {
		s.uploadFailed(w, err)
		return
	}
	out := in.Name() + ".out"
	defer os.Remove(out)
	dur, mimeType, err := s.tc.Prepare(r.Context(), in.Name(), out)
	if err != nil {
		name := orDefault(meta["filename"], "the upload")
		code := http.StatusInternalServerError
		switch {
		case store.IsFull(err):
			s.uploadFailed(w, err)
			return
		case errors.Is(err, ErrNotAudio):
			code = http.StatusUnsupportedMediaType
			err = fmt.Errorf("%s is not audio the hub can use (%v); upload MP3, WAV, M4A, OGG or FLAC (or, for screens, an MP4/WebM video or a PNG/JPEG still)", name, err)
		case errors.Is(err, ErrTooLong):
			code = http.StatusRequestEntityTooLarge
			err = fmt.Errorf("%s: %v; cut it into parts", name, err)
		case errors.Is(err, ErrTimeout):
			code = http.StatusUnprocessableEntity
			err = fmt.Errorf("%s: %v; shorten it or convert it to MP3 (audio) or H.264 MP4 (video) first", name, err)
		case errors.Is(err, ErrBusy):
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "60")
			err = fmt.Errorf("the hub is busy transcoding other uploads (%v); try again in a minute", err)
		}
		staffapi.Error(w, code, err.Error())
		return
	}
	ref, size, err := s.storeFile(out)
	if err != nil {
		s.uploadFailed(w, err)
		return
	}
	c, created, err := s.st.AddContent(r.Context(), store.Content{Ref: ref, Size: size, Duration: dur, MIME: mimeType,
		Title: meta["title"], Theme: *m.theme, Language: *m.language, Format: *m.format,
		ProducingUnit: *m.unit, UploadedBy: p.User.ID})
	if err != nil {
		if _, gerr := s.st.GetContent(r.Context(), ref); errors.Is(gerr, store.ErrNotFound) {
			os.Remove(filepath.Join(s.dir, strings.TrimPrefix(ref, "sha256:"))) // no record names it
		}
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "content.add", "content:"+c.Ref, map[string]any{"title": c.Title, "created": created, "file": meta["filename"]})
	j := withLabels(contentJSON(c, s.opts.PublicURL), s.labels(r.Context()))
	j.Created = created
	if !created && (c.Title != meta["title"] || c.Language != *m.language || c.Theme != *m.theme || c.Format != *m.format || c.ProducingUnit != *m.unit) {
		j.Note = fmt.Sprintf("the library already had these bytes with their own title and metadata, kept; change them with `loa content edit %s`", c.Ref)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	staffapi.WriteJSON(w, code, j)
}

// readUpload copies an upload's file into in and returns its metadata: from a multipart body
// (a "file" part and title, language, theme, format, unit fields) or a raw body with those as
// query parameters. r.Body is already bounded (limitBody).
func readUpload(r *http.Request, in io.Writer) (map[string]string, error) {
	meta := map[string]string{}
	q := r.URL.Query()
	for _, k := range []string{"title", "language", "theme", "format", "unit", "filename"} {
		meta[k] = q.Get(k)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		_, err := io.Copy(in, r.Body)
		return meta, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("bad multipart body: %w", err)
	}
	gotFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad multipart body: %w", err)
		}
		name := part.FormName()
		if name == "file" {
			if gotFile {
				return nil, errors.New("the upload has two \"file\" parts: send one file per upload")
			}
			meta["filename"] = part.FileName()
			if _, err := io.Copy(in, part); err != nil {
				return nil, err
			}
			gotFile = true
			continue
		}
		if _, known := meta[name]; !known {
			return nil, fmt.Errorf("unknown form field %q: use title, language, theme, format, unit and file", name)
		}
		v, err := io.ReadAll(io.LimitReader(part, 4096))
		if err != nil {
			return nil, fmt.Errorf("bad multipart body: %w", err)
		}
		meta[name] = string(v)
	}
	if !gotFile {
		return nil, errors.New("the upload has no \"file\" part")
	}
	return meta, nil
}

// uploadFailed answers an upload the hub failed to keep: a full disk is said as such (507),
// for the staff to tell the technician, and logged for the technician.
func (s *Server) uploadFailed(w http.ResponseWriter, err error) {
	if store.IsFull(err) {
		s.log.Error("upload refused: the hub's disk is full; free space in its data directory", "content_dir", s.dir, "err", err)
		staffapi.Error(w, http.StatusInsufficientStorage, "the hub's disk is full: the upload was not stored. Ask the hub's technician to free space, then upload again")
		return
	}
	s.log.Error("upload not stored", "err", err)
	staffapi.Error(w, http.StatusInternalServerError, "the hub could not store the upload: "+err.Error())
}

// uploadReadError answers a body that could not be read: over the limit, or malformed.
func (s *Server) uploadReadError(w http.ResponseWriter, err error) {
	if store.IsFull(err) {
		s.uploadFailed(w, err)
		return
	}
	if staffapi.TooLarge(err) {
		staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload is larger than this hub's max_upload_bytes (%d MiB, the file and its fields together)", s.opts.MaxUploadBytes>>20))
		return
	}
	staffapi.Error(w, http.StatusBadRequest, "bad upload: "+err.Error())
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// storeFile moves a finished file into the content dir under its sha256, atomically.
func (s *Server) storeFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", 0, err
	}
	hexsum := hex.EncodeToString(h.Sum(nil))
	dst := filepath.Join(s.dir, hexsum)
	if _, err := os.Stat(dst); err == nil {
		return "sha256:" + hexsum, size, nil
	}
	err = atomicfile.WriteFrom(dst, 0o644, func(w io.Writer) error {
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(w, in)
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hexsum, size, nil
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

// handleContentDownload serves library content to devices, with Range.
func (s *Server) handleContentDownload(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.deviceAuth(w, r); !ok {
		return
	}
	s.serveLibraryFile(w, r, "", true)
}

// serveLibraryFile answers GET …/{ref} with the library file, Range requests included
// (http.ServeContent): a device resuming a fetch, a browser's <audio> seeking. notFoundHint
// is added to the 404 of a ref the library does not hold; immutable lets the file be cached
// for good (devices keep what they fetched by its hash: it never changes).
func (s *Server) serveLibraryFile(w http.ResponseWriter, r *http.Request, notFoundHint string, immutable bool) {
	ref, digest, err := store.ParseRef(r.PathValue("ref"))
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.st.GetContent(r.Context(), ref)
	if err != nil {
		staffapi.Error(w, http.StatusNotFound, "content "+ref+" is not in the hub's library"+notFoundHint)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, hex.EncodeToString(digest[:])))
	if err != nil {
		s.log.Error("library file missing", "ref", ref, "err", err)
		staffapi.Error(w, http.StatusNotFound, "content "+ref+" is recorded but its file is missing on the hub")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", c.MIME)
	w.Header().Set("ETag", `"`+ref+`"`)
	if immutable {
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	}
	http.ServeContent(w, r, "", c.UploadedAt, f)
}

// deviceAuth checks the Loa-Device header of a request and answers 401 when it fails.
func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	if s.authLimit.refuse(w, r, s.clock.Now()) {
		return store.Device{}, false
	}
	id, secret, err := protocol.ParseDeviceAuth(r.Header.Get("Authorization"))
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device credentials", "err", err)
		staffapi.Error(w, http.StatusUnauthorized, "device authentication required: "+err.Error())
		return store.Device{}, false
	}
	h, err := secretHash(secret)
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device secret", "device", id, "err", "malformed")
		staffapi.Error(w, http.StatusUnauthorized, "device "+id+": malformed secret")
		return store.Device{}, false
	}
	d, err := s.st.CheckSecret(r.Context(), id, h)
	if err != nil {
		s.authLimit.failed(r, s.clock.Now(), "device secret", "device", id, "err", err)
		staffapi.Error(w, http.StatusUnauthorized, "device "+id+": unknown, revoked, or wrong secret")
		return store.Device{}, false
	}
	return d, true
}
