package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/scheduler"
)

// activation is a schedule accepted by validation, with what it needs from the store.
type activation struct {
	doc     *scheduler.Document
	data    []byte // the document as received, kept for a pending revision
	refs    []content.Ref
	missing []content.Ref // store items not on the device yet
}

// prepareSchedule parses a schedule, resolves its local files against base (the directory of
// the file it came from), and checks it can be played: its files exist and the runner can
// compile it. Store items it lacks are listed in missing; the caller decides whether that
// refuses it (a local file) or makes it pending (a push: the link fetches them).
func (a *Agent) prepareSchedule(name string, data []byte, base string) (*activation, error) {
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
				if !a.store.Has(ref) {
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
	if len(act.missing) > 0 {
		return act, nil // compiled once complete
	}
	// Compile the window the runner will use, so that a schedule it could not run (an item
	// of unknown length, a cron firing every second) is refused now, not found out later.
	now := a.clock.Now()
	if _, err := scheduler.Compile(doc, now.Add(-26*time.Hour), now.Add(6*time.Hour), scheduler.CompileOptions{ItemLength: a.itemLength}); err != nil {
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
func (a *Agent) offerSchedule(name string, data []byte, base string) (bool, error) {
	act, err := a.prepareSchedule(name, data, base)
	if err == nil {
		err = act.requireComplete(name)
	}
	if err != nil {
		return false, err
	}
	cur := a.activeDoc()
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
	if err := a.activate(act, true); err != nil {
		return false, err
	}
	return true, nil
}

// activate makes a prepared schedule the one that plays, saving it first so a reboot
// comes back to it even with no network.
func (a *Agent) activate(act *activation, save bool) error {
	a.activateMu.Lock()
	defer a.activateMu.Unlock()
	if save {
		b, err := act.doc.Encode()
		if err != nil {
			return err
		}
		if err := atomicfile.Write(a.cfg.activePath(), b, 0o600); err != nil {
			return fmt.Errorf("saving the active schedule: %w", err)
		}
	}
	a.mu.Lock()
	a.doc = act.doc
	keep := append([]content.Ref(nil), act.refs...)
	if a.pending != nil {
		keep = append(keep, a.pending.refs...)
	}
	a.mu.Unlock()
	a.store.Keep(keep)
	a.rememberRevision(act.doc.ID, act.doc.Revision)
	if err := a.plan(act.doc); err != nil {
		a.log.Error("play_now commands dropped from the plan", "err", err)
		a.mu.Lock()
		a.adhoc = nil
		a.mu.Unlock()
		a.runner.SetSchedule(act.doc)
	}
	a.log.Info("schedule active", "schedule", act.doc.ID, "revision", act.doc.Revision, "programs", len(act.doc.Programs))
	return nil
}

// loadActive restores the schedule that was active before the restart.
func (a *Agent) loadActive() {
	data, err := os.ReadFile(a.cfg.activePath())
	if os.IsNotExist(err) {
		return
	}
	if err == nil {
		var act *activation
		if act, err = a.prepareSchedule(a.cfg.activePath(), data, ""); err == nil {
			// An emergency activated before its content arrived plays on after a reboot.
			if err = act.requireComplete(a.cfg.activePath()); err == nil || a.urgent(act) {
				err = a.activate(act, false)
			}
		}
	}
	if err != nil {
		a.log.Error("the saved active schedule cannot be used; waiting for a new one", "err", err)
	}
}

// checkScheduleFile offers the configured schedule file if it changed since the last look.
func (a *Agent) checkScheduleFile(force bool) {
	path := a.cfg.Schedule
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		if force || !a.fileWarned {
			a.log.Warn("schedule file cannot be read; the active schedule keeps playing", "file", path, "err", err)
			a.fileWarned = true
		}
		return
	}
	stamp := fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
	if !force && stamp == a.fileStamp {
		return
	}
	a.fileStamp, a.fileWarned = stamp, false
	data, err := os.ReadFile(path)
	if err == nil {
		var changed bool
		changed, err = a.offerSchedule(path, data, filepath.Dir(path))
		if err == nil && !changed {
			a.log.Debug("schedule file unchanged", "file", path)
		}
	}
	if err != nil {
		a.log.Error("schedule file refused; the active schedule keeps playing", "file", path, "err", err)
	}
}

// itemLength tells the compiler how long an item without a written duration lasts, by
// decoding it once (cached by path and modification time).
func (a *Agent) itemLength(it scheduler.Item) (time.Duration, bool) {
	path := ""
	switch {
	case it.File != "":
		path = it.File
	case it.Content != "":
		ref, err := content.ParseRef(it.Content)
		if err != nil {
			return 0, false
		}
		path, _ = a.store.Path(ref)
	default:
		return 0, false
	}
	if path != "" {
		if d, ok := a.lengths.lengthOf(path); ok || it.Fallback == "" {
			return d, ok
		}
		if _, err := os.Stat(path); err == nil {
			return 0, false // on the device, but of no length we can tell: not a missing item
		}
	}
	// Missing on the device: it is the fallback text that will be heard, if any.
	if it.Fallback == "" || a.speech == nil {
		return 0, false
	}
	p, err := a.speech.path(context.Background(), it.Fallback)
	if err != nil {
		a.log.Warn("cannot speak the fallback text of a missing item", "err", err)
		return 0, false
	}
	return a.lengths.lengthOf(p)
}
