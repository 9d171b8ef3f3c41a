package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The plan report's charts (issue 16): its figures month by month (week by week for a short
// period), and its coverage and target share for each area of the tree below the report's
// area. Both read the period's heard plays once, as the plan report does: whole months from
// play_months, the rest from the confirmations grouped by day; the rows (months or days ×
// items) are few and rolled up here.

// SeriesStep is how a series cuts its period.
type SeriesStep string

const (
	StepMonth SeriesStep = "month"
	StepWeek  SeriesStep = "week"
)

// shortPeriod is the longest period a series cuts by week unless told, and weekClusters the
// most clusters of its area: weeks are read from the confirmations (no summary keeps days and
// items), which for a province takes seconds a week (BENCHMARKS.md), so a larger area gets months.
const (
	shortPeriod  = 62 * 24 * time.Hour
	weekClusters = 200
)

// SeriesPoint is one month or week of the series: the plan report's figures over it.
type SeriesPoint struct {
	From, To   time.Time // the part of the period in this month or week
	Products   int64     // distinct items heard
	Broadcasts int64
	Seconds    float64
	Tagged     int64 // classified products (language and format)
	Target     int64 // classified products in a non-national language or digital
	Foreign    int64 // classified products in a non-national language
	Digital    int64 // classified products of a digital format
	ByLanguage []PlanGroup
	ByTheme    []PlanGroup
}

// Share is Target / Tagged (0 with none classified).
func (p SeriesPoint) Share() float64 { return ratio(p.Target, p.Tagged) }

// ForeignShare is Foreign / Tagged.
func (p SeriesPoint) ForeignShare() float64 { return ratio(p.Foreign, p.Tagged) }

// DigitalShare is Digital / Tagged.
func (p SeriesPoint) DigitalShare() float64 { return ratio(p.Digital, p.Tagged) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// PlanSeries is the plan report's figures over time.
type PlanSeries struct {
	PlanOptions
	Step   SeriesStep
	Points []SeriesPoint
}

// targetKinds says why a classified item counts towards the plan's target: its language is
// not the national one (zxx/none, no speech, is no language), or its format is digital.
func (o PlanOptions) targetKinds(i ItemFigures) (foreign, digital bool) {
	if i.Untagged() {
		return false, false
	}
	home, dig := o.HomeLanguages, o.DigitalFormats
	if len(home) == 0 {
		home = []string{"vi", "vie"}
	}
	if len(dig) == 0 {
		dig = []string{"digital"}
	}
	return !contains(home, i.Language) && i.Language != "zxx" && i.Language != "none", contains(dig, i.Format)
}

// seriesBuckets cuts [from, to) at the months or weeks (Monday) of summaryZone.
func seriesBuckets(from, to time.Time, step SeriesStep) []SeriesPoint {
	var out []SeriesPoint
	for start := from; start.Before(to); {
		s := start.In(summaryZone)
		var next time.Time
		if step == StepWeek {
			day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, summaryZone)
			next = day.AddDate(0, 0, 7-(int(day.Weekday())+6)%7)
		} else {
			next = time.Date(s.Year(), s.Month()+1, 1, 0, 0, 0, 0, summaryZone)
		}
		if next.After(to) {
			next = to
		}
		out = append(out, SeriesPoint{From: start, To: next})
		start = next
	}
	return out
}

// seriesGroups is the SQL of (kind, key, item, heard plays, seconds heard) over the period:
// kind 0 keys are months (yyyymm, from play_months), kind 1 keys days since 1970-01-01 +07
// (from the confirmations, for what is not whole months or when months are not wanted).
func seriesGroups(f PeriodFilter, useMonths bool) (string, []any) {
	var parts []string
	var args []any
	dayExpr := fmt.Sprintf("(c.at + %d) / %d", summaryOffset, int64(24*time.Hour))
	raw := func(from, to time.Time) error {
		cond, a := subtree("c.area_id", f.Area)
		parts = append(parts, `SELECT 1, `+dayExpr+`, c.item_ref, COUNT(*), SUM(c.played_s) FROM confirmations c
			WHERE `+cond+` AND c.at >= ? AND c.at < ? AND `+heard+` GROUP BY `+dayExpr+`, c.item_ref`)
		args = append(append(args, a...), ts(from), ts(to))
		return nil
	}
	mFrom, mTo, whole, _ := byMonths(f.From, f.To, useMonths, raw)
	if whole {
		cond, a := subtree("m.area_id", f.Area)
		parts = append(parts, `SELECT 0, m.month, m.item_ref, SUM(m.heard), SUM(m.played_s) FROM play_months m
			WHERE `+cond+` AND m.month >= ? AND m.month < ? AND m.heard > 0 GROUP BY m.month, m.item_ref`)
		args = append(append(args, a...), monthOf(mFrom), monthOf(mTo))
	}
	return strings.Join(parts, " UNION ALL "), args
}

// Series computes the plan report's figures per month of the period, or per week (from Monday,
// +07) when step is StepWeek; "" chooses weeks for a period of two months or less in an area
// of at most weekClusters clusters. It is one query over the summaries and the period's
// edges, whatever the number of months.
func (db *DB) Series(ctx context.Context, o PlanOptions, step SeriesStep) (PlanSeries, error) {
	if err := o.check(); err != nil {
		return PlanSeries{}, err
	}
	switch step {
	case "":
		step = StepMonth
		if o.To.Sub(o.From) <= shortPeriod {
			var n int64
			cond, args := subtree("area_id", o.Area)
			if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL AND "+cond, args...).Scan(&n); err != nil {
				return PlanSeries{}, fmt.Errorf("plan series: devices: %w", err)
			}
			if n <= weekClusters {
				step = StepWeek
			}
		}
	case StepMonth, StepWeek:
	default:
		return PlanSeries{}, fmt.Errorf("%w: series step %q; want month or week", ErrInvalid, step)
	}
	ser := PlanSeries{PlanOptions: o, Step: step, Points: seriesBuckets(o.From, o.To, step)}
	if len(ser.Points) > 400 {
		return PlanSeries{}, fmt.Errorf("%w: a series of %d %ss is too long to draw; cut the period or use months", ErrInvalid, len(ser.Points), step)
	}
	// Each month and day of the rows falls in exactly one bucket: buckets are cut at months or
	// Mondays of summaryZone, and at the period's ends, which the edges' queries also stop at.
	bucketOf := func(kind int, key int64) int {
		var at time.Time
		if kind == 0 {
			at = time.Date(int(key/100), time.Month(key%100), 1, 0, 0, 0, 0, summaryZone)
		} else {
			at = time.Unix(0, key*int64(24*time.Hour)-summaryOffset)
		}
		i := sort.Search(len(ser.Points), func(i int) bool { return ser.Points[i].To.After(at) })
		return min(max(i, 0), len(ser.Points)-1)
	}
	src, args := seriesGroups(o.PeriodFilter, !db.rawReports && step == StepMonth)
	q := `WITH g(kind, k, r, n, s) AS (` + src + `)
		SELECT g.kind, g.k, g.r, g.n, g.s, k.ref IS NOT NULL, COALESCE(k.language, ''), COALESCE(k.theme, ''), COALESCE(k.format, '')
		FROM g LEFT JOIN content k ON k.ref = g.r`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return ser, fmt.Errorf("plan series: %w", err)
	}
	defer rows.Close()
	type key struct {
		bucket int
		ref    string
	}
	items := map[key]*ItemFigures{}
	for rows.Next() {
		var kind int
		var k, n int64
		var s float64
		var it ItemFigures
		if err := rows.Scan(&kind, &k, &it.Ref, &n, &s, &it.InLibrary, &it.Language, &it.Theme, &it.Format); err != nil {
			return ser, fmt.Errorf("plan series: %w", err)
		}
		b := key{bucketOf(kind, k), it.Ref}
		p := items[b]
		if p == nil {
			p = &it
			items[b] = p
		}
		p.Broadcasts += n
		p.Seconds += s
	}
	if err := rows.Err(); err != nil {
		return ser, fmt.Errorf("plan series: %w", err)
	}
	langs := make([]map[string]*PlanGroup, len(ser.Points))
	themes := make([]map[string]*PlanGroup, len(ser.Points))
	for k, it := range items {
		p := &ser.Points[k.bucket]
		if langs[k.bucket] == nil {
			langs[k.bucket], themes[k.bucket] = map[string]*PlanGroup{}, map[string]*PlanGroup{}
		}
		p.Products++
		p.Broadcasts += it.Broadcasts
		p.Seconds += it.Seconds
		if !it.Untagged() {
			p.Tagged++
			foreign, digital := o.targetKinds(*it)
			p.Foreign += b2i(foreign)
			p.Digital += b2i(digital)
			p.Target += b2i(foreign || digital)
		}
		addGroup(langs[k.bucket], it.Language, it)
		addGroup(themes[k.bucket], it.Theme, it)
	}
	for i := range ser.Points {
		ser.Points[i].ByLanguage, ser.Points[i].ByTheme = groups(langs[i]), groups(themes[i])
	}
	return ser, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// addGroup counts an item, its broadcasts and time in the line of its code.
func addGroup(m map[string]*PlanGroup, code string, it *ItemFigures) {
	g := m[code]
	if g == nil {
		g = &PlanGroup{Code: code}
		m[code] = g
	}
	g.Products++
	g.Broadcasts += it.Broadcasts
	g.Seconds += it.Seconds
}

// AreaCoverage is one area of the tree below a plan report's area: what was heard there and
// how widely.
type AreaCoverage struct {
	Area       string
	Name       string
	Level      int   // 0 the report's area, 1 its children, 2 theirs
	Devices    int64 // clusters and boards enrolled there now (not revoked)
	Products   int64 // distinct items heard there
	Broadcasts int64
	Seconds    float64
	Tagged     int64 // classified products heard there
	Target     int64 // of which count towards the target
	// Coverage is the mean, over the products heard there, of the share of its devices that
	// heard each (devices that heard it ÷ Devices, at most 1).
	Coverage float64
}

// Share is Target / Tagged.
func (a AreaCoverage) Share() float64 { return ratio(a.Target, a.Tagged) }

// AreaTree computes the plan report's coverage and target share for its area and the areas
// down to levels below it (the area tree's order: each area before its children). Areas with
// nothing heard are listed with zeros.
func (db *DB) AreaTree(ctx context.Context, o PlanOptions, levels int) ([]AreaCoverage, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if levels < 1 || levels > MaxAreaDepth {
		return nil, fmt.Errorf("%w: area tree of %d levels; want 1 to %d", ErrInvalid, levels, MaxAreaDepth)
	}
	areas, err := db.ListSubtree(ctx, o.Area)
	if err != nil {
		return nil, fmt.Errorf("area tree: %w", err)
	}
	base := strings.Count(o.Area, "/") + 1 // the report area's depth; 0 for everywhere
	if o.Area == "" {
		base = 0
	}
	var out []AreaCoverage
	idx := map[string]int{}
	if o.Area == "" {
		idx[""] = 0
		out = append(out, AreaCoverage{})
	}
	for _, a := range areas {
		if a.Depth-base <= levels {
			idx[a.ID] = len(out)
			out = append(out, AreaCoverage{Area: a.ID, Name: a.Name, Level: a.Depth - base})
		}
	}
	// The tree's order: each area before its children ("p/d" < "p/d/a" < "p/d-x").
	sort.SliceStable(out, func(i, j int) bool {
		return strings.ReplaceAll(out[i].Area, "/", "\x00") < strings.ReplaceAll(out[j].Area, "/", "\x00")
	})
	for i, a := range out {
		idx[a.Area] = i
	}
	// nodes are the indexes of the tree's areas at or above area.
	nodes := func(area string) []int {
		var n []int
		for d := base; d <= base+levels; d++ {
			if d == 0 {
				n = append(n, 0)
				continue
			}
			segs := strings.SplitN(area, "/", d+1)
			if len(segs) < d {
				break
			}
			if i, ok := idx[strings.Join(segs[:d], "/")]; ok {
				n = append(n, i)
			}
		}
		return n
	}
	dcond, dargs := subtree("area_id", o.Area)
	drows, err := db.r.QueryContext(ctx, "SELECT area_id, COUNT(*) FROM devices WHERE revoked_at IS NULL AND "+dcond+" GROUP BY area_id", dargs...)
	if err != nil {
		return nil, fmt.Errorf("area tree: devices: %w", err)
	}
	for drows.Next() {
		var area string
		var n int64
		if err := drows.Scan(&area, &n); err != nil {
			drows.Close()
			return nil, fmt.Errorf("area tree: devices: %w", err)
		}
		for _, i := range nodes(area) {
			out[i].Devices += n
		}
	}
	drows.Close()
	if err := drows.Err(); err != nil {
		return nil, fmt.Errorf("area tree: devices: %w", err)
	}
	src, args := heardGroups(o.PeriodFilter, db.rawReports)
	rows, err := db.r.QueryContext(ctx, `WITH g(a, d, r, n, s) AS (`+src+`)
		SELECT g.a, g.d, g.r, g.n, g.s, k.ref IS NOT NULL, COALESCE(k.language, ''), COALESCE(k.format, '')
		FROM g LEFT JOIN content k ON k.ref = g.r`, args...)
	if err != nil {
		return nil, fmt.Errorf("area tree: %w", err)
	}
	defer rows.Close()
	// Interned ids keep the (area, item, device) sets small at a province's scale.
	ids := map[string]uint64{}
	id := func(s string) uint64 {
		v, ok := ids[s]
		if !ok {
			v = uint64(len(ids))
			ids[s] = v
		}
		return v
	}
	type nodeItem struct {
		node int
		ref  string
	}
	heardBy := map[nodeItem]int64{}     // devices that heard the item there
	seenDev := map[[3]uint64]struct{}{} // (node, item, device) already counted
	tagged := map[nodeItem]ItemFigures{}
	for rows.Next() {
		var area, dev string
		var n int64
		var s float64
		var it ItemFigures
		if err := rows.Scan(&area, &dev, &it.Ref, &n, &s, &it.InLibrary, &it.Language, &it.Format); err != nil {
			return nil, fmt.Errorf("area tree: %w", err)
		}
		for _, i := range nodes(area) {
			out[i].Broadcasts += n
			out[i].Seconds += s
			k := nodeItem{i, it.Ref}
			if _, ok := tagged[k]; !ok {
				tagged[k] = it
			}
			dk := [3]uint64{uint64(i), id(it.Ref), id(dev)}
			if _, ok := seenDev[dk]; !ok {
				seenDev[dk] = struct{}{}
				heardBy[k]++
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("area tree: %w", err)
	}
	coverage := make([]float64, len(out))
	for k, it := range tagged {
		a := &out[k.node]
		a.Products++
		if !it.Untagged() {
			a.Tagged++
			if o.IsTarget(it) {
				a.Target++
			}
		}
		if a.Devices > 0 {
			coverage[k.node] += min(1, float64(heardBy[k])/float64(a.Devices))
		}
	}
	for i := range out {
		if out[i].Products > 0 {
			out[i].Coverage = coverage[i] / float64(out[i].Products)
		}
	}
	return out, nil
}
