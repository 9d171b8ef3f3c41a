// Package library is the hub's content library: uploads turned into the library's form by the
// transcoder (hub/media) and kept by their sha256, the files served to devices and staff,
// listing and editing items and the lists of their metadata (languages, themes, formats,
// producing units), and where each item is used.
package library

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/scheduler"
)

// TermLister reads the hub's lists of metadata terms.
type TermLister interface {
	ListTerms(ctx context.Context, dim store.Dimension) ([]store.Term, error)
}

// Store is what the library needs of the hub's storage.
type Store interface {
	TermLister
	AddTerm(ctx context.Context, t store.Term) error
	AddContent(ctx context.Context, c store.Content) (store.Content, bool, error)
	GetContent(ctx context.Context, ref string) (store.Content, error)
	ListContent(ctx context.Context, f store.ContentFilter) ([]store.Content, error)
	UpdateContent(ctx context.Context, ref string, u store.ContentUpdate) (store.Content, error)
	LatestSchedulesUnder(ctx context.Context, area string) (store.SubtreeSchedules, error)
}

// Options configure a Room. Every field is required but Transcoder (nil: no uploads).
type Options struct {
	Store          Store
	Dir            string // where content files live, named by their sha256 hex
	Transcoder     *media.Transcoder
	Log            *slog.Logger
	Now            func() time.Time
	PublicURL      string       // the base of the URLs in answers
	MaxUploadBytes func() int64 // one upload's bound, named in the answer that refuses more
	// Audit records a staff action in the hub's audit log.
	Audit func(ctx context.Context, p staffapi.Caller, action, target string, detail any)
	// DeviceAuth checks a device's credentials on r; when it returns false it has answered.
	DeviceAuth func(w http.ResponseWriter, r *http.Request) (store.Device, bool)
	// AreaChain is the newest schedules of area and the areas above it.
	AreaChain func(ctx context.Context, area string) ([]store.Schedule, error)
	// Served, when set, is told the bytes of each download to a device (the hub's metrics).
	Served func(bytes int64)
	// Approval says how p's upload starts (issue 22): approved at once (by p where p approves
	// their own work, else by nobody) or, where p's area requires approval, submitted to
	// approvers. Nil: approved at once.
	Approval func(ctx context.Context, p staffapi.Caller) (Approval, error)
}

// Approval is how an upload starts.
type Approval struct {
	Submitted bool     // waits for one of Approvers
	By        string   // approved at once by this approver of their own upload; "" if no approval was needed
	Approvers []string // who can approve it
}

// Room serves the library's routes (the hub mounts them).
type Room struct {
	o Options
	// served: ref -> *atomic.Int64, the bytes sent to devices since the hub started (kept in
	// memory: a figure to compare, e.g. before and after neighbours shared an item, not a
	// record that needs to survive a restart).
	served sync.Map
}

// New returns a room over o.
func New(o Options) *Room { return &Room{o: o} }

// ServedBytes is the bytes of ref (sha256:…) sent to devices since the hub started.
func (rm *Room) ServedBytes(ref string) int64 {
	if v, ok := rm.served.Load(ref); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (rm *Room) countServed(ref string, n int64) {
	if n <= 0 {
		return
	}
	v, _ := rm.served.LoadOrStore(ref, new(atomic.Int64))
	v.(*atomic.Int64).Add(n)
	if rm.o.Served != nil {
		rm.o.Served(n)
	}
}

// countingWriter counts the body bytes of a download.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	k, err := w.ResponseWriter.Write(b)
	w.n += int64(k)
	return k, err
}

// Unwrap lets http.ResponseController reach the connection (the hub's transfer deadlines).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func contentJSON(c store.Content, base string) api.ContentJSON {
	j := api.ContentJSON{Ref: c.Ref, Size: c.Size, DurationS: c.Duration.Seconds(), MIME: c.MIME, Title: c.Title,
		Theme: c.Theme, Language: c.Language, Format: c.Format, Unit: c.ProducingUnit, By: c.UploadedBy, At: c.UploadedAt,
		Area: c.Area, State: c.State, DecidedBy: c.DecidedBy, DecidedAt: staffapi.TimePtr(c.DecidedAt), Reason: c.Reason}
	if base != "" {
		j.URL = strings.TrimRight(base, "/") + "/content/" + c.Ref
	}
	return j
}

// ItemJSON is c as the library's answers show it (with its labels and URL).
func (rm *Room) ItemJSON(ctx context.Context, c store.Content) api.ContentJSON {
	return withLabels(contentJSON(c, rm.o.PublicURL), rm.labels(ctx))
}

// List is GET /api/content: the library, filtered by title, uploader, metadata and time.
func (rm *Room) List(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	in := map[string]*string{}
	for _, k := range []string{"language", "theme", "format", "unit"} {
		if v := q.Get(k); v != "" {
			in[k] = &v
		}
	}
	m, err := rm.resolveMeta(r.Context(), in)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	f := store.ContentFilter{Title: q.Get("title"), UploadedBy: q.Get("by"), State: q.Get("state")}
	switch f.State {
	case "", store.StateSubmitted, store.StateApproved, store.StateRejected:
	default:
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("state %q: use submitted, approved or rejected", f.State))
		return
	}
	// ?area= keeps the items uploaded in that area and below (those waiting for its approvers).
	if q.Get("area") != "" {
		area, ok := staffapi.AreaParam(w, r, p)
		if !ok {
			return
		}
		f.Area = area
	}
	for _, x := range []struct {
		dst *string
		v   *string
	}{{&f.Language, m.language}, {&f.Theme, m.theme}, {&f.Format, m.format}, {&f.ProducingUnit, m.unit}} {
		if x.v != nil {
			*x.dst = *x.v
		}
	}
	var ok bool
	if f.Since, f.Until, ok = staffapi.TimeRange(w, q, rm.o.Now(), p); !ok {
		return
	}
	cs, err := rm.o.Store.ListContent(r.Context(), f)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	labels := rm.labels(r.Context())
	out := make([]api.ContentJSON, 0, len(cs))
	for _, c := range cs {
		j := withLabels(contentJSON(c, rm.o.PublicURL), labels)
		j.ServedBytes = rm.ServedBytes(c.Ref)
		out = append(out, j)
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// Upload takes multipart/form-data (a "file" part and title, language, theme, format,
// unit fields) or a raw body with those as query parameters.
func (rm *Room) Upload(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	if rm.o.Transcoder == nil {
		staffapi.Error(w, http.StatusServiceUnavailable, "this hub has no transcoder configured; uploads are disabled")
		return
	}
	tmpDir := rm.o.Transcoder.TempDir
	if tmpDir != "" {
		os.MkdirAll(tmpDir, 0o750)
	}
	in, err := os.CreateTemp(tmpDir, "upload-*")
	if err != nil {
		rm.uploadFailed(w, err)
		return
	}
	defer os.Remove(in.Name())
	defer in.Close()
	meta, err := readUpload(r, in)
	if err != nil {
		rm.uploadReadError(w, err)
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
	m, err := rm.resolveMeta(r.Context(), given)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	var ap Approval
	if rm.o.Approval != nil {
		if ap, err = rm.o.Approval(r.Context(), p); err != nil {
			staffapi.Fail(w, err)
			return
		}
	}
	if err := in.Sync(); err != nil {
		rm.uploadFailed(w, err)
		return
	}
	out := in.Name() + ".out"
	defer os.Remove(out)
	dur, mimeType, err := rm.o.Transcoder.Prepare(r.Context(), in.Name(), out)
	if store.IsFull(err) {
		rm.uploadFailed(w, err)
		return
	}
	if err != nil {
		code, err := transcodeRefusal(orDefault(meta["filename"], "the upload"), err)
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		staffapi.Error(w, code, err.Error())
		return
	}
	state := store.StateApproved
	if ap.Submitted {
		state = store.StateSubmitted
	}
	ref, size, err := rm.StoreFile(out)
	if err != nil {
		rm.uploadFailed(w, err)
		return
	}
	c, created, err := rm.o.Store.AddContent(r.Context(), store.Content{Ref: ref, Size: size, Duration: dur, MIME: mimeType,
		Title: meta["title"], Theme: *m.theme, Language: *m.language, Format: *m.format,
		ProducingUnit: *m.unit, UploadedBy: p.User.ID, Area: p.Scope, State: state, DecidedBy: ap.By})
	if err != nil {
		if _, gerr := rm.o.Store.GetContent(r.Context(), ref); errors.Is(gerr, store.ErrNotFound) {
			os.Remove(filepath.Join(rm.o.Dir, strings.TrimPrefix(ref, "sha256:"))) // no record names it
		}
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "content.add", "content:"+c.Ref, map[string]any{"title": c.Title, "created": created, "file": meta["filename"], "state": c.State})
	j := rm.ItemJSON(r.Context(), c)
	j.Created = created
	if c.State == store.StateSubmitted {
		j.Approvers = ap.Approvers
	}
	if !created && (c.Title != meta["title"] || c.Language != *m.language || c.Theme != *m.theme || c.Format != *m.format || c.ProducingUnit != *m.unit) {
		j.Note = fmt.Sprintf("the library already had these bytes with their own title and metadata, kept; change them with `loa content edit %s`", c.Ref)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	staffapi.WriteJSON(w, code, j)
}

// transcodeRefusal is the answer to an upload (name) the transcoder did not take: what was
// wrong with it and what to do, with its status.
func transcodeRefusal(name string, err error) (int, error) {
	switch {
	case errors.Is(err, media.ErrNotAudio):
		return http.StatusUnsupportedMediaType, fmt.Errorf("%s is not audio the hub can use (%v); upload MP3, WAV, M4A, OGG or FLAC (or, for screens, an MP4/WebM video or a PNG/JPEG still)", name, err)
	case errors.Is(err, media.ErrTooLong):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("%s: %v; cut it into parts", name, err)
	case errors.Is(err, media.ErrTimeout):
		return http.StatusUnprocessableEntity, fmt.Errorf("%s: %v; shorten it or convert it to MP3 (audio) or H.264 MP4 (video) first", name, err)
	case errors.Is(err, media.ErrBusy):
		return http.StatusServiceUnavailable, fmt.Errorf("the hub is busy transcoding other uploads (%v); try again in a minute", err)
	}
	return http.StatusInternalServerError, err
}

// readUpload copies an upload's file into in and returns its metadata: from a multipart body
// (a "file" part and title, language, theme, format, unit fields) or a raw body with those as
// query parameters. r.Body is already bounded (staffapi.LimitBody).
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
func (rm *Room) uploadFailed(w http.ResponseWriter, err error) {
	staffapi.StoreFailed(w, rm.o.Log, "upload", rm.o.Dir, err)
}

// uploadReadError answers a body that could not be read: over the limit, or malformed.
func (rm *Room) uploadReadError(w http.ResponseWriter, err error) {
	if store.IsFull(err) {
		rm.uploadFailed(w, err)
		return
	}
	if staffapi.TooLarge(err) {
		staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload is larger than this hub's max_upload_bytes (%d MiB, the file and its fields together)", rm.o.MaxUploadBytes()>>20))
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

// StoreFile moves a finished file into the content dir under its sha256, atomically.
func (rm *Room) StoreFile(path string) (string, int64, error) {
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
	dst := filepath.Join(rm.o.Dir, hexsum)
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

// Download serves library content to devices, with Range.
func (rm *Room) Download(w http.ResponseWriter, r *http.Request) {
	if _, ok := rm.o.DeviceAuth(w, r); !ok {
		return
	}
	cw := &countingWriter{ResponseWriter: w}
	rm.serveLibraryFile(cw, r, "", true)
	if ref, _, err := store.ParseRef(r.PathValue("ref")); err == nil {
		rm.countServed(ref, cw.n)
	}
}

// serveLibraryFile answers GET …/{ref} with the library file, Range requests included
// (http.ServeContent): a device resuming a fetch, a browser's <audio> seeking. notFoundHint
// is added to the 404 of a ref the library does not hold; immutable lets the file be cached
// for good (devices keep what they fetched by its hash: it never changes).
func (rm *Room) serveLibraryFile(w http.ResponseWriter, r *http.Request, notFoundHint string, immutable bool) {
	ref, digest, err := store.ParseRef(r.PathValue("ref"))
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := rm.o.Store.GetContent(r.Context(), ref)
	if err != nil {
		staffapi.Error(w, http.StatusNotFound, "content "+ref+" is not in the hub's library"+notFoundHint)
		return
	}
	f, err := os.Open(filepath.Join(rm.o.Dir, hex.EncodeToString(digest[:])))
	if err != nil {
		rm.o.Log.Error("library file missing", "ref", ref, "err", err)
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

// File streams a library file to staff (the console's listen/preview), with Range
// requests answered by http.ServeContent so a browser's <audio> can seek. The library is
// shared by every area, as GET /api/content lists it to every role.
func (rm *Room) File(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	rm.serveLibraryFile(w, r, "; `loa content list` shows it", false)
}

// Usage says where library items are used: for each content ref, the newest
// schedules in the caller's scope (and the areas above it) whose programmes name it.
func (rm *Room) Usage(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ctx := r.Context()
	chain, err := rm.o.AreaChain(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	under, err := rm.o.Store.LatestSchedulesUnder(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	scs := append([]store.Schedule{}, chain...)
	for _, m := range []map[string]store.Schedule{under.Areas, under.Devices} {
		for _, sc := range m {
			scs = append(scs, sc)
		}
	}
	out := map[string][]api.ContentUseJSON{}
	seen := map[string]bool{}
	for _, sc := range scs {
		key := sc.Target.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		doc, err := scheduler.Parse(key, sc.Document) // YAML or JSON, as pushed
		if err != nil {
			continue // it was parsed when pushed; one that no longer parses names nothing
		}
		for _, pr := range doc.Programs {
			for _, it := range pr.Items {
				if it.Content == "" {
					continue
				}
				u := api.ContentUseJSON{Target: key, ScheduleID: sc.ID, Revision: sc.Revision, Program: pr.ID, Title: pr.Title}
				if !slices.Contains(out[it.Content], u) {
					out[it.Content] = append(out[it.Content], u)
				}
			}
		}
	}
	for _, us := range out {
		slices.SortFunc(us, func(a, b api.ContentUseJSON) int { return strings.Compare(a.Target+a.Program, b.Target+b.Program) })
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}
