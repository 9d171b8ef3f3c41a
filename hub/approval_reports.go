package hub

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// The words the reports use for what had no approver (GLOSSARY-vi.md).
const (
	noApprovalNeeded = "không cần duyệt" // pushed where the area did not require approval
	awaitingReview   = "chờ xem xét"     // an emergency that went out at once, not reviewed yet
)

// reportApprovers says who approved what report lines played (issue 22), per programme id as
// the devices name it: for a scheduled programme the approvers of the schedule revisions that
// held it during [from, to) (noApprovalNeeded for a revision that did not wait for one); for an
// emergency its reviewer (awaitingReview before the review; the feed for a CAP alert); for a
// bulletin or live relay who approved (or reviewed) it, else noApprovalNeeded; for a play-now
// command noApprovalNeeded (its approval is in the audit log only). A programme whose schedule is gone (pruned)
// has "". It reads the schedules, never the confirmations: the reports' figures come from the
// monthly summaries, which keep no revisions.
type reportApprovers struct {
	s        *Server
	ctx      context.Context
	from, to time.Time
	revs     map[store.Target][]store.Schedule // the revisions in force in the period
	programs map[string]string
}

func (s *Server) reportApprovers(ctx context.Context, from, to time.Time) *reportApprovers {
	return &reportApprovers{s: s, ctx: ctx, from: from, to: to, revs: map[store.Target][]store.Schedule{}, programs: map[string]string{}}
}

// emergencyGetter is the store's part that reads a broadcast.
type emergencyGetter interface {
	GetEmergency(ctx context.Context, id int64) (store.Emergency, error)
}

func (a *reportApprovers) program(program string) string {
	if who, ok := a.programs[program]; ok {
		return who
	}
	who := a.find(program)
	a.programs[program] = who
	return who
}

func (a *reportApprovers) find(program string) string {
	if protocol.CommandOf(program) != "" {
		return noApprovalNeeded
	}
	if kind, id, ok := agentlink.BroadcastOf(program); ok {
		eg, ok := a.s.st.(emergencyGetter)
		if !ok {
			return ""
		}
		e, err := eg.GetEmergency(a.ctx, id)
		switch {
		case err != nil:
			return ""
		case kind != store.KindEmergency && e.ReviewedBy == "" && !e.ReviewWanted:
			return noApprovalNeeded // a bulletin or relay sent where approval was not required
		case strings.HasPrefix(e.Source, "cap:"):
			sender, _, _ := strings.Cut(strings.TrimPrefix(e.Source, "cap:"), ",")
			return "nguồn CAP " + sender
		case e.ReviewedBy != "":
			return e.ReviewedBy
		case e.ReviewedAt.IsZero():
			return awaitingReview
		}
		return noApprovalNeeded // sent before approvals existed
	}
	// The devices name a programme TARGET/ID, and both may hold '/': the longest target with a
	// revision holding ID wins, as in composition the prefix is the target's.
	for i := strings.LastIndexByte(program, '/'); i > 0; i = strings.LastIndexByte(program[:i], '/') {
		target, id := program[:i], program[i+1:]
		t := store.AreaTarget(target)
		if dev, ok := strings.CutPrefix(target, "device:"); ok {
			t = store.DeviceTarget(dev)
		}
		var who []string
		for _, sc := range a.revisions(t) {
			doc, err := scheduler.Parse(t.String(), sc.Document)
			if err != nil || !slices.ContainsFunc(doc.Programs, func(p scheduler.Program) bool { return p.ID == id }) {
				continue
			}
			w := sc.ApprovedBy
			if w == "" {
				w = noApprovalNeeded
			}
			if !slices.Contains(who, w) {
				who = append(who, w)
			}
		}
		if len(who) > 0 {
			return strings.Join(who, ", ")
		}
	}
	return ""
}

// revisions are t's revisions in force during the period, oldest first: those made in it and
// the last one made before it.
func (a *reportApprovers) revisions(t store.Target) []store.Schedule {
	if rs, ok := a.revs[t]; ok {
		return rs
	}
	var out []store.Schedule
	all, err := a.s.st.ScheduleRevisions(a.ctx, t, 0) // newest first
	if err == nil {
		for _, sc := range all {
			if !sc.CreatedAt.Before(a.to) {
				continue
			}
			out = append(out, sc)
			if !sc.CreatedAt.After(a.from) {
				break
			}
		}
	}
	slices.Reverse(out)
	a.revs[t] = out
	return out
}

// items says who approved what each content item was played in: the approvers of the
// programmes that carried it in lines, joined.
func (a *reportApprovers) items(lines []store.PlayLine) map[string]string {
	per := map[string][]string{}
	for _, l := range lines {
		for w := range strings.SplitSeq(a.program(l.Program), ", ") {
			if w != "" && !slices.Contains(per[l.Item], w) {
				per[l.Item] = append(per[l.Item], w)
			}
		}
	}
	out := map[string]string{}
	for ref, who := range per {
		out[ref] = strings.Join(who, ", ")
	}
	return out
}
