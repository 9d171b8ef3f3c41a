// Package hub is the district server: the staff HTTP API on top of hub/store, the content
// library (upload, transcode, download by sha256), the agents' websocket, and the composition,
// signing and push of each device's effective schedule.
package hub

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Clock is the hub's time source.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Store is what the hub needs from its storage; *store.DB provides it (a PostgreSQL store
// would too).
type Store interface {
	PruneEffective(ctx context.Context, keep int) (int64, error)
	SeeJournal(ctx context.Context, deviceID, journalID string) (restarted bool, oldAck int64, err error)
	PruneCommands(ctx context.Context, expiredBefore time.Time) (int64, error)
	AddArea(ctx context.Context, a store.Area) (store.Area, error)
	GetArea(ctx context.Context, id string) (store.Area, error)
	ListSubtree(ctx context.Context, area string) ([]store.Area, error)

	EnrolDevice(ctx context.Context, d store.Device, secretHash [32]byte) (store.Device, error)
	GetDevice(ctx context.Context, id string) (store.Device, error)
	ListDevices(ctx context.Context, area string) ([]store.Device, error)
	RevokeDevice(ctx context.Context, id string) error
	CheckSecret(ctx context.Context, id string, secretHash [32]byte) (store.Device, error)
	Seen(ctx context.Context, id string) error
	UpdateStatus(ctx context.Context, id string, s store.Status) error

	AddContent(ctx context.Context, c store.Content) (store.Content, bool, error)
	GetContent(ctx context.Context, ref string) (store.Content, error)
	ListContent(ctx context.Context, f store.ContentFilter) ([]store.Content, error)
	UpdateContent(ctx context.Context, ref string, u store.ContentUpdate) (store.Content, error)
	AddTerm(ctx context.Context, t store.Term) error
	ListTerms(ctx context.Context, dim store.Dimension) ([]store.Term, error)

	Ancestors(ctx context.Context, id string) ([]store.Area, error)
	PutSchedule(ctx context.Context, s store.Schedule) (store.Schedule, error)
	LatestSchedule(ctx context.Context, t store.Target) (store.Schedule, error)
	ScheduleRevision(ctx context.Context, t store.Target, revision int64) (store.Schedule, error)
	ScheduleRevisions(ctx context.Context, t store.Target, limit int) ([]store.Schedule, error)
	SchedulesForDevice(ctx context.Context, deviceID string) ([]store.Schedule, error)
	AddEffective(ctx context.Context, e store.EffectiveSchedule) (store.EffectiveSchedule, error)
	LatestEffective(ctx context.Context, deviceID string) (store.EffectiveSchedule, error)
	Effective(ctx context.Context, deviceID string, revision int64) (store.EffectiveSchedule, error)
	// For a push to an area: a few queries and batched writes instead of several per device.
	LatestSchedulesUnder(ctx context.Context, area string) (store.SubtreeSchedules, error)
	LatestEffectiveHeads(ctx context.Context, area string) (map[string]store.EffectiveHead, error)
	AddEffectives(ctx context.Context, es []store.EffectiveSchedule) ([]store.EffectiveSchedule, []error, error)
	MarkSent(ctx context.Context, revs []store.DeviceRevision) error
	LatestActiveEffective(ctx context.Context, deviceID string) (store.EffectiveSchedule, error)
	MarkDelivery(ctx context.Context, deviceID string, revision int64, state store.DeliveryState, reason string) (store.Delivery, error)

	AddConfirmations(ctx context.Context, deviceID string, cs []store.Confirmation) (int64, error)
	AckedSeq(ctx context.Context, deviceID string) (int64, error)
	ListConfirmations(ctx context.Context, f store.ConfirmationFilter) ([]store.Confirmation, error)
	Plan(ctx context.Context, o store.PlanOptions) (store.PlanReport, error)
	Plays(ctx context.Context, f store.PlaysFilter) (store.PlaysReport, error)
	Devices(ctx context.Context, f store.PeriodFilter, loc *time.Location) (store.DevicesReport, error)

	AddUser(ctx context.Context, u store.User) (store.User, error)
	AddToken(ctx context.Context, userID string, tokenHash [32]byte, label string, expires time.Time) error
	Authenticate(ctx context.Context, tokenHash [32]byte) (store.User, string, error)

	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)

	commandStore // commands.go
}

// Options configure a Server.
type Options struct {
	Store      Store
	Signer     *protocol.Signer
	ContentDir string // where content files live, named by their sha256 hex
	Log        *slog.Logger
	Clock      Clock // default: the system clock
	// Transcoder turns uploads into the library's MP3; nil disables uploads.
	Transcoder *Transcoder
	// StatusInterval is asked of agents in the welcome.
	StatusInterval time.Duration
	// Limits bound agent messages; zero fields take protocol's defaults.
	Limits protocol.Limits
	// MaxUploadBytes bounds one upload (default 512 MiB).
	MaxUploadBytes int64
	// PublicURL is the base URL agents fetch content from, reported by GET /api/hub.
	PublicURL string
	// Location is the zone staff times are read and shown in (default Asia/Ho_Chi_Minh).
	Location *time.Location
}

// Server is the hub: an http.Handler for staff, agents and content.
type Server struct {
	st     Store
	signer *protocol.Signer
	dir    string
	log    *slog.Logger
	clock  Clock
	tc     *Transcoder
	opts   Options
	mux    *http.ServeMux

	mu    sync.Mutex
	conns map[string]*agentConn // device id -> its live connection
	// composeMu serialises composition per device so two pushes cannot race for a revision.
	composeMu keyedMutex
	// Caches of parsed source schedules and of source sets whose composition parsed: pushing
	// one schedule to 10,000 devices parses it once, not 10,000 times.
	parsedDocs, validSets sync.Map
	parsedCount           atomic.Int64
	wg                    sync.WaitGroup
	emerg                 emergencyState // active emergencies, bulletins and relays; CAP (emergency.go)
	cmds                  commandState   // the order of signed commands (commands.go)
}

// New returns a server over opts.Store.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Signer == nil || opts.ContentDir == "" {
		return nil, errors.New("hub: Store, Signer and ContentDir are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = 60 * time.Second
	}
	if opts.Location == nil {
		opts.Location, _ = api.LoadZone(emergencyZone)
	}
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = 512 << 20
	}
	if err := os.MkdirAll(opts.ContentDir, 0o755); err != nil {
		return nil, fmt.Errorf("hub: content dir: %w", err)
	}
	s := &Server{
		st: opts.Store, signer: opts.Signer, dir: opts.ContentDir, log: opts.Log, clock: opts.Clock,
		tc: opts.Transcoder, opts: opts, conns: map[string]*agentConn{},
	}
	s.composeMu.m = map[string]*keyedEntry{}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close closes every agent connection and waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	conns := make([]*agentConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns { // outside the lock: each close may wait on a slow peer
		c.close()
	}
	s.wg.Wait()
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /agent/ws", s.handleAgentWS)
	m.HandleFunc("GET /content/{ref}", s.handleContentDownload)
	m.HandleFunc("HEAD /content/{ref}", s.handleContentDownload)
	m.HandleFunc("POST /agent/screenshot", s.handleScreenshotUpload)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })

	m.Handle("GET /api/whoami", s.staff(s.apiWhoami))
	m.Handle("GET /api/areas", s.staff(s.apiListAreas))
	m.Handle("POST /api/areas", s.staff(s.apiAddArea))
	m.Handle("GET /api/devices", s.staff(s.apiListDevices))
	m.Handle("POST /api/devices", s.staff(s.apiEnrolDevice))
	m.Handle("GET /api/devices/{id...}", s.staff(s.apiShowDevice))
	m.Handle("DELETE /api/devices/{id...}", s.staff(s.apiRevokeDevice))
	m.Handle("GET /api/content", s.staff(s.apiListContent))
	m.Handle("POST /api/content", s.staff(s.apiUploadContent))
	m.Handle("PATCH /api/content/{ref}", s.staff(s.apiEditContent))
	m.Handle("GET /api/terms", s.staff(s.apiListTerms))
	m.Handle("POST /api/terms", s.staff(s.apiAddTerm))
	m.Handle("POST /api/schedules", s.staff(s.apiPushSchedule))
	m.Handle("GET /api/schedules", s.staff(s.apiListSchedules))
	m.Handle("GET /api/schedules/show", s.staff(s.apiShowSchedule))
	m.Handle("GET /api/schedules/plan", s.staff(s.apiPlan))
	m.Handle("GET /api/status", s.staff(s.apiStatus))
	m.Handle("GET /api/confirmations", s.staff(s.apiConfirmations))
	m.Handle("GET /api/audit", s.staff(s.apiAudit))
	m.Handle("GET /api/reports/{kind}", s.staff(s.apiReport))
	m.Handle("POST /api/emergencies", s.staff(s.apiCreateEmergency))
	m.Handle("GET /api/emergencies", s.staff(s.apiListEmergencies))
	m.Handle("POST /api/emergencies/cancel", s.staff(s.apiCancelSeries))
	m.Handle("POST /api/emergencies/{id}/cancel", s.staff(s.apiCancelEmergency))
	m.Handle("POST /api/cap", s.staff(s.apiCAP))
	m.Handle("POST /api/commands", s.staff(s.apiIssueCommand))
	m.Handle("GET /api/commands", s.staff(s.apiListCommands))
	m.Handle("GET /api/commands/{id}", s.staff(s.apiShowCommand))
	m.Handle("GET /api/commands/{id}/screenshot", s.staff(s.apiCommandScreenshot))
	m.Handle("GET /api/screenshots/{device...}", s.staff(s.apiDeviceScreenshot))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s; see docs/hub.md for the routes", r.Method, r.URL.Path))
	})
	s.mux = m
}

// Run serves cfg until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	keyText, err := os.ReadFile(cfg.SigningKeyFile)
	if err != nil {
		return fmt.Errorf("signing key: %w (create one with `loa-hub keygen --out %s`)", err, cfg.SigningKeyFile)
	}
	priv, err := protocol.ParsePrivateKey(strings.TrimSpace(string(keyText)))
	if err != nil {
		return fmt.Errorf("signing key %s: %w", cfg.SigningKeyFile, err)
	}
	signer, err := protocol.NewSigner(cfg.SigningKeyID, priv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "hub.db"), systemClock{}, log.With("component", "store"))
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := New(Options{
		Store: db, Signer: signer, ContentDir: filepath.Join(cfg.DataDir, "content"),
		Log: log.With("component", "hub"), StatusInterval: cfg.StatusInterval,
		MaxUploadBytes: cfg.MaxUploadBytes, PublicURL: cfg.PublicURL, Location: zoneOf(cfg.Timezone),
		Transcoder: &Transcoder{FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe, LoudnessLUFS: cfg.LoudnessLUFS,
			TempDir: filepath.Join(cfg.DataDir, "tmp")},
	})
	if err != nil {
		return err
	}
	if cfg.CAP != nil {
		if err := srv.ConfigureCAP(*cfg.CAP); err != nil {
			return err
		}
	}
	go srv.RunEmergencies(ctx) // expiry of broadcasts, the CAP feed
	go srv.RunHousekeeping(ctx)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- hs.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	log.Info("hub listening", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "public_url", cfg.PublicURL,
		"key_id", cfg.SigningKeyID, "public_key", protocol.FormatPublicKey(priv.Public().(ed25519.PublicKey)))
	select {
	case err := <-errc:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	srv.Close()
	log.Info("hub stopped")
	return nil
}

// keyedMutex serialises work per key (device id) without one lock for all devices.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
