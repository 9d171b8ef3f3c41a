package console

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"sync"
)

// What keeps the console quick over a 3G link: pages, styles and scripts gzipped, and the
// style sheet in the page itself. Under Chrome's "Slow 3G" each request waits 2 s for its
// answer, so a page that must fetch its style sheet before showing anything is readable
// after 4 s at best; inline, the page shows as it arrives.

// css is the style sheet as the pages carry it, and its hash for the Content-Security-Policy.
var css, cssHash = func() (template.CSS, string) {
	b, err := staticFS.ReadFile("static/console.css")
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return template.CSS(b), "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

func init() {
	funcs["inlineCSS"] = func() template.CSS { return css }
}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// compressed gzips text answers for a browser that accepts it; not event streams (each
// event must leave at once: a flush does not reach through gzip), not byte ranges, not images.
func compressed(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") || r.Header.Get("Range") != "" || r.URL.Path == "/console/events" {
		return w, func() {}
	}
	g := &gzipWriter{ResponseWriter: w}
	return g, g.close
}

type gzipWriter struct {
	http.ResponseWriter
	gz      *gzip.Writer
	decided bool
}

func (g *gzipWriter) WriteHeader(code int) {
	if !g.decided {
		g.decided = true
		h := g.ResponseWriter.Header()
		ct := h.Get("Content-Type")
		if code == http.StatusOK || code/100 == 4 || code/100 == 5 {
			if (strings.HasPrefix(ct, "text/") || strings.Contains(ct, "javascript") || strings.Contains(ct, "json")) && !strings.HasPrefix(ct, "text/event-stream") {
				h.Del("Content-Length")
				h.Set("Content-Encoding", "gzip")
				h.Add("Vary", "Accept-Encoding")
				g.gz = gzipPool.Get().(*gzip.Writer)
				g.gz.Reset(g.ResponseWriter)
			}
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.decided {
		if g.Header().Get("Content-Type") == "" {
			g.Header().Set("Content-Type", http.DetectContentType(p))
		}
		g.WriteHeader(http.StatusOK)
	}
	if g.gz != nil {
		return g.gz.Write(p)
	}
	return g.ResponseWriter.Write(p)
}

func (g *gzipWriter) close() {
	if g.gz != nil {
		g.gz.Close()
		gzipPool.Put(g.gz)
		g.gz = nil
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flushes).
func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }
