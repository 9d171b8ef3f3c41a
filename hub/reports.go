package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/library"
	"github.com/loa-project/loa/hub/report"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// reportPeriod reads the period of a report: ?year=2026 (the calendar year in the caller's
// zone), or ?from= and ?to= (api.TimeRule; a plain date as to is the last day included). No
// period: this year up to the end of today.
func reportPeriod(q map[string][]string, now time.Time, loc *time.Location) (time.Time, time.Time, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	year, from, to := get("year"), get("from"), get("to")
	if year != "" {
		if from != "" || to != "" {
			return time.Time{}, time.Time{}, errors.New("--year is a whole calendar year: give it or --from/--to, not both")
		}
		y, err := strconv.Atoi(year)
		if err != nil || y < 2000 || y > 2200 {
			return time.Time{}, time.Time{}, fmt.Errorf("--year %q: write a year such as %d", year, now.In(loc).Year())
		}
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc), time.Date(y+1, 1, 1, 0, 0, 0, 0, loc), nil
	}
	y, m, d := now.In(loc).Date()
	start, end := time.Date(y, 1, 1, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	var err error
	if from != "" {
		if start, err = staffapi.ParseTimeParam("from", from, now, loc); err != nil {
			return start, end, err
		}
	}
	if to != "" {
		if end, err = staffapi.ParseTimeParam("to", to, now, loc); err != nil {
			return start, end, err
		}
		if isDate(to) { // "đến ngày 31/12": that day is in the report
			end = end.AddDate(0, 0, 1)
		}
	}
	if !start.Before(end) {
		return start, end, fmt.Errorf("the period from %s to %s is empty: --from must be before --to", from, to)
	}
	return start, end, nil
}

func isDate(v string) bool {
	for _, layout := range []string{"2006-01-02", "02/01/2006"} {
		if _, err := time.Parse(layout, v); err == nil {
			return true
		}
	}
	return false
}

// reportNames gathers the names a report shows for the codes it holds.
func (s *Server) reportNames(r *http.Request, p staffapi.Caller, area string) report.Names {
	n := report.Names{Areas: map[string]string{}, Titles: map[string]string{}, Labels: library.Labels(r.Context(), s.st), Zone: p.Zone, Now: s.clock.Now().In(p.Zone)}
	top := area
	if top == "" {
		top = p.Scope
	}
	if as, err := s.st.ListSubtree(r.Context(), top); err == nil {
		for _, a := range as {
			n.Areas[a.ID] = a.Name
		}
	}
	if a, err := s.st.GetArea(r.Context(), top); err == nil {
		n.Areas[a.ID] = a.Name
	}
	return n
}

// apiReport serves GET /api/reports/{kind}: plan, plays or devices, as JSON (the laid-out
// report.Doc), CSV, XLSX or PDF (?format=).
func (s *Server) apiReport(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" || format == "table" {
		format = "json"
	}
	if format != "json" && format != "csv" && format != "xlsx" && format != "pdf" {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("format %q: use table, csv, xlsx or pdf", format))
		return
	}
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	from, to, err := reportPeriod(q, s.clock.Now(), p.Zone)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	period := store.PeriodFilter{Area: area, From: from, To: to}
	names := s.reportNames(r, p, area)
	var doc report.Doc
	switch kind := r.PathValue("kind"); kind {
	case "plan":
		o, ok := s.planOptions(w, r, period)
		if !ok {
			return
		}
		if v := q.Get("depth"); v != "" {
			if o.CommuneDepth, err = strconv.Atoi(v); err != nil || o.CommuneDepth < 1 {
				staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("--depth %q: write the depth of the communes in the area tree (1 = top area, 2 = the level below…)", v))
				return
			}
		}
		rep, err := s.st.Plan(r.Context(), o)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		// Who approved each product: of the programmes that carried it (issue 22).
		if plays, err := s.st.Plays(r.Context(), store.PlaysFilter{PeriodFilter: period}); err == nil {
			names.ItemApprovers = s.reportApprovers(r.Context(), from, to).items(plays.Lines)
		}
		doc = report.PlanDoc(rep, names)
	case "plays":
		f := store.PlaysFilter{PeriodFilter: period, Item: q.Get("content"), Program: q.Get("program")}
		if id := q.Get("device"); id != "" {
			d, ok := s.lookupDevice(w, r, p, id)
			if !ok {
				return
			}
			f.DeviceID = d.ID
		}
		rep, err := s.st.Plays(r.Context(), f)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		approvers := s.reportApprovers(r.Context(), from, to)
		names.Approvers = map[string]string{}
		for _, l := range rep.Lines {
			names.Approvers[l.Program] = approvers.program(l.Program)
			if _, ok := names.Titles[l.Item]; !ok && strings.HasPrefix(l.Item, "sha256:") {
				if c, err := s.st.GetContent(r.Context(), l.Item); err == nil {
					names.Titles[l.Item] = c.Title
				}
			}
		}
		doc = report.PlaysDoc(rep, names)
	case "devices":
		rep, err := s.st.Devices(r.Context(), period, p.Zone)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		doc = report.DevicesDoc(rep, names)
	default:
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no report %q: the reports are plan, plays and devices", kind))
		return
	}
	if format == "json" {
		staffapi.WriteJSON(w, http.StatusOK, doc)
		return
	}
	// Rendered whole before the status is sent, so a failure is an error answer, not half a file.
	var buf bytes.Buffer
	switch format {
	case "csv":
		err = report.WriteCSV(&buf, doc)
	case "xlsx":
		err = report.WriteXLSX(&buf, doc)
	case "pdf":
		err = report.WritePDF(&buf, doc)
	}
	if err != nil {
		s.log.Error("report not rendered", "kind", doc.Kind, "format", format, "err", err)
		code := http.StatusInternalServerError
		if errors.Is(err, report.ErrNoFont) {
			code = http.StatusServiceUnavailable
		}
		staffapi.Error(w, code, fmt.Sprintf("the %s report could not be written as %s: %v", doc.Kind, format, err))
		return
	}
	w.Header().Set("Content-Type", report.ContentType(format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="loa-%s-%s.%s"`, doc.Kind, from.In(p.Zone).Format("20060102"), format))
	w.Header().Set(api.ZoneHeader, p.Zone.String())
	w.Write(buf.Bytes())
}

// planOptions is what the plan report counts towards its target: the hub's report setting,
// or the request's own (?home=, ?digital=).
func (s *Server) planOptions(w http.ResponseWriter, r *http.Request, period store.PeriodFilter) (store.PlanOptions, bool) {
	o := store.PlanOptions{PeriodFilter: period}
	set, err := s.reportSettings(r.Context())
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return o, false
	}
	o.HomeLanguages, o.DigitalFormats = set.HomeLanguages, set.DigitalFormats
	q := r.URL.Query()
	if v := q.Get("home"); v != "" {
		o.HomeLanguages = strings.Split(v, ",")
	}
	if v := q.Get("digital"); v != "" {
		o.DigitalFormats = strings.Split(v, ",")
	}
	return o, true
}

// chartStore is the store's part the plan report's charts read.
type chartStore interface {
	Series(ctx context.Context, o store.PlanOptions, step store.SeriesStep) (store.PlanSeries, error)
	AreaTree(ctx context.Context, o store.PlanOptions, levels int) ([]store.AreaCoverage, error)
}

// planChart reads what the plan report's charts share: the area and period (scoped as the
// reports), the target setting, the format (json or csv) and the store that charts.
func (s *Server) planChart(w http.ResponseWriter, r *http.Request, p staffapi.Caller) (o store.PlanOptions, format string, cs chartStore, ok bool) {
	format = r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("format %q: the charts' figures are json or csv", format))
		return o, format, nil, false
	}
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return o, format, nil, false
	}
	from, to, err := reportPeriod(r.URL.Query(), s.clock.Now(), p.Zone)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return o, format, nil, false
	}
	if cs, ok = staffapi.StoreAs[chartStore](w, s.st, "cannot chart the plan report"); !ok {
		return o, format, nil, false
	}
	o, ok = s.planOptions(w, r, store.PeriodFilter{Area: area, From: from, To: to})
	return o, format, cs, ok
}

// writeChart answers the chart's figures as JSON, or its table as CSV.
func (s *Server) writeChart(w http.ResponseWriter, format string, v any, doc report.Doc, from time.Time, zone *time.Location) {
	if format == "json" {
		staffapi.WriteJSON(w, http.StatusOK, v)
		return
	}
	var buf bytes.Buffer
	if err := report.WriteCSV(&buf, doc); err != nil {
		staffapi.Error(w, http.StatusInternalServerError, fmt.Sprintf("the %s figures could not be written as CSV: %v", doc.Kind, err))
		return
	}
	w.Header().Set("Content-Type", report.ContentType("csv"))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="loa-%s-%s.csv"`, doc.Kind, from.In(zone).Format("20060102")))
	w.Write(buf.Bytes())
}

// apiPlanSeries serves GET /api/reports/plan/series: the plan report's figures per month
// (per week for a period of two months or less, or as ?step= says).
func (s *Server) apiPlanSeries(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	o, format, cs, ok := s.planChart(w, r, p)
	if !ok {
		return
	}
	ser, err := cs.Series(r.Context(), o, store.SeriesStep(r.URL.Query().Get("step")))
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	doc := report.SeriesDoc(ser, s.reportNames(r, p, o.Area))
	s.writeChart(w, format, doc, report.SeriesTable(doc), o.From, p.Zone)
}

// apiPlanAreas serves GET /api/reports/plan/areas: coverage and target share of the area and
// the two levels below it (?levels= for more or fewer).
func (s *Server) apiPlanAreas(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	o, format, cs, ok := s.planChart(w, r, p)
	if !ok {
		return
	}
	levels := 2
	if v := r.URL.Query().Get("levels"); v != "" {
		var err error
		if levels, err = strconv.Atoi(v); err != nil || levels < 1 || levels > store.MaxAreaDepth {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("levels %q: write how many levels of areas below the report's to list (1 to %d)", v, store.MaxAreaDepth))
			return
		}
	}
	tree, err := cs.AreaTree(r.Context(), o, levels)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	doc := report.AreaTreeDoc(o, tree, s.reportNames(r, p, o.Area))
	s.writeChart(w, format, doc, report.AreaTreeTable(doc), o.From, p.Zone)
}

// positivePtr is v when above 0 (a reported volume), else nil.
func positivePtr(v float64) *float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return &v
	}
	return nil
}
