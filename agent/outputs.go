package agent

import (
	"context"
	"log/slog"
	"slices"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// output is what the agent drives from the runner's events: the speakers, the LED board, the
// screen. Each follows its own timeline; the scheduler already decided who has it.
type output interface {
	start(ctx context.Context, ev scheduler.Event)
	stop(key string, reason scheduler.StopReason)
	playing() string // key of the run it is on, "" when idle
}

type outputs map[string]output

// has reports whether this device has the named output.
func (c *Config) has(out string) bool { return slices.Contains(c.Outputs, out) }

// writeRecord writes a one-shot confirmation (failed, missed…) and tells the hub link, or
// logs why it could not.
func writeRecord(j *journal.Journal, log *slog.Logger, recorded func(), rec protocol.Confirmation) {
	if _, err := j.Record(rec); err != nil {
		log.Error("journal: cannot record a confirmation", "program", rec.Program, "result", rec.Result, "err", err)
	} else if recorded != nil {
		recorded()
	}
}

// activeRef names the active schedule for records: id and revision ("" and 0 without one).
func (a *Agent) activeRef() (string, int64) {
	if d := a.sched.active(); d != nil {
		return d.ID, d.Revision
	}
	return "", 0
}
