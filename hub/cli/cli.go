// Package cli is the loa staff command line: a client of the hub's HTTP API that prints human
// tables by default (JSON or CSV on request).
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
)

// Usage is the CLI's help text.
const Usage = `usage: loa [--hub URL] [--token TOKEN] COMMAND ...

  loa whoami
  loa area add ID [--name NAME]              add an area under an existing one (e.g. qn/tam-ky/tam-thanh)
  loa area list [--area AREA]
  loa device enroll ID --area AREA [--name NAME] [--kind cluster|board] [--outputs speakers,board]
  loa device list [--area AREA]
  loa device show ID
  loa device revoke ID
  loa device rekey ID                  a new secret for the device (the old one stops working)
  loa content add FILE --title T [--language L] [--theme T] [--format F] [--unit U]
  loa content list
  loa schedule push FILE --to AREA|DEVICE
  loa status [--area AREA]
  loa confirmations [--area A] [--device D] [--since T] [--until T] [--result R] [--limit N] [--json|--csv]
` + broadcastUsage + commandUsage + screenshotUsage + `
The hub URL and token come from --hub/--token, else LOA_HUB/LOA_TOKEN, else
~/.config/loa/config.yaml (hub: URL, token: TOKEN). Times: RFC 3339, a date, or a duration back (24h).
`

// Env is what the CLI reads from its surroundings.
type Env struct {
	Getenv func(string) string
	Home   string // for ~/.config/loa/config.yaml; "" skips the file
	Stdout io.Writer
	Stderr io.Writer
}

// FileConfig is ~/.config/loa/config.yaml.
type FileConfig struct {
	Hub   string `yaml:"hub"`
	Token string `yaml:"token"`
}

// ParseFileConfig reads the CLI config file; unknown fields are refused.
func ParseFileConfig(b []byte) (FileConfig, error) {
	var c FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return FileConfig{}, err
	}
	return c, nil
}

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if err := run(ctx, args, env); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "loa: %v\n\n%s", err, Usage)
			return 2
		}
		fmt.Fprintln(env.Stderr, "loa:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	fs    *flag.FlagSet
	hub   *string
	token *string
	env   Env
}

func newCommand(name string, env Env) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{fs: fs, env: env, hub: fs.String("hub", "", "hub URL"), token: fs.String("token", "", "staff token")}
}

// parse parses flags anywhere among the positional arguments.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := c.fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", c.fs.Name(), err)}
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

func (c *command) client() (*client.Client, error) {
	var fc FileConfig
	if c.env.Home != "" {
		path := filepath.Join(c.env.Home, ".config", "loa", "config.yaml")
		if b, err := os.ReadFile(path); err == nil {
			if fc, err = ParseFileConfig(b); err != nil {
				return nil, fmt.Errorf("%s: %v (write hub: URL and token: TOKEN)", path, err)
			}
		}
	}
	pick := func(flagV, envName, fileV string) string {
		if flagV != "" {
			return flagV
		}
		if v := c.env.Getenv(envName); v != "" {
			return v
		}
		return fileV
	}
	cl := &client.Client{BaseURL: pick(*c.hub, "LOA_HUB", fc.Hub), Token: pick(*c.token, "LOA_TOKEN", fc.Token)}
	if cl.BaseURL == "" {
		return nil, errors.New("no hub URL: pass --hub URL, set LOA_HUB, or write hub: URL in ~/.config/loa/config.yaml")
	}
	if cl.Token == "" {
		return nil, errors.New("no staff token: pass --token, set LOA_TOKEN, or write token: in ~/.config/loa/config.yaml (an administrator makes one with `loa-hub user add`)")
	}
	return cl, nil
}

func wantArgs(name string, pos []string, n int, what string) error {
	if len(pos) != n {
		return usageError{fmt.Sprintf("%s takes %s", name, what)}
	}
	return nil
}

func run(ctx context.Context, args []string, env Env) error {
	// Global flags may come before the command.
	pre := newCommand("loa", env)
	pre.fs.Usage = func() {}
	if err := pre.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, Usage)
			return nil
		}
		return usageError{err.Error()}
	}
	args = pre.fs.Args()
	if len(args) == 0 {
		return usageError{"no command"}
	}
	cmdName := args[0]
	args = args[1:]
	if isBroadcast(cmdName) {
		return runBroadcast(ctx, cmdName, args, env, *pre.hub, *pre.token)
	}
	if cmdName == "screenshot" {
		return runScreenshot(ctx, args, env, *pre.hub, *pre.token)
	}
	if isDeviceCommand(cmdName) {
		return runDeviceCommand(ctx, cmdName, args, env, *pre.hub, *pre.token)
	}
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && (cmdName == "area" || cmdName == "device" || cmdName == "content" || cmdName == "schedule") {
		sub, args = args[0], args[1:]
	}
	c := newCommand(strings.TrimSpace(cmdName+" "+sub), env)
	*c.hub, *c.token = *pre.hub, *pre.token
	out := env.Stdout
	switch cmdName + " " + sub {
	case "help ":
		fmt.Fprint(out, Usage)
		return nil
	case "whoami ":
		if _, err := c.parse(args); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		w, err := cl.Whoami(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "user %v, scope %v, hub signing key %v\n", w["user"], w["scope"], w["key_id"])
		return nil
	case "area add":
		name := c.fs.String("name", "", "area name")
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs("area add", pos, 1, "one area ID (its path from the root, e.g. qn/tam-ky/tam-thanh)"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		a, err := cl.AddArea(ctx, pos[0], *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "area %s (%s) added under %s\n", a.ID, a.Name, a.Parent)
		return nil
	case "area list":
		area := c.fs.String("area", "", "subtree to list (default: your scope)")
		if _, err := c.parse(args); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		as, err := cl.ListAreas(ctx, *area)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AREA\tNAME")
		for _, a := range as {
			fmt.Fprintf(tw, "%s\t%s\n", a.ID, a.Name)
		}
		return tw.Flush()
	case "device enroll", "device enrol":
		area := c.fs.String("area", "", "area the device is in")
		name := c.fs.String("name", "", "a name for people")
		kind := c.fs.String("kind", "", "cluster (loudspeakers) or board")
		outputs := c.fs.String("outputs", "", "comma-separated outputs, e.g. speakers,board")
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs("device enroll", pos, 1, "one device ID (e.g. tam-thanh/cl-07)"); err != nil {
			return err
		}
		if *area == "" {
			return usageError{"device enroll needs --area AREA"}
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		req := api.EnrolRequest{ID: pos[0], Area: *area, Name: *name, Kind: *kind}
		if *outputs != "" {
			req.Outputs = strings.Split(*outputs, ",")
		}
		r, err := cl.Enrol(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "device %s enrolled in %s.\nIts secret, shown only now (the hub keeps only a hash); put it in the device's agent config:\n\n", r.ID, r.Area)
		fmt.Fprintf(out, "  device_id: %s\n  secret: %s\n  hub: %s\n  trusted key id: %s\n", r.ID, r.Secret, r.Hub, r.KeyID)
		return nil
	case "device list", "status ":
		area := c.fs.String("area", "", "subtree (default: your scope)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		if _, err := c.parse(args); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		ds, err := cl.Status(ctx, *area)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(out, ds)
		}
		return StatusTable(out, ds, time.Now())
	case "device rekey":
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs("device rekey", pos, 1, "one device ID"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		r, err := cl.RekeyDevice(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "device %s has a new secret; the old one no longer connects. Shown only now; put it in the device's agent config:\n\n", r.ID)
		fmt.Fprintf(out, "  device_id: %s\n  secret: %s\n  hub: %s\n  trusted key id: %s\n", r.ID, r.Secret, r.Hub, r.KeyID)
		return nil
	case "device show", "device revoke":
		asJSON := c.fs.Bool("json", false, "print JSON")
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs(c.fs.Name(), pos, 1, "one device ID"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		var d api.DeviceJSON
		if sub == "show" {
			d, err = cl.ShowDevice(ctx, pos[0])
		} else {
			d, err = cl.RevokeDevice(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(out, d)
		}
		if sub == "revoke" {
			fmt.Fprintf(out, "device %s revoked: its secret no longer connects; enrol it again under a new id to bring it back\n", d.ID)
			return nil
		}
		return DeviceDetail(out, d)
	case "content add":
		var m client.ContentMeta
		c.fs.StringVar(&m.Title, "title", "", "title")
		c.fs.StringVar(&m.Language, "language", "", "language (e.g. vi, ctu)")
		c.fs.StringVar(&m.Theme, "theme", "", "theme")
		c.fs.StringVar(&m.Format, "format", "", "format (radio-report, drama…)")
		c.fs.StringVar(&m.Unit, "unit", "", "producing unit")
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs("content add", pos, 1, "one FILE"); err != nil {
			return err
		}
		if m.Title == "" {
			return usageError{"content add needs --title"}
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		r, err := cl.AddContent(ctx, pos[0], m)
		if err != nil {
			return err
		}
		state := "added"
		if !r.Created {
			state = "already in the library (same bytes)"
		}
		fmt.Fprintf(out, "%s %s: %q, %.1f s, %d bytes\n", r.Ref, state, r.Title, r.DurationS, r.Size)
		return nil
	case "content list":
		if _, err := c.parse(args); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		cs, err := cl.ListContent(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REF\tTITLE\tDURATION\tLANGUAGE\tTHEME\tFORMAT\tUNIT")
		for _, x := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Ref, x.Title, time.Duration(x.DurationS*float64(time.Second)).Round(time.Second), x.Language, x.Theme, x.Format, x.Unit)
		}
		return tw.Flush()
	case "schedule push":
		to := c.fs.String("to", "", "area or device")
		pos, err := c.parse(args)
		if err != nil {
			return err
		}
		if err := wantArgs("schedule push", pos, 1, "one schedule FILE"); err != nil {
			return err
		}
		if *to == "" {
			return usageError{"schedule push needs --to AREA or --to DEVICE"}
		}
		doc, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		r, err := cl.PushSchedule(ctx, *to, filepath.Base(pos[0]), doc)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s revision %d stored; %d device(s) got a new effective schedule, %d of them online and sent it now\n", r.Target, r.Revision, r.Devices, r.Sent)
		for _, f := range r.Failures {
			fmt.Fprintln(out, "  failed:", f)
		}
		if len(r.Failures) > 0 {
			return fmt.Errorf("%d device(s) could not be composed; see above", len(r.Failures))
		}
		return nil
	case "confirmations ":
		var f client.ConfirmationFilter
		c.fs.StringVar(&f.Area, "area", "", "area where played (and below)")
		c.fs.StringVar(&f.Device, "device", "", "device")
		c.fs.StringVar(&f.Since, "since", "", "at or after")
		c.fs.StringVar(&f.Until, "until", "", "before")
		c.fs.StringVar(&f.Result, "result", "", "completed, missed…")
		c.fs.IntVar(&f.Limit, "limit", 0, "at most this many")
		asJSON := c.fs.Bool("json", false, "print JSON")
		asCSV := c.fs.Bool("csv", false, "print CSV")
		if _, err := c.parse(args); err != nil {
			return err
		}
		if *asJSON && *asCSV {
			return usageError{"choose one of --json and --csv"}
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		if *asCSV {
			return cl.ConfirmationsCSV(ctx, f, out)
		}
		cs, err := cl.Confirmations(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(out, cs)
		}
		return ConfirmationsTable(out, cs)
	}
	return usageError{fmt.Sprintf("unknown command %q", strings.TrimSpace(cmdName+" "+sub))}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Local().Format("2006-01-02 15:04")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rev(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// StatusTable prints devices as the status table.
func StatusTable(w io.Writer, ds []api.DeviceJSON, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tAREA\tONLINE\tLAST SEEN\tREVISION\tDELIVERY\tACTIVE\tNOW PLAYING")
	for _, d := range ds {
		online := "no"
		if d.Online {
			online = "yes"
		}
		if d.Revoked {
			online = "revoked"
		}
		del := dash(d.Delivery)
		if d.RefusedReason != "" {
			del += " (" + d.RefusedReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Area, online, ago(d.LastSeen, now), rev(d.Revision), del, rev(d.ActiveRevision), dash(d.NowPlaying))
	}
	return tw.Flush()
}

// DeviceDetail prints one device.
func DeviceDetail(w io.Writer, d api.DeviceJSON) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("device", d.ID)
	row("name", d.Name)
	row("area", d.Area)
	row("kind", d.Kind)
	row("online", d.Online)
	row("revoked", d.Revoked)
	row("last seen", ago(d.LastSeen, time.Now()))
	row("revision", rev(d.Revision)+" ("+dash(d.Delivery)+")")
	if d.RefusedReason != "" {
		row("refused", d.RefusedReason)
	}
	row("active revision", rev(d.ActiveRevision))
	row("now playing", dash(d.NowPlaying))
	row("confirmations acked", d.AckedSeq)
	row("software", dash(d.Software))
	row("link", dash(d.Link))
	if d.Volume != nil {
		row("volume", fmt.Sprintf("%.2f", *d.Volume))
	}
	if d.TemperatureC != nil {
		row("temperature", fmt.Sprintf("%.1f °C", *d.TemperatureC))
	}
	if d.DiskFreeBytes > 0 {
		row("disk free", fmt.Sprintf("%.0f MB", float64(d.DiskFreeBytes)/1e6))
	}
	if d.Online {
		row("clock offset", fmt.Sprintf("%+.3f s (device minus hub)", d.ClockOffsetS))
	}
	return tw.Flush()
}

// ConfirmationsTable prints confirmations for people.
func ConfirmationsTable(w io.Writer, cs []api.ConfirmationJSON) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tDEVICE\tSEQ\tPROGRAM\tITEM\tRESULT\tPLAYED")
	for _, c := range cs {
		start := "-"
		if c.Start != nil {
			start = c.Start.Local().Format("2006-01-02 15:04:05")
		} else if c.Scheduled != nil {
			start = c.Scheduled.Local().Format("2006-01-02 15:04:05") + " (sched.)"
		}
		item := c.Item
		if len(item) > 19 && strings.HasPrefix(item, "sha256:") {
			item = item[:19] + "…"
		}
		res := c.Result
		if c.Error != "" {
			res += ": " + c.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.1fs\n", start, c.Device, c.Seq, dash(c.Program), dash(item), res, c.PlayedS)
	}
	fmt.Fprintf(tw, "%d confirmation(s)\n", len(cs))
	return tw.Flush()
}
