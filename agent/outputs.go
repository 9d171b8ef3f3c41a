package agent

import (
	"context"
	"slices"

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
