package hub

import (
	"context"
	"errors"
	"fmt"
	"github.com/loa-project/loa/hub/api"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// ScheduleIDFor is the schedule id of a device's effective schedule: one lineage per device,
// so revisions never compete across devices.
func ScheduleIDFor(deviceID string) string { return "dev-" + deviceID }

// programPrefix is what a source's program ids are prefixed with in the composed document:
// the area id for an area's schedule, "device:<id>" for the device's own, so ids stay unique
// and say where a programme comes from (quang-nam/relay).
func programPrefix(t store.Target) string {
	if t.Kind == store.TargetDevice {
		return "device:" + t.ID
	}
	return t.ID
}

// Compose builds a device's effective schedule from its sources (root area first, the device's
// own last) with the given revision. It returns the document's bytes (JSON) as the agent will
// store them. Exposed for tests and tools; the hub calls it through composeDevice.
func (s *Server) Compose(ctx context.Context, deviceID string, revision int64, sources []store.Schedule) ([]byte, error) {
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
			p.ID = programPrefix(src.Target) + "/" + p.ID
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
		if _, err := scheduler.Parse("effective schedule of device "+deviceID, b); err != nil {
			return nil, fmt.Errorf("composed schedule is invalid: %w", err)
		}
		s.validSets.Store(key, true)
	}
	return b, nil
}

// parsed returns a source schedule parsed, from a cache: a (target, revision) never changes.
func (s *Server) parsed(src store.Schedule) (*scheduler.Document, error) {
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
func (s *Server) composeDevice(ctx context.Context, deviceID string, minRevision int64) (store.EffectiveSchedule, bool, error) {
	return s.composeDeviceFrom(ctx, deviceID, minRevision, nil)
}

// composeDeviceFrom is composeDevice with the device's sources given by the caller (a push
// reads its area's schedules once for all its devices); nil reads them from the store.
func (s *Server) composeDeviceFrom(ctx context.Context, deviceID string, minRevision int64, srcs []store.Schedule) (store.EffectiveSchedule, bool, error) {
	unlock := s.composeMu.lock(deviceID)
	defer unlock()
	var err error
	given := srcs != nil
	if !given {
		if srcs, err = s.st.SchedulesForDevice(ctx, deviceID); err != nil {
			return store.EffectiveSchedule{}, false, err
		}
	}
	if srcs, err = s.withEmergencies(ctx, deviceID, srcs); err != nil { // active broadcasts (emergency.go)
		return store.EffectiveSchedule{}, false, err
	}
	latest, err := s.st.LatestEffective(ctx, deviceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.EffectiveSchedule{}, false, err
	}
	if given && !covers(srcs, latest.Sources) {
		// The latest revision was composed from something the given sources lack or hold
		// older (a concurrent push, a moved device): read them afresh rather than go back.
		if srcs, err = s.st.SchedulesForDevice(ctx, deviceID); err != nil {
			return store.EffectiveSchedule{}, false, err
		}
		if srcs, err = s.withEmergencies(ctx, deviceID, srcs); err != nil {
			return store.EffectiveSchedule{}, false, err
		}
	}
	if len(srcs) == 0 && latest.Revision == 0 {
		return latest, false, nil
	}
	if latest.Revision > 0 && latest.Revision >= minRevision && sameSources(latest.Sources, srcs) {
		return latest, false, nil
	}
	rev := max(latest.Revision+1, minRevision, 1)
	doc, err := s.Compose(ctx, deviceID, rev, srcs)
	if err != nil {
		return store.EffectiveSchedule{}, false, err
	}
	signed, err := s.signer.SignSchedule(protocol.SchedulePayload{ScheduleID: ScheduleIDFor(deviceID), Revision: uint64(rev),
		Devices: []string{deviceID}, IssuedAt: s.clock.Now().UTC(), Format: protocol.FormatJSON, Document: string(doc)})
	if err != nil {
		return store.EffectiveSchedule{}, false, err
	}
	sources := make([]store.SourceRevision, len(srcs))
	for i, sc := range srcs {
		sources[i] = store.SourceRevision{Target: sc.Target, Revision: sc.Revision}
	}
	e, err := s.st.AddEffective(ctx, store.EffectiveSchedule{DeviceID: deviceID, Revision: rev, Document: signed.Payload,
		Signature: signed.Sig, Sources: sources})
	if err != nil {
		return store.EffectiveSchedule{}, false, err
	}
	s.log.Info("composed effective schedule", "device", deviceID, "revision", rev, "sources", len(srcs))
	return e, true, nil
}

// pushTarget recomposes every device a target feeds and sends new revisions to the connected
// ones.
func (s *Server) pushTarget(ctx context.Context, t store.Target) api.PushResponse {
	var ids, areas []string
	if t.Kind == store.TargetDevice {
		ids, areas = []string{t.ID}, []string{""}
	} else {
		ds, err := s.st.ListDevices(ctx, t.ID)
		if err != nil {
			return api.PushResponse{Failures: []string{err.Error()}}
		}
		for _, d := range ds {
			if !d.Revoked {
				ids, areas = append(ids, d.ID), append(areas, d.Area)
			}
		}
	}
	// The schedules of each area chain are read once, not once per device.
	var chainMu sync.Mutex
	chains := map[string][]store.Schedule{}
	sourcesOf := func(i int) ([]store.Schedule, error) {
		if areas[i] == "" {
			return nil, nil // read by composeDevice
		}
		chainMu.Lock()
		chain, ok := chains[areas[i]]
		chainMu.Unlock()
		if !ok {
			var err error
			if chain, err = s.areaChain(ctx, areas[i]); err != nil {
				return nil, err
			}
			chainMu.Lock()
			chains[areas[i]] = chain
			chainMu.Unlock()
		}
		own, err := s.st.LatestSchedule(ctx, store.DeviceTarget(ids[i]))
		if errors.Is(err, store.ErrNotFound) {
			return chain, nil // shared, read only
		}
		if err != nil {
			return nil, err
		}
		return append(slices.Clip(chain), own), nil
	}
	var (
		changed, sent atomic.Int64
		mu            sync.Mutex
		failures      []string
		wg            sync.WaitGroup
		next          atomic.Int64
		sentRevs      = make([]int64, len(ids)) // recorded after the fan-out, off its path
	)
	workers := min(4, len(ids))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				srcs, err := sourcesOf(i)
				var e store.EffectiveSchedule
				var isNew bool
				if err == nil {
					e, isNew, err = s.composeDeviceFrom(ctx, ids[i], 0, srcs)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("device %s: %v", ids[i], err))
					mu.Unlock()
					continue
				}
				if !isNew {
					continue
				}
				changed.Add(1)
				s.mu.Lock()
				c := s.conns[ids[i]]
				s.mu.Unlock()
				if c != nil && c.writeSchedule(e) == nil {
					sentRevs[i] = e.Revision
					sent.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i, rev := range sentRevs {
		if rev > 0 {
			s.markSent(ctx, ids[i], rev)
		}
	}
	if len(failures) > 20 {
		failures = append(failures[:20], fmt.Sprintf("… and %d more", len(failures)-20))
	}
	return api.PushResponse{Devices: int(changed.Load()), Sent: int(sent.Load()), Failures: failures}
}

// areaChain returns the latest schedule of area and of every area above it, root first.
func (s *Server) areaChain(ctx context.Context, area string) ([]store.Schedule, error) {
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
