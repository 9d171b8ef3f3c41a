// Package broadcast is the hub's broadcasts: emergency warnings, priority bulletins and live
// relays that staff or CAP alerts put on the air over areas and devices, composed into the
// devices' schedules while they are active and dropped when they expire or are cancelled,
// and the CAP endpoint and feed that turn alerts into them.
package broadcast

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// Store is what broadcasts read of the hub's storage. The emergencies themselves (and the
// review of one) are kept by a store that also has emergencyStore (and reviewStore);
// *store.DB has both.
type Store interface {
	GetDevice(ctx context.Context, id string) (store.Device, error)
	ListDevices(ctx context.Context, area string) ([]store.Device, error)
	LatestEffective(ctx context.Context, deviceID string) (store.EffectiveSchedule, error)
	GetContent(ctx context.Context, ref string) (store.Content, error)
	AddContent(ctx context.Context, c store.Content) (store.Content, bool, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
}

// reviewStore records the review of an emergency warning that went out without approval.
type reviewStore interface {
	Review(ctx context.Context, id int64, by, note string) (store.Emergency, error)
}

// Pusher composes and pushes the devices a broadcast reaches: the hub's push pipeline.
type Pusher interface {
	// HeadsBefore is the newest effective revision of each device under targets, read before
	// a change, so that a device another push composed since still counts as changed.
	HeadsBefore(ctx context.Context, targets ...store.Target) map[string]store.EffectiveHead
	// PushSince composes and pushes the devices of t.
	PushSince(ctx context.Context, t store.Target, before map[string]store.EffectiveHead) api.PushResponse
}

// Metrics counts the broadcasts put on the air (the hub's *metrics.Hub).
type Metrics interface {
	Issued(kind, source string)
}

// Library keeps the audio a CAP alert brings.
type Library interface {
	StoreFile(path string) (string, int64, error)
}

// Options configure a Room. Every field is required but Transcoder (nil: CAP audio is not
// fetched).
type Options struct {
	Store      Store
	Push       Pusher
	Library    Library
	Transcoder *media.Transcoder
	Log        *slog.Logger
	Now        func() time.Time
	Location   *time.Location // the hub's zone: broadcasts are written and announced in it
	// Audit records an action in the hub's audit log.
	Audit func(ctx context.Context, p staffapi.Caller, action, target string, detail any)
	// FindTarget finds the area or device to names in p's scope, and the area it is or is in.
	FindTarget func(ctx context.Context, p staffapi.Caller, to string) (store.Target, string, error)
	// Metrics counts broadcasts put on the air; nil: not counted.
	Metrics Metrics
	// StampRelays has the devices play live relays from the hub's stamped feed (RelayPath,
	// hub/livefeed), in step, rather than each from the upstream.
	StampRelays bool
}

// Room serves the broadcast routes (the hub mounts them), composes active broadcasts into
// devices' sources (WithEmergencies, EmergenciesFor) and runs their expiry and the CAP feed
// (Run). Its active set is read from the store on first use and after every change.
type Room struct {
	o      Options
	mu     sync.Mutex
	loaded bool
	active []activeEmergency
	wake   chan struct{} // nudges the expiry loop after a change
	loc    *time.Location
	cap    *capState
}

// New returns a room over o.
func New(o Options) *Room { return &Room{o: o} }

// Covering is the sources of the broadcasts active now over area or an area above it: what a
// plan of area shows before its schedules.
func (rm *Room) Covering(ctx context.Context, area string) ([]store.Schedule, error) {
	act, err := rm.activeEmergencies(ctx)
	if err != nil {
		return nil, err
	}
	var pre []store.Schedule
	for _, a := range act {
		if store.Allowed(a.e.Area, area) {
			pre = append(pre, a.src)
		}
	}
	return pre, nil
}
