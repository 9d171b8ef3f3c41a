// Package cli is the loa staff command line: a client of the hub's HTTP API that prints human
// tables by default (JSON or CSV on request). Its commands are a spf13/cobra tree (NewRoot),
// so each has its own help, man page and shell completion.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/internal/clicmd"
)

// intro is what `loa --help` says before the list of commands.
const intro = `loa is the staff command line of a Loa hub: it prints human tables by default (JSON or CSV on
request).

The hub URL and token come from --hub/--token, else LOA_HUB/LOA_TOKEN, else
~/.config/loa/config.yaml (hub: URL, token: TOKEN, timezone: ZONE). Times: a date (2026-12-03,
03/12/2026), a date and time (2026-12-03 05:30) or a time today (05:30) in the hub's zone,
RFC 3339, or a duration from now: -24h before, 6h after.

Shell completion: loa completion bash|zsh|fish (the Debian package installs it).`

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
	// Timezone (IANA name) is the zone the user writes and reads times in; default the hub's.
	Timezone string `yaml:"timezone"`
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

// Run runs one command and returns the process exit code: 0, 1 for a failure, 2 for wrong
// usage (with that command's usage).
func Run(ctx context.Context, args []string, env Env) int {
	return clicmd.Execute(ctx, NewRoot(env), args, env.Stdout, env.Stderr)
}

// NewRoot is the loa command tree; each command's Use line is its synopsis in the help, the
// man pages and the list `loa --help` prints.
func NewRoot(env Env) *cobra.Command {
	t := &tree{env: env}
	root := &cobra.Command{Use: "loa", Short: "the staff command line of a Loa hub", Long: intro}
	root.PersistentFlags().StringVar(&t.hub, "hub", "", "hub URL")
	root.PersistentFlags().StringVar(&t.token, "token", "", "staff token")
	t.staffCommands(root)
	t.broadcastCommands(root)
	t.reportCommands(root)
	t.screenshotCommand(root)
	t.deviceCommands(root)
	t.approvalCommands(root)
	t.upgradeCommands(root)
	clicmd.Prepare(root)
	rootUsage(root)
	return root
}

// rootUsage makes `loa --help` list every command with its arguments, as the docs do, rather
// than cobra's one line per top-level command.
func rootUsage(root *cobra.Command) {
	def := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		if c != root {
			return def(c)
		}
		w := c.OutOrStderr()
		fmt.Fprintf(w, "Usage:\n  loa [--hub URL] [--token TOKEN] COMMAND ...\n\nCommands:\n")
		var walk func(c *cobra.Command)
		walk = func(c *cobra.Command) {
			if c.Runnable() && c != root && c.IsAvailableCommand() && c.Name() != "completion" && c.Parent().Name() != "completion" && !(c.HasSubCommands() && c.Annotations["group"] == "yes") {
				fmt.Fprintf(w, "  %s\n", c.UseLine())
			}
			for _, s := range c.Commands() {
				walk(s)
			}
		}
		walk(root)
		fmt.Fprintf(w, "  loa completion bash|zsh|fish\n\nGlobal flags:\n%s\nRun `loa help COMMAND` or `loa COMMAND --help` for a command's flags.\n",
			root.PersistentFlags().FlagUsages())
		return nil
	})
}

// tree builds the commands; hub and token are the global flags.
type tree struct {
	env        Env
	hub, token string
}

// command is what a command's flags and action share: its flag set, the global flags and
// the surroundings.
type command struct {
	fs  *pflag.FlagSet
	t   *tree
	env Env
}

// action runs a command with its positional arguments, its flags already parsed.
type action func(ctx context.Context, pos []string) error

// add puts the command use (its synopsis: name, arguments, flags) under parent: define adds
// its flags to c.fs and returns what it does.
func (t *tree) add(parent *cobra.Command, use, short string, define func(c *command) action) *cobra.Command {
	cc := &cobra.Command{Use: use, Short: short}
	act := define(&command{fs: cc.Flags(), t: t, env: t.env})
	cc.RunE = func(cmd *cobra.Command, args []string) error { return act(cmd.Context(), args) }
	parent.AddCommand(cc)
	return cc
}

// group is a command that only holds others (loa area, loa device): run alone it is a
// usage error naming its subcommands.
func group(parent *cobra.Command, name, short string) *cobra.Command {
	g := &cobra.Command{Use: name, Short: short, Annotations: map[string]string{"group": "yes"}}
	parent.AddCommand(g)
	return g
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
	cl := &client.Client{BaseURL: pick(c.t.hub, "LOA_HUB", fc.Hub), Token: pick(c.t.token, "LOA_TOKEN", fc.Token),
		Zone: pick("", "LOA_TIMEZONE", fc.Timezone)}
	if cl.Zone != "" {
		if _, err := api.LoadZone(cl.Zone); err != nil {
			return nil, fmt.Errorf("LOA_TIMEZONE or timezone: in ~/.config/loa/config.yaml: %v", err)
		}
	}
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
		return clicmd.Usagef("%s takes %s", name, what)
	}
	return nil
}

// staffCommands are whoami and the area, device, content, term, schedule, status and
// confirmations commands.
func (t *tree) staffCommands(root *cobra.Command) {
	t.add(root, "whoami", "who the token is, its scope, and the hub's key for agents", func(c *command) action {
		return func(ctx context.Context, pos []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			w, err := cl.Whoami(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "user %v, scope %v\nhub URL for devices: %v\nhub signing key (agents' hub.trusted_keys):\n  %v: %q\n",
				w["user"], w["scope"], w["public_url"], w["key_id"], w["public_key"])
			return nil
		}
	})

	area := group(root, "area", "areas: the tree of province, district, commune")
	t.add(area, "add ID [--name NAME]", "add an area under an existing one (e.g. qn/tam-ky/tam-thanh)", func(c *command) action {
		name := c.fs.String("name", "", "area name")
		return func(ctx context.Context, pos []string) error {
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
			fmt.Fprintf(c.env.Stdout, "area %s (%s) added under %s\n", a.ID, a.Name, a.Parent)
			return nil
		}
	})
	t.add(area, "list [--area AREA]", "the areas in your scope", func(c *command) action {
		area := c.fs.String("area", "", "subtree to list (default: your scope)")
		return func(ctx context.Context, pos []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			as, err := cl.ListAreas(ctx, *area)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AREA\tNAME")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\n", a.ID, a.Name)
			}
			return tw.Flush()
		}
	})

	device := group(root, "device", "devices: loudspeaker clusters and boards")
	enroll := t.add(device, "enroll ID --area AREA [--name NAME] [--kind cluster|board] [--outputs speakers,board]",
		"enrol a device; prints the lines for its agent.yaml (its secret, shown only now)", func(c *command) action {
			area := c.fs.String("area", "", "area the device is in")
			name := c.fs.String("name", "", "a name for people")
			kind := c.fs.String("kind", "", "cluster (loudspeakers) or board")
			outputs := c.fs.String("outputs", "", "comma-separated outputs, e.g. speakers,board")
			return func(ctx context.Context, pos []string) error {
				if err := wantArgs("device enroll", pos, 1, "one device ID (e.g. tam-thanh/cl-07)"); err != nil {
					return err
				}
				if *area == "" {
					return clicmd.Usagef("device enroll needs --area AREA")
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
				r.WriteAgentConfig(c.env.Stdout)
				if r.Warning != "" {
					fmt.Fprintln(c.env.Stderr, "loa: warning:", r.Warning)
				}
				return nil
			}
		})
	enroll.Aliases = []string{"enrol"}
	status := func(name string) func(c *command) action {
		return func(c *command) action {
			area := c.fs.String("area", "", "subtree (default: your scope)")
			asJSON := c.fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, pos []string) error {
				if err := wantArgs(name, pos, 0, "flags only"); err != nil {
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
					return printJSON(c.env.Stdout, ds)
				}
				return StatusTable(c.env.Stdout, ds, time.Now().In(cl.Location()))
			}
		}
	}
	t.add(device, "list [--area AREA] [--json]", "the devices in your scope and their state (as loa status)", status("device list"))
	t.add(device, "show ID [--json]", "one device in detail: its state, parts, clock", func(c *command) action {
		return c.showOrRevoke("show")
	})
	t.add(device, "revoke ID", "its secret stops working; enrol it again under a new id to bring it back", func(c *command) action {
		return c.showOrRevoke("revoke")
	})
	t.add(device, "rekey ID", "a new secret for the device (the old one stops working)", func(c *command) action {
		return func(ctx context.Context, pos []string) error {
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
			out := c.env.Stdout
			fmt.Fprintf(out, "device %s has a new secret; the old one no longer connects. Shown only now; put it in the device's agent config:\n\n", r.ID)
			fmt.Fprintf(out, "  device_id: %s\n  secret: %s\n  hub: %s\n  trusted key id: %s\n", r.ID, r.Secret, r.Hub, r.KeyID)
			return nil
		}
	})

	content := group(root, "content", "the content library: recordings, videos, pictures")
	t.add(content, "add FILE --title T [--language L] [--theme T] [--format F] [--unit U]", "upload a file to the library", func(c *command) action {
		var m client.ContentMeta
		c.fs.StringVar(&m.Title, "title", "", "title")
		c.fs.StringVar(&m.Language, "language", "", "language, by name or code (Cơ Tu, ktv)")
		c.fs.StringVar(&m.Theme, "theme", "", "theme, by name or code")
		c.fs.StringVar(&m.Format, "format", "", "format, by name or code")
		c.fs.StringVar(&m.Unit, "unit", "", "producing unit, by name or code")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("content add", pos, 1, "one FILE"); err != nil {
				return err
			}
			if m.Title == "" {
				return clicmd.Usagef("content add needs --title")
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
			fmt.Fprintf(c.env.Stdout, "%s %s: %q, %.1f s, %d bytes%s\n", r.Ref, state, r.Title, r.DurationS, r.Size, metaLine(r))
			if r.Note != "" {
				fmt.Fprintln(c.env.Stdout, "  note:", r.Note)
			}
			if r.State == "submitted" {
				fmt.Fprintf(c.env.Stdout, "  waiting for approval in %s: no schedule plays it until an approver approves it (`loa approve content %s`); who can: %s\n",
					r.Area, r.Ref, dash(strings.Join(r.Approvers, ", ")))
			}
			return nil
		}
	})
	t.add(content, "edit REF [--title T] [--language L] [--theme T] [--format F] [--unit U]", "change an item's title or metadata", func(c *command) action {
		vals := map[string]*string{}
		for _, k := range []string{"title", "language", "theme", "format", "unit"} {
			vals[k] = c.fs.String(k, "", k+" (\"\" clears it)")
		}
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("content edit", pos, 1, "one content reference (sha256:…, from `loa content list`)"); err != nil {
				return err
			}
			var e api.ContentEdit
			fields := map[string]**string{"title": &e.Title, "language": &e.Language, "theme": &e.Theme, "format": &e.Format, "unit": &e.Unit}
			c.fs.Visit(func(f *pflag.Flag) {
				if dst, ok := fields[f.Name]; ok {
					*dst = vals[f.Name]
				}
			})
			if e == (api.ContentEdit{}) {
				return clicmd.Usagef("content edit needs at least one of --title, --language, --theme, --format, --unit")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.EditContent(ctx, pos[0], e)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "%s now: %q%s\n", r.Ref, r.Title, metaLine(r))
			return nil
		}
	})
	t.add(content, "list [--language L] [--theme T] [--format F] [--unit U] [--title TEXT] [--by USER] [--since T] [--until T] [--state S] [--json|--csv]",
		"the library, newest first", func(c *command) action {
			var f client.ContentFilter
			c.fs.StringVar(&f.Language, "language", "", "language, by name or code")
			c.fs.StringVar(&f.Theme, "theme", "", "theme")
			c.fs.StringVar(&f.Format, "format", "", "format")
			c.fs.StringVar(&f.Unit, "unit", "", "producing unit")
			c.fs.StringVar(&f.Title, "title", "", "the title contains this")
			c.fs.StringVar(&f.By, "by", "", "uploaded by this user")
			c.fs.StringVar(&f.Since, "since", "", "uploaded at or after")
			c.fs.StringVar(&f.Until, "until", "", "uploaded before")
			c.fs.StringVar(&f.State, "state", "", "approval: submitted (waiting), approved or rejected")
			asJSON := c.fs.Bool("json", false, "print JSON")
			asCSV := c.fs.Bool("csv", false, "print CSV")
			return func(ctx context.Context, pos []string) error {
				if *asJSON && *asCSV {
					return clicmd.Usagef("choose one of --json and --csv")
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				cs, err := cl.ListContent(ctx, f)
				if err != nil {
					return err
				}
				switch {
				case *asJSON:
					return printJSON(c.env.Stdout, cs)
				case *asCSV:
					return api.WriteContentCSV(c.env.Stdout, cs)
				}
				return ContentTable(c.env.Stdout, cs, cl.Location())
			}
		})

	term := group(root, "term", "the lists of languages, themes, formats and units")
	termLists := []string{"language", "theme", "format", "unit"} // completed after term list and term add
	list := t.add(term, "list [language|theme|format|unit] [--json]", "the terms kept, of one list or all", func(c *command) action {
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 1 {
				return clicmd.Usagef("term list takes at most one of language, theme, format, unit")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ts, err := cl.ListTerms(ctx, strings.Join(pos, ""))
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, ts)
			}
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LIST\tCODE\tNAME")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Dimension, t.Code, t.Label)
			}
			if len(ts) == 0 {
				fmt.Fprintln(tw, "no lists kept yet: `loa term add language vie --label \"Tiếng Việt\"` starts one")
			}
			return tw.Flush()
		}
	})
	list.ValidArgs = termLists
	add := t.add(term, "add language|theme|format|unit CODE --label NAME", "add a term to a list", func(c *command) action {
		label := c.fs.String("label", "", "the name staff read, in Vietnamese (e.g. Cơ Tu)")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("term add", pos, 2, "a list (language, theme, format or unit) and a CODE, e.g. term add language ktv --label \"Cơ Tu\""); err != nil {
				return err
			}
			if *label == "" {
				return clicmd.Usagef("term add needs --label NAME (what staff read and may type)")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			t, err := cl.AddTerm(ctx, api.TermJSON{Dimension: pos[0], Code: pos[1], Label: *label})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "%s %s (%s) is in the list\n", t.Dimension, t.Code, t.Label)
			return nil
		}
	})
	add.ValidArgs = termLists

	t.scheduleCommands(group(root, "schedule", "schedules: push, list, show, plan"))
	t.add(root, "status [--area AREA] [--json]", "the devices in your scope and their state", status("status"))
	t.add(root, "confirmations [--area A] [--device D] [--since T] [--until T] [--result R] [--limit N] [--json|--csv]",
		"the devices' confirmations of what they played", func(c *command) action {
			var f client.ConfirmationFilter
			c.fs.StringVar(&f.Area, "area", "", "area where played (and below)")
			c.fs.StringVar(&f.Device, "device", "", "device")
			c.fs.StringVar(&f.Since, "since", "", "at or after")
			c.fs.StringVar(&f.Until, "until", "", "before")
			c.fs.StringVar(&f.Result, "result", "", "completed, missed…")
			c.fs.IntVar(&f.Limit, "limit", 0, "at most this many")
			asJSON := c.fs.Bool("json", false, "print JSON")
			asCSV := c.fs.Bool("csv", false, "print CSV")
			return func(ctx context.Context, pos []string) error {
				if *asJSON && *asCSV {
					return clicmd.Usagef("choose one of --json and --csv")
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				if *asCSV {
					return cl.ConfirmationsCSV(ctx, f, c.env.Stdout)
				}
				cs, err := cl.Confirmations(ctx, f)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.env.Stdout, cs)
				}
				return ConfirmationsTable(c.env.Stdout, cs, cl.Location())
			}
		})
}

// showOrRevoke is `loa device show|revoke ID`.
func (c *command) showOrRevoke(sub string) action {
	asJSON := c.fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, pos []string) error {
		if err := wantArgs("device "+sub, pos, 1, "one device ID"); err != nil {
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
			return printJSON(c.env.Stdout, d)
		}
		if sub == "revoke" {
			fmt.Fprintf(c.env.Stdout, "device %s revoked: its secret no longer connects; enrol it again under a new id to bring it back\n", d.ID)
			return nil
		}
		return DeviceDetail(c.env.Stdout, d, time.Now().In(cl.Location()))
	}
}

// scheduleFile reads the schedule FILE a command (push, submit) sends to --to, and the client.
func (c *command) scheduleFile(name string, pos []string, to string) ([]byte, *client.Client, error) {
	if err := wantArgs(name, pos, 1, "one schedule FILE"); err != nil {
		return nil, nil, err
	}
	if to == "" {
		return nil, nil, clicmd.Usagef("%s needs --to AREA or --to DEVICE", name)
	}
	doc, err := os.ReadFile(pos[0])
	if err != nil {
		return nil, nil, err
	}
	cl, err := c.client()
	return doc, cl, err
}

// scheduleCommands are loa schedule push, list, show and plan.
func (t *tree) scheduleCommands(schedule *cobra.Command) {
	t.add(schedule, "push FILE --to AREA|DEVICE [--dry-run]", "store a schedule for an area or device and send it", func(c *command) action {
		to := c.fs.String("to", "", "area or device")
		dry := c.fs.Bool("dry-run", false, "check and say what would change; store and send nothing")
		return func(ctx context.Context, pos []string) error {
			doc, cl, err := c.scheduleFile("schedule push", pos, *to)
			if err != nil {
				return err
			}
			out := c.env.Stdout
			if *dry {
				r, err := cl.DryRunSchedule(ctx, *to, filepath.Base(pos[0]), doc)
				if err != nil {
					return err
				}
				if r.Unchanged {
					fmt.Fprintf(out, "dry run: %s is valid and the same as %s revision %d: a push would change nothing\n", pos[0], r.Target, r.Revision)
					return nil
				}
				if r.WouldSubmit {
					fmt.Fprintf(out, "dry run: %s is valid; %s requires approval: a push would submit it for approval (approvers: %s), changing for %d device(s):\n",
						pos[0], r.Target, dash(strings.Join(r.Approvers, ", ")), r.Devices)
				} else {
					fmt.Fprintf(out, "dry run: %s is valid; a push would store %s revision %d for %d device(s):\n", pos[0], r.Target, r.Revision, r.Devices)
				}
				for _, ch := range r.Changes {
					fmt.Fprintln(out, "  "+ch)
				}
				for _, u := range r.Unapproved {
					fmt.Fprintln(out, "  not approved yet (no push goes on air with it): "+u)
				}
				fmt.Fprintln(out, "nothing was stored or sent")
				return nil
			}
			r, err := cl.PushSchedule(ctx, *to, filepath.Base(pos[0]), doc)
			if err != nil {
				return err
			}
			if r.Unchanged {
				fmt.Fprintf(out, "%s revision %d already is this schedule: no new revision, nothing sent\n", r.Target, r.Revision)
				return nil
			}
			if r.Submission != nil { // the area requires approval
				printSubmitted(out, r)
				return nil
			}
			fmt.Fprintf(out, "%s revision %d stored; %d device(s) got a new effective schedule, %d of them online and sent it now\n", r.Target, r.Revision, r.Devices, r.Sent)
			for _, f := range r.Failures {
				fmt.Fprintln(out, "  failed:", f)
			}
			if len(r.Failures) > 0 {
				return fmt.Errorf("%d device(s) could not be composed; see above", len(r.Failures))
			}
			return nil
		}
	})
	t.add(schedule, "list [--to AREA|DEVICE] [--json]", "stored schedule revisions", func(c *command) action {
		to := c.fs.String("to", "", "area or device: its revisions (default: the newest of each in your scope)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			ss, err := cl.ListSchedules(ctx, *to)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, ss)
			}
			loc := cl.Location()
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tREVISION\tSCHEDULE\tPROGRAMMES\tBY\tAT\tAPPROVED BY")
			for _, x := range ss {
				approved := "-"
				if x.ApprovedAt != nil {
					approved = x.ApprovedBy + " " + x.ApprovedAt.In(loc).Format("02/01/2006 15:04")
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", x.Target, x.Revision, x.ScheduleID, x.Programs, x.Author, x.CreatedAt.In(loc).Format("02/01/2006 15:04"), approved)
			}
			if len(ss) == 0 {
				fmt.Fprintln(tw, "no schedules stored (`loa schedule push FILE --to AREA` stores one)")
			}
			return tw.Flush()
		}
	})
	t.add(schedule, "show AREA|DEVICE [--revision N] [--json]", "a stored schedule document", func(c *command) action {
		revision := c.fs.Int64("revision", 0, "a stored revision (default: the newest)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("schedule show", pos, 1, "one AREA or DEVICE"); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			x, err := cl.ShowSchedule(ctx, pos[0], *revision)
			if err != nil {
				return err
			}
			out := c.env.Stdout
			if *asJSON {
				return printJSON(out, x)
			}
			fmt.Fprintf(out, "# %s revision %d (schedule %s), by %s at %s\n", x.Target, x.Revision, x.ScheduleID, x.Author,
				x.CreatedAt.In(cl.Location()).Format("02/01/2006 15:04"))
			fmt.Fprint(out, x.Document)
			if !strings.HasSuffix(x.Document, "\n") {
				fmt.Fprintln(out)
			}
			return nil
		}
	})
	t.add(schedule, "plan --to AREA|DEVICE [--week] [--from T] [--until T] [--json]", "what plays when, as the devices will play it", func(c *command) action {
		to := c.fs.String("to", "", "area or device")
		week := c.fs.Bool("week", false, "the week from today's midnight")
		from := c.fs.String("from", "", "start (default: now; a date means its midnight)")
		until := c.fs.String("until", "", "end (default: a day after the start)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if *to == "" {
				return clicmd.Usagef("schedule plan needs --to AREA or --to DEVICE")
			}
			days := 0
			if *week {
				days = 7
				if *from == "" {
					*from = "00:00" // today's midnight in the hub's zone
				}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			pl, err := cl.Plan(ctx, *to, *from, *until, days)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, pl)
			}
			return PlanTable(c.env.Stdout, pl, cl.Location())
		}
	})
}

// metaLine is an item's metadata for people: labels, codes where no label is kept.
func metaLine(r api.ContentJSON) string {
	var parts []string
	for _, f := range [][3]string{{"language", r.LanguageLabel, r.Language}, {"theme", r.ThemeLabel, r.Theme},
		{"format", r.FormatLabel, r.Format}, {"unit", r.UnitLabel, r.Unit}} {
		if v := orCode(f[1], f[2]); v != "" {
			parts = append(parts, f[0]+" "+v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

func orCode(label, code string) string {
	if label != "" {
		return label
	}
	return code
}

// ContentTable prints the library for people: titles and labels, upload times in loc.
func ContentTable(w io.Writer, cs []api.ContentJSON, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TITLE\tDURATION\tLANGUAGE\tTHEME\tFORMAT\tUNIT\tUPLOADED\tAPPROVAL\tREF")
	for _, x := range cs {
		ref := x.Ref
		if len(ref) > 19 {
			ref = ref[:19] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Title, time.Duration(x.DurationS*float64(time.Second)).Round(time.Second),
			dash(orCode(x.LanguageLabel, x.Language)), dash(orCode(x.ThemeLabel, x.Theme)), dash(orCode(x.FormatLabel, x.Format)),
			dash(orCode(x.UnitLabel, x.Unit)), x.By+" "+x.At.In(loc).Format("02/01/2006 15:04"), contentApproval(x, loc), ref)
	}
	fmt.Fprintf(tw, "%d item(s); `--json` has the full references\n", len(cs))
	return tw.Flush()
}

// PlanTable prints a plan for people: one line per stretch of an output, times in loc,
// titles where known.
func PlanTable(w io.Writer, pl api.PlanJSON, loc *time.Location) error {
	who := pl.Target
	if pl.Revision > 0 {
		who += fmt.Sprintf(" (signed revision %d)", pl.Revision)
	} else if pl.Device == "" {
		who += " (a device there without a schedule of its own)"
	}
	fmt.Fprintf(w, "plan of %s from %s to %s, times in %s\n", who, pl.From.In(loc).Format("02/01/2006 15:04"), pl.Until.In(loc).Format("02/01/2006 15:04"), loc)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tSTART\tEND\tOUTPUT\tCLASS\tPROGRAMME\tITEM\tSTATUS")
	for _, sg := range pl.Segments {
		prog := sg.Title
		if prog == "" {
			prog = sg.Program
		}
		item := sg.ItemTitle
		if item == "" {
			item = sg.Item
			if r := []rune(item); len(r) > 40 {
				item = string(r[:39]) + "…"
			}
		}
		st := sg.Start.In(loc)
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", weekdayVI[st.Weekday()], st.Format("02/01"), st.Format("15:04:05"),
			sg.End.In(loc).Format("15:04:05"), sg.Output, sg.Class, prog, item, sg.Status)
	}
	if len(pl.Segments) == 0 {
		fmt.Fprintln(tw, "nothing plays in this time")
	}
	return tw.Flush()
}

// weekdayVI are the days as staff write them (GLOSSARY-vi.md: the week starts on Monday).
var weekdayVI = [...]string{"CN", "T2", "T3", "T4", "T5", "T6", "T7"}

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
	return t.In(now.Location()).Format("2006-01-02 15:04")
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
	fmt.Fprintln(tw, "DEVICE\tAREA\tONLINE\tLAST SEEN\tREVISION\tDELIVERY\tACTIVE\tPARTS\tNOW PLAYING")
	var faulty []api.DeviceJSON
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Area, online, ago(d.LastSeen, now), rev(d.Revision), del, rev(d.ActiveRevision), partsCell(d), dash(d.NowPlaying))
		if len(d.Faults) > 0 {
			faulty = append(faulty, d)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range faulty {
		fmt.Fprintf(w, "! %s: %s (loa device show %s)\n", d.ID, strings.Join(d.Faults, "; "), d.ID)
	}
	return nil
}

// partsCell is the status table's PARTS: ok, FAULT and the faulty parts, or - when the device
// reports none (no relay, sign or screen, or an agent that does not say).
func partsCell(d api.DeviceJSON) string {
	var bad []string
	reported := false
	for _, p := range d.Parts() {
		reported = reported || p.Part != nil
		if p.Part != nil && p.Part.Error != "" {
			bad = append(bad, p.Name)
		}
	}
	if !reported {
		return "-"
	}
	if len(bad) == 0 {
		return "ok"
	}
	return "FAULT " + strings.Join(bad, ",")
}

// partLine is one part in `loa device show`: its state, or FAULT with since when and why.
func partLine(p *api.PartJSON, now time.Time) string {
	if p.Error == "" {
		return p.State
	}
	s := "FAULT"
	if p.Since != nil {
		s += " since " + p.Since.In(now.Location()).Format("2006-01-02 15:04")
	}
	return s + ": " + p.Error + " (state " + p.State + ")"
}

// DeviceDetail prints one device.
func DeviceDetail(w io.Writer, d api.DeviceJSON, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("device", d.ID)
	row("name", d.Name)
	row("area", d.Area)
	row("kind", d.Kind)
	row("online", d.Online)
	row("revoked", d.Revoked)
	row("last seen", ago(d.LastSeen, now))
	row("revision", rev(d.Revision)+" ("+dash(d.Delivery)+")")
	if d.RefusedReason != "" {
		row("refused", d.RefusedReason)
	}
	row("active revision", rev(d.ActiveRevision))
	row("now playing", dash(d.NowPlaying))
	row("confirmations acked", d.AckedSeq)
	sw := dash(d.Software)
	if d.Arch != "" {
		sw += " (" + d.Arch + ")"
	}
	if d.Software != "" && !d.Upgrades {
		sw += ", does not install upgrades"
	}
	row("software", sw)
	if u := d.Upgrade; u != nil {
		line := fmt.Sprintf("%s to %s: %s, %s", u.Rollout, u.Version, u.State, ago(&u.Since, now))
		if u.Error != "" {
			line += ": " + u.Error
		}
		row("upgrade", line)
	}
	if d.Rollbacks > 0 {
		row("rollbacks", d.Rollbacks)
	}
	row("link", dash(d.Link))
	if d.Volume != nil {
		row("volume", fmt.Sprintf("%.2f", *d.Volume))
	}
	for _, p := range d.Parts() {
		if p.Part != nil {
			row(p.Name, partLine(p.Part, now))
		}
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
	if d.ClockSource != "" {
		row("clock error", fmt.Sprintf("±%.1f ms (as %s says)", d.ClockErrorS*1000, d.ClockSource))
	}
	return tw.Flush()
}

// ConfirmationsTable prints confirmations for people, times in loc, titles where the hub
// knows them (the programme id and a short hash otherwise; --json has both).
func ConfirmationsTable(w io.Writer, cs []api.ConfirmationJSON, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tDEVICE\tPROGRAMME\tITEM\tRESULT\tPLAYED")
	for _, c := range cs {
		start := "-"
		if c.Start != nil {
			start = c.Start.In(loc).Format("2006-01-02 15:04:05")
		} else if c.Scheduled != nil {
			start = c.Scheduled.In(loc).Format("2006-01-02 15:04:05") + " (sched.)"
		}
		prog := c.Title
		if prog == "" {
			prog = dash(c.Program)
		}
		item := c.ItemTitle
		if item == "" {
			item = c.Item
			if len(item) > 19 && strings.HasPrefix(item, "sha256:") {
				item = item[:19] + "…"
			}
		}
		res := c.Result
		if c.Error != "" {
			res += ": " + c.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1fs\n", start, c.Device, prog, dash(item), res, c.PlayedS)
	}
	fmt.Fprintf(tw, "%d confirmation(s), times in %s\n", len(cs), loc)
	return tw.Flush()
}
