package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// summaryYear stores a year of plays of 6 devices in two communes: most as played, a month of
// one device late after an outage (in reverse order, resent twice), every result, some plays
// with nothing started, amplifier faults, and plays moved to another area mid-year.
func summaryYear(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []string{"p", "p/d", "p/d/a", "p/d/b", "p/e"} {
		if _, err := db.AddArea(ctx, Area{ID: a, Name: a}); err != nil {
			t.Fatal(err)
		}
	}
	refs := []string{refOf("a"), refOf("b"), refOf("c"), "http://relay"}
	if _, _, err := db.AddContent(ctx, Content{Ref: refs[0], MIME: "audio/mpeg", Title: "A", Language: "vie", Format: "radio-report", UploadedBy: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddContent(ctx, Content{Ref: refs[1], MIME: "audio/mpeg", Title: "B", Language: "ctu", Format: "radio-report", UploadedBy: "x"}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	results := []string{"completed", "completed", "preempted", "interrupted", "failed", "missed", "suppressed", "weird"}
	zone := time.FixedZone("+07", 7*3600)
	for d := range 6 {
		id := fmt.Sprintf("cl-%d", d)
		area := []string{"p/d/a", "p/d/b", "p/e"}[d%3]
		if _, err := db.EnrolDevice(ctx, Device{ID: id, Name: id, Area: area, Kind: KindCluster, Outputs: []string{"speakers"}}, hashOf(id)); err != nil {
			t.Fatal(err)
		}
		var cs, late []Confirmation
		var seq uint64
		for day := -3; day < 370; day++ {
			for k := range 2 {
				// Plays near midnight +07 and near the first of a month test the cuts.
				at := time.Date(2026, 1, 1, 0, 0, 0, 0, zone).AddDate(0, 0, day).Add(time.Duration(k*12*60+rng.IntN(720)) * time.Minute).Add(-30 * time.Minute)
				seq++
				c := Confirmation{Confirmation: protocol.Confirmation{Seq: seq, Output: "speakers", ScheduleID: "s", Program: fmt.Sprint("p", k), Item: refs[rng.IntN(len(refs))], Scheduled: at, Result: protocol.Result(results[rng.IntN(len(results))]), Clock: "synced", Amplifier: "on"}}
				if c.Result != "missed" && c.Result != "suppressed" {
					c.Start, c.PlayedS = at, float64(rng.IntN(300))
				}
				if rng.IntN(15) == 0 {
					c.Amplifier = "relay: timeout"
				}
				if d == 1 && day >= 150 && day < 190 {
					late = append(late, c)
				} else {
					cs = append(cs, c)
				}
			}
			if d == 2 && day == 200 { // moved: plays after this are stored in its new area
				if err := db.MoveDevice(ctx, id, "p/d/a"); err != nil {
					t.Fatal(err)
				}
			}
			if len(cs) >= 400 || day == 369 {
				if _, err := db.AddConfirmations(ctx, id, cs); err != nil {
					t.Fatal(err)
				}
				cs = cs[:0]
			}
		}
		for i, j := 0, len(late)-1; i < j; i, j = i+1, j-1 {
			late[i], late[j] = late[j], late[i]
		}
		for range 2 {
			for i := 0; i < len(late); i += 300 {
				if _, err := db.AddConfirmations(ctx, id, late[i:min(i+300, len(late))]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestReportSummariesAgreeWithConfirmations: the plan, plays and devices reports read from the
// summaries kept at ingest equal the same reports read from the confirmations alone, for
// periods of whole months, cut mid-month and mid-day, in +07 and in another zone, after late
// and resent confirmations; and the migration's backfill builds the same summaries.
func TestReportSummariesAgreeWithConfirmations(t *testing.T) {
	db, _, _ := openTest(t)
	summaryYear(t, db)
	ctx := context.Background()
	vn, utc := time.FixedZone("+07", 7*3600), time.UTC
	periods := []struct{ from, to time.Time }{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, vn), time.Date(2027, 1, 1, 0, 0, 0, 0, vn)},
		{time.Date(2026, 3, 15, 0, 0, 0, 0, vn), time.Date(2026, 11, 21, 0, 0, 0, 0, vn)},
		{time.Date(2026, 2, 3, 13, 30, 0, 0, vn), time.Date(2026, 9, 1, 0, 0, 0, 0, vn)},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, utc), time.Date(2027, 1, 1, 0, 0, 0, 0, utc)},
		{time.Date(2026, 5, 2, 0, 0, 0, 0, vn), time.Date(2026, 5, 20, 0, 0, 0, 0, vn)},
	}
	for _, area := range []string{"", "p/d/a"} {
		for _, p := range periods {
			f := PeriodFilter{Area: area, From: p.from, To: p.to}
			o := PlanOptions{PeriodFilter: f, CommuneDepth: 3}
			for _, loc := range []*time.Location{vn, utc} {
				db.rawReports = false
				plan, err := db.Plan(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				dev, err := db.Devices(ctx, f, loc)
				if err != nil {
					t.Fatal(err)
				}
				db.rawReports = true
				rawPlan, err := db.Plan(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				rawDev, err := db.Devices(ctx, f, loc)
				if err != nil {
					t.Fatal(err)
				}
				db.rawReports = false
				for _, pf := range []PlaysFilter{{PeriodFilter: f}, {PeriodFilter: f, Program: "p1"}, {PeriodFilter: f, Item: refOf("b")}} {
					plays, err := db.Plays(ctx, pf)
					if err != nil {
						t.Fatal(err)
					}
					db.rawReports = true
					rawPlays, err := db.Plays(ctx, pf)
					db.rawReports = false
					if err != nil {
						t.Fatal(err)
					}
					if plays.Total.Scheduled == 0 {
						t.Fatalf("%+v: no plays", pf)
					}
					for _, r := range []*PlaysReport{&plays, &rawPlays} {
						r.Total.Seconds = math.Round(r.Total.Seconds*1e6) / 1e6
						for i := range r.Lines {
							r.Lines[i].Seconds = math.Round(r.Lines[i].Seconds*1e6) / 1e6
						}
					}
					if !reflect.DeepEqual(plays, rawPlays) {
						t.Errorf("%+v: plays from summaries\n%+v\nfrom confirmations\n%+v", pf, plays, rawPlays)
					}
				}
				if plan.Broadcasts == 0 || len(plan.Items) == 0 {
					t.Fatalf("area %q %v: no plays in the plan", area, p)
				}
				round(&plan)
				round(&rawPlan)
				if !reflect.DeepEqual(plan, rawPlan) {
					t.Errorf("area %q %v..%v: plan from summaries\n%+v\nfrom confirmations\n%+v", area, p.from, p.to, plan, rawPlan)
				}
				for i := range dev.Lines {
					dev.Lines[i].Seconds = math.Round(dev.Lines[i].Seconds*1e6) / 1e6
				}
				for i := range rawDev.Lines {
					rawDev.Lines[i].Seconds = math.Round(rawDev.Lines[i].Seconds*1e6) / 1e6
				}
				if !reflect.DeepEqual(dev, rawDev) {
					t.Errorf("area %q %v..%v in %v: devices from summaries\n%+v\nfrom confirmations\n%+v", area, p.from, p.to, loc, dev, rawDev)
				}
			}
		}
	}
	// The backfill gives what ingest kept. It is SQLite's schema step 10 (strftime,
	// group_concat): a PostgreSQL store starts with the summaries and never backfills.
	if testEngine != "sqlite" {
		return
	}
	read := func() (string, string) {
		var m, d string
		db.r.QueryRowContext(ctx, `SELECT group_concat(x, ';') FROM (SELECT month||' '||area_id||' '||device_id||' '||item_ref||' '||plays||' '||heard||' '||
			round(played_s, 6)||' '||amp_faults||' '||completed||' '||preempted||' '||interrupted||' '||failed||' '||missed||' '||suppressed x
			FROM play_months ORDER BY 1)`).Scan(&m)
		db.r.QueryRowContext(ctx, `SELECT group_concat(day||' '||area_id||' '||device_id||' '||heard, ';') FROM (SELECT * FROM play_days ORDER BY day, area_id, device_id)`).Scan(&d)
		var p, r string
		db.r.QueryRowContext(ctx, `SELECT group_concat(x, ';') FROM (SELECT month||' '||area_id||' '||program||' '||item_ref||' '||plays||' '||heard||' '||
			round(played_s, 6)||' '||completed||' '||preempted||' '||interrupted||' '||failed||' '||missed||' '||suppressed x
			FROM play_programs ORDER BY 1)`).Scan(&p)
		db.r.QueryRowContext(ctx, `SELECT group_concat(x, ';') FROM (SELECT month||' '||area_id||' '||program||' '||item_ref||' '||result||' '||error||' '||plays x
			FROM play_reasons ORDER BY 1)`).Scan(&r)
		m += "|" + p
		d += "|" + r
		return m, d
	}
	m1, d1 := read()
	if _, err := db.w.ExecContext(ctx, "DELETE FROM play_months; DELETE FROM play_programs; DELETE FROM play_reasons; DELETE FROM play_days; "+summaryBackfill); err != nil {
		t.Fatal(err)
	}
	m2, d2 := read()
	if m1 == "" || d1 == "" || m1 != m2 || d1 != d2 {
		t.Errorf("backfill differs from ingest: months %d/%d bytes equal %v, days %d/%d equal %v", len(m1), len(m2), m1 == m2, len(d1), len(d2), d1 == d2)
	}
}

// round drops the last bits of float sums, which differ with the order they were added in.
func round(p *PlanReport) {
	r := func(v *float64) { *v = math.Round(*v*1e6) / 1e6 }
	r(&p.Seconds)
	for _, gs := range [][]PlanGroup{p.ByLanguage, p.ByTheme, p.ByFormat} {
		for i := range gs {
			r(&gs[i].Seconds)
		}
	}
	for i := range p.Communes {
		r(&p.Communes[i].Seconds)
	}
	for i := range p.Items {
		r(&p.Items[i].Seconds)
	}
}
