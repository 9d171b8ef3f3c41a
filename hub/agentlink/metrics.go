package agentlink

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Metrics is what the link counts and times (hub/metrics' *Hub provides it).
type Metrics interface {
	Pushed(ok bool)
	Delivered(stage string, d time.Duration)
	Confirmed(result string, n int)
	FirstSample(kind string, d time.Duration)
	StoreCall(op string, start time.Time, err error)
	WebsocketError(kind string)
}

// Connected is how many agents have a live connection (the agents-connected gauge).
func (s *Link) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// timedStore is the store as the agents' path and the push pipeline call it: each call is
// timed into the store-latency histogram by operation. Only these calls go through it; the
// link keeps s.st itself for everything else (and for the interfaces it asks of it).
type timedStore struct{ s *Link }

func timed[T any](m Metrics, op string, call func() (T, error)) (T, error) {
	start := time.Now()
	v, err := call()
	m.StoreCall(op, start, err)
	return v, err
}

func (t timedStore) AddConfirmations(ctx context.Context, deviceID string, cs []store.Confirmation) (int64, error) {
	return timed(t.s.metrics, "add_confirmations", func() (int64, error) { return t.s.st.AddConfirmations(ctx, deviceID, cs) })
}

func (t timedStore) MarkDelivery(ctx context.Context, deviceID string, revision int64, state store.DeliveryState, reason string) (store.Delivery, error) {
	return timed(t.s.metrics, "mark_delivery", func() (store.Delivery, error) { return t.s.st.MarkDelivery(ctx, deviceID, revision, state, reason) })
}

func (t timedStore) AddEffective(ctx context.Context, e store.EffectiveSchedule) (store.EffectiveSchedule, error) {
	return timed(t.s.metrics, "add_effective", func() (store.EffectiveSchedule, error) { return t.s.st.AddEffective(ctx, e) })
}

// effectives is AddEffectives' two results as one value for timed.
type effectives struct {
	stored []store.EffectiveSchedule
	errs   []error
}

func (t timedStore) AddEffectives(ctx context.Context, es []store.EffectiveSchedule) ([]store.EffectiveSchedule, []error, error) {
	r, err := timed(t.s.metrics, "add_effectives", func() (effectives, error) {
		stored, errs, err := t.s.st.AddEffectives(ctx, es)
		return effectives{stored, errs}, err
	})
	return r.stored, r.errs, err
}

func (t timedStore) MarkSent(ctx context.Context, revs []store.DeviceRevision) error {
	_, err := timed(t.s.metrics, "mark_sent", func() (struct{}, error) { return struct{}{}, t.s.st.MarkSent(ctx, revs) })
	return err
}

func (t timedStore) LatestSchedulesUnder(ctx context.Context, area string) (store.SubtreeSchedules, error) {
	return timed(t.s.metrics, "latest_schedules_under", func() (store.SubtreeSchedules, error) { return t.s.st.LatestSchedulesUnder(ctx, area) })
}

// observeDelivery times a delivery stage an agent reported from when the schedule was sent.
func (s *Link) observeDelivery(st store.DeliveryState, d store.Delivery) {
	at := map[store.DeliveryState]time.Time{store.StateReceived: d.ReceivedAt, store.StateContentReady: d.ContentReadyAt, store.StateActive: d.ActiveAt}[st]
	if d.SentAt.IsZero() || at.IsZero() {
		return
	}
	s.metrics.Delivered(string(st), at.Sub(d.SentAt))
}

// emergencyStore reads a broadcast for its first-sample latency; *store.DB provides it.
type emergencyStore interface {
	GetEmergency(ctx context.Context, id int64) (store.Emergency, error)
}

// countConfirmations counts a stored batch by result, and times each device's first sample of
// each broadcast (programmes named "emergency:12/speakers") from when it was due.
func (s *Link) countConfirmations(ctx context.Context, device string, recs []protocol.Confirmation) {
	counts := map[protocol.Result]int{}
	for _, r := range recs {
		res := r.Result
		if !res.Closed() && res != protocol.ResultPlaying {
			res = "other" // a device's word, not one of ours: no new series for it
		}
		counts[res]++
		kind, id, ok := BroadcastOf(r.Program)
		if !ok || r.Start.IsZero() || !s.firsts.first(device, id) {
			continue
		}
		es, ok := s.st.(emergencyStore)
		if !ok {
			continue
		}
		e, err := timed(s.metrics, "get_emergency", func() (store.Emergency, error) { return es.GetEmergency(ctx, id) })
		if err != nil {
			s.log.Warn("broadcast of a confirmation not found: its first-sample time is not measured", "device", device, "program", r.Program, "err", err)
			continue
		}
		due := e.IssuedAt
		if e.Start.After(due) {
			due = e.Start
		}
		s.metrics.FirstSample(kind, r.Start.Sub(due))
	}
	for res, n := range counts {
		s.metrics.Confirmed(string(res), n)
	}
}

// BroadcastOf reads a broadcast's kind and id from a programme id ("emergency:12/speakers"):
// the metrics time broadcasts by it, the reports find who approved them.
func BroadcastOf(program string) (string, int64, bool) {
	kind, rest, ok := strings.Cut(program, ":")
	if !ok || (kind != store.KindEmergency && kind != store.KindBulletin && kind != store.KindLive) {
		return "", 0, false
	}
	num, _, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(num, 10, 64)
	return kind, id, err == nil
}

// firstSamples remembers which device has confirmed a first sample of which broadcast, so a
// broadcast's repeats and a batch sent twice are not timed again. It forgets everything when
// it grows past maxFirsts (a few MB): at worst a repeat is then timed once more.
type firstSamples struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxFirsts = 100_000

func (f *firstSamples) first(device string, id int64) bool {
	key := device + "\x00" + strconv.FormatInt(id, 10)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[key] {
		return false
	}
	if f.seen == nil || len(f.seen) >= maxFirsts {
		f.seen = map[string]bool{}
	}
	f.seen[key] = true
	return true
}
