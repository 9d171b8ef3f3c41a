package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/scheduler"
)

// amplifierSummary is the relay state as a confirmation carries it: "on", or what is wrong.
func amplifierSummary(st amplifier.State) string {
	if st.Error != "" {
		return fmt.Sprintf("%s (relay %s: %s)", st.Phase, st.Relay, st.Error)
	}
	return string(st.Phase)
}

// warmUp switches the amplifier on ahead of an announced run, so that the warm-up is over by
// its first sample; the hold ends shortly after the start, when the play holds it itself.
func (s *speakers) warmUp(ctx context.Context, run *scheduler.Run) {
	if s.amp == nil {
		return
	}
	s.tasks.Go(func() {
		if s.amp.Acquire(ctx) != nil {
			return
		}
		defer s.amp.Release()
		select {
		case <-s.clock.After(run.Start.Sub(s.clock.Now()) + 5*time.Second):
		case <-ctx.Done():
		}
	})
}
