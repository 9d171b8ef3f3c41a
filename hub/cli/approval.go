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

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/clicmd"
	"github.com/spf13/cobra"
)

// approvalCommands are editorial approval's (issue 22): the queue, approve, reject, the
// area's policy and the review of emergency warnings.
func (t *tree) approvalCommands(root *cobra.Command) {
	var area *cobra.Command // loa area policy sits with loa area add and list
	for _, c := range root.Commands() {
		if c.Name() == "area" {
			area = c
		}
	}
	t.add(root, "submissions [--state submitted|approved|rejected|all] [--json]", "schedules waiting for approval in your areas", func(c *command) action {
		state := c.fs.String("state", "", "which: submitted (the default: waiting), approved, rejected or all")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("submissions", pos, 0, "no arguments"); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			subs, err := cl.ListSubmissions(ctx, *state)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, subs)
			}
			loc := cl.Location()
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTARGET\tSCHEDULE\tPROGRAMMES\tSUBMITTED BY\tAT\tSTATE\tDECIDED BY\tREASON / CHANGES")
			for _, s := range subs {
				decided, note := "-", strings.Join(s.Changes, "; ")
				if s.DecidedAt != nil {
					decided = s.DecidedBy + " " + s.DecidedAt.In(loc).Format("02/01/2006 15:04")
				}
				if s.Reason != "" {
					note = s.Reason
				}
				if s.Revision > 0 {
					note = "revision " + strconv.FormatInt(s.Revision, 10)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Target, s.ScheduleID, s.Programs, s.SubmittedBy,
					s.SubmittedAt.In(loc).Format("02/01/2006 15:04"), s.State, decided, dash(note))
			}
			if len(subs) == 0 {
				fmt.Fprintln(tw, "nothing waits for approval in your areas")
			}
			return tw.Flush()
		}
	})
	t.add(root, "submit FILE --to AREA|DEVICE", "submit a schedule for approval, even where the area does not require it", func(c *command) action {
		to := c.fs.String("to", "", "area or device")
		return func(ctx context.Context, pos []string) error {
			doc, cl, err := c.scheduleFile("submit", pos, *to)
			if err != nil {
				return err
			}
			r, err := cl.SubmitSchedule(ctx, *to, filepath.Base(pos[0]), doc)
			if err != nil {
				return err
			}
			printSubmitted(c.env.Stdout, r)
			return nil
		}
	})
	t.add(root, "approve ID | approve content REF", "approve a submitted schedule (it is stored and sent) or a content item", func(c *command) action {
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 0 && pos[0] == "content" {
				return c.decideContent(ctx, pos, true, "")
			}
			id, err := submissionID("approve", pos)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			res, err := cl.Approve(ctx, id)
			if err != nil {
				return err
			}
			s, out := res.Submission, c.env.Stdout
			fmt.Fprintf(out, "submission %d by %s approved: %s revision %d stored", s.ID, s.SubmittedBy, s.Target, s.Revision)
			if p := res.Push; p != nil {
				fmt.Fprintf(out, "; %d device(s) got a new effective schedule, %d of them online and sent it now", p.Devices, p.Sent)
				for _, f := range p.Failures {
					fmt.Fprintln(out, "\n  failed:", f)
				}
			}
			fmt.Fprintln(out)
			return nil
		}
	})
	t.add(root, "reject ID --reason TEXT | reject content REF --reason TEXT", "return a submitted schedule or content item to its author with a reason", func(c *command) action {
		reason := c.fs.String("reason", "", "why, for the author (required)")
		return func(ctx context.Context, pos []string) error {
			if strings.TrimSpace(*reason) == "" {
				return clicmd.Usagef("reject needs --reason \"…\": the author reads it")
			}
			if len(pos) > 0 && pos[0] == "content" {
				return c.decideContent(ctx, pos, false, *reason)
			}
			id, err := submissionID("reject", pos)
			if err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			res, err := cl.Reject(ctx, id, *reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "submission %d by %s rejected: %s; nothing was stored or sent\n", res.Submission.ID, res.Submission.SubmittedBy, res.Submission.Reason)
			return nil
		}
	})
	t.add(root, "review [ID] [--note TEXT]", "emergency warnings to review after they went out; with ID, record its review", func(c *command) action {
		note := c.fs.String("note", "", "what the review found")
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 1 {
				return clicmd.Usagef("review takes at most one ID")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			loc := cl.Location()
			if len(pos) == 1 {
				id, perr := strconv.ParseInt(pos[0], 10, 64)
				if perr != nil || id <= 0 {
					return clicmd.Usagef("%q is not a broadcast ID: `loa review` lists those to review", pos[0])
				}
				e, err := cl.Review(ctx, id, *note)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.env.Stdout, "emergency %d by %s reviewed by %s at %s\n", e.ID, e.CreatedBy, e.ReviewedBy, e.ReviewedAt.In(loc).Format("02/01/2006 15:04"))
				return nil
			}
			es, err := cl.ReviewQueue(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAREA\tBY\tAT\tTEXT")
			for _, e := range es {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Area, e.CreatedBy, e.IssuedAt.In(loc).Format("02/01/2006 15:04"), dash(firstOf(e.Text, e.Title, e.Content, e.Stream)))
			}
			if len(es) == 0 {
				fmt.Fprintln(tw, "no emergency warning waits for its review")
			}
			return tw.Flush()
		}
	})
	t.add(area, "policy AREA [--approval required|not_required|inherit] [--self-approval allowed|not_allowed|inherit]",
		"whether schedules need approval in an area, and whether an approver may approve their own", func(c *command) action {
			approval := c.fs.String("approval", "", "required, not_required, or inherit (as the area above)")
			self := c.fs.String("self-approval", "", "allowed, not_allowed, or inherit (as the area above)")
			return func(ctx context.Context, pos []string) error {
				if err := wantArgs("area policy", pos, 1, "one AREA"); err != nil {
					return err
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				var p api.PolicyJSON
				if *approval == "" && *self == "" {
					p, err = cl.Policy(ctx, pos[0])
				} else {
					p, err = cl.SetPolicy(ctx, api.PolicyRequest{Area: pos[0], Approval: *approval, SelfApproval: *self})
				}
				if err != nil {
					return err
				}
				yes := map[bool]string{true: "required", false: "not required"}
				may := map[bool]string{true: "allowed", false: "not allowed"}
				fmt.Fprintf(c.env.Stdout, "%s: approval %s; self-approval %s\n", p.Area, yes[p.Required], may[p.SelfApproval])
				return nil
			}
		})
}

// printSubmitted says that a push waits for approval and who can give it.
func printSubmitted(w io.Writer, r api.PushResponse) {
	if r.Unchanged {
		fmt.Fprintf(w, "%s revision %d already is this schedule: nothing submitted\n", r.Target, r.Revision)
		return
	}
	fmt.Fprintf(w, "%s: submitted for approval as %d; nothing sent until an approver approves it (`loa approve %d`); who can: %s\n",
		r.Target, r.Submission.ID, r.Submission.ID, dash(strings.Join(r.Approvers, ", ")))
}

func submissionID(name string, pos []string) (int64, error) {
	if err := wantArgs(name, pos, 1, "one submission ID (`loa submissions` lists them)"); err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, clicmd.Usagef("%q is not a submission ID: `loa submissions` lists them", pos[0])
	}
	return id, nil
}

// decideContent approves or rejects the content item of `approve content REF`.
func (c *command) decideContent(ctx context.Context, pos []string, approve bool, reason string) error {
	verb := map[bool]string{true: "approve", false: "reject"}[approve]
	if err := wantArgs(verb+" content", pos[1:], 1, "one content reference (sha256:…; `loa content list --state submitted` lists those waiting)"); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	x, err := cl.DecideContent(ctx, pos[1], approve, reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "%s %q uploaded by %s: %s\n", x.Ref, x.Title, x.By, contentApproval(x, cl.Location()))
	return nil
}

// contentApproval is an item's approval as staff read it: approved by whom and when,
// waiting, or rejected with the reason.
func contentApproval(x api.ContentJSON, loc *time.Location) string {
	at := ""
	if x.DecidedAt != nil {
		at = " " + x.DecidedAt.In(loc).Format("02/01/2006 15:04")
	}
	switch x.State {
	case "submitted":
		return "waiting for approval in " + x.Area
	case "rejected":
		return "rejected by " + x.DecidedBy + at + ": " + x.Reason
	case "approved":
		if x.DecidedBy == "" {
			return "approved (no approval needed)"
		}
		return "approved by " + x.DecidedBy + at
	}
	return dash(x.State)
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
