package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// reportFixture fills a store with a year of a province: 20 plays a day per cluster (20
// programmes, each with an item that changes weekly), clusters
// in communes of 15 under districts of 10 communes, 40 library items with metadata and a
// relay; rows/7,300 clusters. Inserted with a bare prepared INSERT (the fixture is not what is
// measured).
func reportFixture(b *testing.B, rows int) (*DB, time.Time, time.Time) {
	db, _, _ := openTest(b)
	ctx := context.Background()
	devices := max(1, rows/(20*365))
	if _, err := db.AddArea(ctx, Area{ID: "p", Name: "Tỉnh"}); err != nil {
		b.Fatal(err)
	}
	langs, themes, formats := []string{"vie", "vie", "vie", "ctu", "xdg", "eng"}, []string{"human-rights", "disaster", "health", "law"}, []string{"radio-report", "drama", "digital"}
	var refs []string
	for i := range 40 {
		r := refOf(fmt.Sprint("item", i))
		refs = append(refs, r)
		if _, _, err := db.AddContent(ctx, Content{Ref: r, Size: 1, Duration: time.Minute, MIME: "audio/mpeg", Title: fmt.Sprint("Bản tin ", i),
			Language: langs[i%len(langs)], Theme: themes[i%len(themes)], Format: formats[i%len(formats)], UploadedBy: "x"}); err != nil {
			b.Fatal(err)
		}
	}
	refs = append(refs, "http://radio.example/vov1.mp3")
	areas := map[string]bool{}
	ids := make([]string, devices)
	dareas := make([]string, devices)
	for d := range devices {
		commune := d / 15
		district := fmt.Sprintf("p/d%03d", commune/10)
		area := fmt.Sprintf("%s/c%04d", district, commune)
		for _, a := range []string{district, area} {
			if !areas[a] {
				areas[a] = true
				if _, err := db.AddArea(ctx, Area{ID: a, Name: a}); err != nil {
					b.Fatal(err)
				}
			}
		}
		ids[d], dareas[d] = fmt.Sprintf("cl-%05d", d), area
		if _, err := db.EnrolDevice(ctx, Device{ID: ids[d], Name: "x", Area: area, Kind: KindCluster, Outputs: []string{"speakers"}}, hashOf(ids[d])); err != nil {
			b.Fatal(err)
		}
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, summaryZone) // a year in Việt Nam, as staff ask for it
	results := []string{"completed", "completed", "completed", "completed", "completed", "completed", "preempted", "interrupted", "failed", "missed"}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	const ins = `INSERT INTO confirmations(device_id, seq, area_id, at, output, schedule_id, revision, program, item_index, item_ref,
		scheduled_at, started_at, ended_at, played_s, silence_s, gaps, underruns, result, error, clock_state, received_at, amplifier)
		VALUES (?, ?, ?, ?, 'speakers', 's', 1, ?, 0, ?, ?, ?, ?, ?, 0, 0, 0, ?, '', 'synced', ?, 'on')`
	stmt, err := tx.PrepareContext(ctx, ins)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for day := 0; day < 365 && n < rows; day++ {
		for d := 0; d < devices && n < rows; d++ {
			for k := range 20 {
				at := from.AddDate(0, 0, day).Add(time.Duration(5*60+k*40) * time.Minute)
				res := results[(d+day+k)%len(results)]
				played := 300.0
				switch res {
				case "missed":
					played = 0
				case "preempted", "interrupted", "failed":
					played = 40
				}
				ref := refs[(d/15*7+day/7+k)%len(refs)] // a programme's item changes weekly
				ns := at.UnixNano()
				if _, err := stmt.ExecContext(ctx, ids[d], int64(day*20+k+1), dareas[d], ns, strconv.Itoa(k), ref, ns, ns, ns+int64(played*1e9), played, res, ns); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		if day%20 == 19 { // commit in pieces: one transaction of millions of rows holds them all in the WAL
			stmt.Close()
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			if tx, err = db.w.BeginTx(ctx, nil); err != nil {
				b.Fatal(err)
			}
			if stmt, err = tx.PrepareContext(ctx, ins); err != nil {
				b.Fatal(err)
			}
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// A year of online time: every cluster every day, a tenth to all of it.
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE days(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM days WHERE n < 364)
		INSERT INTO online_days SELECT ? + n, area_id, id, 8640 * (1 + (n + length(id)) % 10) FROM devices, days`, dayOf(from)); err != nil {
		b.Fatal(err)
	}
	// The summaries ingest would have kept, built as the migration builds them.
	if _, err := db.w.ExecContext(ctx, summaryBackfill); err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d confirmations from %d clusters in %d areas", n, devices, len(areas))
	return db, from, from.AddDate(1, 0, 0)
}

// BenchmarkReports: one op = one report of the whole province for the year, computed by the
// store, beside plain GROUP BY counts over the same rows in the same run (the floor any report
// from this table has). LOA_REPORT_ROWS sets the rows (default 1,500,000).
func BenchmarkReports(b *testing.B) {
	rows := 1_500_000
	if v := os.Getenv("LOA_REPORT_ROWS"); v != "" {
		var err error
		if rows, err = strconv.Atoi(v); err != nil {
			b.Fatal("LOA_REPORT_ROWS: ", err)
		}
	}
	db, from, to := reportFixture(b, rows)
	ctx := context.Background()
	period := PeriodFilter{Area: "p", From: from, To: to}
	count := func(q string) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				rs, err := db.r.QueryContext(ctx, q, from.UnixNano(), to.UnixNano())
				if err != nil {
					b.Fatal(err)
				}
				for rs.Next() {
				}
				rs.Close()
			}
		}
	}
	b.Run("count-group-by-item", count(`SELECT item_ref, COUNT(*) FROM confirmations WHERE at >= ? AND at < ? GROUP BY item_ref`))
	b.Run("count-group-by-area-device-item", count(`SELECT area_id, device_id, item_ref, COUNT(*) FROM confirmations
		WHERE at >= ? AND at < ? GROUP BY area_id, device_id, item_ref`))
	b.Run("plan-from-confirmations", func(b *testing.B) {
		db.rawReports = true
		defer func() { db.rawReports = false }()
		for b.Loop() {
			if _, err := db.Plan(ctx, PlanOptions{PeriodFilter: period, CommuneDepth: 3}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			r, err := db.Plan(ctx, PlanOptions{PeriodFilter: period, CommuneDepth: 3})
			if err != nil || r.Broadcasts == 0 {
				b.Fatal(r.Broadcasts, err)
			}
		}
	})
	// The console's charts: the plan report per month, per week over the last 8 weeks (read
	// from the confirmations), and per area of the two levels below the province.
	b.Run("plan-series-months", func(b *testing.B) {
		for b.Loop() {
			s, err := db.Series(ctx, PlanOptions{PeriodFilter: period}, StepMonth)
			if err != nil || len(s.Points) != 12 || s.Points[0].Broadcasts == 0 {
				b.Fatal(len(s.Points), err)
			}
		}
	})
	weeks := PeriodFilter{Area: "p", From: to.AddDate(0, 0, -56), To: to}
	b.Run("count-group-by-day-item-8-weeks", func(b *testing.B) { // the floor of the weekly series
		for b.Loop() {
			rs, err := db.r.QueryContext(ctx, fmt.Sprintf(`SELECT (at + %d) / %d, item_ref, COUNT(*) FROM confirmations
				WHERE at >= ? AND at < ? AND played_s > 0 GROUP BY 1, 2`, summaryOffset, int64(24*time.Hour)), weeks.From.UnixNano(), weeks.To.UnixNano())
			if err != nil {
				b.Fatal(err)
			}
			for rs.Next() {
			}
			rs.Close()
		}
	})
	b.Run("plan-series-8-weeks", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Series(ctx, PlanOptions{PeriodFilter: weeks}, StepWeek); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plan-area-tree", func(b *testing.B) {
		for b.Loop() {
			tree, err := db.AreaTree(ctx, PlanOptions{PeriodFilter: period}, 2)
			if err != nil || len(tree) < 2 || tree[0].Broadcasts == 0 {
				b.Fatal(len(tree), err)
			}
		}
	})
	b.Run("plays", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Plays(ctx, PlaysFilter{PeriodFilter: period}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("count-group-by-device-online-days", count(`SELECT device_id, COUNT(*) FROM online_days
		WHERE day >= ? / 86400000000000 AND day < ? / 86400000000000 GROUP BY device_id`))
	b.Run("online-time", func(b *testing.B) {
		for b.Loop() {
			if m, err := db.onlineSeconds(ctx, "p", from, to); err != nil || len(m) == 0 {
				b.Fatal(len(m), err)
			}
		}
	})
	b.Run("devices", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Devices(ctx, period, summaryZone); err != nil {
				b.Fatal(err)
			}
		}
	})
}
