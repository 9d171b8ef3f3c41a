package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The reports below count what was heard (confirmations), never what was scheduled. The heavy
// part — reading a year of plays — is one GROUP BY in SQLite per report; the few thousand
// groups it returns are rolled up here.

// PeriodFilter is the area and period a report covers.
type PeriodFilter struct {
	Area string    // the area played in, and below ("" = everywhere)
	From time.Time // at or after (required)
	To   time.Time // before (required)
}

func (f PeriodFilter) check() error {
	if f.From.IsZero() || f.To.IsZero() || !f.From.Before(f.To) {
		return fmt.Errorf("%w: report period [%v, %v) is empty or open; give both ends, from before to", ErrInvalid, f.From, f.To)
	}
	return nil
}

// PlanOptions says which products count towards the plan's target.
type PlanOptions struct {
	PeriodFilter
	// CommuneDepth is the depth of the area tree whose areas are the plan's communes (1 =
	// province). 0: one below the report's area.
	CommuneDepth int
	// HomeLanguages are the codes of the national language: a product in any other language
	// counts towards the target. Empty: vi and vie.
	HomeLanguages []string
	// DigitalFormats are the format codes of digital products, which count towards the target.
	// Empty: digital.
	DigitalFormats []string
}

// PlanGroup is one line of a by-language, by-theme or by-format table.
type PlanGroup struct {
	Code       string // "" for items without that metadata
	Products   int64  // distinct items heard
	Broadcasts int64  // heard plays
	Seconds    float64
}

// CommuneShare is the plan's target figure for one commune.
type CommuneShare struct {
	Area       string
	Products   int64 // distinct items with metadata heard there
	Target     int64 // of which in a non-national language or digital
	Untagged   int64 // distinct items heard there without language or format: not in the share
	Broadcasts int64
	Seconds    float64
}

// Share is Target / Products (0 with no products).
func (c CommuneShare) Share() float64 {
	if c.Products == 0 {
		return 0
	}
	return float64(c.Target) / float64(c.Products)
}

// ItemFigures is one product's line: how often and where it was heard.
type ItemFigures struct {
	Ref                           string
	Title                         string // "" for items not in the library
	Language, Theme, Format, Unit string
	InLibrary                     bool
	Broadcasts                    int64
	Seconds                       float64
	Devices                       int64 // distinct devices that heard it
}

// Untagged reports whether the item lacks the metadata the plan counts by.
func (i ItemFigures) Untagged() bool { return !i.InLibrary || i.Language == "" || i.Format == "" }

// EmergencyReach is one emergency of the period: how fast the area's devices played it.
type EmergencyReach struct {
	ID                         int64
	Title, Area                string
	IssuedAt                   time.Time
	Devices                    int64 // devices of its area now
	Within1, Within5, Within15 int64 // devices that first played it within 1, 5, 15 min of issue
	Later                      int64 // played it, but after 15 min
	Never                      int64 // Devices - those that played it
}

// PlanReport is the yearly plan report of an area.
type PlanReport struct {
	PlanOptions
	Devices int64 // devices in the area now (the coverage denominator)
	// OnlineShare is the devices' mean online share: the time the area's devices (now, not
	// revoked) were connected ÷ (Devices × the period's time past).
	OnlineShare float64
	Products    int64 // distinct items heard
	Broadcasts  int64
	Seconds     float64
	Target      int64 // distinct items with metadata in a non-national language or digital
	Tagged      int64 // distinct items with language and format
	ByLanguage  []PlanGroup
	ByTheme     []PlanGroup
	ByFormat    []PlanGroup
	Communes    []CommuneShare
	Items       []ItemFigures // every item heard, most broadcast first
	Emergencies []EmergencyReach
}

// Share is Target / Tagged.
func (p PlanReport) Share() float64 {
	if p.Tagged == 0 {
		return 0
	}
	return float64(p.Target) / float64(p.Tagged)
}

// IsTarget reports whether an item with metadata counts towards the plan's target.
func (o PlanOptions) IsTarget(i ItemFigures) bool {
	foreign, digital := o.targetKinds(i)
	return foreign || digital
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// heard is the condition of a play that reached the output.
const heard = "c.played_s > 0"

// Plan computes the plan report: one pass over the period's heard plays grouped by commune,
// device and item, joined with the library's metadata.
func (db *DB) Plan(ctx context.Context, o PlanOptions) (PlanReport, error) {
	if err := o.check(); err != nil {
		return PlanReport{}, err
	}
	if o.CommuneDepth == 0 {
		o.CommuneDepth = strings.Count(o.Area, "/") + 2
		if o.Area == "" {
			o.CommuneDepth = 2
		}
	}
	if o.CommuneDepth < 1 || o.CommuneDepth > MaxAreaDepth {
		return PlanReport{}, fmt.Errorf("%w: commune depth %d; want 1 to %d", ErrInvalid, o.CommuneDepth, MaxAreaDepth)
	}
	rep := PlanReport{PlanOptions: o}
	src, args := heardGroups(o.PeriodFilter, db.rawReports)
	// The GROUP BY reads the plays (or their monthly sums) once; the join touches its groups only.
	q := `WITH g(a, d, r, n, s) AS (` + src + `)
		SELECT g.a, g.d, g.r, g.n, g.s, k.ref IS NOT NULL, COALESCE(k.title, ''), COALESCE(k.language, ''),
			COALESCE(k.theme, ''), COALESCE(k.format, ''), COALESCE(k.producing_unit, '')
		FROM g LEFT JOIN content k ON k.ref = g.r`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return rep, fmt.Errorf("plan report: %w", err)
	}
	items := map[string]*ItemFigures{}
	itemDevices := map[string]map[string]bool{}
	type key struct{ commune, ref string }
	communeItems := map[key]bool{}
	communes := map[string]*CommuneShare{}
	for rows.Next() {
		var area, dev string
		var it ItemFigures
		var n int64
		var s float64
		if err := rows.Scan(&area, &dev, &it.Ref, &n, &s, &it.InLibrary, &it.Title, &it.Language, &it.Theme, &it.Format, &it.Unit); err != nil {
			rows.Close()
			return rep, fmt.Errorf("plan report: %w", err)
		}
		p := items[it.Ref]
		if p == nil {
			p = &it
			items[it.Ref] = p
			itemDevices[it.Ref] = map[string]bool{}
		}
		p.Broadcasts += n
		p.Seconds += s
		itemDevices[it.Ref][dev] = true
		cm := communeOf(area, o.CommuneDepth)
		c := communes[cm]
		if c == nil {
			c = &CommuneShare{Area: cm}
			communes[cm] = c
		}
		c.Broadcasts += n
		c.Seconds += s
		if !communeItems[key{cm, it.Ref}] {
			communeItems[key{cm, it.Ref}] = true
			switch {
			case it.Untagged():
				c.Untagged++
			case o.IsTarget(it):
				c.Products++
				c.Target++
			default:
				c.Products++
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("plan report: %w", err)
	}
	byLang, byTheme, byFormat := map[string]*PlanGroup{}, map[string]*PlanGroup{}, map[string]*PlanGroup{}
	for ref, it := range items {
		it.Devices = int64(len(itemDevices[ref]))
		rep.Products++
		rep.Broadcasts += it.Broadcasts
		rep.Seconds += it.Seconds
		if !it.Untagged() {
			rep.Tagged++
			if o.IsTarget(*it) {
				rep.Target++
			}
		}
		addGroup(byLang, it.Language, it)
		addGroup(byTheme, it.Theme, it)
		addGroup(byFormat, it.Format, it)
		rep.Items = append(rep.Items, *it)
	}
	sort.Slice(rep.Items, func(i, j int) bool {
		a, b := rep.Items[i], rep.Items[j]
		if a.Broadcasts != b.Broadcasts {
			return a.Broadcasts > b.Broadcasts
		}
		return a.Ref < b.Ref
	})
	rep.ByLanguage, rep.ByTheme, rep.ByFormat = groups(byLang), groups(byTheme), groups(byFormat)
	for _, c := range communes {
		rep.Communes = append(rep.Communes, *c)
	}
	sort.Slice(rep.Communes, func(i, j int) bool { return rep.Communes[i].Area < rep.Communes[j].Area })
	dcond, dargs := subtree("area_id", o.Area)
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL AND "+dcond, dargs...).Scan(&rep.Devices); err != nil {
		return rep, fmt.Errorf("plan report: devices: %w", err)
	}
	if err := db.planOnline(ctx, &rep); err != nil {
		return rep, err
	}
	rep.Emergencies, err = db.emergencyReach(ctx, o.PeriodFilter)
	return rep, err
}

// heardGroups is the SQL of (area, device, item, heard plays, seconds heard) over the period:
// its whole months from play_months, its edges from the confirmations. A group may appear once
// per part; callers add them up.
func heardGroups(f PeriodFilter, raw bool) (string, []any) {
	var parts []string
	var args []any
	rawPart := func(from, to time.Time) {
		cond, a := subtree("c.area_id", f.Area)
		parts = append(parts, `SELECT c.area_id, c.device_id, c.item_ref, COUNT(*), SUM(c.played_s) FROM confirmations c
			WHERE `+cond+` AND c.at >= ? AND c.at < ? AND `+heard+` GROUP BY c.area_id, c.device_id, c.item_ref`)
		args = append(append(args, a...), ts(from), ts(to))
	}
	mFrom, mTo, ok, _ := byMonths(f.From, f.To, !raw, func(from, to time.Time) error { rawPart(from, to); return nil })
	if !ok {
		return strings.Join(parts, " UNION ALL "), args
	}
	cond, a := subtree("m.area_id", f.Area)
	parts = append(parts, `SELECT m.area_id, m.device_id, m.item_ref, SUM(m.heard), SUM(m.played_s) FROM play_months m
		WHERE `+cond+` AND m.month >= ? AND m.month < ? AND m.heard > 0 GROUP BY m.area_id, m.device_id, m.item_ref`)
	args = append(append(args, a...), monthOf(mFrom), monthOf(mTo))
	return strings.Join(parts, " UNION ALL "), args
}

// communeOf is the ancestor of area at depth (area itself when shallower).
func communeOf(area string, depth int) string {
	segs := strings.SplitN(area, "/", depth+1)
	if len(segs) <= depth {
		return area
	}
	return strings.Join(segs[:depth], "/")
}

// groups orders a table most broadcast first, the items without metadata last.
func groups(m map[string]*PlanGroup) []PlanGroup {
	out := make([]PlanGroup, 0, len(m))
	for _, g := range m {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Code == "") != (b.Code == "") {
			return b.Code == ""
		}
		if a.Broadcasts != b.Broadcasts {
			return a.Broadcasts > b.Broadcasts
		}
		return a.Code < b.Code
	})
	return out
}

// emergencyReach finds, for each emergency issued in the period in or below the area (or
// above it: an emergency of the province reaches the commune), when each device of the area
// first played it.
func (db *DB) emergencyReach(ctx context.Context, f PeriodFilter) ([]EmergencyReach, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, title, area_id, issued_at, until_at FROM emergencies
		WHERE class = 'emergency' AND issued_at >= ? AND issued_at < ? ORDER BY issued_at, id`, ts(f.From), ts(f.To))
	if err != nil {
		return nil, fmt.Errorf("plan report: emergencies: %w", err)
	}
	type em struct {
		EmergencyReach
		until int64
	}
	var ems []em
	for rows.Next() {
		var e em
		var issued int64
		if err := rows.Scan(&e.ID, &e.Title, &e.Area, &issued, &e.until); err != nil {
			rows.Close()
			return nil, err
		}
		e.IssuedAt = time.Unix(0, issued).UTC()
		if f.Area == "" || Allowed(e.Area, f.Area) || Allowed(f.Area, e.Area) {
			ems = append(ems, e)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []EmergencyReach
	for _, e := range ems {
		// Devices of the emergency's area inside the report's area: the deeper of the two.
		area := e.Area
		if f.Area != "" && Allowed(e.Area, f.Area) {
			area = f.Area
		}
		dcond, dargs := subtree("area_id", area)
		if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL AND "+dcond, dargs...).Scan(&e.Devices); err != nil {
			return nil, err
		}
		ccond, cargs := subtree("c.area_id", area)
		prog := fmt.Sprintf("emergency:%d", e.ID)
		q := `SELECT MIN(c.started_at) FROM confirmations c WHERE c.at >= ? AND c.at <= ? AND ` + ccond +
			` AND (c.program = ? OR c.program LIKE ?) AND ` + heard + ` GROUP BY c.device_id`
		rs, err := db.r.QueryContext(ctx, q, append(append([]any{ts(e.IssuedAt), e.until}, cargs...), prog, prog+"/%")...)
		if err != nil {
			return nil, fmt.Errorf("plan report: emergency %d: %w", e.ID, err)
		}
		var played int64
		for rs.Next() {
			var first int64
			if err := rs.Scan(&first); err != nil {
				rs.Close()
				return nil, err
			}
			played++
			switch d := time.Duration(first - e.IssuedAt.UnixNano()); {
			case d <= time.Minute:
				e.Within1++
				fallthrough
			case d <= 5*time.Minute:
				e.Within5++
				fallthrough
			case d <= 15*time.Minute:
				e.Within15++
			default:
				e.Later++
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
		e.Never = max(0, e.Devices-played)
		out = append(out, e.EmergencyReach)
	}
	return out, nil
}

// PlaysFilter narrows the proof-of-play report.
type PlaysFilter struct {
	PeriodFilter
	DeviceID string
	Item     string // item ref
	Program  string
}

// PlayLine is one programme item of the plays report: scheduled vs heard and why not.
type PlayLine struct {
	Program, Item string
	Scheduled     int64            // confirmations: every play the schedule started or missed
	Heard         int64            // of which played > 0 s
	Seconds       float64          // time heard
	Results       map[string]int64 // by result
}

// PlayReason is one reason plays did not complete, with how many.
type PlayReason struct {
	Result, Error string
	Count         int64
}

// PlaysReport is proof of play for an area, device, item or programme over a period.
type PlaysReport struct {
	PlaysFilter
	Lines   []PlayLine
	Reasons []PlayReason
	Total   PlayLine
}

func (f PlaysFilter) where() (string, []any) {
	cond, args := subtree("c.area_id", f.Area)
	conds := []string{cond, "c.at >= ?", "c.at < ?"}
	args = append(args, ts(f.From), ts(f.To))
	for col, v := range map[string]string{"c.device_id": f.DeviceID, "c.item_ref": f.Item, "c.program": f.Program} {
		if v != "" {
			conds, args = append(conds, col+" = ?"), append(args, v)
		}
	}
	return strings.Join(conds, " AND "), args
}

// Plays computes the proof-of-play report: whole months from play_programs and
// play_reasons, the rest of the period (and any report of one device) from the confirmations.
func (db *DB) Plays(ctx context.Context, f PlaysFilter) (PlaysReport, error) {
	rep := PlaysReport{PlaysFilter: f, Total: PlayLine{Results: map[string]int64{}}}
	if err := f.check(); err != nil {
		return rep, err
	}
	idx := map[[2]string]int{}
	add := func(prog, item, result string, n, h int64, s float64) {
		if _, ok := resultIndex[result]; !ok {
			result = "other" // as the summaries keep it
		}
		i, ok := idx[[2]string{prog, item}]
		if !ok {
			i = len(rep.Lines)
			idx[[2]string{prog, item}] = i
			rep.Lines = append(rep.Lines, PlayLine{Program: prog, Item: item, Results: map[string]int64{}})
		}
		for _, l := range []*PlayLine{&rep.Lines[i], &rep.Total} {
			l.Scheduled += n
			l.Heard += h
			l.Seconds += s
			if n > 0 {
				l.Results[result] += n
			}
		}
	}
	reasons := map[[2]string]int64{}
	raw := func(from, to time.Time) error {
		g := f
		g.From, g.To = from, to
		where, args := g.where()
		rows, err := db.r.QueryContext(ctx, `SELECT c.program, c.item_ref, c.result, COUNT(*), COUNT(*) FILTER (WHERE `+heard+`), SUM(c.played_s)
			FROM confirmations c WHERE `+where+` GROUP BY c.program, c.item_ref, c.result`, args...)
		if err != nil {
			return fmt.Errorf("plays report: %w", err)
		}
		for rows.Next() {
			var prog, item, result string
			var n, h int64
			var s float64
			if err := rows.Scan(&prog, &item, &result, &n, &h, &s); err != nil {
				rows.Close()
				return fmt.Errorf("plays report: %w", err)
			}
			add(prog, item, result, n, h, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = db.r.QueryContext(ctx, `SELECT c.result, c.error, COUNT(*) FROM confirmations c WHERE `+where+
			` AND c.result <> 'completed' GROUP BY c.result, c.error`, args...)
		if err != nil {
			return fmt.Errorf("plays report: reasons: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r PlayReason
			if err := rows.Scan(&r.Result, &r.Error, &r.Count); err != nil {
				return err
			}
			reasons[[2]string{r.Result, r.Error}] += r.Count
		}
		return rows.Err()
	}
	mFrom, mTo, whole, err := byMonths(f.From, f.To, !db.rawReports && f.DeviceID == "", raw)
	if err != nil {
		return rep, err
	}
	if whole {
		cond, args := subtree("m.area_id", f.Area)
		conds := []string{cond, "m.month >= ?", "m.month < ?"}
		args = append(args, monthOf(mFrom), monthOf(mTo))
		if f.Item != "" {
			conds, args = append(conds, "m.item_ref = ?"), append(args, f.Item)
		}
		if f.Program != "" {
			conds, args = append(conds, "m.program = ?"), append(args, f.Program)
		}
		where := strings.Join(conds, " AND ")
		rows, err := db.r.QueryContext(ctx, `SELECT m.program, m.item_ref, SUM(m.plays), SUM(m.heard), SUM(m.played_s),
			SUM(m.completed), SUM(m.preempted), SUM(m.interrupted), SUM(m.failed), SUM(m.missed), SUM(m.suppressed)
			FROM play_programs m WHERE `+where+` GROUP BY m.program, m.item_ref`, args...)
		if err != nil {
			return rep, fmt.Errorf("plays report: %w", err)
		}
		for rows.Next() {
			var prog, item string
			var n, h int64
			var s float64
			var r [6]int64
			if err := rows.Scan(&prog, &item, &n, &h, &s, &r[0], &r[1], &r[2], &r[3], &r[4], &r[5]); err != nil {
				rows.Close()
				return rep, err
			}
			add(prog, item, "", 0, h, s) // the line, its heard plays and time
			known := int64(0)
			for res, i := range resultIndex {
				add(prog, item, res, r[i], 0, 0)
				known += r[i]
			}
			add(prog, item, "other", n-known, 0, 0)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, err
		}
		rows, err = db.r.QueryContext(ctx, `SELECT m.result, m.error, SUM(m.plays) FROM play_reasons m WHERE `+where+
			` GROUP BY m.result, m.error`, args...)
		if err != nil {
			return rep, fmt.Errorf("plays report: reasons: %w", err)
		}
		for rows.Next() {
			var r PlayReason
			if err := rows.Scan(&r.Result, &r.Error, &r.Count); err != nil {
				rows.Close()
				return rep, err
			}
			reasons[[2]string{r.Result, r.Error}] += r.Count
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, err
		}
	}
	sort.Slice(rep.Lines, func(i, j int) bool {
		a, b := rep.Lines[i], rep.Lines[j]
		if a.Program != b.Program {
			return a.Program < b.Program
		}
		return a.Item < b.Item
	})
	for k, n := range reasons {
		if _, ok := resultIndex[k[0]]; !ok {
			k[0] = "other"
		}
		rep.Reasons = append(rep.Reasons, PlayReason{Result: k[0], Error: k[1], Count: n})
	}
	// Unknown results folded into other may repeat a (result, error): merge them.
	merged := map[[2]string]int{}
	out := rep.Reasons[:0]
	for _, r := range rep.Reasons {
		if i, ok := merged[[2]string{r.Result, r.Error}]; ok {
			out[i].Count += r.Count
			continue
		}
		merged[[2]string{r.Result, r.Error}] = len(out)
		out = append(out, r)
	}
	rep.Reasons = out
	sort.Slice(rep.Reasons, func(i, j int) bool {
		a, b := rep.Reasons[i], rep.Reasons[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Result != b.Result {
			return a.Result < b.Result
		}
		return a.Error < b.Error
	})
	return rep, nil
}

// DeviceLine is one device's availability over the period.
type DeviceLine struct {
	Device, Name, Area string
	Scheduled          int64 // confirmations
	Heard              int64
	Seconds            float64
	Results            map[string]int64
	DaysHeard          int64 // days (in the report's zone) with at least one play heard
	DaysSilent         int64 // days of the period with none
	AmplifierFaults    int64 // plays that began with the amplifier relay not on
	RefusedSchedules   int64 // schedule revisions the device refused in the period
	OnlineSeconds      float64
	OnlineShare        float64 // OnlineSeconds ÷ the period's time past (online.go)
}

// DevicesReport is the availability of an area's devices.
type DevicesReport struct {
	PeriodFilter
	Days    int64   // days in the period
	Elapsed float64 // seconds of the period already past: the online share's denominator
	Lines   []DeviceLine
}

// Devices computes the availability report. Days are cut at midnight in loc.
func (db *DB) Devices(ctx context.Context, f PeriodFilter, loc *time.Location) (DevicesReport, error) {
	rep := DevicesReport{PeriodFilter: f}
	if err := f.check(); err != nil {
		return rep, err
	}
	if loc == nil {
		loc = time.UTC
	}
	// A day's number is (at + zone offset) / 24 h; the offset at From serves the period
	// (Việt Nam has no daylight saving time; elsewhere a day may be cut an hour off).
	_, off := f.From.In(loc).Zone()
	day0 := (f.From.UnixNano() + int64(off)*1e9) / int64(24*time.Hour)
	dayN := (f.To.UnixNano() - 1 + int64(off)*1e9) / int64(24*time.Hour)
	rep.Days = dayN - day0 + 1
	dcond, dargs := subtree("area_id", f.Area)
	drows, err := db.r.QueryContext(ctx, "SELECT id, name, area_id FROM devices WHERE revoked_at IS NULL AND "+dcond+" ORDER BY id", dargs...)
	if err != nil {
		return rep, fmt.Errorf("devices report: %w", err)
	}
	idx := map[string]int{}
	for drows.Next() {
		var l DeviceLine
		if err := drows.Scan(&l.Device, &l.Name, &l.Area); err != nil {
			drows.Close()
			return rep, err
		}
		l.Results = map[string]int64{}
		idx[l.Device] = len(rep.Lines)
		rep.Lines = append(rep.Lines, l)
	}
	drows.Close()
	line := func(id string) *DeviceLine {
		i, ok := idx[id]
		if !ok { // a device revoked or moved out since: still reported for its plays here
			i = len(rep.Lines)
			idx[id] = i
			rep.Lines = append(rep.Lines, DeviceLine{Device: id, Results: map[string]int64{}})
		}
		return &rep.Lines[i]
	}
	// Plays by result: whole months from play_months, the edges from the confirmations.
	raw := func(from, to time.Time) error {
		cond, args := subtree("c.area_id", f.Area)
		rows, err := db.r.QueryContext(ctx, `SELECT c.device_id, c.result, COUNT(*), COUNT(*) FILTER (WHERE `+heard+`), SUM(c.played_s),
			COUNT(*) FILTER (WHERE c.amplifier <> '' AND c.amplifier <> 'on')
			FROM confirmations c WHERE `+cond+` AND c.at >= ? AND c.at < ? GROUP BY c.device_id, c.result`, append(args, ts(from), ts(to))...)
		if err != nil {
			return fmt.Errorf("devices report: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, result string
			var n, h, amp int64
			var s float64
			if err := rows.Scan(&id, &result, &n, &h, &s, &amp); err != nil {
				return err
			}
			l := line(id)
			l.Scheduled += n
			l.Heard += h
			l.Seconds += s
			if _, ok := resultIndex[result]; !ok {
				result = "other" // as the summaries keep it
			}
			l.Results[result] += n
			l.AmplifierFaults += amp
		}
		return rows.Err()
	}
	mFrom, mTo, whole, err := byMonths(f.From, f.To, !db.rawReports, raw)
	if err != nil {
		return rep, err
	}
	if whole {
		cond, args := subtree("m.area_id", f.Area)
		rows, err := db.r.QueryContext(ctx, `SELECT m.device_id, SUM(m.plays), SUM(m.heard), SUM(m.played_s), SUM(m.amp_faults),
			SUM(m.completed), SUM(m.preempted), SUM(m.interrupted), SUM(m.failed), SUM(m.missed), SUM(m.suppressed)
			FROM play_months m WHERE `+cond+` AND m.month >= ? AND m.month < ? GROUP BY m.device_id`, append(args, monthOf(mFrom), monthOf(mTo))...)
		if err != nil {
			return rep, fmt.Errorf("devices report: %w", err)
		}
		for rows.Next() {
			var id string
			var n, h, amp int64
			var s float64
			var r [6]int64
			if err := rows.Scan(&id, &n, &h, &s, &amp, &r[0], &r[1], &r[2], &r[3], &r[4], &r[5]); err != nil {
				rows.Close()
				return rep, err
			}
			l := line(id)
			l.Scheduled += n
			l.Heard += h
			l.Seconds += s
			l.AmplifierFaults += amp
			known := int64(0)
			for res, i := range resultIndex {
				if r[i] > 0 {
					l.Results[res] += r[i]
				}
				known += r[i]
			}
			if n > known {
				l.Results["other"] += n - known
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, err
		}
	}
	// Days heard: from play_days when the report's days are the summary's (+07 midnights),
	// else counted from the confirmations in the report's zone.
	var rows *sql.Rows
	if !db.rawReports && off == int(summaryOffset/1e9) && (f.From.UnixNano()+summaryOffset)%int64(24*time.Hour) == 0 && (f.To.UnixNano()+summaryOffset)%int64(24*time.Hour) == 0 {
		cond, args := subtree("area_id", f.Area)
		rows, err = db.r.QueryContext(ctx, `SELECT device_id, COUNT(DISTINCT day) FROM play_days WHERE `+cond+
			` AND day >= ? AND day < ? GROUP BY device_id`, append(args, dayOf(f.From), dayOf(f.To))...)
	} else {
		cond, args := subtree("c.area_id", f.Area)
		dayExpr := fmt.Sprintf("(c.at + %d) / %d", int64(off)*1e9, int64(24*time.Hour))
		rows, err = db.r.QueryContext(ctx, `SELECT c.device_id, COUNT(DISTINCT `+dayExpr+`) FROM confirmations c WHERE `+cond+
			` AND c.at >= ? AND c.at < ? AND `+heard+` GROUP BY c.device_id`, append(args, ts(f.From), ts(f.To))...)
	}
	if err != nil {
		return rep, fmt.Errorf("devices report: days: %w", err)
	}
	for rows.Next() {
		var id string
		var d int64
		if err := rows.Scan(&id, &d); err != nil {
			rows.Close()
			return rep, err
		}
		line(id).DaysHeard = d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, err
	}
	rows, err = db.r.QueryContext(ctx, `SELECT device_id, COUNT(*) FROM effective WHERE refused_at >= ? AND refused_at < ? GROUP BY device_id`,
		ts(f.From), ts(f.To))
	if err != nil {
		return rep, fmt.Errorf("devices report: refusals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return rep, err
		}
		if i, ok := idx[id]; ok {
			rep.Lines[i].RefusedSchedules = n
		}
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	online, err := db.onlineSeconds(ctx, f.Area, f.From, f.To)
	if err != nil {
		return rep, fmt.Errorf("devices report: %w", err)
	}
	for id, sec := range online {
		line(id).OnlineSeconds = sec
	}
	rep.Elapsed = elapsed(f.From, f.To, db.now())
	for i := range rep.Lines {
		l := &rep.Lines[i]
		l.DaysSilent = rep.Days - l.DaysHeard
		if rep.Elapsed > 0 {
			l.OnlineShare = min(1, l.OnlineSeconds/rep.Elapsed)
		}
	}
	return rep, nil
}

// planOnline sets the plan's mean online share from the devices of its area now.
func (db *DB) planOnline(ctx context.Context, rep *PlanReport) error {
	online, err := db.onlineSeconds(ctx, rep.Area, rep.From, rep.To)
	if err != nil {
		return fmt.Errorf("plan report: %w", err)
	}
	cond, args := subtree("area_id", rep.Area)
	rows, err := db.r.QueryContext(ctx, "SELECT id FROM devices WHERE revoked_at IS NULL AND "+cond, args...)
	if err != nil {
		return fmt.Errorf("plan report: devices: %w", err)
	}
	defer rows.Close()
	var sum float64
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		sum += online[id]
	}
	if e := elapsed(rep.From, rep.To, db.now()); rep.Devices > 0 && e > 0 {
		rep.OnlineShare = min(1, sum/(float64(rep.Devices)*e))
	}
	return rows.Err()
}
