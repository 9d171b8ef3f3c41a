package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/protocol"
)

// configFlag is --config, the agent config file.
func configFlag(fs *pflag.FlagSet) *string {
	return fs.String("config", "/etc/loa/agent.yaml", "agent config file")
}

// loadConfig reads the agent config and builds the logger it asks for.
func loadConfig(path string) (*agent.Config, *slog.Logger, int) {
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-agent:", err)
		return nil, nil, 1
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		fmt.Fprintf(os.Stderr, "loa-agent: config: log.level %q: use debug, info, warn or error\n", cfg.Log.Level)
		return nil, nil, 1
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return cfg, slog.New(h).With("component", "agent", "device", cfg.DeviceID), 0
}

func runCmd(fs *pflag.FlagSet) runFunc {
	path := configFlag(fs)
	return func(ctx context.Context, _ []string, _ *slog.Logger) int {
		cfg, log, code := loadConfig(*path)
		if cfg == nil {
			return code
		}
		a := agent.New(cfg, log, nil)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				log.Info("SIGHUP: looking at the schedule file again")
				a.Reload()
			}
		}()
		if err := a.Run(ctx); err != nil {
			log.Error("agent cannot run", "err", err)
			return 1
		}
		return 0
	}
}

func journalCmd(fs *pflag.FlagSet) runFunc {
	path := configFlag(fs)
	since := fs.Uint64("since", 0, "show records with a sequence number above this")
	limit := fs.Int("limit", 0, "show at most this many (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	return func(ctx context.Context, _ []string, _ *slog.Logger) int {
		cfg, _, code := loadConfig(*path)
		if cfg == nil {
			return code
		}
		recs, err := agent.ReadJournal(cfg, *since, *limit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent journal:", err)
			return 1
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			for _, r := range recs {
				enc.Encode(r)
			}
			return 0
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tSCHEDULED\tSTART\tPLAYED\tOUTPUT\tPROGRAM\tITEM\tRESULT\tCLOCK\tERROR")
		for _, r := range recs {
			start := "-"
			if !r.Start.IsZero() {
				start = r.Start.Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d %s\t%s\t%s\t%s\n", r.Seq, r.Scheduled.Format("2006-01-02 15:04:05"), start,
				protocol.Duration(r.PlayedS).Round(10*time.Millisecond), r.Output, r.Program, r.ItemIndex, r.Item, r.Result, r.Clock, r.Error)
		}
		tw.Flush()
		return 0
	}
}

func statusCmd(fs *pflag.FlagSet) runFunc {
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, _ []string, _ *slog.Logger) int {
		cfg, _, code := loadConfig(*path)
		if cfg == nil {
			return code
		}
		st, err := agent.ReadStatus(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent status:", err)
			return 1
		}
		if *asJSON {
			json.NewEncoder(os.Stdout).Encode(st)
			return 0
		}
		fmt.Printf("device:    %s (agent %s)\n", st.DeviceID, map[bool]string{true: "running", false: "not running"}[st.Running])
		fmt.Printf("clock:     %s (%s)\n", st.Now.Format(time.RFC3339), map[bool]string{true: "synced", false: "not trusted yet"}[st.ClockSynced])
		if st.ScheduleID != "" {
			fmt.Printf("schedule:  %s revision %d\n", st.ScheduleID, st.ScheduleRevision)
		} else {
			fmt.Println("schedule:  none")
		}
		for _, np := range st.NowPlaying {
			fmt.Printf("playing:   %s: %s (%s) item %d %s since %s, until %s\n", np.Output, np.Program, np.Class, np.Item, np.Ref,
				np.Since.Format("15:04:05"), np.Until.Format("15:04:05"))
		}
		if len(st.NowPlaying) == 0 {
			fmt.Println("playing:   nothing")
		}
		for _, n := range st.Next {
			fmt.Printf("next:      %s %s %s (%s) until %s\n", n.Start.Format("2006-01-02 15:04:05"), n.Output, n.Program, n.Class, n.End.Format("15:04:05"))
		}
		fmt.Printf("volume:    %.2f\n", st.Volume)
		if a := st.Amplifier; a != nil {
			line := fmt.Sprintf("%s (relay %s)", a.Phase, a.Relay)
			if a.Error != "" {
				line += fmt.Sprintf(", failing since %s: %s", a.ErrorSince.Format("15:04:05"), a.Error)
			}
			fmt.Printf("amplifier: %s\n", line)
		}
		if b := st.Board; b != nil {
			line := "connected"
			if !b.Connected {
				line = fmt.Sprintf("NOT CONNECTED since %s: %s", b.DownSince.Format("15:04:05"), b.LastError)
			}
			fmt.Printf("board:     %s %s\n", b.Port, line)
		}
		fmt.Printf("store:     %d items, %.1f MB\n", st.Store.Items, float64(st.Store.Bytes)/1e6)
		fmt.Printf("journal:   %d records, %d unacknowledged, high-water %d\n", st.Journal.Records, st.Journal.Unacked, st.Journal.HighWater)
		return 0
	}
}
