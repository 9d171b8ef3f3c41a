package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// populateAll fills every table of the store, through its API.
func populateAll(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	populate(t, db)
	now := db.now()
	e := testEmergency("quang-nam/tam-ky", "storm-13", now)
	if _, _, err := db.AddEmergencies(ctx, []Emergency{e}); err != nil {
		t.Fatal(err)
	}
	noErr(t, db.AddCommand(ctx, testCommand("cmd-1", 1, AreaTarget("quang-nam/tam-ky/tam-thanh"), "quang-nam/tam-ky/tam-thanh", now, "tam-thanh/cl-07")))
	noErr(t, db.AddSession(ctx, hashOf("cookie"), "lan", "csrf-token"))
	noErr(t, db.SetSetting(ctx, "report.area_depth", "3"))
	must[Template](t)(db.SaveTemplate(ctx, Template{Area: "quang-nam", Name: "Tuần thường", Document: []byte("programs: []"), Author: "lan"}))
	must[Submission](t)(db.Submit(ctx, "quang-nam/duy-hai", Schedule{Target: AreaTarget("quang-nam/duy-hai"), ID: "dh", Document: []byte("c: 3"), Author: "lan"}))
	noErr(t, db.AddOnline(ctx, "tam-thanh/cl-07", now.Add(-time.Hour), now))
	enrol(t, db, "duy-hai/cl-02", "quang-nam/duy-hai")
	missed := conf(1)
	missed.Result, missed.Error, missed.Proof = "missed", "the device was off", protocol.Proof{}
	must[int64](t)(db.AddConfirmations(ctx, "duy-hai/cl-02", []Confirmation{missed}))
	noErr(t, db.SetAgent(ctx, "duy-hai/cl-02", "loa-agent/1.1.0", "armhf", true))
	if _, _, err := db.AddRelease(ctx, testRelease("1.2.0", "armhf", "d")); err != nil {
		t.Fatal(err)
	}
	must[Rollout](t)(db.AddRollout(ctx, Rollout{ID: "ro-1", Area: "quang-nam/duy-hai", Version: "1.2.0", CanaryPercent: 10,
		Window: "02:00-04:00", HealthyFor: time.Minute, HealthyWithinS: 600, MaxFailurePercent: 20, CreatedBy: "lan"},
		[]RolloutDevice{{Device: "duy-hai/cl-02", Stage: DeviceCanary, Arch: "armhf", From: "1.1.0", State: UpgradePending}}))
}

// dumpTables renders every row of every table, in key order, for comparing two stores.
func dumpTables(t *testing.T, db *DB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, tb := range copyTables {
		cols, _, err := tableColumns(ctx, db.r, tb.name)
		noErr(t, err)
		rows, err := db.r.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+tb.name+" ORDER BY "+tb.order)
		noErr(t, err)
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var b strings.Builder
		for rows.Next() {
			noErr(t, rows.Scan(ptrs...))
			for i, v := range vals {
				switch v := v.(type) {
				case []byte: // a BLOB, or text SQLite hands back as bytes: the same bytes either way
					fmt.Fprintf(&b, "%s=%q ", cols[i], string(v))
				case string:
					fmt.Fprintf(&b, "%s=%q ", cols[i], v)
				default:
					fmt.Fprintf(&b, "%s=%v ", cols[i], v)
				}
			}
			b.WriteString("\n")
		}
		noErr(t, rows.Err())
		rows.Close()
		out[tb.name] = b.String()
	}
	return out
}

// A district's SQLite store copied into a new store of the engine under test (PostgreSQL
// with LOA_STORE=postgres) and back into a new SQLite file holds the same rows in every table,
// reads the same through the API, and goes on working (ids, acks, secrets).
func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, err := Open(ctx, filepath.Join(t.TempDir(), "district.db"), newClock(), testLogger(t))
	noErr(t, err)
	defer src.Close()
	populateAll(t, src)
	want := dumpTables(t, src)
	for _, tb := range copyTables {
		if want[tb.name] == "" {
			t.Fatalf("populateAll left table %s empty: the copy of its rows would go untested", tb.name)
		}
	}

	dst, _, _ := openTest(t)
	n, err := Copy(ctx, src, dst)
	noErr(t, err)
	got := dumpTables(t, dst)
	for _, tb := range copyTables {
		if got[tb.name] != want[tb.name] {
			t.Errorf("table %s after the copy:\n%s\nwant\n%s", tb.name, got[tb.name], want[tb.name])
		}
	}
	if total := int64(strings.Count(strings.Join(slices.Collect(mapValues(want)), ""), "\n")); n != total {
		t.Errorf("Copy reported %d rows; the tables hold %d", n, total)
	}
	if a, b := snapshot(t, src), snapshot(t, dst); a != b {
		t.Fatalf("the copy reads differently.\nsource:\n%s\ncopy:\n%s", a, b)
	}
	_, err = Copy(ctx, src, dst)
	wantErr(t, err, ErrExists, "copy into a store that has rows")

	back, err := Open(ctx, filepath.Join(t.TempDir(), "back.db"), newClock(), testLogger(t))
	noErr(t, err)
	defer back.Close()
	must[int64](t)(Copy(ctx, dst, back))
	for name, rows := range dumpTables(t, back) {
		if rows != want[name] {
			t.Errorf("table %s copied back:\n%s\nwant\n%s", name, rows, want[name])
		}
	}

	// The copy goes on: generated ids continue after the copied ones, the ack from 3.
	checkDerived(t, dst)
	a := must[AuditEntry](t)(dst.AppendAudit(ctx, AuditEntry{Actor: "lan", Action: "x", Target: "y", Detail: []byte(`{}`)}))
	if a.ID <= 1 {
		t.Errorf("audit id after the copy: %d, want above the copied one", a.ID)
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// Copy's table list names every table of the schema (a schema step adding one must add it).
func TestCopyCoversEveryTable(t *testing.T) {
	db, _, _ := openTest(t)
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_version', 'sqlite_sequence')"
	if db.pg {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_version'"
	}
	rows, err := db.r.Query(q)
	noErr(t, err)
	defer rows.Close()
	var have []string
	for rows.Next() {
		var n string
		noErr(t, rows.Scan(&n))
		have = append(have, n)
	}
	var listed []string
	for _, tb := range copyTables {
		listed = append(listed, tb.name)
	}
	slices.Sort(have)
	slices.Sort(listed)
	if !slices.Equal(have, listed) {
		t.Fatalf("the schema's tables %v; Copy copies %v", have, listed)
	}
}
