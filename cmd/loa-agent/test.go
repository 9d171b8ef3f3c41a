package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent"
)

// testCmd asks the running agent to test one of its outputs and prints what it did and what
// to check. The agent does it, not this process: the relay and the sound card are the
// agent's, and a test must go through what a broadcast goes through.
func testCmd(fs *pflag.FlagSet) runFunc {
	cfgPath := fs.String("config", "/etc/loa/agent.yaml", "agent config file (its data_dir has the running agent's socket)")
	hold := fs.Duration("hold", 0, "relay, sign, screen: how long to hold on or show")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	return func(ctx context.Context, pos []string, _ *slog.Logger) int {
		if !slices.Contains(agent.Tests, pos[0]) {
			fmt.Fprintf(os.Stderr, "loa-agent test: no test %q: the tests are %s\n", pos[0], strings.Join(agent.Tests, ", "))
			return 2
		}
		cfg, err := agent.LoadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent test:", err)
			return 1
		}
		what := pos[0]
		if what == "speakers" {
			fmt.Fprintln(os.Stderr, "loa-agent test speakers: relay on, warm-up, a tone and a spoken line, relay off; listen…")
		}
		rep, err := agent.RunTest(cfg, what, *hold)
		if errors.Is(err, agent.ErrNotRunning) {
			fmt.Fprintf(os.Stderr, "loa-agent test: %v.\nThe test runs through the running agent: start it (sudo systemctl start loa-agent; systemctl status loa-agent says why it stopped), then try again.\n", err)
			switch what {
			case "speakers":
				fmt.Fprintf(os.Stderr, "Without it: `loa-agent play /usr/share/sounds/alsa/Front_Center.wav --out %s` plays a sound but does not switch the amplifier relay (the amplifier must be on).\n", cfg.Audio.Output)
			case "sign":
				fmt.Fprintln(os.Stderr, "Without it: `loa-agent show \"Thu bang tin\" --out board --duration 20s` (install.md step 4).")
			case "screen":
				fmt.Fprintln(os.Stderr, "Without it: `loa-agent show \"Thu man hinh\" --out screen` .")
			}
			return 1
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "loa-agent test %s: %v\n", what, err)
			return 1
		}
		if *asJSON {
			json.NewEncoder(os.Stdout).Encode(rep)
		} else {
			for _, s := range rep.Steps {
				fmt.Println("- " + s)
			}
			if rep.OK {
				fmt.Printf("%s: the box did every step.\n", what)
			} else {
				fmt.Printf("%s: FAILED (see above).\n", what)
			}
			if len(rep.Check) > 0 {
				fmt.Println("If nothing was heard or seen, check:")
				fmt.Println("  " + strings.Join(rep.Check, "\n  "))
			}
		}
		if !rep.OK {
			return 1
		}
		return 0
	}
}
