package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/loa-project/loa/hub/api"
)

// The content library page: list with search and filters, where each item is used, upload
// (library.js sends each file to /console/content/upload, which hands it on to POST
// /api/content), metadata edits (PATCH /api/content/{ref}) and listening in the browser.

type libraryData struct {
	Items  []libraryItem
	Terms  map[string][]api.TermJSON // by dimension: language, theme, format, unit
	Dims   []string
	Filter map[string]string // q, language, theme, format, unit, kind
	Notice string
}

type libraryItem struct {
	api.ContentJSON
	Kind string // audio, video or image (from the MIME type)
	Uses []api.ContentUseJSON
}

var libraryDims = []string{"language", "theme", "format", "unit"}

func mediaKind(mime string) string {
	kind, _, _ := strings.Cut(mime, "/")
	return kind
}

func (c *Console) library(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := libraryData{Terms: map[string][]api.TermJSON{}, Dims: libraryDims, Filter: map[string]string{}, Notice: q.Get("notice")}
	for _, k := range []string{"q", "language", "theme", "format", "unit", "kind"} {
		d.Filter[k] = strings.TrimSpace(q.Get(k))
	}
	var terms []api.TermJSON
	if err := c.call(r.Context(), s, "GET", "/api/terms", nil, &terms); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	for _, t := range terms {
		d.Terms[t.Dimension] = append(d.Terms[t.Dimension], t)
	}
	v := url.Values{}
	if d.Filter["q"] != "" {
		v.Set("title", d.Filter["q"])
	}
	for _, k := range libraryDims {
		if d.Filter[k] != "" {
			v.Set(k, d.Filter[k])
		}
	}
	var items []api.ContentJSON
	if err := c.call(r.Context(), s, "GET", "/api/content?"+v.Encode(), nil, &items); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	var uses map[string][]api.ContentUseJSON
	if err := c.call(r.Context(), s, "GET", "/api/content/usage", nil, &uses); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	for _, it := range items {
		k := mediaKind(it.MIME)
		if d.Filter["kind"] != "" && k != d.Filter["kind"] {
			continue
		}
		d.Items = append(d.Items, libraryItem{ContentJSON: it, Kind: k, Uses: uses[it.Ref]})
	}
	sort.SliceStable(d.Items, func(i, j int) bool { return d.Items[i].At.After(d.Items[j].At) })
	c.render(w, r, http.StatusOK, "content", s, d)
}

// upload hands the page's multipart upload (one file and its metadata) to POST /api/content
// as it streams in; the API's JSON answer (the item, or its refusal) goes back to the page.
func (c *Console) upload(w http.ResponseWriter, r *http.Request, s *session) {
	req, err := http.NewRequestWithContext(r.Context(), "POST", "/api/content", r.Body)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "err.internal")
		return
	}
	req.ContentLength = r.ContentLength
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(api.ZoneHeader, c.opts.Location.String())
	c.opts.API.ServeAs(w, req, s.User)
}

// editContent changes an item's title and metadata through PATCH /api/content/{ref}.
func (c *Console) editContent(w http.ResponseWriter, r *http.Request, s *session) {
	ref := r.PostFormValue("ref")
	edit := api.ContentEdit{}
	for k, dst := range map[string]**string{"title": &edit.Title, "language": &edit.Language, "theme": &edit.Theme, "format": &edit.Format, "unit": &edit.Unit} {
		if v, ok := r.PostForm[k]; ok {
			x := strings.TrimSpace(v[0])
			*dst = &x
		}
	}
	var out api.ContentJSON
	if err := c.call(r.Context(), s, "PATCH", "/api/content/"+url.PathEscape(ref), edit, &out); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	notice := tr(langOf(r), "lib.saved", out.Title)
	http.Redirect(w, r, "/console/content?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// contentFile streams a library file to the page's <audio> (GET /api/content/{ref}/file,
// which answers Range requests so the player can seek).
func (c *Console) contentFile(w http.ResponseWriter, r *http.Request, s *session) {
	req, err := http.NewRequestWithContext(r.Context(), "GET", "/api/content/"+url.PathEscape(r.PathValue("ref"))+"/file", nil)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "err.internal")
		return
	}
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	// A file may be cached by the browser for the session's user only.
	w.Header().Set("Cache-Control", "private, max-age=3600")
	c.opts.API.ServeAs(w, req, s.User)
}
