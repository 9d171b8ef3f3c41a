package metrics

import (
	"bufio"
	"cmp"
	"net"
	"net/http"
)

// Count wraps the hub's ServeMux (which sets r.Pattern to the route it matched) and counts
// every answer by route class and status code: the class comes from the pattern, never from
// the raw path. An agent's websocket is counted (101) when it is taken over, not when it ends
// hours later.
func (m *Hub) Count(mux http.Handler) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, hijacked: func() { m.Answered(r.Pattern, http.StatusSwitchingProtocols) }}
		mux.ServeHTTP(sw, r)
		if !sw.taken {
			m.Answered(r.Pattern, cmp.Or(sw.code, http.StatusOK))
		}
	})
}

// statusWriter remembers the status written. It passes Hijack on (agents' websockets:
// gorilla asks the writer for http.Hijacker itself) and Unwrap for ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code     int
	taken    bool   // hijacked: the 101 is written on the raw connection
	hijacked func() // counts the hijack
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.taken {
		w.taken = true
		w.hijacked()
	}
	return c, rw, err
}
