// Command loa-agent runs on each loudspeaker cluster or bulletin board. Each subcommand parses
// its flags here and hands the work to a package; no logic lives in cmd/.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/internal/clicmd"
)

// runFunc runs a subcommand with its positional arguments, its flags parsed, and returns the
// process exit code, so that "validate" can say 1 for a bad schedule without it being a
// crash; 2 is wrong usage (the subcommand's usage follows what it printed).
type runFunc func(ctx context.Context, pos []string, log *slog.Logger) int

// command is one subcommand: its synopsis (cobra's Use), a line of help, more help, and
// define, which adds its flags to fs and returns what it runs.
type command struct {
	use, short, long string
	args             cobra.PositionalArgs
	define           func(fs *pflag.FlagSet) runFunc
}

func commands() []command {
	return []command{
		{"plan --schedule FILE [--from T] [--until T] [--format json|table]", "print the timeline a schedule compiles to", "", cobra.NoArgs, planCmd},
		{"validate --schedule FILE", "check a schedule file and print what is wrong", "", cobra.NoArgs, validateCmd},
		{"play FILE|URL [--out alsa[:DEVICE]|wav:PATH|null] [--duration D] [--volume V]", "play one file or stream and print its proof of output", "",
			cobra.ExactArgs(1), playCmd},
		{"show FILE|TEXT [--out screen|board] [--duration D] [--ticker TEXT]", "show one video, image or text on the screen or LED board and print its proof",
			"FILE is a video or image; anything that is not an existing file is shown as a text bulletin.", cobra.ExactArgs(1), showCmd},
		{"run [--config FILE]", "run the daemon: play the schedule, keep the journal", "", cobra.NoArgs, runCmd},
		{"journal [--config FILE] [--since SEQ] [--limit N] [--json]", "print the confirmations in the journal", "", cobra.NoArgs, journalCmd},
		{"status [--config FILE] [--json]", "print what plays now and next, the schedule, the clock and the store", "", cobra.NoArgs, statusCmd},
		{"test speakers|relay|sign|screen [--config FILE] [--hold D] [--json]", "through the running agent: test the speakers (relay, tone, voice), relay, sign or screen",
			`  speakers: relay on, warm-up, a tone and a spoken line, relay off
  relay:    the amplifier relay on for --hold (default 5s), then off
  sign:     a test text on the LED sign for --hold (default 10s), then blank
  screen:   a test bulletin on the screen for --hold (default 10s)`, cobra.ExactArgs(1), testCmd},
		{"upgrade-guard [--state FILE]", "install an upgrade outside the agent: dpkg, restart, health check, rollback (started by the agent)",
			"The running agent starts this, detached (under systemd through loa-agent-upgrade.path), when an upgrade from the hub may be\n" +
				"installed. It carries the upgrade in the state file from its current step to healthy, rolled_back or failed. Run it by hand\n" +
				"as root to finish an upgrade a power cut interrupted (docs/upgrades.md).", cobra.NoArgs, guardCmd},
	}
}

// newRoot is the loa-agent command tree; log is the logger of the commands that do not build
// their own from the agent config.
func newRoot(log *slog.Logger) *cobra.Command {
	root := &cobra.Command{Use: "loa-agent", Short: "the Loa agent of a loudspeaker cluster or bulletin board",
		Long: "loa-agent plays a cluster's or board's schedule on time, offline if need be, and reports each play.\n\n" +
			"Shell completion: loa-agent completion bash|zsh|fish (the Debian package installs it)."}
	for _, c := range commands() {
		cc := &cobra.Command{Use: c.use, Short: c.short, Long: c.long, Args: c.args}
		if cc.Name() == "test" {
			cc.ValidArgs = agent.Tests // completed: speakers, relay, sign, screen
		}
		run := c.define(cc.Flags())
		cc.RunE = func(cmd *cobra.Command, args []string) error {
			if code := run(cmd.Context(), args, log); code != 0 {
				return clicmd.ExitError{Code: code}
			}
			return nil
		}
		root.AddCommand(cc)
	}
	clicmd.Prepare(root)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "agent")
	code := clicmd.Execute(ctx, newRoot(log), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
