package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/clicmd"
)

// reportCommands are loa report plan|plays|devices: the report laid out by the hub, printed
// as a table or written as the hub rendered it (CSV, XLSX, PDF).
func (t *tree) reportCommands(root *cobra.Command) {
	report := &cobra.Command{Use: "report",
		Short: "the reports: the plan, the plays, the devices", Annotations: map[string]string{"group": "yes"},
		// A kind that is not one is said so, whatever flags follow it.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return clicmd.Usagef("report needs a kind: plan, plays or devices")
			}
			return clicmd.Usagef("no report %q: the reports are plan, plays and devices", args[0])
		}}
	root.AddCommand(report)
	common := "[--area A] [--year YYYY | --from T --to T] [--format table|csv|xlsx|pdf|json] [--out FILE]"
	t.add(report, "plan "+common+" [--depth N] [--home vi,vie] [--digital digital]", "what was planned, by area, language and theme", func(c *command) action { return c.report("plan") })
	t.add(report, "plays "+common+" [--device D] [--content REF] [--program P]", "what was played, by device, content and programme", func(c *command) action { return c.report("plays") })
	t.add(report, "devices "+common, "the devices, their uptime and faults", func(c *command) action { return c.report("devices") })
	t.add(report, "settings [--home vie,… --digital digital,…]",
		"what the plan counts towards its target; with flags, change it (admins of a top area; codes or names from the hub's lists)",
		func(c *command) action { return c.reportSettings() })
}

// report is `loa report KIND`.
func (c *command) report(kind string) action {
	q := url.Values{}
	flags := []string{"area", "year", "from", "to"}
	switch kind {
	case "plan":
		flags = append(flags, "depth", "home", "digital")
	case "plays":
		flags = append(flags, "device", "content", "program")
	}
	vals := map[string]*string{}
	for _, f := range flags {
		vals[f] = c.fs.String(f, "", f)
	}
	format := c.fs.String("format", "table", "table, csv, xlsx, pdf or json")
	out := c.fs.String("out", "", "file to write (default: the hub's name for xlsx and pdf, stdout for the others)")
	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			return clicmd.Usagef("report %s takes flags only, not %q", kind, strings.Join(pos, " "))
		}
		switch *format {
		case "table", "csv", "xlsx", "pdf", "json":
		default:
			return clicmd.Usagef("--format %q: use table, csv, xlsx, pdf or json", *format)
		}
		for k, v := range vals {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		w := c.env.Stdout
		if *out != "" && *out != "-" {
			f, err := os.Create(*out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			defer f.Close()
			w = f
		}
		switch *format {
		case "table", "json":
			doc, err := cl.Report(ctx, kind, q)
			if err != nil {
				return err
			}
			if *format == "json" {
				return printJSON(w, doc)
			}
			return ReportTable(w, doc)
		case "csv":
			_, err := cl.ReportFile(ctx, kind, *format, q, w)
			return err
		}
		// XLSX and PDF are files: written where asked, else under the hub's name here.
		if *out == "" {
			tmp, err := os.CreateTemp(".", ".loa-report-*")
			if err != nil {
				return fmt.Errorf("cannot write the report here: %w (give --out FILE)", err)
			}
			name, err := cl.ReportFile(ctx, kind, *format, q, tmp)
			tmp.Close()
			if err != nil {
				os.Remove(tmp.Name())
				return err
			}
			if err := os.Rename(tmp.Name(), name); err != nil {
				os.Remove(tmp.Name())
				return err
			}
			abs, _ := filepath.Abs(name)
			fmt.Fprintf(c.env.Stdout, "wrote %s\n", abs)
			return nil
		}
		_, err = cl.ReportFile(ctx, kind, *format, q, w)
		return err
	}
}

// ReportTable prints a report for a terminal: heading, summary lines, then each table with
// its numbers right-aligned, written the Vietnamese way (1.234,5).
func ReportTable(w io.Writer, d api.ReportDoc) error {
	fmt.Fprintf(w, "%s\n%s\n%s\n\n", d.Title, d.Unit, d.Period)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range d.Summary {
		fmt.Fprintf(tw, "%s:\t%s\n", l.Label, l.Value)
	}
	tw.Flush()
	for _, t := range d.Tables {
		fmt.Fprintf(w, "\n%s\n", t.Title)
		if len(t.Rows) == 0 {
			fmt.Fprintln(w, "  (không có)")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(t.Headers, "\t")+"\t")
		for _, r := range t.Rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = c.String()
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
		tw.Flush()
		if t.Note != "" {
			fmt.Fprintln(w, t.Note)
		}
	}
	return nil
}

// reportSettings is `loa report settings`: prints the report settings, or changes the
// lists given (a list not given is kept).
func (c *command) reportSettings() action {
	home := c.fs.String("home", "", "language codes of Vietnamese, comma-separated")
	digital := c.fs.String("digital", "", "format codes of digital products, comma-separated")
	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			return clicmd.Usagef("report settings takes flags only, not %q", strings.Join(pos, " "))
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		set, err := cl.ReportSettings(ctx)
		if err != nil {
			return err
		}
		if *home != "" || *digital != "" {
			if *home != "" {
				set.HomeLanguages = strings.Split(*home, ",")
			}
			if *digital != "" {
				set.DigitalFormats = strings.Split(*digital, ",")
			}
			if set, err = cl.SetReportSettings(ctx, set); err != nil {
				return err
			}
		}
		since := "never set: the defaults"
		if set.UpdatedAt != nil {
			since = set.UpdatedAt.Local().Format("02/01/2006 15:04")
		}
		fmt.Fprintf(c.env.Stdout, "home languages (not counted): %s\ndigital formats (counted):     %s\nset:                          %s\n",
			strings.Join(set.HomeLanguages, ", "), strings.Join(set.DigitalFormats, ", "), since)
		return nil
	}
}
