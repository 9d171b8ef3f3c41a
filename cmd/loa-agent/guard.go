package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent/upgrade"
)

// guardCmd is the upgrade guard: the running agent starts it, detached, to install a release
// outside its own process (docs/upgrades.md, "On the device"). It takes the upgrade from the
// step the state file holds to a final one.
func guardCmd(fs *pflag.FlagSet) runFunc {
	state := fs.String("state", "/var/lib/loa/upgrade/state.json", "the upgrade state file the agent wrote")
	return func(ctx context.Context, _ []string, _ *slog.Logger) int {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "upgrade-guard", "pid", os.Getpid())
		systemd := upgrade.UnderSystemd()
		g := &upgrade.Guard{StatePath: *state, Log: log, Now: time.Now, System: upgrade.Debian{Systemd: systemd}}
		log.Info("upgrade guard started", "state", *state, "systemd", systemd)
		if err := g.Run(ctx); err != nil {
			log.Error("upgrade guard stopped", "err", err)
			fmt.Fprintln(os.Stderr, "loa-agent upgrade-guard:", err)
			return 1
		}
		st, _ := upgrade.LoadState(*state)
		log.Info("upgrade guard done", "state", st.Status.State, "version", st.Package.Version, "error", st.Status.Error)
		return 0
	}
}
