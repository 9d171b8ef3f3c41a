package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The batch methods a push uses: one transaction for many effective schedules where one
// device's stale or unknown revision fails alone, heads and source schedules of a whole
// subtree in one read each, and the sent marks of a push in one write.
func TestBatchPush(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	for _, d := range []struct{ id, area string }{{"tt/1", "quang-nam/tam-ky/tam-thanh"}, {"tt/2", "quang-nam/tam-ky/tam-thanh"},
		{"tp/1", "quang-nam/tam-ky/tam-phu"}, {"dh/1", "quang-nam/duy-hai"}} {
		enrol(t, db, d.id, d.area)
	}
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/2", Revision: 5, Document: []byte("old")}))
	src := []SourceRevision{{AreaTarget("quang-nam/tam-ky"), 2}}
	es := []EffectiveSchedule{
		{DeviceID: "tt/1", Revision: 1, Document: []byte("a"), Signature: []byte("s"), Sources: src},
		{DeviceID: "tt/2", Revision: 5, Document: []byte("stale")},
		{DeviceID: "nobody/1", Revision: 1, Document: []byte("b")},
		{DeviceID: "tp/1", Revision: 0, Document: []byte("c")},
		{DeviceID: "tp/1", Revision: 3, Document: []byte("d"), Sources: src},
	}
	clk.Advance(time.Minute)
	out, errs, err := db.AddEffectives(ctx, es)
	noErr(t, err)
	noErr(t, errs[0])
	wantErr(t, errs[1], ErrStaleRevision, "stale revision in a batch")
	wantErr(t, errs[2], ErrNotFound, "unknown device in a batch")
	wantErr(t, errs[3], ErrInvalid, "revision 0 in a batch")
	noErr(t, errs[4])
	if out[0].Revision != 1 || string(out[0].Document) != "a" || !out[0].CreatedAt.Equal(clk.Now()) || out[0].Delivery.State != StateComposed {
		t.Fatalf("stored: %+v", out[0])
	}
	if got := must[EffectiveSchedule](t)(db.LatestEffective(ctx, "tp/1")); got.Revision != 3 || string(got.Document) != "d" {
		t.Fatalf("tp/1 latest: %+v", got)
	}
	if got := must[EffectiveSchedule](t)(db.LatestEffective(ctx, "tt/2")); string(got.Document) != "old" {
		t.Fatalf("a stale revision replaced the stored one: %+v", got)
	}

	heads := must[map[string]EffectiveHead](t)(db.LatestEffectiveHeads(ctx, "quang-nam/tam-ky"))
	if len(heads) != 3 || heads["tt/1"].Revision != 1 || heads["tt/2"].Revision != 5 || heads["tp/1"].Revision != 3 ||
		!slices.Equal(heads["tp/1"].Sources, src) || len(heads["tt/2"].Sources) != 0 {
		t.Fatalf("heads: %+v", heads)
	}
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tt/2", Revision: 7, Document: []byte("new")}))
	if h := must[map[string]EffectiveHead](t)(db.LatestEffectiveHeads(ctx, "quang-nam/tam-ky/tam-thanh")); len(h) != 2 || h["tt/2"].Revision != 7 {
		t.Fatalf("heads after a new revision: %+v", h)
	}
	if h := must[map[string]EffectiveHead](t)(db.LatestEffectiveHeads(ctx, "quang-nam/duy-hai")); len(h) != 0 {
		t.Fatalf("heads of a subtree without effective schedules: %+v", h)
	}
	// The revisions alone, with 0 for a device that has none (what a push notes before it).
	if r := must[map[string]int64](t)(db.LatestRevisions(ctx, "quang-nam")); !maps.Equal(r, map[string]int64{"tt/1": 1, "tt/2": 7, "tp/1": 3, "dh/1": 0}) {
		t.Fatalf("latest revisions under quang-nam: %v", r)
	}
	if r := must[map[string]int64](t)(db.LatestRevisions(ctx, "quang-nam/tam-ky/tam-phu")); !maps.Equal(r, map[string]int64{"tp/1": 3}) {
		t.Fatalf("latest revisions under tam-phu: %v", r)
	}

	// Many devices' newest documents in one read (a replica told of another's push): the
	// newest revision each, ids given twice read once, devices without one left out.
	latest := must[map[string]EffectiveSchedule](t)(db.LatestEffectives(ctx, []string{"tt/2", "tp/1", "dh/1", "nobody/9", "tt/2", "tt/1"}))
	if len(latest) != 3 || string(latest["tt/2"].Document) != "new" || latest["tt/2"].Revision != 7 ||
		string(latest["tp/1"].Document) != "d" || !slices.Equal(latest["tp/1"].Sources, src) ||
		string(latest["tt/1"].Signature) != "s" || latest["tt/1"].Delivery.State != StateComposed {
		t.Fatalf("latest of several devices: %+v", latest)
	}
	if got := must[map[string]EffectiveSchedule](t)(db.LatestEffectives(ctx, nil)); len(got) != 0 {
		t.Fatalf("latest of no devices: %+v", got)
	}

	sent := clk.Advance(time.Second)
	err = db.MarkSent(ctx, []DeviceRevision{{"tt/1", 1}, {"tp/1", 3}, {"tt/2", 99}})
	wantErr(t, err, ErrNotFound, "sent mark of a missing revision")
	if !strings.Contains(err.Error(), "tt/2 revision 99") {
		t.Fatalf("error does not name the missing revision: %v", err)
	}
	clk.Advance(time.Second)
	noErr(t, db.MarkSent(ctx, []DeviceRevision{{"tt/1", 1}})) // a resend keeps the first time
	for _, dev := range []string{"tt/1", "tp/1"} {
		if d := must[EffectiveSchedule](t)(db.LatestEffective(ctx, dev)).Delivery; d.State != StateSent || !d.SentAt.Equal(sent) {
			t.Fatalf("%s after MarkSent: %+v", dev, d)
		}
	}

	for _, s := range []Schedule{
		{Target: AreaTarget("quang-nam"), ID: "p", Document: []byte("p1")},
		{Target: AreaTarget("quang-nam/tam-ky"), ID: "k", Document: []byte("k1")},
		{Target: AreaTarget("quang-nam/tam-ky"), ID: "k", Document: []byte("k2")},
		{Target: AreaTarget("quang-nam/duy-hai"), ID: "d", Document: []byte("d1")},
		{Target: DeviceTarget("tt/1"), ID: "own", Document: []byte("o1")},
		{Target: DeviceTarget("tt/1"), ID: "own", Document: []byte("o2")},
		{Target: DeviceTarget("dh/1"), ID: "own", Document: []byte("x")},
	} {
		s.Author = "admin"
		must[Schedule](t)(db.PutSchedule(ctx, s))
	}
	under := must[SubtreeSchedules](t)(db.LatestSchedulesUnder(ctx, "quang-nam/tam-ky"))
	var got []string
	for _, m := range []map[string]Schedule{under.Areas, under.Devices} {
		for id, s := range m {
			got = append(got, fmt.Sprintf("%s=%s@%d:%s", id, s.Target, s.Revision, s.Document))
		}
	}
	slices.Sort(got)
	want := []string{"quang-nam/tam-ky=area:quang-nam/tam-ky@2:k2", "tt/1=device:tt/1@2:o2"}
	if !slices.Equal(got, want) {
		t.Fatalf("latest schedules under tam-ky:\n got %q\nwant %q", got, want)
	}
	all := must[SubtreeSchedules](t)(db.LatestSchedulesUnder(ctx, ""))
	if len(all.Areas) != 3 || len(all.Devices) != 2 || string(all.Areas["quang-nam/duy-hai"].Document) != "d1" {
		t.Fatalf("latest schedules of the whole tree: %+v", all)
	}
}

// Writes from many goroutines are group-committed; each still succeeds or fails on its own.
func TestGroupCommitOfConcurrentWrites(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	const n = 40
	for i := range n {
		enrol(t, db, fmt.Sprintf("tt/%02d", i), "quang-nam/tam-ky/tam-thanh")
		must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: fmt.Sprintf("tt/%02d", i), Revision: 1, Document: []byte("x")}))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			rev := int64(1)
			if i%4 == 0 {
				rev = 2 // not stored: fails alone
			}
			_, errs[i] = db.MarkDelivery(ctx, fmt.Sprintf("tt/%02d", i), rev, StateReceived, "")
		}()
		go func() {
			defer wg.Done()
			errs[n+i] = db.Seen(ctx, fmt.Sprintf("tt/%02d", i))
		}()
	}
	wg.Wait()
	for i := range n {
		d := must[EffectiveSchedule](t)(db.LatestEffective(ctx, fmt.Sprintf("tt/%02d", i))).Delivery
		if i%4 == 0 {
			wantErr(t, errs[i], ErrNotFound, "delivery of a missing revision")
			if d.State != StateComposed {
				t.Fatalf("device %d: %+v", i, d)
			}
		} else if errs[i] != nil || d.State != StateReceived {
			t.Fatalf("device %d: %v %+v", i, errs[i], d)
		}
		noErr(t, errs[n+i])
		if dev := must[Device](t)(db.GetDevice(ctx, fmt.Sprintf("tt/%02d", i))); dev.LastSeen.IsZero() {
			t.Fatalf("device %d not marked seen", i)
		}
	}
}

// A file written before the signed bytes moved to their own table (schema step 3) keeps every
// effective schedule, its bytes and its delivery state.
func TestMigrateEffectiveDocumentsApart(t *testing.T) {
	sqliteOnly(t, "SQLite's schema step 3 on a file made before it; PostgreSQL starts at step 14")
	path := filepath.Join(t.TempDir(), "hub.db")
	ctx := context.Background()
	raw, err := sql.Open("sqlite", path+"?_foreign_keys=1&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	noErr(t, raw.PingContext(ctx))
	_, err = raw.ExecContext(ctx, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
	noErr(t, err)
	for _, m := range migrations() {
		if m.version >= 3 {
			break
		}
		_, err := raw.ExecContext(ctx, m.sql)
		noErr(t, err)
		_, err = raw.ExecContext(ctx, "INSERT INTO schema_version VALUES (?, ?, 0)", m.version, m.name)
		noErr(t, err)
	}
	for _, q := range []string{
		"INSERT INTO areas(id, name, parent_id, depth, created_at) VALUES ('qn', 'Quảng Nam', NULL, 1, 1)",
		"INSERT INTO devices(id, name, area_id, kind, outputs, secret_hash, enrolled_at) VALUES ('cl-1', 'x', 'qn', 'cluster', '[]', zeroblob(32), 1)",
		`INSERT INTO effective(device_id, revision, document, signature, sources, created_at, sent_at, received_at, refused_at, refused_reason)
			VALUES ('cl-1', 1, 'doc one', x'5151', '[]', 10, 11, 12, NULL, ''),
			       ('cl-1', 2, 'doc two', NULL, '[{"target":{"Kind":"area","ID":"qn"},"revision":4}]', 20, 21, NULL, 23, 'bad_signature: x')`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	noErr(t, raw.Close())

	db, err := Open(ctx, path, newClock(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v := must[int](t)(db.FileSchemaVersion(ctx)); v != SchemaVersion() {
		t.Fatalf("schema version %d after Open", v)
	}
	e1 := must[EffectiveSchedule](t)(db.Effective(ctx, "cl-1", 1))
	e2 := must[EffectiveSchedule](t)(db.LatestEffective(ctx, "cl-1"))
	if string(e1.Document) != "doc one" || string(e1.Signature) != "QQ" || e1.Delivery.State != StateReceived ||
		e1.Delivery.SentAt.UnixNano() != 11 || e1.CreatedAt.UnixNano() != 10 {
		t.Fatalf("revision 1 after the migration: %+v", e1)
	}
	if e2.Revision != 2 || string(e2.Document) != "doc two" || e2.Signature != nil || e2.Delivery.State != StateRefused ||
		e2.Delivery.RefusedReason != "bad_signature: x" || len(e2.Sources) != 1 || e2.Sources[0] != (SourceRevision{AreaTarget("qn"), 4}) {
		t.Fatalf("revision 2 after the migration: %+v", e2)
	}
	// And the table takes new revisions above the migrated ones.
	_, err = db.AddEffective(ctx, EffectiveSchedule{DeviceID: "cl-1", Revision: 2, Document: []byte("x")})
	wantErr(t, err, ErrStaleRevision, "revision 2 again after the migration")
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "cl-1", Revision: 3, Document: []byte("three")}))
	if e := must[EffectiveSchedule](t)(db.LatestEffective(ctx, "cl-1")); string(e.Document) != "three" {
		t.Fatalf("latest after a new revision: %+v", e)
	}
}
