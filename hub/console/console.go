// Package console is the staff console's one job: web pages for the hub's staff API. Every
// page reads and acts through the hub's own API routes as the signed-in user (API.ServeAs),
// so scope, role and audit are decided where they are for the `loa` CLI; this package owns
// only sign-in, sessions, CSRF and rendering.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/loa-project/loa/hub/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// API is the hub's staff API, answering as an already authenticated user.
type API interface {
	ServeAs(w http.ResponseWriter, r *http.Request, u store.User)
}

// Store is what sign-in and sessions need; *store.DB provides it.
type Store interface {
	GetLogin(ctx context.Context, id string) (store.Login, error)
	LoginFailed(ctx context.Context, id string, limit int, lockFor time.Duration) (bool, error)
	LoginSucceeded(ctx context.Context, id string) error
	AddSession(ctx context.Context, hash [32]byte, userID, csrf string) error
	Session(ctx context.Context, hash [32]byte, idle, maxAge time.Duration, touch bool) (store.User, string, error)
	EndSession(ctx context.Context, hash [32]byte) error
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// Options configure the console.
type Options struct {
	API      API
	Store    Store
	Log      *slog.Logger
	Location *time.Location // dates and times are shown in it
	Now      func() time.Time
	// Secure marks cookies Secure (the hub serves TLS); a request over TLS gets them anyway.
	Secure bool
	// IdleTimeout ends a session unused this long (default 30 min); MaxAge ends any session
	// (default 12 h: a working day).
	IdleTimeout, MaxAge time.Duration
	// LockAfter failed sign-ins in a row lock a user out for LockFor (defaults 5, 15 min).
	LockAfter int
	LockFor   time.Duration
	// Limiter, when set, bounds failed sign-ins per address (the hub's auth_failure_limit).
	Limiter interface {
		Wait(r *http.Request) time.Duration
		Failed(r *http.Request)
	}
	// EventInterval is how often the live view checks for changes (default 5 s).
	EventInterval time.Duration
}

// Console serves the pages under /console/.
type Console struct {
	opts  Options
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the console.
func New(opts Options) (*Console, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 12 * time.Hour
	}
	if opts.LockAfter == 0 {
		opts.LockAfter = 5
	}
	if opts.LockFor == 0 {
		opts.LockFor = 15 * time.Minute
	}
	if opts.EventInterval == 0 {
		opts.EventInterval = 5 * time.Second
	}
	c := &Console{opts: opts, pages: map[string]*template.Template{}}
	for _, name := range []string{"login", "overview", "devices", "device", "confirmations", "audit", "users", "account", "error",
		"areas", "enrol", "tokens"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/plays.html", "templates/areatree.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	if err := c.parsePlanPages(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	m := http.NewServeMux()
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.signedIn(c.logout))
	m.HandleFunc("POST /console/lang", c.setLang)
	m.HandleFunc("GET /console/{$}", c.signedIn(c.overview))
	m.HandleFunc("GET /console/devices", c.signedIn(c.devices))
	m.HandleFunc("GET /console/devices/{id...}", c.signedIn(c.device))
	m.HandleFunc("POST /console/command", c.signedIn(c.command))
	m.HandleFunc("GET /console/confirmations", c.signedIn(c.confirmations))
	m.HandleFunc("GET /console/confirmations.csv", c.signedIn(c.confirmationsCSV))
	m.HandleFunc("GET /console/events", c.signedIn(c.events))
	m.HandleFunc("GET /console/audit", c.signedIn(c.auditLog))
	m.HandleFunc("GET /console/users", c.signedIn(c.users))
	m.HandleFunc("GET /console/account", c.signedIn(c.account))
	m.HandleFunc("POST /console/account", c.signedIn(c.account))
	m.HandleFunc("POST /console/users/{action}", c.signedIn(c.userAction))
	// Content library, emergency, relays and bulletins, CAP alerts (ops.go).
	if err := c.addOpsPages(m); err != nil {
		return nil, err
	}
	// Reports (issue 16): reports.go.
	if err := c.reportRoutes(m); err != nil {
		return nil, err
	}
	c.planRoutes(m) // the planning pages: calendar, editor, push preview, delivery, templates
	// Rollouts of agent upgrades (issue 20): upgrades.go.
	if err := c.upgradeRoutes(m); err != nil {
		return nil, err
	}
	// The approval queue (issue 22): approvals.go.
	if err := c.approvalRoutes(m); err != nil {
		return nil, err
	}
	// Administration: areas, enrolment, device credentials, tokens (admin.go).
	m.HandleFunc("GET /console/areas", c.signedIn(c.areas))
	m.HandleFunc("POST /console/areas", c.signedIn(c.addArea))
	m.HandleFunc("GET /console/enrol", c.signedIn(c.enrolPage))
	m.HandleFunc("POST /console/enrol", c.signedIn(c.enrol))
	m.HandleFunc("POST /console/device/{action}", c.signedIn(c.deviceAction))
	m.HandleFunc("GET /console/screenshots/{id...}", c.signedIn(c.screenshot))
	m.HandleFunc("GET /console/tokens", c.signedIn(c.tokens))
	m.HandleFunc("POST /console/tokens/{action}", c.signedIn(c.tokenAction))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "err.notfound")
	})
	c.mux = m
	return c, nil
}

// ServeHTTP serves /console/… with headers that keep pages out of frames, caches and other
// origins' scripts.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' "+cssHash+"; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	w, done := compressed(w, r) // speed.go
	defer done()
	c.mux.ServeHTTP(w, r)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
