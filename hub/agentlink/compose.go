package agentlink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/hub/api"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// ScheduleIDFor is the schedule id of a device's effective schedule: one lineage per device,
// so revisions never compete across devices.
func ScheduleIDFor(deviceID string) string { return "dev-" + deviceID }

// ProgramPrefix is what a source's program ids are prefixed with in the composed document:
// the area id for an area's schedule, "device:<id>" for the device's own, so ids stay unique
// and say where a programme comes from (quang-nam/relay).
func ProgramPrefix(t store.Target) string {
	if t.Kind == store.TargetDevice {
		return "device:" + t.ID
	}
	return t.ID
}

// Compose builds a device's effective schedule from its sources (root area first, the device's
// own last) with the given revision. It returns the document's bytes (JSON) as the agent will
// store them. Exposed for tests and tools; the hub calls it through composeDevice.
func (s *Link) Compose(ctx context.Context, deviceID string, revision int64, sources []store.Schedule) ([]byte, error) {
	doc := scheduler.Document{Version: scheduler.SchemaVersion, ID: ScheduleIDFor(deviceID), Revision: revision, Programs: []scheduler.Program{}}
	durations := map[string]scheduler.Duration{}
	key := ""
	for _, src := range sources {
		d, err := s.parsed(src)
		if err != nil {
			return nil, fmt.Errorf("schedule of %s no longer parses: %w", src.Target, err)
		}
		key += src.Target.String() + "@" + fmt.Sprint(src.Revision) + " "
		// The nearest schedule (the last one) decides the zone and the quiet hours.
		doc.Timezone, doc.QuietHours = d.Timezone, d.QuietHours
		for _, p := range d.Programs {
			p.ID = ProgramPrefix(src.Target) + "/" + p.ID
			items := slices.Clone(p.Items)
			for i, it := range items {
				if it.Content == "" || it.Duration != 0 {
					continue
				}
				dur, ok := durations[it.Content]
				if !ok {
					c, err := s.st.GetContent(ctx, it.Content)
					if err != nil {
						return nil, fmt.Errorf("%s program %s: content %s: %w", src.Target, p.ID, it.Content, err)
					}
					dur = scheduler.Duration(c.Duration)
					durations[it.Content] = dur
				}
				items[i].Duration = dur
			}
			p.Items = items
			doc.Programs = append(doc.Programs, p)
		}
	}
	b, err := doc.Encode()
	if err != nil {
		return nil, err
	}
	// What the agent will parse must parse here first. Documents composed from the same
	// sources differ only in id and revision, so one check per source set is enough.
	if _, ok := s.validSets.Load(key); !ok {
		parsed, err := scheduler.Parse("effective schedule of device "+deviceID, b)
		if err != nil {
			return nil, fmt.Errorf("composed schedule is invalid: %w", err)
		}
		if err := s.Playable(ctx, parsed); err != nil {
			return nil, fmt.Errorf("composed schedule would be refused by the device: %w", err)
		}
		s.validSets.Store(key, true)
	}
	return b, nil
}

// Agents compile a schedule they receive over this window (agent/schedule.go) and refuse it
// when that fails: a cron that fires too often (scheduler.MaxPlaysPerCompile), an item of no
// known length.
const agentCompileBefore, agentCompileAfter = 26 * time.Hour, 6 * time.Hour

// Playable compiles doc as an agent will, so the hub refuses what every agent would: staff
// get the error instead of a 200 and a refusal from each device. Library content has the
// length the hub recorded; a device's local file: item, which only the device can measure,
// counts as a second.
func (s *Link) Playable(ctx context.Context, doc *scheduler.Document) error {
	lengths := map[string]time.Duration{}
	length := func(it scheduler.Item) (time.Duration, bool) {
		switch {
		case it.File != "":
			return time.Second, true
		case it.Content != "":
			d, ok := lengths[it.Content]
			if !ok {
				c, err := s.st.GetContent(ctx, it.Content)
				ok = err == nil && c.Duration > 0
				d = c.Duration
				lengths[it.Content] = d
			}
			return d, d > 0
		}
		return 0, false
	}
	now := s.clock.Now()
	_, err := scheduler.Compile(doc, now.Add(-agentCompileBefore), now.Add(agentCompileAfter), scheduler.CompileOptions{ItemLength: length})
	return err
}

// parsed returns a source schedule parsed, from a cache: a (target, revision) never changes.
func (s *Link) parsed(src store.Schedule) (*scheduler.Document, error) {
	key := src.Target.String() + "@" + fmt.Sprint(src.Revision)
	if d, ok := s.parsedDocs.Load(key); ok {
		return d.(*scheduler.Document), nil
	}
	d, err := scheduler.Parse(src.Target.String()+" revision "+fmt.Sprint(src.Revision), src.Document)
	if err != nil {
		return nil, err
	}
	if s.parsedCount.Add(1) > 4096 { // bound the caches; they refill on demand
		s.parsedDocs.Clear()
		s.validSets.Clear()
		s.parsedCount.Store(0)
	}
	s.parsedDocs.Store(key, d)
	return d, nil
}

// covers reports whether srcs holds every target of prev at the same or a newer revision.
func covers(srcs []store.Schedule, prev []store.SourceRevision) bool {
	have := make(map[store.Target]int64, len(srcs))
	for _, s := range srcs {
		have[s.Target] = s.Revision
	}
	for _, p := range prev {
		if r, ok := have[p.Target]; !ok || r < p.Revision {
			return false
		}
	}
	return true
}

func sameSources(a []store.SourceRevision, b []store.Schedule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Target != b[i].Target || a[i].Revision != b[i].Revision {
			return false
		}
	}
	return true
}

// composeDevice makes sure the device's newest effective schedule reflects its current sources
// and is above minRevision, composing and signing a new revision when not. It returns the
// newest effective schedule (zero Revision when the device has nothing to play) and whether it
// is new.
func (s *Link) composeDevice(ctx context.Context, deviceID string, minRevision int64) (store.EffectiveSchedule, bool, error) {
	return s.composeDeviceFrom(ctx, deviceID, minRevision, nil)
}

// composeDeviceFrom is composeDevice with the device's sources given by the caller; nil reads
// them from the store. A push to an area composes without this per-device path (see
// pushArea) and comes here only for a device whose stored state moved under it.
func (s *Link) composeDeviceFrom(ctx context.Context, deviceID string, minRevision int64, srcs []store.Schedule) (store.EffectiveSchedule, bool, error) {
	unlock := s.composeMu.lock(deviceID)
	defer unlock()
	var err error
	given := srcs != nil
	if !given {
		if srcs, err = s.st.SchedulesForDevice(ctx, deviceID); err != nil {
			return store.EffectiveSchedule{}, false, err
		}
	}
	if srcs, err = s.bc.WithEmergencies(ctx, deviceID, srcs); err != nil { // active broadcasts (hub/broadcast)
		return store.EffectiveSchedule{}, false, err
	}
	// A batch push does not take this lock: it may store a revision between our read and our
	// write, which the store refuses as stale. Then read again; a few tries settle it.
	for attempt := 0; ; attempt++ {
		latest, err := s.st.LatestEffective(ctx, deviceID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.EffectiveSchedule{}, false, err
		}
		if (given || attempt > 0) && !covers(srcs, latest.Sources) {
			// The latest revision was composed from something the given sources lack or hold
			// older (a concurrent push, a moved device): read them afresh rather than go back.
			if srcs, err = s.st.SchedulesForDevice(ctx, deviceID); err != nil {
				return store.EffectiveSchedule{}, false, err
			}
			if srcs, err = s.bc.WithEmergencies(ctx, deviceID, srcs); err != nil { // hub/broadcast
				return store.EffectiveSchedule{}, false, err
			}
		}
		if len(srcs) == 0 && latest.Revision == 0 {
			return latest, false, nil
		}
		if latest.Revision > 0 && latest.Revision >= minRevision && sameSources(latest.Sources, srcs) {
			return latest, false, nil
		}
		e, err := s.signEffective(ctx, deviceID, max(latest.Revision+1, minRevision, 1), srcs)
		if err != nil {
			return store.EffectiveSchedule{}, false, err
		}
		e, err = s.timed.AddEffective(ctx, e)
		s.touched(deviceID) // a new revision ends the alarm of a refused one
		if errors.Is(err, store.ErrStaleRevision) && attempt < 3 {
			continue
		}
		if err != nil {
			return store.EffectiveSchedule{}, false, err
		}
		s.log.Info("composed effective schedule", "device", deviceID, "revision", e.Revision, "sources", len(srcs))
		return e, true, nil
	}
}

// signEffective composes the device's effective schedule at revision rev from srcs and signs
// it for that device alone. Each device's document differs (its schedule id and revision are
// inside), so one signature per device is needed.
func (s *Link) signEffective(ctx context.Context, deviceID string, rev int64, srcs []store.Schedule) (store.EffectiveSchedule, error) {
	doc, err := s.Compose(ctx, deviceID, rev, srcs)
	if err != nil {
		return store.EffectiveSchedule{}, err
	}
	signed, err := s.signer.SignSchedule(protocol.SchedulePayload{ScheduleID: ScheduleIDFor(deviceID), Revision: uint64(rev),
		Devices: []string{deviceID}, IssuedAt: s.clock.Now().UTC(), Format: protocol.FormatJSON, Document: string(doc)})
	if err != nil {
		return store.EffectiveSchedule{}, err
	}
	sources := make([]store.SourceRevision, len(srcs))
	for i, sc := range srcs {
		sources[i] = store.SourceRevision{Target: sc.Target, Revision: sc.Revision}
	}
	return store.EffectiveSchedule{DeviceID: deviceID, Revision: rev, Document: signed.Payload, Signature: signed.Sig, Sources: sources}, nil
}

// Push recomposes every device a target feeds and sends new revisions to the connected
// ones.
func (s *Link) Push(ctx context.Context, t store.Target) api.PushResponse {
	return s.PushSince(ctx, t, nil)
}

// Heads is what devices held before a change (HeadsBefore): a push given it counts a device
// as changed when its newest revision is newer than that, whoever composed it. The change
// also wakes the emergency expiry loop and may meet a device reconnecting, either of which
// can compose it first; without this the request that made the change answered 0 devices.
type Heads map[string]store.EffectiveHead

// HeadsBefore reads the newest revision of every device in areas (a device: "device:<id>").
func (s *Link) HeadsBefore(ctx context.Context, targets ...store.Target) Heads {
	out := Heads{}
	for _, t := range targets {
		if t.Kind == store.TargetDevice {
			e, err := s.st.LatestEffective(ctx, t.ID)
			if err == nil {
				out[t.ID] = store.EffectiveHead{Revision: e.Revision}
			} else {
				out[t.ID] = store.EffectiveHead{}
			}
			continue
		}
		revs, err := s.st.LatestRevisions(ctx, t.ID)
		if err != nil {
			s.log.Warn("heads before a push not read: its counts leave out devices another push reaches first", "area", t.ID, "err", err)
			continue
		}
		for id, rev := range revs {
			out[id] = store.EffectiveHead{Revision: rev} // 0: none yet, any revision is newer
		}
	}
	return out
}

// composedSince reports whether a device's revision rev was composed after before was read.
func (before Heads) composedSince(id string, rev int64) bool {
	if before == nil {
		return false
	}
	h, ok := before[id]
	return ok && rev > h.Revision
}

// PushSince is Push counting the devices composed since before was read; the other replicas
// are told of the target when any device has a new revision, to send it to theirs.
func (s *Link) PushSince(ctx context.Context, t store.Target, before Heads) api.PushResponse {
	return s.pushSince(ctx, t, before, func(push string) {
		if push != "" {
			s.announce(ctx, topicPush, t.String()+" "+push)
		} else {
			s.announce(ctx, topicPush, t.String())
		}
	})
}

// pushSince is PushSince calling allStored once every new revision is in the store, if any is:
// the other replicas are told then, not after this one's own sends and their "sent" marks
// (which hold the writers' lock their reads and marks would wait for). push names the push
// whose stored devices were announced as it went ("" when none were).
func (s *Link) pushSince(ctx context.Context, t store.Target, before Heads, allStored func(push string)) api.PushResponse {
	if t.Kind != store.TargetDevice {
		return s.pushArea(ctx, t.ID, before, allStored)
	}
	e, isNew, err := s.composeDevice(ctx, t.ID, 0)
	if err != nil {
		return api.PushResponse{Failures: []string{fmt.Sprintf("device %s: %v", t.ID, err)}}
	}
	if !isNew && !before.composedSince(t.ID, e.Revision) {
		return api.PushResponse{}
	}
	allStored("")
	// Composed here, or by a concurrent push since the change: sendSchedule writes it unless
	// the connection carried it already, and is nil either way.
	res := api.PushResponse{Devices: 1}
	if c := s.conn(t.ID); c != nil && c.sendSchedule(ctx, e) == nil {
		res.Sent = 1
	}
	return res
}

func (s *Link) conn(deviceID string) *agentConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[deviceID]
}

// Batches of a push: how many composed revisions are stored in one transaction at most. The
// first batches are small (whatever is composed when the store is free), so the first devices
// get theirs at once; later ones grow while composing runs ahead of storing.
const pushBatch = 512

// pushArea recomposes every device in the area's subtree and sends new revisions to the
// connected ones. It reads what it needs in a few queries (devices, the subtree's schedules,
// every device's newest revision), composes and signs on every core, stores the new revisions
// in batches (one transaction each), sends each batch as soon as it is stored, and marks them
// all sent in one write at the end. A device whose stored state moved meanwhile (a concurrent
// push or connection) is composed again on its own. The other replicas are told of each
// stored batch as it commits (storedAnnouncer), and allStored is called once every revision is
// stored, if any changed.
func (s *Link) pushArea(ctx context.Context, area string, before Heads, allStored func(push string)) api.PushResponse {
	fail := func(err error) api.PushResponse { return api.PushResponse{Failures: []string{err.Error()}} }
	// Four independent reads, at once: at 50,000 devices each is a large answer, and the
	// database works on one while this process decodes another.
	var (
		ds    []store.Device
		under store.SubtreeSchedules
		heads map[string]store.EffectiveHead
		above []store.Schedule // the area and every area above it
		errs  [4]error
		rwg   sync.WaitGroup
	)
	rwg.Go(func() { ds, errs[0] = s.st.ListDevices(ctx, area) })
	rwg.Go(func() { under, errs[1] = s.timed.LatestSchedulesUnder(ctx, area) })
	rwg.Go(func() { heads, errs[2] = s.st.LatestEffectiveHeads(ctx, area) })
	rwg.Go(func() { above, errs[3] = s.AreaChain(ctx, area) })
	rwg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return fail(err)
	}
	// The chain of each area in the subtree: the chain above the pushed area, then each area
	// on the path down (area ids are paths).
	chains := map[string][]store.Schedule{area: above}
	var chainOf func(a string) []store.Schedule
	chainOf = func(a string) []store.Schedule {
		if c, ok := chains[a]; ok {
			return c
		}
		var c []store.Schedule
		if i := strings.LastIndexByte(a, '/'); i > 0 { // always, for an area below the pushed one
			c = chainOf(a[:i])
		}
		if sc, ok := under.Areas[a]; ok {
			c = append(slices.Clip(c), sc)
		}
		chains[a] = c
		return c
	}
	type job struct {
		id   string
		srcs []store.Schedule
		rev  int64
	}
	emFor, err := s.bc.EmergenciesFor(ctx) // active broadcasts come first (hub/broadcast)
	if err != nil {
		return fail(err)
	}
	var jobs []job
	var current []string // already composed from these sources by a concurrent push since before
	for _, d := range ds {
		if d.Revoked {
			continue
		}
		srcs := emFor(d, chainOf(d.Area))
		if own, ok := under.Devices[d.ID]; ok {
			srcs = append(slices.Clip(srcs), own)
		}
		h := heads[d.ID]
		switch {
		case !covers(srcs, h.Sources):
			jobs = append(jobs, job{id: d.ID}) // read afresh on its own (composeDevice)
		case len(srcs) == 0 && h.Revision == 0:
		case h.Revision > 0 && sameSources(h.Sources, srcs):
			if before.composedSince(d.ID, h.Revision) {
				current = append(current, d.ID)
			}
		default:
			jobs = append(jobs, job{id: d.ID, srcs: srcs, rev: h.Revision + 1})
		}
	}

	var (
		mu       sync.Mutex
		failures []string
		changed  atomic.Int64
		sentRevs []store.DeviceRevision
	)
	// A device composed by a concurrent push since the change counts as changed, and as sent
	// once its connection carries the revision (written here if the other push has not yet).
	changed.Add(int64(len(current)))
	alreadySent := 0
	for _, id := range current {
		c := s.conn(id)
		if c == nil {
			continue
		}
		if c.carried(heads[id].Revision) {
			alreadySent++
			continue
		}
		if e, err := s.st.LatestEffective(ctx, id); err == nil && c.writeSchedule(e) == nil {
			sentRevs = append(sentRevs, store.DeviceRevision{DeviceID: id, Revision: e.Revision})
		}
	}
	failed := func(id string, err error) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf("device %s: %v", id, err))
		mu.Unlock()
	}
	ann := s.announceStored(ctx)
	composed := make(chan store.EffectiveSchedule, pushBatch)
	toSend := make(chan store.EffectiveSchedule, pushBatch)
	alone := make(chan string, 64) // composed on their own, under the device's lock

	// Compose and sign on every core.
	var next atomic.Int64
	var cwg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				if j.rev == 0 {
					alone <- j.id
					continue
				}
				e, err := s.signEffective(ctx, j.id, j.rev, j.srcs)
				if err != nil {
					failed(j.id, err)
					continue
				}
				composed <- e
			}
		}()
	}
	go func() { cwg.Wait(); close(composed) }()

	// Store in batches: whatever has been composed when the previous batch is committed.
	var owg sync.WaitGroup
	owg.Add(2)
	go func() {
		defer owg.Done()
		// composed is closed once every composer is done, so nothing else sends to alone.
		defer close(alone)
		for e := range composed {
			batch := []store.EffectiveSchedule{e}
		more:
			for len(batch) < pushBatch {
				select {
				case e, ok := <-composed:
					if !ok {
						break more
					}
					batch = append(batch, e)
				default:
					break more
				}
			}
			stored, errs, err := s.timed.AddEffectives(ctx, batch)
			for _, e := range batch {
				s.touched(e.DeviceID)
			}
			var in []string
			for i, e := range batch {
				switch {
				case err != nil:
					failed(e.DeviceID, err)
				case errors.Is(errs[i], store.ErrStaleRevision):
					alone <- e.DeviceID // stored meanwhile by a connection or another push
				case errs[i] != nil:
					failed(e.DeviceID, errs[i])
				default:
					changed.Add(1)
					toSend <- stored[i]
					in = append(in, e.DeviceID)
				}
			}
			ann.add(in...)
		}
	}()
	// Devices composed on their own, one at a time: few, and each takes the device's lock.
	go func() {
		defer owg.Done()
		for id := range alone {
			e, isNew, err := s.composeDevice(ctx, id, 0)
			if err != nil {
				failed(id, err)
			} else if isNew || before.composedSince(id, e.Revision) {
				changed.Add(1)
				toSend <- e // written unless its connection carried it already
				ann.add(id)
			}
		}
	}()

	// Send as they are stored, with as many writers as the floor benchmark uses.
	var swg sync.WaitGroup
	for range 4 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			for e := range toSend {
				if c := s.conn(e.DeviceID); c != nil && c.writeSchedule(e) == nil {
					mu.Lock()
					sentRevs = append(sentRevs, store.DeviceRevision{DeviceID: e.DeviceID, Revision: e.Revision})
					mu.Unlock()
				}
			}
		}()
	}
	owg.Wait()
	if push := ann.close(); changed.Load() > 0 {
		allStored(push)
	}
	close(toSend)
	swg.Wait()
	// "sent" is recorded after the fan-out, in one write, so the store is off the send path.
	if err := s.timed.MarkSent(ctx, sentRevs); err != nil {
		s.log.Error("delivery state not recorded", "state", "sent", "err", err)
	}
	if len(failures) > 20 {
		failures = append(failures[:20], fmt.Sprintf("… and %d more", len(failures)-20))
	}
	return api.PushResponse{Devices: int(changed.Load()), Sent: len(sentRevs) + alreadySent, Failures: failures}
}

// AreaChain returns the latest schedule of area and of every area above it, root first.
func (s *Link) AreaChain(ctx context.Context, area string) ([]store.Schedule, error) {
	anc, err := s.st.Ancestors(ctx, area)
	if err != nil {
		return nil, err
	}
	chain := []store.Schedule{}
	for _, a := range append(anc, store.Area{ID: area}) {
		sc, err := s.st.LatestSchedule(ctx, store.AreaTarget(a.ID))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		chain = append(chain, sc)
	}
	return chain, nil
}
