// Command loa-agent runs on each loudspeaker cluster or bulletin board. Each subcommand parses
// its flags here and hands the work to a package; no logic lives in cmd/.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its name, a line of help, and its entry point. run returns the
// process exit code so that "validate" can say 1 for a bad schedule without it being a crash.
type command struct {
	name string
	help string
	run  func(ctx context.Context, args []string, log *slog.Logger) int
}

func commands() []command {
	return []command{
		{"plan", "print the timeline a schedule compiles to", planCmd},
		{"validate", "check a schedule file and print what is wrong", validateCmd},
		{"play", "play one file or stream and print its proof of output", playCmd},
		{"show", "show one video, image or text on the screen or LED board and print its proof", showCmd},
		{"run", "run the daemon: play the schedule, keep the journal", runCmd},
		{"journal", "print the confirmations in the journal", journalCmd},
		{"status", "print what plays now and next, the schedule, the clock and the store", statusCmd},
		{"test", "through the running agent: test the speakers (relay, tone, voice), relay, sign or screen", testCmd},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loa-agent <command> [flags]")
	fmt.Fprintln(os.Stderr, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.help)
	}
	fmt.Fprintln(os.Stderr, "run 'loa-agent <command> -h' for a command's flags")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "agent")
	for _, c := range commands() {
		if c.name == os.Args[1] {
			code := c.run(ctx, os.Args[2:], log)
			stop()
			os.Exit(code)
		}
	}
	if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		return
	}
	fmt.Fprintf(os.Stderr, "loa-agent: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}
