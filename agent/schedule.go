package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/scheduler"
)

// activation is a schedule accepted by validation, with what it needs from the store.
type activation struct {
	doc  *scheduler.Document
	refs []content.Ref
}

// prepareSchedule parses a schedule, resolves its local files against base (the directory of
// the file it came from), and checks every item it needs is on the device. A schedule that
// fails any check is refused whole; the running one keeps playing.
func (a *Agent) prepareSchedule(name string, data []byte, base string) (*activation, error) {
	doc, err := scheduler.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var refs []content.Ref
	var missing []string
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
				refs = append(refs, ref)
				if !a.store.Has(ref) {
					missing = append(missing, fmt.Sprintf("program %q items[%d] %s", p.ID, ii, it.Content))
				}
			case it.File != "":
				if !filepath.IsAbs(it.File) && base != "" {
					it.File = filepath.Join(base, it.File)
				}
				if _, err := os.Stat(it.File); err != nil {
					missing = append(missing, fmt.Sprintf("program %q items[%d] file %s", p.ID, ii, it.File))
				}
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s revision %d: not every item is on this device yet, keeping the current schedule; missing: %s",
			name, doc.Revision, strings.Join(missing, "; "))
	}
	// Compile the window the runner will use, so that a schedule it could not run (an item
	// of unknown length, a cron firing every second) is refused now, not found out later.
	now := a.clock.Now()
	if _, err := scheduler.Compile(doc, now.Add(-26*time.Hour), now.Add(6*time.Hour), scheduler.CompileOptions{ItemLength: a.itemLength}); err != nil {
		return nil, fmt.Errorf("%s revision %d cannot be played: %w", name, doc.Revision, err)
	}
	return &activation{doc: doc, refs: refs}, nil
}

// offerSchedule activates a schedule if it is newer than the active one (or the same one
// unchanged, which is a no-op). It returns whether the active schedule changed.
func (a *Agent) offerSchedule(name string, data []byte, base string) (bool, error) {
	act, err := a.prepareSchedule(name, data, base)
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
	if save {
		b, err := act.doc.Encode()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(a.cfg.activePath(), b); err != nil {
			return fmt.Errorf("saving the active schedule: %w", err)
		}
	}
	a.store.Keep(act.refs)
	a.mu.Lock()
	a.doc = act.doc
	a.mu.Unlock()
	a.runner.SetSchedule(act.doc)
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
			err = a.activate(act, false)
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
		if path, err = a.store.Path(ref); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return a.lengths.lengthOf(path)
}
