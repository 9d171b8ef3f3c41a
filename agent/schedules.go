package agent

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// activation is a schedule accepted by validation, with what it needs from the store.
type activation struct {
	doc     *scheduler.Document
	data    []byte // the document as received, kept for a pending revision
	refs    []content.Ref
	missing []content.Ref // store items not on the device yet
}

// schedules owns which schedule plays: it prepares what is offered (the schedule file, a
// hub push, the revisions saved at the last stop), has the runner check it, keeps a pushed
// revision pending until its content is on the device (an emergency plays at once), remembers
// the highest revision accepted per schedule id, saves the active one and hands it to the
// runner. It is the hub link's Schedules.
type schedules struct {
	a *Agent // the config, store, runner and log it works with, and the plan it hands over

	activating sync.Mutex // one activation at a time: the schedule file and hub pushes both activate

	mu      sync.Mutex
	doc     *scheduler.Document // active
	pending *activation         // a pushed revision waiting for its content
	held    map[string]int64

	fileStamp  string // size and time of the schedule file last looked at
	fileWarned bool
}

// active is the schedule that plays (nil: none yet).
func (s *schedules) active() *scheduler.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc
}

// heldRevisions copies the highest revision accepted per schedule id, for the state file.
func (s *schedules) heldRevisions() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.held)
}

// setHeld restores the revisions accepted before the restart.
func (s *schedules) setHeld(held map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = held
}

// prepare parses a schedule, resolves its local files against base (the directory of
// the file it came from), and checks it can be played: its files exist and the runner can
// compile it. Store items it lacks are listed in missing; the caller decides whether that
// refuses it (a local file) or makes it pending (a push: the link fetches them). The saved
// active schedule is not compiled again at a start (check false): it was when it was
// accepted, and a dense one takes a minute on a loaded Pi that the runner's first, short
// timeline does not (the runner says so itself if it cannot compile it now).
func (s *schedules) prepare(name string, data []byte, base string, check bool) (*activation, error) {
	doc, err := scheduler.Parse(name, data)
	if err != nil {
		return nil, err
	}
	act := &activation{doc: doc, data: data}
	var missingFiles []string
	for pi := range doc.Programs {
		p := &doc.Programs[pi]
		for ii := range p.Items {
			it := &p.Items[ii]
			switch {
			case it.Content != "":
				ref, err := content.ParseRef(it.Content)
				if err != nil {
					return nil, fmt.Errorf("%s: program %q items[%d]: %v", name, p.ID, ii, err)
				}
				act.refs = append(act.refs, ref)
				if !s.a.store.Has(ref) {
					act.missing = append(act.missing, ref)
				}
			case it.File != "":
				if !filepath.IsAbs(it.File) && base != "" {
					it.File = filepath.Join(base, it.File)
				}
				if _, err := os.Stat(it.File); err != nil && it.Fallback == "" {
					missingFiles = append(missingFiles, fmt.Sprintf("program %q items[%d] file %s", p.ID, ii, it.File))
				}
			}
		}
	}
	if len(missingFiles) > 0 {
		return nil, fmt.Errorf("%s revision %d: files missing on this device, keeping the current schedule: %s",
			name, doc.Revision, strings.Join(missingFiles, "; "))
	}
	if len(act.missing) > 0 || !check {
		return act, nil // compiled once complete, or checked when it was accepted
	}
	// The runner's own check: a schedule it could not run (an item of unknown length, a cron
	// firing every second) is refused now, not found out later.
	if err := s.a.runner.Check(doc); err != nil {
		return nil, fmt.Errorf("%s revision %d cannot be played: %w", name, doc.Revision, err)
	}
	return act, nil
}

// requireComplete turns missing store items into an error, for schedules that have no one to
// fetch them (a local file).
func (act *activation) requireComplete(name string) error {
	if len(act.missing) == 0 {
		return nil
	}
	var refs []string
	for _, r := range act.missing {
		refs = append(refs, r.String())
	}
	return fmt.Errorf("%s revision %d: not every item is on this device yet, keeping the current schedule; missing: %s",
		name, act.doc.Revision, strings.Join(refs, "; "))
}

// offerSchedule activates a schedule if it is newer than the active one (or the same one
// unchanged, which is a no-op). It returns whether the active schedule changed.
func (s *schedules) offer(name string, data []byte, base string) (bool, error) {
	act, err := s.prepare(name, data, base, true)
	if err == nil {
		err = act.requireComplete(name)
	}
	if err != nil {
		return false, err
	}
	cur := s.active()
	if cur != nil && cur.ID == act.doc.ID {
		if act.doc.Revision < cur.Revision {
			return false, fmt.Errorf("%s: revision %d is older than the active revision %d; refused", name, act.doc.Revision, cur.Revision)
		}
		if act.doc.Revision == cur.Revision {
			same, _ := act.doc.Encode()
			old, _ := cur.Encode()
			if bytes.Equal(same, old) {
				return false, nil
			}
			return false, fmt.Errorf("%s: revision %d changed without a new revision number; raise revision to apply it", name, act.doc.Revision)
		}
	}
	if err := s.activate(act, true); err != nil {
		return false, err
	}
	return true, nil
}

// activate makes a prepared schedule the one that plays, saving it first so a reboot
// comes back to it even with no network.
func (s *schedules) activate(act *activation, save bool) error {
	s.activating.Lock()
	defer s.activating.Unlock()
	if save {
		b, err := act.doc.Encode()
		if err != nil {
			return err
		}
		if err := atomicfile.Write(s.a.cfg.activePath(), b, 0o600); err != nil {
			return fmt.Errorf("saving the active schedule: %w", err)
		}
	}
	s.mu.Lock()
	s.doc = act.doc
	keep := append([]content.Ref(nil), act.refs...)
	if s.pending != nil {
		keep = append(keep, s.pending.refs...)
	}
	s.mu.Unlock()
	s.a.store.Keep(keep)
	s.rememberRevision(act.doc.ID, act.doc.Revision)
	s.a.handOver(act.doc)
	s.a.prepareFallbacks(act.doc)
	s.a.log.Info("schedule active", "schedule", act.doc.ID, "revision", act.doc.Revision, "programs", len(act.doc.Programs))
	return nil
}

// loadActive restores the schedule that was active before the restart.
func (s *schedules) loadActive() {
	data, err := os.ReadFile(s.a.cfg.activePath())
	if os.IsNotExist(err) {
		return
	}
	if err == nil {
		var act *activation
		if act, err = s.prepare(s.a.cfg.activePath(), data, "", false); err == nil {
			// An emergency activated before its content arrived plays on after a reboot.
			if err = act.requireComplete(s.a.cfg.activePath()); err == nil || s.urgent(act) {
				err = s.activate(act, false)
			}
		}
	}
	if err != nil {
		s.a.log.Error("the saved active schedule cannot be used; waiting for a new one", "err", err)
	}
}

// watchFile offers the schedule file when it changes (polled every 2 s of monotonic time) or
// when reload asks (SIGHUP), until ctx ends. It is the only caller of checkFile once the agent
// runs.
func (s *schedules) watchFile(ctx context.Context, reload <-chan struct{}) {
	watch := time.NewTicker(2 * time.Second)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			s.checkFile(true)
		case <-watch.C:
			s.checkFile(false)
		}
	}
}

// checkFile offers the configured schedule file if it changed since the last look.
func (s *schedules) checkFile(force bool) {
	path := s.a.cfg.Schedule
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		if force || !s.fileWarned {
			s.a.log.Warn("schedule file cannot be read; the active schedule keeps playing", "file", path, "err", err)
			s.fileWarned = true
		}
		return
	}
	stamp := fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
	if !force && stamp == s.fileStamp {
		return
	}
	s.fileStamp, s.fileWarned = stamp, false
	data, err := os.ReadFile(path)
	if err == nil {
		var changed bool
		changed, err = s.offer(path, data, filepath.Dir(path))
		if err == nil && !changed {
			s.a.log.Debug("schedule file unchanged", "file", path)
		}
	}
	if err != nil {
		s.a.log.Error("schedule file refused; the active schedule keeps playing", "file", path, "err", err)
	}
}

// Active implements link.Schedules.
func (s *schedules) Active() *protocol.ScheduleRef {
	if d := s.active(); d != nil {
		return &protocol.ScheduleRef{ID: d.ID, Revision: uint64(d.Revision)}
	}
	return nil
}

// Pending implements link.Schedules.
func (s *schedules) Pending() *protocol.ScheduleRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return nil
	}
	return &protocol.ScheduleRef{ID: s.pending.doc.ID, Revision: uint64(s.pending.doc.Revision)}
}

// HeldRevision implements link.Schedules: the highest revision ever accepted per schedule id.
func (s *schedules) HeldRevision(id string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.held[id]
	return uint64(r), ok
}

// rememberRevision records an accepted revision, on disk before returning: a replayed older
// push must be refused even after a reboot.
func (s *schedules) rememberRevision(id string, rev int64) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string]int64{}
	}
	if s.held[id] >= rev {
		s.mu.Unlock()
		return
	}
	s.held[id] = rev
	s.mu.Unlock()
	s.a.saveState()
}

// Offer implements link.Schedules: a verified push, validated like a local file, activated at
// once when complete and otherwise kept pending while the link fetches what it lacks.
func (s *schedules) Offer(ctx context.Context, p *protocol.SchedulePayload) (link.Progress, error) {
	name := fmt.Sprintf("push of %s revision %d", p.ScheduleID, p.Revision)
	act, err := s.prepare(name, []byte(p.Document), "", true)
	if err != nil {
		// Everything prepareSchedule refuses is the document's fault as the hub sees it.
		return link.Progress{}, fmt.Errorf("%w: %v", link.ErrInvalidDocument, err)
	}
	s.rememberRevision(act.doc.ID, act.doc.Revision)
	return s.settle(act)
}

// Advance implements link.Schedules: look again at the pending revision.
func (s *schedules) Advance(ctx context.Context, ref protocol.ScheduleRef) (link.Progress, error) {
	s.mu.Lock()
	pend := s.pending
	s.mu.Unlock()
	if pend == nil || pend.doc.ID != ref.ID || uint64(pend.doc.Revision) != ref.Revision {
		if cur := s.Active(); cur != nil && *cur == ref {
			return link.Progress{State: protocol.DeliveryActive}, nil
		}
		return link.Progress{}, fmt.Errorf("revision %d of %s is neither pending nor active here", ref.Revision, ref.ID)
	}
	act, err := s.prepare(fmt.Sprintf("pending %s revision %d", ref.ID, ref.Revision), pend.data, "", true)
	if err != nil {
		return link.Progress{}, err
	}
	return s.settle(act)
}

// settle activates a complete revision, or stores it as pending. A revision carrying an
// emergency is activated at once even while its content is still being fetched (it also stays
// pending so the fetch goes on): a warning late by a slow 3G download is worse than one spoken
// from its fallback text.
func (s *schedules) settle(act *activation) (link.Progress, error) {
	if len(act.missing) > 0 && s.urgent(act) {
		if err := atomicfile.Write(s.a.cfg.pendingPath(), act.data, 0o600); err != nil {
			return link.Progress{}, fmt.Errorf("saving the pending schedule: %w", err)
		}
		s.mu.Lock()
		s.pending = act
		s.mu.Unlock()
		if cur := s.active(); cur == nil || cur.ID != act.doc.ID || cur.Revision < act.doc.Revision {
			if err := s.activate(act, true); err != nil {
				return link.Progress{}, err
			}
			s.a.log.Warn("emergency schedule active before all its content arrived; missing items are spoken from their fallback text until fetched",
				"schedule", act.doc.ID, "revision", act.doc.Revision, "missing", len(act.missing))
		}
		return link.Progress{State: protocol.DeliveryActive, Missing: act.missing}, nil
	}
	if len(act.missing) > 0 {
		if err := atomicfile.Write(s.a.cfg.pendingPath(), act.data, 0o600); err != nil {
			return link.Progress{}, fmt.Errorf("saving the pending schedule: %w", err)
		}
		s.mu.Lock()
		s.pending = act
		keep := append([]content.Ref(nil), act.refs...)
		if s.doc != nil {
			keep = append(keep, s.pendingKeep()...)
		}
		s.mu.Unlock()
		s.a.store.Keep(keep)
		s.a.log.Info("schedule received; waiting for its content before it plays", "schedule", act.doc.ID,
			"revision", act.doc.Revision, "missing", len(act.missing))
		return link.Progress{State: protocol.DeliveryReceived, Missing: act.missing}, nil
	}
	s.mu.Lock()
	completed := false
	if s.pending != nil && s.pending.doc.ID == act.doc.ID && s.pending.doc.Revision <= act.doc.Revision {
		s.pending = nil
		os.Remove(s.a.cfg.pendingPath())
		completed = true
	}
	s.mu.Unlock()
	if cur := s.active(); cur != nil && cur.ID == act.doc.ID && cur.Revision >= act.doc.Revision {
		if completed && cur.Revision == act.doc.Revision {
			// An emergency that went active early now has its content: plan again with the
			// real lengths, so its next plays are the recording, not the fallback.
			s.a.log.Info("content of the active emergency schedule arrived", "schedule", cur.ID, "revision", cur.Revision)
			if err := s.a.plan(cur); err != nil {
				s.a.log.Error("cannot plan again", "err", err)
			}
		}
		return link.Progress{State: protocol.DeliveryActive}, nil
	}
	if err := s.activate(act, true); err != nil {
		return link.Progress{}, err
	}
	return link.Progress{State: protocol.DeliveryActive}, nil
}

// pendingKeep lists the store items of the active schedule, to keep beside a pending one.
// Called with a.mu held.
func (s *schedules) pendingKeep() []content.Ref {
	var refs []content.Ref
	for _, p := range s.doc.Programs {
		for _, it := range p.Items {
			if r, err := content.ParseRef(it.Content); err == nil {
				refs = append(refs, r)
			}
		}
	}
	return refs
}

// loadPending restores a pushed revision that was waiting for content at the last stop.
func (s *schedules) loadPending() {
	data, err := os.ReadFile(s.a.cfg.pendingPath())
	if err != nil {
		return
	}
	act, err := s.prepare(s.a.cfg.pendingPath(), data, "", true)
	if err != nil {
		s.a.log.Warn("the saved pending schedule cannot be used; dropping it", "err", err)
		os.Remove(s.a.cfg.pendingPath())
		return
	}
	if cur := s.active(); cur != nil && cur.ID == act.doc.ID && cur.Revision >= act.doc.Revision {
		os.Remove(s.a.cfg.pendingPath())
		return
	}
	s.settle(act)
}

// urgent reports whether an incomplete revision should play now: it carries an emergency
// programme and can be compiled with what is on the device (missing items have a length
// from the hub or from their fallback text).
func (s *schedules) urgent(act *activation) bool {
	emergency := false
	for _, p := range act.doc.Programs {
		if p.Class == scheduler.Emergency {
			emergency = true
		}
	}
	if !emergency {
		return false
	}
	if err := s.a.runner.Check(act.doc); err != nil {
		s.a.log.Warn("an emergency schedule cannot play before its content arrives", "schedule", act.doc.ID, "revision", act.doc.Revision, "err", err)
		return false
	}
	return true
}
