package hub

import (
	"context"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// What the hub keeps of its own past. Confirmations and the audit log are the record and are
// never pruned here; what only served delivery goes once it cannot matter any more.
const (
	keepRevisions  = 10                  // per device, besides the newest one it reported active
	keepCommands   = 30 * 24 * time.Hour // after a command expired
	keepScreenshot = 30 * 24 * time.Hour
	sweepEvery     = 24 * time.Hour
)

// RunHousekeeping prunes old effective revisions, commands and screenshots at start and then
// daily, until ctx ends.
func (s *Server) RunHousekeeping(ctx context.Context) {
	for {
		s.sweep(ctx)
		t := time.NewTimer(sweepEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Server) sweep(ctx context.Context) {
	now := s.clock.Now()
	log := s.log.With("component", "housekeeping")
	if n, err := s.st.PruneEffective(ctx, keepRevisions); err != nil {
		log.Error("pruning old effective schedules failed; the database keeps growing until it works", "err", err)
	} else if n > 0 {
		log.Info("old effective schedule revisions pruned", "revisions", n, "kept_per_device", keepRevisions)
	}
	if n, err := s.st.PruneCommands(ctx, now.Add(-keepCommands)); err != nil {
		log.Error("pruning old commands failed", "err", err)
	} else if n > 0 {
		log.Info("old commands pruned", "commands", n)
	}
	if n, err := s.st.PruneOnline(ctx, now.Add(-store.KeepOnline)); err != nil {
		log.Error("pruning old online time failed", "err", err)
	} else if n > 0 {
		log.Info("old online time pruned", "device_days", n)
	}
	removed := s.shots.RemoveOlderThan(now, keepScreenshot)
	if removed > 0 {
		log.Info("old screenshots removed", "files", removed, "older_than", keepScreenshot)
	}
}
