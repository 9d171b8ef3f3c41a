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

	"github.com/loa-project/loa/hub/api"
)

const reportUsage = `  loa report plan|plays|devices [--area A] [--year YYYY | --from T --to T]
                   [--format table|csv|xlsx|pdf|json] [--out FILE]
                   plan: [--depth N] [--home vi,vie] [--digital digital]
                   plays: [--device D] [--content REF] [--program P]
  loa report settings [--home vie,… --digital digital,…]
                   what the plan counts towards its target; with flags, change it (admins
                   of a top area; codes or names from the hub's lists)
`

// runReport is `loa report KIND`: the report laid out by the hub, printed as a table or
// written as the hub rendered it (CSV, XLSX, PDF).
func runReport(ctx context.Context, args []string, env Env, hubURL, token string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError{"report needs a kind: plan, plays or devices"}
	}
	kind, args := args[0], args[1:]
	if kind == "settings" {
		return runReportSettings(ctx, args, env, hubURL, token)
	}
	if kind != "plan" && kind != "plays" && kind != "devices" {
		return usageError{fmt.Sprintf("no report %q: the reports are plan, plays and devices", kind)}
	}
	c := newCommand("report "+kind, env)
	*c.hub, *c.token = hubURL, token
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
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("report %s takes flags only, not %q", kind, strings.Join(pos, " "))}
	}
	switch *format {
	case "table", "csv", "xlsx", "pdf", "json":
	default:
		return usageError{fmt.Sprintf("--format %q: use table, csv, xlsx, pdf or json", *format)}
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
	w := env.Stdout
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
		fmt.Fprintf(env.Stdout, "wrote %s\n", abs)
		return nil
	}
	_, err = cl.ReportFile(ctx, kind, *format, q, w)
	return err
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

// runReportSettings is `loa report settings`: prints the report settings, or changes the
// lists given (a list not given is kept).
func runReportSettings(ctx context.Context, args []string, env Env, hubURL, token string) error {
	c := newCommand("report settings", env)
	*c.hub, *c.token = hubURL, token
	home := c.fs.String("home", "", "language codes of Vietnamese, comma-separated")
	digital := c.fs.String("digital", "", "format codes of digital products, comma-separated")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("report settings takes flags only, not %q", strings.Join(pos, " "))}
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
	fmt.Fprintf(env.Stdout, "home languages (not counted): %s\ndigital formats (counted):     %s\nset:                          %s\n",
		strings.Join(set.HomeLanguages, ", "), strings.Join(set.DigitalFormats, ", "), since)
	return nil
}
