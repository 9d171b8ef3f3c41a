package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/internal/clicmd"
)

// broadcastCommands are emergency (and its list and cancel), bulletin and live start|stop.
func (t *tree) broadcastCommands(root *cobra.Command) {
	emergency := t.add(root, "emergency --to AREA|DEVICE[,…] (FILE|--content SHA256|--text TEXT) [--text TEXT] [--repeat-every 2h] [--until TIME] [--volume 1.0] [--series NAME [--replace-areas]] [--title T] [--class priority]",
		"put an emergency broadcast on the air", func(c *command) action { return c.broadcast("emergency") })
	t.add(root, "bulletin --to AREA|DEVICE[,…] (FILE|--content SHA256) --next-session [--title T]",
		"a bulletin at the start of the next session", func(c *command) action { return c.broadcast("bulletin") })
	t.add(emergency, "list [--all] [--json]", "the broadcasts on the air (--all: ended ones too)", func(c *command) action {
		all := c.fs.Bool("all", false, "include ended and expired ones")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			out := c.env.Stdout
			cl, err := c.client()
			if err != nil {
				return err
			}
			es, err := cl.ListEmergencies(ctx, *all)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(out, es)
			}
			return EmergenciesTable(out, es, time.Now().In(cl.Location()))
		}
	})
	t.add(emergency, "cancel ID | --series NAME", "end a broadcast, or every active one of a series", func(c *command) action {
		series := c.fs.String("series", "", "every active broadcast of this series")
		return func(ctx context.Context, pos []string) error {
			out := c.env.Stdout
			if (len(pos) == 1) == (*series != "") || len(pos) > 1 {
				return clicmd.Usagef("emergency cancel takes one ID (from `loa emergency list`) or --series NAME")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			var res api.EmergencyResponse
			if *series != "" {
				res, err = cl.CancelSeries(ctx, api.CancelRequest{Series: *series})
			} else {
				id, perr := strconv.ParseInt(pos[0], 10, 64)
				if perr != nil || id <= 0 {
					return clicmd.Usagef("%q is not an emergency ID: `loa emergency list` shows them", pos[0])
				}
				res, err = cl.CancelEmergency(ctx, id)
			}
			if err != nil {
				return err
			}
			return printBroadcastResult(out, res, "ended", cl.Location())
		}
	})
	live := group(root, "live", "relay a live stream to the loudspeakers")
	t.add(live, "start --to AREA|DEVICE[,…] --url URL [--for 1h] [--title T]", "relay a stream", func(c *command) action {
		to := c.fs.String("to", "", "area or device (a cluster, a board), or several separated by commas")
		u := c.fs.String("url", "", "http(s) URL of the stream")
		dur := c.fs.String("for", "", "how long (default 1h)")
		title := c.fs.String("title", "", "title")
		return func(ctx context.Context, pos []string) error {
			out := c.env.Stdout
			if *to == "" || *u == "" {
				return clicmd.Usagef("live start needs --to AREA and --url http(s)://… of the stream")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			res, err := cl.CreateEmergency(ctx, api.EmergencyRequest{To: *to, Kind: "live", Stream: *u, For: *dur, Title: *title})
			if err != nil {
				return err
			}
			return printBroadcastResult(out, res, "relaying", cl.Location())
		}
	})
	t.add(live, "stop --to AREA|DEVICE[,…]", "stop relaying", func(c *command) action {
		to := c.fs.String("to", "", "area or device (a cluster, a board), or several separated by commas")
		return func(ctx context.Context, pos []string) error {
			out := c.env.Stdout
			if *to == "" {
				return clicmd.Usagef("live stop needs --to AREA")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			res, err := cl.CancelSeries(ctx, api.CancelRequest{Kind: "live", To: *to})
			if err != nil {
				return err
			}
			return printBroadcastResult(out, res, "stopped", cl.Location())
		}
	})
}

// broadcast is `loa emergency|bulletin …`.
func (c *command) broadcast(name string) action {
	to := c.fs.String("to", "", "area or device (a cluster, a board), or several separated by commas")
	replaceAreas := c.fs.Bool("replace-areas", false, "with --series: end the series in the areas --to does not name")
	content := c.fs.String("content", "", "sha256:… of library content")
	text := c.fs.String("text", "", "text spoken (and shown); with a recording, spoken if it cannot be played")
	title := c.fs.String("title", "", "title")
	series := c.fs.String("series", "", "series name: a newer broadcast of the same series replaces the older")
	every := c.fs.String("repeat-every", "", "repeat interval, e.g. 2h")
	until := c.fs.String("until", "", "expiry: RFC 3339 or a duration from now (6h)")
	volume := c.fs.Float64("volume", -1, "0..1 (default 1)")
	class := c.fs.String("class", "", "emergency (default) or priority")
	next := c.fs.Bool("next-session", false, "bulletin: at the start of the next session")
	asJSON := c.fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, pos []string) error {
		out := c.env.Stdout
		if len(pos) > 1 {
			return clicmd.Usagef("%s takes at most one FILE (got %d); quote a --text with spaces", name, len(pos))
		}
		if *to == "" {
			return clicmd.Usagef("%s needs --to AREA (the area whose devices play it)", name)
		}
		file := ""
		if len(pos) == 1 {
			file = pos[0]
		}
		if file != "" && *content != "" {
			return clicmd.Usagef("give a FILE or --content, not both")
		}
		if file == "" && *content == "" && (*text == "" || name == "bulletin" && *text == "") {
			if name == "bulletin" {
				return clicmd.Usagef("bulletin needs a FILE or --content sha256:…")
			}
			return clicmd.Usagef("emergency needs a FILE, --content sha256:… or --text \"…\"")
		}
		if name == "bulletin" && !*next {
			return clicmd.Usagef("say when the bulletin plays: --next-session")
		}
		req := api.EmergencyRequest{To: *to, Kind: name, Class: *class, Content: *content, Text: *text, Title: *title,
			Series: *series, RepeatEvery: *every, Until: *until, NextSession: *next, ReplaceAreas: *replaceAreas}
		if *volume >= 0 {
			req.Volume = volume
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		if file != "" {
			t := *title
			if t == "" {
				t = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
			}
			r, err := cl.AddContent(ctx, file, client.ContentMeta{Title: t, Theme: name})
			if err != nil {
				return fmt.Errorf("uploading %s: %w", file, err)
			}
			fmt.Fprintf(out, "%s uploaded as %s (%.1f s)\n", file, r.Ref, r.DurationS)
			req.Content = r.Ref
			req.Title = t
		}
		res, err := cl.CreateEmergency(ctx, req)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(out, res)
		}
		return printBroadcastResult(out, res, "on the air", cl.Location())
	}
}

func printBroadcastResult(out io.Writer, res api.EmergencyResponse, verb string, loc *time.Location) error {
	if res.Submission != nil { // the area requires approval
		printSubmitted(out, api.PushResponse{Target: res.Submission.Target, Submission: res.Submission, Approvers: res.Approvers})
		return nil
	}
	for _, e := range res.Emergencies {
		what := e.Kind
		fmt.Fprintf(out, "%s %d (series %s) for %s %s", what, e.ID, e.Series, broadcastWhere(e), verb)
		if verb != "ended" && verb != "stopped" {
			fmt.Fprintf(out, ": class %s, starts %s", e.Class, e.Start.In(loc).Format("2006-01-02 15:04:05"))
			if e.RepeatEvery != "" {
				fmt.Fprintf(out, ", %d plays every %s", e.Plays, e.RepeatEvery)
			}
			fmt.Fprintf(out, ", expires %s", e.Until.In(loc).Format("2006-01-02 15:04"))
		}
		fmt.Fprintln(out)
	}
	if len(res.Replaced) > 0 {
		fmt.Fprintf(out, "replaced: %v\n", res.Replaced)
	}
	fmt.Fprintf(out, "%d device(s) got a new schedule, %d of them online and sent it now (the others get it when they reconnect)\n", res.Devices, res.Sent)
	for _, w := range res.Warnings {
		fmt.Fprintln(out, "  warning:", w)
	}
	for _, f := range res.Failures {
		fmt.Fprintln(out, "  failed:", f)
	}
	if len(res.Failures) > 0 {
		return fmt.Errorf("%d device(s) could not be given it; see above", len(res.Failures))
	}
	return nil
}

// EmergenciesTable prints broadcasts for people.
func EmergenciesTable(w io.Writer, es []api.EmergencyJSON, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tCLASS\tAREA\tSERIES\tSTARTS\tREPEAT\tEXPIRES\tSTATE\tWHAT")
	for _, e := range es {
		state := "active"
		switch {
		case e.EndReason != "":
			state = e.EndReason
		case !e.Active:
			state = "expired"
		}
		what := e.Title
		switch {
		case what != "":
		case e.Text != "":
			what = e.Text
		case e.Stream != "":
			what = e.Stream
		default:
			what = e.Content
		}
		if r := []rune(what); len(r) > 40 {
			what = string(r[:39]) + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Kind, e.Class, broadcastWhere(e), e.Series,
			e.Start.In(now.Location()).Format("02/01 15:04"), dash(e.RepeatEvery), e.Until.In(now.Location()).Format("02/01 15:04"), state, what)
	}
	if len(es) == 0 {
		fmt.Fprintln(tw, "nothing on the air (--all shows ended ones)")
	}
	return tw.Flush()
}

// broadcastWhere is where a broadcast plays: its area, or its one device.
func broadcastWhere(e api.EmergencyJSON) string {
	if e.Device != "" {
		return "device " + e.Device
	}
	return e.Area
}
