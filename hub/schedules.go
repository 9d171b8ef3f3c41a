package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/loa-project/loa/hub/agentlink"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// canonical is a document's content without its revision: two pushes of the same schedule
// with only the revision bumped are the same schedule.
func canonical(d *scheduler.Document) string {
	c := *d
	c.Revision = 0
	b, _ := json.Marshal(c)
	return string(b)
}

// sameSchedule reports whether a stored revision holds the same schedule as doc.
func sameSchedule(stored store.Schedule, doc *scheduler.Document) bool {
	old, err := scheduler.Parse("stored", stored.Document)
	return err == nil && canonical(old) == canonical(doc)
}

// scheduleChanges says, programme by programme, what doc changes from the stored revision.
func scheduleChanges(stored *store.Schedule, doc *scheduler.Document) []string {
	if stored == nil {
		out := []string{"a first schedule for this target"}
		for _, p := range doc.Programs {
			out = append(out, "+ "+progName(p))
		}
		return out
	}
	old, err := scheduler.Parse("stored", stored.Document)
	if err != nil {
		return []string{"replaces revision " + strconv.FormatInt(stored.Revision, 10) + " (which no longer parses)"}
	}
	var out []string
	if old.Timezone != doc.Timezone {
		out = append(out, fmt.Sprintf("~ timezone %s → %s", old.Timezone, doc.Timezone))
	}
	if q1, q2 := jsonOf(old.QuietHours), jsonOf(doc.QuietHours); q1 != q2 {
		out = append(out, fmt.Sprintf("~ quiet_hours %s → %s", q1, q2))
	}
	was := map[string]scheduler.Program{}
	for _, p := range old.Programs {
		was[p.ID] = p
	}
	for _, p := range doc.Programs {
		o, ok := was[p.ID]
		switch {
		case !ok:
			out = append(out, "+ "+progName(p))
		case jsonOf(o) != jsonOf(p):
			out = append(out, "~ "+progName(p))
		}
		delete(was, p.ID)
	}
	gone := make([]string, 0, len(was))
	for _, p := range was {
		gone = append(gone, "- "+progName(p))
	}
	sort.Strings(gone)
	return append(out, gone...)
}

func progName(p scheduler.Program) string {
	if p.Title != "" {
		return fmt.Sprintf("%s (%s)", p.ID, p.Title)
	}
	return p.ID
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// dryRun answers a push with dry_run: what would be stored and whom it reaches.
func (s *Server) dryRun(ctx context.Context, target store.Target, area string, doc *scheduler.Document) (api.PushResponse, error) {
	res := api.PushResponse{Target: target.String(), DryRun: true, Devices: 1}
	latest, err := s.st.LatestSchedule(ctx, target)
	switch {
	case errors.Is(err, store.ErrNotFound):
		res.Revision, res.Changes = 1, scheduleChanges(nil, doc)
	case err != nil:
		return res, err
	case sameSchedule(latest, doc):
		res.Revision, res.Unchanged, res.Devices = latest.Revision, true, 0
		return res, nil
	default:
		res.Revision, res.Changes = latest.Revision+1, scheduleChanges(&latest, doc)
	}
	if target.Kind == store.TargetArea {
		ds, err := s.st.ListDevices(ctx, area)
		if err != nil {
			return res, err
		}
		res.Devices = len(ds)
	}
	return res, nil
}

func scheduleJSON(sc store.Schedule, withDoc bool) api.ScheduleJSON {
	j := api.ScheduleJSON{Target: sc.Target.String(), Revision: sc.Revision, ScheduleID: sc.ID, Author: sc.Author, CreatedAt: sc.CreatedAt,
		ApprovedBy: sc.ApprovedBy, ApprovedAt: staffapi.TimePtr(sc.ApprovedAt)}
	if d, err := scheduler.Parse("stored", sc.Document); err == nil {
		j.Programs = len(d.Programs)
	}
	if withDoc {
		j.Document = string(sc.Document)
	}
	return j
}

// apiListSchedules lists the revisions of one target (?to=), newest first, or the newest
// revision of every area and device in the caller's scope and of the areas above it.
func (s *Server) apiListSchedules(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ctx := r.Context()
	out := []api.ScheduleJSON{}
	if to := r.URL.Query().Get("to"); to != "" {
		target, _, ok := s.resolveTarget(w, r, p, to)
		if !ok {
			return
		}
		scs, err := s.st.ScheduleRevisions(ctx, target, 100)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		for _, sc := range scs {
			out = append(out, scheduleJSON(sc, false))
		}
		staffapi.WriteJSON(w, http.StatusOK, out)
		return
	}
	chain, err := s.areaChain(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	under, err := s.st.LatestSchedulesUnder(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	seen := map[string]bool{}
	for _, sc := range chain {
		seen[sc.Target.String()] = true
		out = append(out, scheduleJSON(sc, false))
	}
	var rest []store.Schedule
	for _, sc := range under.Areas {
		if !seen[sc.Target.String()] {
			rest = append(rest, sc)
		}
	}
	for _, sc := range under.Devices {
		rest = append(rest, sc)
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Target.String() < rest[j].Target.String() })
	for _, sc := range rest {
		out = append(out, scheduleJSON(sc, false))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// apiShowSchedule answers one stored revision (?revision=, default the newest) with its document.
func (s *Server) apiShowSchedule(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	target, _, ok := s.resolveTarget(w, r, p, q.Get("to"))
	if !ok {
		return
	}
	var sc store.Schedule
	var err error
	if rv := q.Get("revision"); rv != "" {
		n, perr := strconv.ParseInt(rv, 10, 64)
		if perr != nil || n <= 0 {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("revision %q: write a revision number from `loa schedule list --to %s`", rv, target.ID))
			return
		}
		sc, err = s.st.ScheduleRevision(r.Context(), target, n)
	} else {
		sc, err = s.st.LatestSchedule(r.Context(), target)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("%v: `loa schedule list` shows what is stored", err))
			return
		}
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, scheduleJSON(sc, true))
}

// apiPlan compiles what a device will play over [from, until) from the hub's newest signed
// document for it; for an area, from what a device there without a schedule of its own is
// given (the area's and its ancestors' schedules and the broadcasts reaching it).
//
// POST (a body as a push's, api.PushRequest) is the same for a schedule not yet pushed: what
// the target's devices would play with req.Document in place of the target's own schedule,
// composed with everything above it (the console's push preview).
func (s *Server) apiPlan(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ctx := r.Context()
	q := r.URL.Query()
	to := q.Get("to")
	var req api.PushRequest
	if r.Method == http.MethodPost {
		if !staffapi.ReadJSON(w, r, &req) {
			return
		}
		to = req.To
	}
	target, area, ok := s.resolveTarget(w, r, p, to)
	if !ok {
		return
	}
	now := s.clock.Now()
	from, until := now, now.Add(24*time.Hour)
	var err error
	if v := q.Get("from"); v != "" {
		if from, _, err = api.ParseTime(v, now, p.Zone); err != nil {
			staffapi.Error(w, http.StatusBadRequest, "--from "+err.Error())
			return
		}
		until = from.Add(24 * time.Hour)
	}
	if v := q.Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 31 {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("days %q: write 1 to 31", v))
			return
		}
		until = from.Add(time.Duration(n) * 24 * time.Hour)
	}
	if v := q.Get("until"); v != "" {
		if until, _, err = api.ParseTime(v, now, p.Zone); err != nil {
			staffapi.Error(w, http.StatusBadRequest, "--until "+err.Error())
			return
		}
	}
	if !until.After(from) || until.Sub(from) > 31*24*time.Hour {
		staffapi.Error(w, http.StatusBadRequest, "the plan's --until must be after --from and at most 31 days later")
		return
	}
	plan := api.PlanJSON{Target: target.String(), From: from, Until: until, Segments: []api.PlanSegment{}}
	var docBytes []byte
	if target.Kind == store.TargetDevice {
		plan.Device = target.ID
	}
	switch {
	case r.Method == http.MethodPost:
		doc, err := scheduler.Parse("the new schedule of "+target.String(), []byte(req.Document))
		if err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		if docBytes, err = s.composeWith(ctx, target, area, doc); err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
	case target.Kind == store.TargetDevice:
		e, err := s.st.LatestEffective(ctx, target.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			staffapi.Fail(w, err)
			return
		default:
			payload, perr := payloadDocument(e.Document)
			if perr != nil {
				staffapi.Error(w, http.StatusInternalServerError, perr.Error())
				return
			}
			docBytes, plan.Revision = payload, e.Revision
		}
	default:
		srcs, err := s.areaChain(ctx, area)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		pre, err := s.bc.Covering(ctx, area)
		if err != nil {
			staffapi.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		if srcs = append(pre, srcs...); len(srcs) > 0 {
			if docBytes, err = s.link.Compose(ctx, area, 1, srcs); err != nil {
				staffapi.Error(w, http.StatusBadRequest, err.Error())
				return
			}
		}
	}
	if docBytes == nil {
		plan.Timezone = p.Zone.String()
		staffapi.WriteJSON(w, http.StatusOK, plan) // nothing to play
		return
	}
	doc, err := scheduler.Parse("composed schedule of "+target.String(), docBytes)
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	plan.Timezone = doc.Timezone
	for _, q := range doc.QuietHours {
		plan.QuietHours = append(plan.QuietHours, api.PlanQuiet{From: q.From.String(), To: q.To.String()})
	}
	tl, err := scheduler.Compile(doc, from, until, scheduler.CompileOptions{ItemLength: s.itemLength(ctx)})
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	titles := newTitler(ctx, s)
	progTitle := map[string]string{}
	for _, pr := range doc.Programs {
		progTitle[pr.ID] = pr.Title
	}
	for _, seg := range tl.Segments {
		plan.Segments = append(plan.Segments, api.PlanSegment{Start: seg.Start, End: seg.End, Scheduled: seg.Scheduled,
			Output: seg.Output, Class: seg.Class.String(), Program: seg.Program, Title: progTitle[seg.Program],
			Item: seg.Ref, ItemTitle: titles.item(seg.Ref), Status: string(seg.Status)})
	}
	sort.SliceStable(plan.Segments, func(i, j int) bool { return plan.Segments[i].Start.Before(plan.Segments[j].Start) })
	staffapi.WriteJSON(w, http.StatusOK, plan)
}

// payloadDocument is the schedule document inside a stored effective revision's signed payload.
func payloadDocument(payload []byte) ([]byte, error) {
	var p protocol.SchedulePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("stored effective schedule: %w", err)
	}
	return []byte(p.Document), nil
}

// composeWith is the effective schedule of target's devices were doc its own schedule: the
// broadcasts covering its area and the schedules above it (for a device, its area's chain),
// composed as the hub composes them, then doc's programmes, nearest, deciding the zone and
// the quiet hours. For an area that is what a device there without a schedule of its own plays.
func (s *Server) composeWith(ctx context.Context, target store.Target, area string, doc *scheduler.Document) ([]byte, error) {
	srcs, err := s.bc.Covering(ctx, area)
	if err != nil {
		return nil, err
	}
	var chain []store.Schedule
	if target.Kind == store.TargetDevice {
		chain, err = s.st.SchedulesForDevice(ctx, target.ID)
	} else {
		chain, err = s.areaChain(ctx, area)
	}
	if err != nil {
		return nil, err
	}
	above := []store.Schedule{}
	for _, sc := range append(srcs, chain...) {
		if sc.Target != target {
			above = append(above, sc)
		}
	}
	eff := scheduler.Document{Version: scheduler.SchemaVersion, ID: doc.ID, Revision: 1, Timezone: doc.Timezone, QuietHours: doc.QuietHours}
	if len(above) > 0 {
		b, err := s.link.Compose(ctx, target.ID, 1, above)
		if err != nil {
			return nil, err
		}
		up, err := scheduler.Parse("composed schedule above "+target.String(), b)
		if err != nil {
			return nil, err
		}
		eff.Programs = up.Programs
	}
	for _, pr := range doc.Programs {
		pr.ID = agentlink.ProgramPrefix(target) + "/" + pr.ID
		eff.Programs = append(eff.Programs, pr)
	}
	return eff.Encode()
}

// itemLength gives library content the length the hub recorded and a device's own file a
// second (only the device can measure it), as the hub's check before a push does: a
// composed document has its content lengths written in, a previewed one not yet.
func (s *Server) itemLength(ctx context.Context) func(scheduler.Item) (time.Duration, bool) {
	lengths := map[string]time.Duration{}
	return func(it scheduler.Item) (time.Duration, bool) {
		if it.File != "" {
			return time.Second, true
		}
		d, ok := lengths[it.Content]
		if !ok && it.Content != "" {
			if c, err := s.st.GetContent(ctx, it.Content); err == nil {
				d = c.Duration
			}
			lengths[it.Content] = d
		}
		return d, d > 0
	}
}
