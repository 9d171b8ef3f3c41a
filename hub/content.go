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
	"time"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Transcoder turns any common audio file into the library's form: MP3 at 48 kHz, mono kept
// mono (most speech is), loudness-normalised to an EBU R128 target, at a speech-friendly
// bitrate.
type Transcoder struct {
	FFmpeg, FFprobe string
	LoudnessLUFS    float64 // e.g. -16
	TempDir         string  // "" = the OS default
}

// ErrNotAudio is returned for an upload ffprobe finds no audio stream in.
var ErrNotAudio = errors.New("not audio")

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

func (t *Transcoder) probeAll(ctx context.Context, path string) (probeResult, error) {
	var pr probeResult
	out, err := exec.CommandContext(ctx, t.FFprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path).Output()
	if err != nil {
		msg := err.Error()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		if errors.Is(err, exec.ErrNotFound) {
			return pr, fmt.Errorf("ffprobe is not installed on the hub (apt-get install ffmpeg): %w", err)
		}
		return pr, fmt.Errorf("%w: ffprobe cannot read it as media: %s", ErrNotAudio, firstLine(msg))
	}
	if err := json.Unmarshal(out, &pr); err != nil {
		return pr, fmt.Errorf("ffprobe output: %w", err)
	}
	return pr, nil
}

// Prepare turns an upload into the library's form: sound as Transcode does; a video for
// the screens as H.264 in MP4 (what a Pi decodes in hardware), at most 1080p, its sound kept
// as AAC (screens mute it unless told otherwise), copied as it is when it is that already; a
// PNG or JPEG still as it is. It returns the stored form's duration (0 for a still) and MIME.
func (t *Transcoder) Prepare(ctx context.Context, src, dst string) (time.Duration, string, error) {
	pr, err := t.probeAll(ctx, src)
	if err != nil {
		return 0, "", err
	}
	switch pr.visual() {
	case "image":
		mime := map[string]string{"png": "image/png", "mjpeg": "image/jpeg"}[pr.Streams[0].CodecName]
		if mime == "" {
			return 0, "", fmt.Errorf("%w: a %s still; upload PNG or JPEG", ErrNotAudio, pr.Streams[0].CodecName)
		}
		return 0, mime, copyFile(src, dst)
	case "video":
		args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-map_metadata", "-1"}
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
		cmd := exec.CommandContext(ctx, t.FFmpeg, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return 0, "", fmt.Errorf("%w: ffmpeg could not make an MP4 of it: %s", ErrNotAudio, firstLine(strings.TrimSpace(stderr.String())))
		}
		out, err := t.probeAll(ctx, dst)
		if err != nil {
			return 0, "", fmt.Errorf("transcoded video: %w", err)
		}
		d, _ := strconv.ParseFloat(out.Format.Duration, 64)
		return time.Duration(d * float64(time.Second)), "video/mp4", nil
	}
	d, err := t.Transcode(ctx, src, dst)
	return d, "audio/mpeg", err
}

func (t *Transcoder) probe(ctx context.Context, path string) (channels int, dur time.Duration, err error) {
	out, err := exec.CommandContext(ctx, t.FFprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path).Output()
	if err != nil {
		msg := err.Error()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		if errors.Is(err, exec.ErrNotFound) {
			return 0, 0, fmt.Errorf("ffprobe is not installed on the hub (apt-get install ffmpeg): %w", err)
		}
		return 0, 0, fmt.Errorf("%w: ffprobe cannot read it as media: %s", ErrNotAudio, firstLine(msg))
	}
	var pr probeResult
	if err := json.Unmarshal(out, &pr); err != nil {
		return 0, 0, fmt.Errorf("ffprobe output: %w", err)
	}
	for _, s := range pr.Streams {
		if s.CodecType == "audio" {
			channels = s.Channels
			break
		}
	}
	if channels == 0 {
		return 0, 0, fmt.Errorf("%w: the file has no audio stream", ErrNotAudio)
	}
	if f, err := strconv.ParseFloat(pr.Format.Duration, 64); err == nil {
		dur = time.Duration(f * float64(time.Second))
	}
	return channels, dur, nil
}

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
	ch, _, err := t.probe(ctx, src)
	if err != nil {
		return 0, err
	}
	// Mono is speech for horn loudspeakers: 48 kbit/s keeps it clear and small over 3G (an
	// emergency clip not yet on a device is fetched while its issue time is spoken).
	channels, bitrate := "1", "48k"
	if ch >= 2 {
		channels, bitrate = "2", "96k"
	}
	af := fmt.Sprintf("loudnorm=I=%g:TP=-1.5:LRA=11", t.LoudnessLUFS)
	cmd := exec.CommandContext(ctx, t.FFmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src,
		"-vn", "-map_metadata", "-1", "-af", af, "-ac", channels, "-ar", "48000",
		"-c:a", "libmp3lame", "-b:a", bitrate, "-f", "mp3", dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return 0, fmt.Errorf("ffmpeg is not installed on the hub (apt-get install ffmpeg): %w", err)
		}
		return 0, fmt.Errorf("%w: ffmpeg could not transcode it: %s", ErrNotAudio, firstLine(strings.TrimSpace(stderr.String())))
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

func (s *Server) apiListContent(w http.ResponseWriter, r *http.Request, p principal) {
	q := r.URL.Query()
	in := map[string]*string{}
	for _, k := range []string{"language", "theme", "format", "unit"} {
		if v := q.Get(k); v != "" {
			in[k] = &v
		}
	}
	m, err := s.resolveMeta(r.Context(), in)
	if err != nil {
		writeErr(w, err)
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
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Until, err = ParseTimeParam("until", q.Get("until"), now, p.Zone); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cs, err := s.st.ListContent(r.Context(), f)
	if err != nil {
		storeError(w, err)
		return
	}
	labels := s.labels(r.Context())
	out := make([]api.ContentJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, withLabels(contentJSON(c, s.opts.PublicURL), labels))
	}
	writeJSON(w, http.StatusOK, out)
}

// apiUploadContent takes multipart/form-data (a "file" part and title, language, theme, format,
// unit fields) or a raw body with those as query parameters.
func (s *Server) apiUploadContent(w http.ResponseWriter, r *http.Request, p principal) {
	if s.tc == nil {
		writeError(w, http.StatusServiceUnavailable, "this hub has no transcoder configured; uploads are disabled")
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes)
	tmpDir := s.tc.TempDir
	if tmpDir != "" {
		os.MkdirAll(tmpDir, 0o750)
	}
	in, err := os.CreateTemp(tmpDir, "upload-*")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer os.Remove(in.Name())
	defer in.Close()
	meta := map[string]string{}
	q := r.URL.Query()
	for _, k := range []string{"title", "language", "theme", "format", "unit", "filename"} {
		meta[k] = q.Get(k)
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad multipart body: "+err.Error())
			return
		}
		_ = params
		gotFile := false
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				writeError(w, http.StatusBadRequest, "bad multipart body: "+err.Error())
				return
			}
			name := part.FormName()
			if name == "file" {
				meta["filename"] = part.FileName()
				if _, err := io.Copy(in, part); err != nil {
					writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload failed: %v (the limit is %d MiB)", err, s.opts.MaxUploadBytes>>20))
					return
				}
				gotFile = true
				continue
			}
			if _, known := meta[name]; !known {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown form field %q: use title, language, theme, format, unit and file", name))
				return
			}
			v, _ := io.ReadAll(io.LimitReader(part, 4096))
			meta[name] = string(v)
		}
		if !gotFile {
			writeError(w, http.StatusBadRequest, "the upload has no \"file\" part")
			return
		}
	} else if _, err := io.Copy(in, body); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload failed: %v (the limit is %d MiB)", err, s.opts.MaxUploadBytes>>20))
		return
	}
	if meta["title"] == "" {
		writeError(w, http.StatusBadRequest, "content needs a title: use --title")
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
		writeErr(w, err)
		return
	}
	if err := in.Sync(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := in.Name() + ".out"
	defer os.Remove(out)
	dur, mimeType, err := s.tc.Prepare(r.Context(), in.Name(), out)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotAudio) {
			code = http.StatusUnsupportedMediaType
			err = fmt.Errorf("%s is not audio the hub can use (%v); upload MP3, WAV, M4A, OGG or FLAC (or, for screens, a video or a PNG/JPEG still)", orDefault(meta["filename"], "the upload"), err)
		}
		writeError(w, code, err.Error())
		return
	}
	ref, size, err := s.storeFile(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	c, created, err := s.st.AddContent(r.Context(), store.Content{Ref: ref, Size: size, Duration: dur, MIME: mimeType,
		Title: meta["title"], Theme: *m.theme, Language: *m.language, Format: *m.format,
		ProducingUnit: *m.unit, UploadedBy: p.User.ID})
	if err != nil {
		if _, gerr := s.st.GetContent(r.Context(), ref); errors.Is(gerr, store.ErrNotFound) {
			os.Remove(filepath.Join(s.dir, strings.TrimPrefix(ref, "sha256:"))) // no record names it
		}
		storeError(w, err)
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
	writeJSON(w, code, j)
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
	ref, digest, err := store.ParseRef(r.PathValue("ref"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.st.GetContent(r.Context(), ref)
	if err != nil {
		writeError(w, http.StatusNotFound, "content "+ref+" is not in the hub's library")
		return
	}
	f, err := os.Open(filepath.Join(s.dir, hex.EncodeToString(digest[:])))
	if err != nil {
		s.log.Error("library file missing", "ref", ref, "err", err)
		writeError(w, http.StatusNotFound, "content "+ref+" is recorded but its file is missing on the hub")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", c.MIME)
	w.Header().Set("ETag", `"`+ref+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", c.UploadedAt, f)
}

// deviceAuth checks the Loa-Device header of a request and answers 401 when it fails.
func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	id, secret, err := protocol.ParseDeviceAuth(r.Header.Get("Authorization"))
	if err != nil {
		writeError(w, http.StatusUnauthorized, "device authentication required: "+err.Error())
		return store.Device{}, false
	}
	h, err := secretHash(secret)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "device "+id+": malformed secret")
		return store.Device{}, false
	}
	d, err := s.st.CheckSecret(r.Context(), id, h)
	if err != nil {
		s.log.Warn("device refused", "device", id, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusUnauthorized, "device "+id+": unknown, revoked, or wrong secret")
		return store.Device{}, false
	}
	return d, true
}
