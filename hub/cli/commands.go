package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/internal/clicmd"
)

// deviceCommands are the commands to devices (volume, stop, play, reload) and `loa commands`,
// which lists them and their outcome per device.
func (t *tree) deviceCommands(root *cobra.Command) {
	t.add(root, "volume --to AREA|DEVICE LEVEL [--output speakers] [--expires 10m] [--wait 10s] [--json]",
		"set the volume: LEVEL from 0 to 1, e.g. 0.6", func(c *command) action { return c.toDevices("volume") })
	t.add(root, "stop --to AREA|DEVICE [--output speakers] [--expires 10m] [--wait 10s] [--json]",
		"stop what plays now", func(c *command) action { return c.toDevices("stop") })
	t.add(root, "play --to AREA|DEVICE (FILE|--content SHA256|--url URL) [--class priority] [--for 30m] [--title T] [--output O]",
		"play a file, library content or a stream now", func(c *command) action { return c.toDevices("play") })
	t.add(root, "reload --to AREA|DEVICE", "the devices read their schedule again", func(c *command) action { return c.toDevices("reload") })
	t.add(root, "commands [ID] [--area A] [--device D] [--limit N] [--json]", "commands sent to devices and what each device answered", func(c *command) action {
		var f client.CommandFilter
		c.fs.StringVar(&f.Area, "area", "", "commands reaching this area (default: your scope)")
		c.fs.StringVar(&f.Device, "device", "", "commands for this device")
		c.fs.IntVar(&f.Limit, "limit", 0, "the newest N commands (default 20)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			out := c.env.Stdout
			if len(pos) > 1 {
				return clicmd.Usagef("commands takes at most one command ID")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			if len(pos) == 1 {
				cmd, err := cl.GetCommand(ctx, pos[0])
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(out, cmd)
				}
				return CommandTable(out, cmd, 0, time.Now().In(cl.Location()))
			}
			cs, err := cl.ListCommands(ctx, f)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(out, cs)
			}
			if len(cs) == 0 {
				fmt.Fprintln(out, "no commands reach your scope yet")
			}
			for i, cmd := range cs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				if err := CommandTable(out, cmd, 10, time.Now().In(cl.Location())); err != nil {
					return err
				}
			}
			return nil
		}
	})
}

// toDevices is `loa volume|stop|play|reload …`: it issues the command and waits for the
// devices' answers.
func (c *command) toDevices(name string) action {
	to := c.fs.String("to", "", "area or device, or several separated by commas")
	output := c.fs.String("output", "", "one output (speakers, board…); all when absent")
	expires := c.fs.String("expires", "", "how long devices that are offline may still get it (default 10m)")
	wait := c.fs.Duration("wait", 10*time.Second, "how long to wait for the devices' answers (0: do not wait)")
	asJSON := c.fs.Bool("json", false, "print JSON")
	var content, stream, class, title, dur *string
	if name == "play" {
		content = c.fs.String("content", "", "sha256:… of library content")
		stream = c.fs.String("url", "", "http(s) URL of a stream to relay")
		class = c.fs.String("class", "", "normal, priority (default) or emergency")
		title = c.fs.String("title", "", "title shown and journalled")
		dur = c.fs.String("for", "", "a stream: how long it plays (default 1h); also how long offline devices may still get it")
	}
	return func(ctx context.Context, pos []string) error {
		out := c.env.Stdout
		if *to == "" {
			return clicmd.Usagef("%s needs --to AREA or --to DEVICE (the devices that carry it out)", name)
		}
		req := api.CommandRequest{To: *to, Output: *output, ExpiresIn: *expires}
		file := ""
		switch name {
		case "volume":
			req.Action = "volume"
			if len(pos) != 1 {
				return clicmd.Usagef("volume takes one LEVEL from 0 (silent) to 1 (full), e.g. loa volume --to qn/tk 0.6")
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(pos[0], "%"), 64)
			if err == nil && strings.HasSuffix(pos[0], "%") {
				v /= 100
			}
			if err != nil || v < 0 || v > 1 {
				return clicmd.Usagef("volume %q: give a level from 0 to 1 (0.6) or a percentage (60%%)", pos[0])
			}
			req.Volume = &v
		case "stop", "reload":
			req.Action = name
			if len(pos) > 0 {
				return clicmd.Usagef("%s takes no arguments besides its flags (got %q)", name, pos[0])
			}
		case "play":
			req.Action = "play_now"
			if len(pos) > 1 {
				return clicmd.Usagef("play takes at most one FILE (got %d)", len(pos))
			}
			if len(pos) == 1 {
				file = pos[0]
			}
			n := 0
			for _, s := range []string{file, *content, *stream} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return clicmd.Usagef("play needs one of FILE, --content sha256:… or --url URL")
			}
			if *dur != "" && *expires != "" {
				return clicmd.Usagef("give --for or --expires, not both")
			}
			if *dur != "" {
				req.ExpiresIn = *dur
			}
			req.Content, req.Stream, req.Class, req.Title = *content, *stream, *class, *title
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		if file != "" {
			t := req.Title
			if t == "" {
				t = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
			}
			r, err := cl.AddContent(ctx, file, client.ContentMeta{Title: t})
			if err != nil {
				return fmt.Errorf("uploading %s: %w", file, err)
			}
			fmt.Fprintf(out, "%s uploaded as %s (%.1f s)\n", file, r.Ref, r.DurationS)
			req.Content = r.Ref
			if req.Title == "" {
				req.Title = t
			}
		}
		cmd, err := cl.IssueCommand(ctx, req)
		if err != nil {
			return err
		}
		if cmd.Submission != nil { // the area requires approval
			printSubmitted(c.env.Stdout, api.PushResponse{Target: cmd.Submission.Target, Submission: cmd.Submission, Approvers: cmd.Approvers})
			return nil
		}
		// Wait for the answers of the devices it was sent to; offline ones answer on reconnecting.
		deadline := time.Now().Add(*wait)
		for cmd.Counts["sent"] > 0 && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
			if c2, err := cl.GetCommand(ctx, cmd.ID); err == nil {
				cmd = c2
			}
		}
		if *asJSON {
			return printJSON(out, cmd)
		}
		if err := CommandTable(out, cmd, 0, time.Now().In(cl.Location())); err != nil {
			return err
		}
		if bad := cmd.Counts["refused"] + cmd.Counts["failed"]; bad > 0 {
			return fmt.Errorf("%d device(s) did not carry out command %s; the reasons are above", bad, cmd.ID)
		}
		return nil
	}
}

// describeCommand says what a command does, for people.
func describeCommand(c api.CommandJSON) string {
	var s string
	switch c.Action {
	case "volume":
		s = "volume"
		if c.Volume != nil {
			s += " " + strconv.FormatFloat(*c.Volume, 'f', -1, 64)
		}
	case "play_now":
		s = "play"
		if c.Title != "" {
			s += " " + strconv.Quote(c.Title)
		}
		what := c.Content
		if c.Stream != "" {
			what = c.Stream
		} else if len(what) > 19 {
			what = what[:19] + "…"
		}
		s += " (" + what + ")"
		if c.Class != "" {
			s += " as " + c.Class
		}
	default:
		s = c.Action
	}
	if c.Output != "" {
		s += " on " + c.Output
	}
	return s
}

// outcomeOrder puts what needs attention first.
var outcomeOrder = map[string]int{"refused": 0, "failed": 1, "unanswered": 2, "expired": 3, "pending": 4, "sent": 5, "received": 6, "executed": 7}

// CommandTable prints a command and its outcome per device; limit > 0 shows at most that
// many devices (those needing attention first).
func CommandTable(w io.Writer, c api.CommandJSON, limit int, now time.Time) error {
	var counts []string
	for _, st := range []string{"executed", "received", "sent", "pending", "failed", "refused", "unanswered", "expired"} {
		if n := c.Counts[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	exp := "expires " + c.ExpiresAt.In(now.Location()).Format("15:04:05")
	if c.Expired {
		exp = "expired " + c.ExpiresAt.In(now.Location()).Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(w, "%s  %s to %s, by %s at %s, %s: %s\n", c.ID, describeCommand(c), strings.TrimPrefix(strings.TrimPrefix(c.To, "area:"), "device:"),
		c.IssuedBy, c.IssuedAt.In(now.Location()).Format("2006-01-02 15:04:05"), exp, strings.Join(counts, ", "))
	outs := append([]api.CommandOutcomeJSON(nil), c.Outcomes...)
	sort.SliceStable(outs, func(i, j int) bool { return outcomeOrder[outs[i].State] < outcomeOrder[outs[j].State] })
	more := 0
	if limit > 0 && len(outs) > limit {
		more, outs = len(outs)-limit, outs[:limit]
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DEVICE\tSTATE\tAT\tDETAIL")
	for _, o := range outs {
		at := "-"
		if o.ReportedAt != nil {
			at = o.ReportedAt.In(now.Location()).Format("15:04:05")
		} else if o.SentAt != nil {
			at = o.SentAt.In(now.Location()).Format("15:04:05")
		}
		detail := o.Reason
		if o.Code != "" && o.State != "received" {
			detail = o.Code + ": " + o.Reason
		}
		switch o.State {
		case "pending":
			detail = "offline: it gets the command when it reconnects before " + c.ExpiresAt.In(now.Location()).Format("15:04:05")
		case "sent":
			detail = "no answer yet"
		case "expired":
			detail = "offline until the command expired: never sent"
		case "unanswered":
			detail = "sent, but no answer came before it expired"
		}
		if r := []rune(detail); len(r) > 120 {
			detail = string(r[:119]) + "…"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", o.Device, o.State, at, detail)
	}
	if more > 0 {
		fmt.Fprintf(tw, "  … and %d more device(s): loa commands %s\n", more, c.ID)
	}
	return tw.Flush()
}
