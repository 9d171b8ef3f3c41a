package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

type seriesItem struct{ ref, lang, theme, format string }

// seriesFixture stores five months of plays (Jan–May 2026) of 5 devices in three communes of
// a district and one of another, items in several languages, themes and formats, one without
// format, a relay, every result, and a month of one device arriving late; one device never
// plays. It returns the items, every confirmation stored with its device, and the devices' areas.
func seriesFixture(t *testing.T, db *DB) (map[string]seriesItem, []Confirmation, []string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []string{"p", "p/d", "p/d/a", "p/d/b", "p/d-x", "p/d/b/t", "p/e"} {
		if _, err := db.AddArea(ctx, Area{ID: a, Name: "Area " + a}); err != nil {
			t.Fatal(err)
		}
	}
	items := map[string]seriesItem{}
	for i, it := range []seriesItem{
		{refOf("vi-news"), "vie", "law", "radio-report"},
		{refOf("ctu-news"), "ctu", "law", "radio-report"},
		{refOf("ctu-health"), "ctu", "health", "skit"},
		{refOf("vi-digital"), "vie", "health", "digital"},
		{refOf("music"), "zxx", "", "music"},
		{refOf("eng"), "eng", "tourism", "radio-report"},
		{refOf("noformat"), "vie", "law", ""},
	} {
		if _, _, err := db.AddContent(ctx, Content{Ref: it.ref, MIME: "audio/mpeg", Title: fmt.Sprint("item ", i), Language: it.lang, Theme: it.theme, Format: it.format, UploadedBy: "x"}); err != nil {
			t.Fatal(err)
		}
		items[it.ref] = it
	}
	items["http://relay"] = seriesItem{ref: "http://relay"}
	refs := make([]string, 0, len(items))
	for _, r := range []string{"vi-news", "ctu-news", "ctu-health", "vi-digital", "music", "eng", "noformat"} {
		refs = append(refs, refOf(r))
	}
	refs = append(refs, "http://relay")
	devArea := map[string]string{"cl-0": "p/d/a", "cl-1": "p/d/a", "cl-2": "p/d/b/t", "cl-3": "p/d-x", "cl-4": "p/e", "cl-5": "p/d/b"}
	rng := rand.New(rand.NewPCG(16, 3))
	results := []string{"completed", "completed", "completed", "preempted", "interrupted", "failed", "missed"}
	var all []Confirmation
	var devs []string
	for d := range 6 {
		id := fmt.Sprint("cl-", d)
		if _, err := db.EnrolDevice(ctx, Device{ID: id, Name: id, Area: devArea[id], Kind: KindCluster, Outputs: []string{"speakers"}}, hashOf(id)); err != nil {
			t.Fatal(err)
		}
		if d == 5 {
			continue // enrolled, never heard: lowers its commune's coverage
		}
		var cs, late []Confirmation
		var seq uint64
		for day := -2; day < 152; day++ {
			for k := range 3 {
				at := time.Date(2026, 1, 1, 0, 0, 0, 0, summaryZone).AddDate(0, 0, day).Add(time.Duration(k*8*60+rng.IntN(480)) * time.Minute)
				seq++
				// Each device plays a few items of its own: coverage is below 100%.
				ref := refs[(d+rng.IntN(5)*(1+d%2))%len(refs)]
				c := Confirmation{Confirmation: protocol.Confirmation{Seq: seq, Output: "speakers", ScheduleID: "s", Program: "p", Item: ref, Scheduled: at, Result: protocol.Result(results[rng.IntN(len(results))]), Clock: "synced", Amplifier: "on"}}
				if c.Result != "missed" {
					c.Start, c.PlayedS = at, float64(rng.IntN(600))
				}
				all, devs = append(all, c), append(devs, id)
				if d == 1 && day >= 40 && day < 70 {
					late = append(late, c)
				} else {
					cs = append(cs, c)
				}
			}
		}
		for _, batch := range [][]Confirmation{cs, late} {
			for i := 0; i < len(batch); i += 300 {
				if _, err := db.AddConfirmations(ctx, id, batch[i:min(i+300, len(batch))]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return items, all, devs, devArea
}

// TestPlanSeriesCountsEveryMonth: the series' figures for each month (whole months, a period cut
// mid-month) and each week equal a count of the stored plays made here, read both from the
// summaries and from the confirmations alone.
func TestPlanSeriesCountsEveryMonth(t *testing.T) {
	db, _, _ := openTest(t)
	items, all, devs, devArea := seriesFixture(t, db)
	ctx := context.Background()
	home, digital := map[string]bool{"vi": true, "vie": true}, "digital"
	type want struct {
		products, broadcasts, tagged, target, foreign, digital int64
		seconds                                                float64
		langs, themes                                          map[string][3]float64 // products, broadcasts, seconds
	}
	// count buckets the heard plays in area of [from, to) by bucket(at), independently of the store.
	count := func(area string, from, to time.Time, bucket func(time.Time) time.Time) map[int64]*want {
		out := map[int64]*want{}
		seen := map[[2]any]bool{}
		for i, c := range all {
			a := devArea[devs[i]]
			if c.PlayedS <= 0 || c.Start.Before(from) || !c.Start.Before(to) || !(area == "" || a == area || len(a) > len(area) && a[:len(area)+1] == area+"/") {
				continue
			}
			b := bucket(c.Start)
			if b.Before(from) {
				b = from
			}
			w := out[b.UnixNano()]
			if w == nil {
				w = &want{langs: map[string][3]float64{}, themes: map[string][3]float64{}}
				out[b.UnixNano()] = w
			}
			it := items[c.Item]
			first := !seen[[2]any{b, c.Item}]
			seen[[2]any{b, c.Item}] = true
			w.broadcasts++
			w.seconds += c.PlayedS
			for _, g := range []struct {
				m    map[string][3]float64
				code string
			}{{w.langs, it.lang}, {w.themes, it.theme}} {
				v := g.m[g.code]
				if first {
					v[0]++
				}
				v[1]++
				v[2] += c.PlayedS
				g.m[g.code] = v
			}
			if !first {
				continue
			}
			w.products++
			if it.lang != "" && it.format != "" {
				w.tagged++
				f := !home[it.lang] && it.lang != "zxx"
				dg := it.format == digital
				w.foreign += b2i(f)
				w.digital += b2i(dg)
				w.target += b2i(f || dg)
			}
		}
		return out
	}
	month := func(at time.Time) time.Time {
		a := at.In(summaryZone)
		return time.Date(a.Year(), a.Month(), 1, 0, 0, 0, 0, summaryZone)
	}
	week := func(at time.Time) time.Time {
		a := at.In(summaryZone)
		back := map[time.Weekday]int{time.Monday: 0, time.Tuesday: 1, time.Wednesday: 2, time.Thursday: 3, time.Friday: 4, time.Saturday: 5, time.Sunday: 6}[a.Weekday()]
		return time.Date(a.Year(), a.Month(), a.Day()-back, 0, 0, 0, 0, summaryZone)
	}
	vn := summaryZone
	cases := []struct {
		name     string
		area     string
		from, to time.Time
		step     SeriesStep
		bucket   func(time.Time) time.Time
		points   int
	}{
		{"year", "p", time.Date(2026, 1, 1, 0, 0, 0, 0, vn), time.Date(2027, 1, 1, 0, 0, 0, 0, vn), "", month, 12},
		{"district cut mid-month", "p/d", time.Date(2026, 2, 10, 0, 0, 0, 0, vn), time.Date(2026, 4, 21, 0, 0, 0, 0, vn), StepMonth, month, 3},
		{"commune by week", "p/d/a", time.Date(2026, 2, 25, 0, 0, 0, 0, vn), time.Date(2026, 4, 1, 0, 0, 0, 0, vn), "", week, 6},
		{"everywhere", "", time.Date(2025, 12, 30, 0, 0, 0, 0, vn), time.Date(2026, 6, 1, 0, 0, 0, 0, vn), StepMonth, month, 6},
	}
	for _, tc := range cases {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/raw=%v", tc.name, raw), func(t *testing.T) {
				db.rawReports = raw
				defer func() { db.rawReports = false }()
				ser, err := db.Series(ctx, PlanOptions{PeriodFilter: PeriodFilter{Area: tc.area, From: tc.from, To: tc.to}}, tc.step)
				if err != nil {
					t.Fatal(err)
				}
				if len(ser.Points) != tc.points {
					t.Fatalf("%d points (%s), want %d", len(ser.Points), ser.Step, tc.points)
				}
				exp := count(tc.area, tc.from, tc.to, tc.bucket)
				var total int64
				for i, p := range ser.Points {
					if i > 0 && !p.From.Equal(ser.Points[i-1].To) || !p.From.Before(p.To) {
						t.Fatalf("point %d [%v, %v) does not follow the one before", i, p.From, p.To)
					}
					w := exp[p.From.UnixNano()]
					if w == nil {
						w = &want{}
					}
					delete(exp, p.From.UnixNano())
					total += p.Broadcasts
					got := [6]int64{p.Products, p.Broadcasts, p.Tagged, p.Target, p.Foreign, p.Digital}
					if got != [6]int64{w.products, w.broadcasts, w.tagged, w.target, w.foreign, w.digital} || math.Abs(p.Seconds-w.seconds) > 1e-6 {
						t.Errorf("%v: products, broadcasts, tagged, target, foreign, digital %v, %.0f s; want %v, %.0f s", p.From, got, p.Seconds,
							[6]int64{w.products, w.broadcasts, w.tagged, w.target, w.foreign, w.digital}, w.seconds)
					}
					for _, g := range []struct {
						name string
						got  []PlanGroup
						want map[string][3]float64
					}{{"language", p.ByLanguage, w.langs}, {"theme", p.ByTheme, w.themes}} {
						if len(g.got) != len(g.want) {
							t.Errorf("%v: %d %s lines, want %d", p.From, len(g.got), g.name, len(g.want))
						}
						for _, l := range g.got {
							if v := g.want[l.Code]; float64(l.Products) != v[0] || float64(l.Broadcasts) != v[1] || math.Abs(l.Seconds-v[2]) > 1e-6 {
								t.Errorf("%v %s %q: %d products, %d broadcasts, %.0f s; want %v", p.From, g.name, l.Code, l.Products, l.Broadcasts, l.Seconds, v)
							}
						}
					}
				}
				if len(exp) > 0 || total == 0 {
					t.Errorf("plays outside every point: %v; %d broadcasts in all", exp, total)
				}
			})
		}
	}
	if _, err := db.Series(ctx, PlanOptions{PeriodFilter: PeriodFilter{From: cases[0].from, To: cases[0].to}}, "day"); err == nil {
		t.Error("a series by day was accepted")
	}
	// A short period is cut by week, unless its area is too large to read its days quickly.
	for i := range weekClusters {
		id := fmt.Sprint("e/cl-", i)
		if _, err := db.EnrolDevice(ctx, Device{ID: id, Name: id, Area: "p/e", Kind: KindCluster, Outputs: []string{"speakers"}}, hashOf(id)); err != nil {
			t.Fatal(err)
		}
	}
	short := PeriodFilter{From: time.Date(2026, 3, 1, 0, 0, 0, 0, vn), To: time.Date(2026, 4, 1, 0, 0, 0, 0, vn)}
	for area, want := range map[string]SeriesStep{"p": StepMonth, "p/d": StepWeek} {
		f := short
		f.Area = area
		if ser, err := db.Series(ctx, PlanOptions{PeriodFilter: f}, ""); err != nil || ser.Step != want {
			t.Errorf("March in %s: by %s (%v), want by %s", area, ser.Step, err, want)
		}
	}
}

// TestAreaTreeCoverage: each area's clusters, products, target share and coverage equal a count
// made here, areas without plays are listed, and the tree is in order.
func TestAreaTreeCoverage(t *testing.T) {
	db, _, _ := openTest(t)
	items, all, devs, devArea := seriesFixture(t, db)
	from, to := time.Date(2026, 1, 15, 0, 0, 0, 0, summaryZone), time.Date(2026, 5, 1, 0, 0, 0, 0, summaryZone)
	for _, raw := range []bool{false, true} {
		db.rawReports = raw
		tree, err := db.AreaTree(context.Background(), PlanOptions{PeriodFilter: PeriodFilter{Area: "p", From: from, To: to}}, 2)
		db.rawReports = false
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, a := range tree {
			order = append(order, a.Area)
		}
		if fmt.Sprint(order) != "[p p/d p/d/a p/d/b p/d-x p/e]" {
			t.Fatalf("tree %v; want p, its children, their children, in order (p/d/b/t is 3 levels down)", order)
		}
		for _, a := range tree {
			under := func(x string) bool { return x == a.Area || len(x) > len(a.Area) && x[:len(a.Area)+1] == a.Area+"/" }
			var devices int64
			for _, ar := range devArea {
				devices += b2i(under(ar))
			}
			heardBy := map[string]map[string]bool{}
			var broadcasts int64
			for i, c := range all {
				if c.PlayedS > 0 && !c.Start.Before(from) && c.Start.Before(to) && under(devArea[devs[i]]) {
					if heardBy[c.Item] == nil {
						heardBy[c.Item] = map[string]bool{}
					}
					heardBy[c.Item][devs[i]] = true
					broadcasts++
				}
			}
			var tagged, target int64
			var cov float64
			for ref, ds := range heardBy {
				it := items[ref]
				if it.lang != "" && it.format != "" {
					tagged++
					target += b2i(it.lang != "vie" && it.lang != "zxx" || it.format == "digital")
				}
				cov += float64(len(ds)) / float64(devices)
			}
			if len(heardBy) > 0 {
				cov /= float64(len(heardBy))
			}
			if a.Name != "Area "+a.Area || a.Devices != devices || a.Products != int64(len(heardBy)) || a.Broadcasts != broadcasts ||
				a.Tagged != tagged || a.Target != target || math.Abs(a.Coverage-cov) > 1e-9 {
				t.Errorf("raw=%v %s: %+v; want %d devices, %d products, %d broadcasts, %d/%d target, coverage %.4f",
					raw, a.Area, a, devices, len(heardBy), broadcasts, target, tagged, cov)
			}
		}
		if tree[2].Coverage <= 0 || tree[2].Coverage >= 1 || tree[3].Devices != 2 || tree[5].Products == 0 {
			t.Errorf("the fixture does not test what it should: %+v", tree)
		}
	}
}
