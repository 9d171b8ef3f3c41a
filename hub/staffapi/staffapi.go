// Package staffapi is how the hub's staff API answers: who is calling and in what scope
// (Caller), JSON request and answer bodies, and errors with their HTTP status (Error, Fail).
// Every room of the hub that serves staff answers through it, so an answer reads the same
// whichever room gave it.
package staffapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// MaxJSONBody bounds a JSON request body; schedule documents are the largest.
const MaxJSONBody = store.MaxDocument + 64<<10

// Caller is the authenticated staff user of a request, the area scope they act in and the
// zone the request's dates and times are read in.
type Caller struct {
	User  store.User
	Scope string
	Zone  *time.Location // nil for a caller made without a request (the CAP feed)
}

// Refusal is an error that carries the HTTP status to answer it with, and a message that
// says what to do.
type Refusal struct {
	Code int
	Msg  string
}

func (e *Refusal) Error() string { return e.Msg }

// Refuse returns a refusal with status code.
func Refuse(code int, msg string) error { return &Refusal{Code: code, Msg: msg} }

// BadRequest returns a 400 refusal.
func BadRequest(format string, a ...any) error {
	return &Refusal{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// Error answers code with msg as the API's error body.
func Error(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, api.Error{Error: msg})
}

// StoreFailed answers an upload (what: "upload", "release") the hub could not keep: a full
// disk is said as such (507), for the staff to tell the technician, and logged for the
// technician with the directory to free.
func StoreFailed(w http.ResponseWriter, log *slog.Logger, what, dir string, err error) {
	if store.IsFull(err) {
		log.Error(what+" refused: the hub's disk is full; free space in its data directory", "content_dir", dir, "err", err)
		Error(w, http.StatusInsufficientStorage, "the hub's disk is full: the "+what+" was not stored. Ask the hub's technician to free space, then upload again")
		return
	}
	log.Error(what+" not stored", "err", err)
	Error(w, http.StatusInternalServerError, "the hub could not store the "+what+": "+err.Error())
}

// Fail answers err: a Refusal with its status, a store error with the status its kind maps
// to, anything else as 500.
func Fail(w http.ResponseWriter, err error) {
	var re *Refusal
	if errors.As(err, &re) {
		Error(w, re.Code, re.Msg)
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrExists):
		code = http.StatusConflict
	case errors.Is(err, store.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrStaleRevision), errors.Is(err, store.ErrDecided):
		code = http.StatusConflict
	case errors.Is(err, store.ErrUnauthorized):
		code = http.StatusForbidden
	case errors.Is(err, store.ErrFull):
		Error(w, http.StatusInsufficientStorage, err.Error()+": nothing was changed; the hub's technician must free space in its data directory, then try again")
		return
	}
	Error(w, code, err.Error())
}

// compactWriter marks an answer read by a program in-process (the console): its JSON is not
// indented. Indenting was half the time of a 10,000-device list (BENCHMARKS.md, "Console").
type compactWriter struct{ http.ResponseWriter }

func (w compactWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Compact returns w marked so that WriteJSON does not indent what it writes.
func Compact(w http.ResponseWriter) http.ResponseWriter { return compactWriter{w} }

// WriteJSON answers code with v as JSON, indented unless w is Compact.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	if _, compact := w.(compactWriter); !compact {
		enc.SetIndent("", "  ")
	}
	enc.Encode(v)
}

// ReadJSON decodes r's body into v, refusing unknown fields; on an error it has answered 400
// and returns false.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		Error(w, http.StatusBadRequest, "bad JSON request body: "+err.Error())
		return false
	}
	return true
}

// TooLarge is true for a read stopped by a body limit (http.MaxBytesReader).
func TooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// InScope checks that p may act on area. It is decided from the ids alone, before anything
// is looked up, and answered like an unknown area (404): whether an area outside the scope
// exists is not the caller's to learn.
func InScope(w http.ResponseWriter, p Caller, area string) bool {
	if store.Allowed(p.Scope, area) {
		return true
	}
	Error(w, http.StatusNotFound, NoArea(p, area))
	return false
}

// MayAct is true when p may act on area: a caller without a scope (the CAP feed) acts
// everywhere.
func MayAct(p Caller, area string) bool { return p.Scope == "" || store.Allowed(p.Scope, area) }

// NoArea is the one answer for an area that is unknown or outside the caller's scope.
func NoArea(p Caller, area string) string {
	return fmt.Sprintf("no area %s in your scope %s (you act on %s and the areas below it); `loa area list` shows them", area, p.Scope, p.Scope)
}

// AreaParam is the ?area= filter, defaulting to the caller's scope; on an error it has
// answered and returns false.
func AreaParam(w http.ResponseWriter, r *http.Request, p Caller) (string, bool) {
	a := r.URL.Query().Get("area")
	if a == "" {
		return p.Scope, true
	}
	if !InScope(w, p, a) {
		return "", false
	}
	return a, true
}

// HubWide refuses staff below a top area what is the whole hub's (what names it, "… are").
func HubWide(w http.ResponseWriter, p Caller, what string) bool {
	if strings.Contains(p.Scope, "/") {
		Error(w, http.StatusForbidden, fmt.Sprintf("%s the whole hub's: only staff of a top area (not %s) keep them; ask your administrator", what, p.Scope))
		return false
	}
	return true
}

// StoreAs is the hub's store as the optional part a handler needs (a store interface the
// caller declares), or false after answering 501 saying what this store cannot do.
func StoreAs[T any](w http.ResponseWriter, st any, cannot string) (T, bool) {
	t, ok := st.(T)
	if !ok {
		Error(w, http.StatusNotImplemented, "this hub's store "+cannot)
	}
	return t, ok
}

// TimeRange reads a list's since and until filters from q (ParseTimeParam's rules, in the
// caller's zone), answering 400 naming the bad one.
func TimeRange(w http.ResponseWriter, q url.Values, now time.Time, p Caller) (since, until time.Time, ok bool) {
	var err error
	if since, err = ParseTimeParam("since", q.Get("since"), now, p.Zone); err == nil {
		until, err = ParseTimeParam("until", q.Get("until"), now, p.Zone)
	}
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return time.Time{}, time.Time{}, false
	}
	return since, until, true
}

// ParseTimeParam reads a time filter that looks back (api.TimeRule, dates in loc). A duration
// without a sign would be ahead of now, never what a filter of past plays means: refused
// saying how to write it.
func ParseTimeParam(name, v string, now time.Time, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, unsigned, err := api.ParseTime(v, now, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %v", name, err)
	}
	if unsigned {
		return time.Time{}, fmt.Errorf("--%s %s: a duration counts from now, so this is %s ahead; for %s ago write -%s", name, v, v, v, v)
	}
	return t, nil
}

// LimitBody holds a request's body to limit() bytes on r.Body itself, so a multipart reader,
// a JSON decoder or a raw copy all stop there, and refuses at once, before reading anything, a
// request whose Content-Length declares more (the connection is then closed, not drained).
func LimitBody(limit func() int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Screenshots and library content are served to browsers too: never sniffed as HTML.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		n := limit()
		if r.ContentLength > n {
			w.Header().Set("Connection", "close")
			Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes: %s %s takes at most %d bytes",
				r.ContentLength, r.Method, r.URL.Path, n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// TimePtr is t for an answer's optional time: nil when t is zero.
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
