package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/media"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

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
		case errors.Is(err, media.ErrNotAudio):
			code = http.StatusUnsupportedMediaType
			err = fmt.Errorf("%s is not audio the hub can use (%v); upload MP3, WAV, M4A, OGG or FLAC (or, for screens, an MP4/WebM video or a PNG/JPEG still)", name, err)
		case errors.Is(err, media.ErrTooLong):
			code = http.StatusRequestEntityTooLarge
			err = fmt.Errorf("%s: %v; cut it into parts", name, err)
		case errors.Is(err, media.ErrTimeout):
			code = http.StatusUnprocessableEntity
			err = fmt.Errorf("%s: %v; shorten it or convert it to MP3 (audio) or H.264 MP4 (video) first", name, err)
		case errors.Is(err, media.ErrBusy):
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
