package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/scheduler"
)

func planCmd(fs *pflag.FlagSet) runFunc {
	file := fs.String("schedule", "", "schedule file (YAML or JSON)")
	from := fs.String("from", "", "start of the plan, RFC 3339 (default: now)")
	until := fs.String("until", "", "end of the plan, RFC 3339 (default: 24 hours after --from)")
	format := fs.String("format", "json", "json (one segment per line) or table")
	return func(ctx context.Context, pos []string, log *slog.Logger) int {
		if *file == "" {
			fmt.Fprintln(os.Stderr, "loa-agent plan: --schedule FILE is required")
			return 2
		}
		if *format != "json" && *format != "table" {
			fmt.Fprintf(os.Stderr, "loa-agent plan: --format %q: use json or table\n", *format)
			return 2
		}
		start := time.Now()
		if *from != "" {
			t, err := time.Parse(time.RFC3339, *from)
			if err != nil {
				fmt.Fprintf(os.Stderr, "loa-agent plan: --from %q: write an RFC 3339 time such as 2026-11-30T06:00:00+07:00\n", *from)
				return 2
			}
			start = t
		}
		end := start.Add(24 * time.Hour)
		if *until != "" {
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				fmt.Fprintf(os.Stderr, "loa-agent plan: --until %q: write an RFC 3339 time such as 2026-12-01T06:00:00+07:00\n", *until)
				return 2
			}
			end = t
		}
		doc, err := loadSchedule(*file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		tl, err := scheduler.Compile(doc, start, end, agent.FileLengths(filepath.Dir(*file), 48000, log))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", *file, err)
			return 1
		}
		if *format == "table" {
			err = tl.WriteTable(os.Stdout)
		} else {
			err = tl.WriteJSONLines(os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent plan:", err)
			return 1
		}
		return 0
	}
}

func validateCmd(fs *pflag.FlagSet) runFunc {
	file := fs.String("schedule", "", "schedule file (YAML or JSON)")
	return func(ctx context.Context, pos []string, log *slog.Logger) int {
		if *file == "" {
			fmt.Fprintln(os.Stderr, "loa-agent validate: --schedule FILE is required")
			return 2
		}
		doc, err := loadSchedule(*file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s: schedule %q revision %d is valid: %d programs, time zone %s\n",
			*file, doc.ID, doc.Revision, len(doc.Programs), doc.Timezone)
		return 0
	}
}

func loadSchedule(path string) (*scheduler.Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read schedule: %v", err)
	}
	return scheduler.Parse(path, data)
}
