// Package hub is the district server's composition root: it builds the rooms (hub/agentlink,
// hub/broadcast, hub/library, hub/accounts, hub/screenshots, hub/media, with answers through
// hub/staffapi) from its Options, mounts every route in one table, and runs the loops. It still holds the
// check of credentials, the titles staff read, and the staff handlers for areas, devices,
// schedules, approvals and reports (docs/hub.md, "Where the code lives").
package hub

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/accounts"
	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/broadcast"
	"github.com/loa-project/loa/hub/console"
	"github.com/loa-project/loa/hub/library"
	"github.com/loa-project/loa/hub/livefeed"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/metrics"
	"github.com/loa-project/loa/hub/screenshots"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/hub/upgrades"
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
	// Online time and settings (issue 16: the devices report's online share, the report settings).
	AddOnline(ctx context.Context, id string, from, to time.Time) error
	PruneOnline(ctx context.Context, before time.Time) (int64, error)
	GetSetting(ctx context.Context, key string) (store.Setting, error)
	SetSetting(ctx context.Context, key, value string) error
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
	LatestRevisions(ctx context.Context, area string) (map[string]int64, error)
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

	agentlink.Store // the agent link, push and commands (hub/agentlink)
	upgrades.Store  // releases and rollouts (hub/upgrades)
	LatestUpgrade(ctx context.Context, device string) (store.DeviceUpgrade, error)
}

// Options configure a Server.
type Options struct {
	Store      Store
	Signer     *protocol.Signer
	ContentDir string // where content files live, named by their sha256 hex
	Log        *slog.Logger
	Clock      Clock // default: the system clock
	// Transcoder turns uploads into the library's MP3; nil disables uploads.
	Transcoder *media.Transcoder
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
	// AuthFailureLimit is how many failed credentials one address may present a minute before
	// it is answered 429 until the minute ends (default 60; -1: no limit).
	AuthFailureLimit int
	// MaxHellos bounds agent connections being welcomed at once (their composition is the
	// costly part of a reconnect storm); more are answered busy with retry_after_s (default
	// 64; -1: no limit).
	MaxHellos int
	// BusyRetryAfter is the wait asked of an agent turned away busy (default 20 s; it adds up
	// to as much again at random).
	BusyRetryAfter time.Duration
	// TransferIdle bounds a pause in a content upload or download (default 1m); the server's
	// own read and write timeouts would cut a large file over a slow link.
	TransferIdle time.Duration
	// TLS says the hub is served over HTTPS: console cookies are marked Secure.
	TLS bool
	// ReleaseKeys are the release keys agent packages must be signed with to be uploaded
	// (release_keys; none: release uploads are refused). RolloutTick is how often the rollout
	// engine looks at running rollouts besides the statuses that wake it (default 10 s).
	ReleaseKeys protocol.TrustedKeys
	RolloutTick time.Duration
	// StampRelays has the hub read each live relay's upstream once and serve it to the devices
	// stamped with its clock (GET /agent/relay, hub/livefeed), so that they play it in step.
	StampRelays bool
}

// Server is the hub: an http.Handler for staff, agents and content.
type Server struct {
	st      Store
	signer  *protocol.Signer
	dir     string
	log     *slog.Logger
	clock   Clock
	tc      *media.Transcoder
	opts    Options
	mux     *http.ServeMux
	handler http.Handler // mux, its answers counted
	metrics *metrics.Hub // the hub's registry (hub/metrics); served by MetricsHandler

	link      *agentlink.Link // agents' websockets, push, commands
	authLimit *authLimiter    // failed credentials per source (limiter.go)
	shots     *screenshots.Room
	lib       *library.Room
	bc        *broadcast.Room // emergencies, bulletins, live relays; CAP
	up        *upgrades.Room  // releases and rollouts of agent upgrades
	feeds     *livefeed.Feeds // live relays' upstreams read once, stamped for the devices
	acct      *accounts.Room
	// states: the devices' states the overview and device list count (devicelist.go).
	states deviceCache
	// bus: the other hubs on the same PostgreSQL database (replicas.go); nil when alone.
	bus replicaBus
	// notReady: the last /readyz answer was 503 (its cause is logged when it changes).
	notReady atomic.Bool
	// touchedHere: devices whose state this replica changed, for the others (replicas.go).
	touchedHere touchedSet
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
		opts.Location, _ = api.LoadZone(broadcast.Zone)
	}
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = 512 << 20
	}
	if opts.TransferIdle == 0 {
		opts.TransferIdle = time.Minute
	}
	if err := os.MkdirAll(opts.ContentDir, 0o755); err != nil {
		return nil, fmt.Errorf("hub: content dir: %w", err)
	}
	s := &Server{
		st: opts.Store, signer: opts.Signer, dir: opts.ContentDir, log: opts.Log, clock: opts.Clock,
		tc: opts.Transcoder, opts: opts,
	}
	// The link is built below; until then nobody asks how many agents are connected.
	s.metrics = metrics.New(func() int { return s.link.Connected() })
	if opts.AuthFailureLimit == 0 {
		opts.AuthFailureLimit = 60
	}
	s.authLimit = newAuthLimiter(opts.AuthFailureLimit, time.Minute, opts.Log)
	if opts.MaxHellos == 0 {
		opts.MaxHellos = 64
	}
	s.opts = opts
	// data_dir/screenshots: beside the content dir (data_dir/content). Now reads s.clock at
	// each call, not once here: tests set the clock after New.
	s.shots = screenshots.New(screenshots.Options{Dir: filepath.Join(filepath.Dir(filepath.Clean(s.dir)), "screenshots"),
		Commands: s.st, Now: s.now, Log: s.log, Location: opts.Location, DeviceAuth: s.deviceAuth, LookupDevice: s.lookupDevice})
	s.lib = library.New(library.Options{Store: s.st, Dir: s.dir, Transcoder: s.tc, Log: s.log, Now: s.now, PublicURL: opts.PublicURL,
		MaxUploadBytes: func() int64 { return s.opts.MaxUploadBytes }, Audit: s.audit, DeviceAuth: s.deviceAuth, AreaChain: s.areaChain,
		Served: s.metrics.ContentServed, Approval: s.uploadApproval})
	s.bc = broadcast.New(broadcast.Options{Store: s.st, Push: pusher{s}, Library: s.lib, Transcoder: s.tc, Log: s.log, Now: s.now,
		Location: opts.Location, Audit: s.audit, FindTarget: s.findTarget, Metrics: s.metrics, StampRelays: opts.StampRelays})
	s.feeds = livefeed.New(livefeed.Options{Log: s.log.With("component", "livefeed"), Now: s.now})
	s.acct = accounts.New(accounts.Options{Store: s.st, Now: s.now, Audit: s.audit})
	var peers agentlink.Peers
	if b, ok := s.st.(replicaBus); ok && b.Shared() {
		s.bus, peers = b, b
	}
	// The link is built below; the room reads it at each send.
	s.up = upgrades.New(upgrades.Options{Store: s.st, Link: upgradeLink{s}, Keys: opts.ReleaseKeys, Dir: s.dir, StoreFile: s.lib.StoreFile,
		Log: s.log.With("component", "upgrades"), Now: s.now, Audit: s.audit, DeviceAuth: s.deviceAuth, Online: s.online, Tick: opts.RolloutTick, Metrics: s.metrics,
		Announce: func(ctx context.Context, id string) { s.link.AnnounceRollout(ctx, id) }})
	var err error
	s.link, err = agentlink.New(agentlink.Options{Store: s.st, Signer: s.signer, Log: s.log, Now: s.now, Broadcasts: s.bc,
		StatusInterval: opts.StatusInterval, Limits: opts.Limits, MaxHellos: opts.MaxHellos, BusyRetryAfter: opts.BusyRetryAfter,
		DeviceAuth: s.deviceAuth, NewTitles: s.statusTitles, ResolveTarget: s.resolveTarget, LookupDevice: s.lookupDevice, Audit: s.audit,
		Metrics: s.metrics, Touched: s.touch, Peers: peers, Upgrades: s.up})
	if err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) now() time.Time { return s.clock.Now() }

// RunEmergencies drops expired broadcasts from the devices' schedules when they expire and
// polls the CAP feed when one is configured, until ctx ends (broadcast.Room.Run).
func (s *Server) RunEmergencies(ctx context.Context) { s.bc.Run(ctx) }

// RunUpgrades drives the rollouts of agent upgrades until ctx ends (upgrades.Room.Run).
func (s *Server) RunUpgrades(ctx context.Context) { s.up.Run(ctx) }

// upgradeLink is the agent link as the rollouts see it; it reads s.link at each call, as the
// upgrades room is built before the link that tells it of connections.
type upgradeLink struct{ s *Server }

func (l upgradeLink) Conn(device string) (uint64, bool) { return l.s.link.Conn(device) }

func (l upgradeLink) SendOn(device string, conn uint64, m protocol.Message) error {
	return l.s.link.SendOn(device, conn, m)
}

// ConfigureCAP reads the area map and turns CAP handling on. Call it before serving.
func (s *Server) ConfigureCAP(c broadcast.CAPConfig) error { return s.bc.ConfigureCAP(c) }

// pusher is the push pipeline (hub/agentlink) as the broadcast room sees it; it reads s.link
// at each call, as the broadcast room is built before the link that composes its broadcasts.
type pusher struct{ s *Server }

func (p pusher) HeadsBefore(ctx context.Context, targets ...store.Target) map[string]store.EffectiveHead {
	return p.s.link.HeadsBefore(ctx, targets...)
}

func (p pusher) PushSince(ctx context.Context, t store.Target, before map[string]store.EffectiveHead) api.PushResponse {
	return p.s.link.PushSince(ctx, t, before)
}

// areaChain is the latest schedule of area and of every area above it, root first.
func (s *Server) areaChain(ctx context.Context, area string) ([]store.Schedule, error) {
	return s.link.AreaChain(ctx, area)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// MetricsHandler serves the hub's metrics in the Prometheus text format. Run serves it on
// metrics_listen, apart from the staff and agent listener (docs/operations.md).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

// Close closes every agent connection and waits for their goroutines.
func (s *Server) Close() {
	s.link.Close()
	s.feeds.Close()
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// Every route's body is bounded on r.Body itself (staffapi.LimitBody), whatever reads it.
	small := func() int64 { return staffapi.MaxJSONBody }
	handle := func(pattern string, limit func() int64, h http.Handler) {
		m.Handle(pattern, staffapi.LimitBody(limit, h))
	}
	// Each route names the least role it needs (store.Can); the console's pages reach the
	// same routes through ServeAs, so one check decides for tokens and sessions.
	api := func(pattern string, need store.Role, h func(w http.ResponseWriter, r *http.Request, p staffapi.Caller)) {
		handle(pattern, small, s.staff(need, h))
	}
	V, O, E, A := store.RoleViewer, store.RoleOperator, store.RoleEmergency, store.RoleAdmin
	handle("GET /agent/ws", small, s.link)
	handle("GET /content/{ref}", small, s.transfer(http.HandlerFunc(s.lib.Download)))
	handle("HEAD /content/{ref}", small, http.HandlerFunc(s.lib.Download))
	handle("GET /agent/relay", small, s.transfer(http.HandlerFunc(s.relayFeed)))
	handle("POST /agent/screenshot", func() int64 { return screenshots.MaxBytes }, s.transfer(http.HandlerFunc(s.shots.Upload)))
	handle("GET /healthz", small, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }))
	handle("GET /readyz", small, http.HandlerFunc(s.readyz))

	api("GET /api/whoami", V, s.apiWhoami)
	api("GET /api/areas", V, s.apiListAreas)
	api("POST /api/areas", A, s.apiAddArea)
	api("GET /api/devices", V, s.apiListDevices)
	api("GET /api/device-list", V, s.apiDeviceList) // one page, filtered (the console's device list)
	api("GET /api/overview", V, s.apiOverview)      // counts per area, on the air, alarms
	api("POST /api/devices", A, s.apiEnrolDevice)
	api("POST /api/devices/rekey", A, s.apiRekeyDevice)
	api("GET /api/devices/{id...}", V, s.apiShowDevice)
	api("DELETE /api/devices/{id...}", A, s.apiRevokeDevice)
	api("POST /api/tokens", V, s.acct.Issue)
	api("POST /api/tokens/revoke", V, s.acct.Revoke)
	api("GET /api/tokens", A, s.acct.ListTokens)
	api("POST /api/users/role", A, s.acct.SetUserRole)
	api("POST /api/users/disable", A, s.acct.DisableUser)
	api("GET /api/users", A, s.acct.ListUsers)
	api("POST /api/users", A, s.acct.AddUser)
	api("POST /api/users/password", V, s.acct.SetPassword)
	api("GET /api/content", V, s.lib.List)
	api("PATCH /api/content/{ref}", O, s.lib.Edit)
	api("GET /api/content/usage", V, s.lib.Usage)
	api("GET /api/content/{ref}/file", V, s.lib.File)
	api("POST /api/content/{ref}/approve", store.RoleApprover, s.apiApproveContent)
	api("POST /api/content/{ref}/reject", store.RoleApprover, s.apiRejectContent)
	api("GET /api/cap/alerts", V, s.bc.CAPAlerts)
	api("GET /api/terms", V, s.lib.ListTerms)
	api("POST /api/terms", A, s.lib.AddTerm)
	handle("POST /api/content", func() int64 { return s.opts.MaxUploadBytes }, s.transfer(s.staff(O, s.lib.Upload)))
	api("POST /api/schedules", O, s.apiPushSchedule)
	api("GET /api/schedules", V, s.apiListSchedules)
	api("GET /api/schedules/show", V, s.apiShowSchedule)
	api("GET /api/schedules/plan", V, s.apiPlan)
	api("POST /api/schedules/plan", V, s.apiPlan) // the same for a schedule not yet pushed
	api("GET /api/schedule-templates", V, s.apiListTemplates)
	api("POST /api/schedule-templates", O, s.apiSaveTemplate)
	api("GET /api/status", V, s.apiStatus)
	api("GET /api/confirmations", V, s.apiConfirmations)
	api("GET /api/audit", A, s.apiAudit)
	api("GET /api/reports/{kind}", V, s.apiReport)
	api("GET /api/reports/plan/series", V, s.apiPlanSeries)
	api("GET /api/reports/plan/areas", V, s.apiPlanAreas)
	api("GET /api/settings/reports", V, s.apiGetReportSettings)
	api("PUT /api/settings/reports", A, s.apiSetReportSettings)
	api("POST /api/emergencies", O, s.gated(emergencyKind, s.bc.Create))
	api("GET /api/emergencies", V, s.bc.List)
	api("POST /api/emergencies/cancel", E, s.bc.CancelSeries)
	api("POST /api/emergencies/{id}/cancel", E, s.bc.Cancel)
	api("POST /api/cap", E, s.bc.CAP)
	api("POST /api/commands", O, s.gated(commandKind, s.link.Issue))
	api("GET /api/commands", V, s.link.ListCommands)
	// Editorial approval (issue 22).
	api("GET /api/submissions", V, s.apiListSubmissions)
	api("GET /api/submissions/{id}", V, s.apiShowSubmission)
	api("POST /api/submissions/{id}/approve", store.RoleApprover, s.apiApprove)
	api("POST /api/submissions/{id}/reject", store.RoleApprover, s.apiReject)
	api("GET /api/areas/policy", V, s.apiGetPolicy)
	api("PUT /api/areas/policy", A, s.apiSetPolicy)
	api("POST /api/emergencies/{id}/review", store.RoleApprover, s.bc.Review)
	api("GET /api/commands/{id}", V, s.link.ShowCommand)
	api("GET /api/commands/{id}/screenshot", V, s.shots.ByCommand)
	api("GET /api/screenshots/{device...}", V, s.shots.ByDevice)
	// Agent upgrades (issue 20): releases and rollouts are the whole fleet's software, so
	// only administrators upload and roll out; a package is served to devices and staff.
	handle("POST /api/releases", func() int64 { return protocol.MaxReleaseBytes + 1<<20 }, s.transfer(s.staff(A, s.up.Upload)))
	api("GET /api/releases", V, s.up.ListReleases)
	handle("GET /api/releases/{version}/{arch}/package", small, s.transfer(deviceOrStaff(http.HandlerFunc(s.up.DeviceDownload), s.staff(V, s.up.StaffDownload))))
	api("POST /api/rollouts", A, s.up.Create)
	api("GET /api/rollouts", V, s.up.ListRollouts)
	api("GET /api/rollouts/{id}", V, s.up.Show)
	api("POST /api/rollouts/{id}/stop", A, s.up.Stop)
	if cs, ok := s.st.(console.Store); ok {
		c, err := console.New(console.Options{API: s, Store: cs, Log: s.log.With("component", "console"),
			Location: s.opts.Location, Now: s.clock.Now, Secure: s.opts.TLS, Limiter: consoleLimiter{s}})
		if err != nil {
			panic(err) // the embedded templates do not parse: a build that tests catch
		}
		handle("/console/", small, c)
		// The library page's uploads go on to POST /api/content: its limit, not a form's.
		handle("POST /console/content/upload", func() int64 { return s.opts.MaxUploadBytes }, s.transfer(c))
		m.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusSeeOther))
	}
	handle("/api/", small, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s; see docs/hub.md for the routes", r.Method, r.URL.Path))
	}))
	s.mux = m
	s.handler = s.metrics.Count(m)
}

// deviceOrStaff serves a route both to devices (their credentials) and to staff (a bearer
// token).
func deviceOrStaff(device, staff http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			staff.ServeHTTP(w, r)
			return
		}
		device.ServeHTTP(w, r)
	})
}

// transfer replaces the server's whole-request read and write timeouts by a bound on each
// pause (TransferIdle): every read of the body and every write of the answer pushes the
// deadline on.
func (s *Server) transfer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		idle := s.opts.TransferIdle
		rc.SetReadDeadline(time.Now().Add(idle))
		rc.SetWriteDeadline(time.Now().Add(idle))
		r.Body = &progressBody{ReadCloser: r.Body, rc: rc, idle: idle}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc, idle: idle}, r)
	})
}

type progressBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	return w.ResponseWriter.Write(p)
}

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
	db, err := store.Open(ctx, cfg.StoreSource(), systemClock{}, log.With("component", "store"))
	if err != nil {
		return err
	}
	defer db.Close()
	var releaseKeys protocol.TrustedKeys
	if len(cfg.ReleaseKeys) > 0 {
		if releaseKeys, err = protocol.ParseTrustedKeys(cfg.ReleaseKeys); err != nil {
			return fmt.Errorf("release_keys: %w", err)
		}
	}
	srv, err := New(Options{
		ReleaseKeys: releaseKeys,
		Store:       db, Signer: signer, ContentDir: cmp.Or(cfg.ContentDir, filepath.Join(cfg.DataDir, "content")),
		Log: log.With("component", "hub"), StatusInterval: cfg.StatusInterval,
		MaxUploadBytes: cfg.MaxUploadBytes, PublicURL: cfg.PublicURL, Location: zoneOf(cfg.Timezone),
		TransferIdle: max(cfg.ReadTimeout, cfg.WriteTimeout), TLS: cfg.TLSCert != "", StampRelays: *cfg.RelayThroughHub, AuthFailureLimit: cfg.AuthFailureLimit, MaxHellos: cfg.MaxHellos,
		Transcoder: &media.Transcoder{FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe, LoudnessLUFS: cfg.LoudnessLUFS,
			TempDir: filepath.Join(cfg.DataDir, "tmp"), Timeout: cfg.TranscodeTimeout,
			MaxConcurrent: cfg.MaxTranscodes, MaxDuration: cfg.MaxContentDuration},
	})
	if err != nil {
		return err
	}
	if cfg.CAP != nil {
		if err := srv.ConfigureCAP(*cfg.CAP); err != nil {
			return err
		}
	}
	// The loops stop and are waited for before the store closes (deferred above, so after),
	// however Run returns.
	var loops sync.WaitGroup
	defer loops.Wait()
	ctx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	loops.Go(func() { srv.RunEmergencies(ctx) }) // expiry of broadcasts, the CAP feed
	loops.Go(func() { srv.RunHousekeeping(ctx) })
	loops.Go(func() { srv.RunReplicas(ctx) }) // on PostgreSQL: what the other hubs did
	loops.Go(func() { srv.RunUpgrades(ctx) }) // rollouts of agent upgrades
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln = newLimitListener(ln, cfg.MaxConnections, log)
	hs := newHTTPServer(cfg, srv, log)
	errc := make(chan error, 2)
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := newHTTPServer(cfg, mux, log)
		// Closed after the main server's shutdown (a scrape during it still answers), and
		// waited for with the loops.
		defer ms.Close()
		loops.Go(func() { errc <- ms.Serve(mln) })
		log.Info("hub metrics listening", "addr", mln.Addr().String(), "path", "/metrics")
	}
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

// newHTTPServer is the hub's HTTP server: every phase of a connection is bounded, so idle
// keep-alives and slow bodies do not hold connections (agents' websockets clear these
// deadlines when they upgrade and keep their own).
func newHTTPServer(cfg Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout), ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// limitListener holds open connections to max: one accepted beyond it is closed at once (a
// client retries later; agents back off with jitter), and the refusals are logged once a
// minute with their count, not one line each.
type limitListener struct {
	net.Listener
	sem     chan struct{}
	log     *slog.Logger
	refused atomic.Int64
	logged  atomic.Int64 // unix seconds of the last refusal logged
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, max), log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
		default:
		}
		c.Close()
		n := l.refused.Add(1)
		if now := time.Now().Unix(); now-l.logged.Load() >= 60 {
			l.logged.Store(now)
			l.log.Warn("connections refused: the hub is at max_connections", "max_connections", cap(l.sem), "refused_total", n)
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
