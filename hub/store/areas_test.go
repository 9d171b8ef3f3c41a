package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/pgtest"
)

func TestOpenSetsPragmasAndMigrates(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	if db.pg {
		var ro string
		noErr(t, db.r.QueryRowContext(ctx, "SHOW default_transaction_read_only").Scan(&ro))
		if ro != "on" {
			t.Fatalf("reader default_transaction_read_only=%s", ro)
		}
	} else {
		sqlitePragmas(t, db)
	}
	if _, err := db.r.ExecContext(ctx, "INSERT INTO taxonomy VALUES ('theme','x','x')"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
	v := must[int](t)(db.FileSchemaVersion(ctx))
	if v != SchemaVersion() {
		t.Fatalf("file schema version %d, want %d", v, SchemaVersion())
	}
}

// The pragmas Open gives SQLite's two pools (synchronous 2 = FULL: commits durable before they are answered).
func sqlitePragmas(t *testing.T, db *DB) {
	ctx := context.Background()
	var mode string
	var fk, sync, busy, temp int
	noErr(t, db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	noErr(t, db.w.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp))
	noErr(t, db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	noErr(t, db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	noErr(t, db.w.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
	if mode != "wal" || fk != 1 || sync != 2 || busy != int(BusyTimeout.Milliseconds()) || temp != 2 {
		t.Fatalf("writer pragmas: journal_mode=%s foreign_keys=%d synchronous=%d busy_timeout=%d temp_store=%d", mode, fk, sync, busy, temp)
	}
	noErr(t, db.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	if fk != 1 {
		t.Fatalf("reader foreign_keys=%d", fk)
	}
}

func TestOpenRefusesNewerSchemaAndBadPaths(t *testing.T) {
	db, clk, path := openTest(t)
	ctx := context.Background()
	_, err := db.w.ExecContext(ctx, "INSERT INTO schema_version(version, name, applied_at) VALUES (?, 'future', 0)", SchemaVersion()+1)
	noErr(t, err)
	noErr(t, db.Close())
	_, err = Open(ctx, path, clk, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "newer loa-hub") {
		t.Fatalf("opening a file from a newer hub: %v", err)
	}
	bad := []string{"", "a?b.db", t.TempDir() + "/no/such/dir/hub.db", "postgres://loa:hunter2@[::1", "postgres://secret-user:hunter2@127.0.0.1:1/x"}
	if testEngine == "postgres" {
		bad = append(bad, pgtest.URL("no_such_database"))
	}
	for _, p := range bad {
		if db, err := Open(ctx, p, clk, nil); err == nil {
			db.Close()
			t.Fatalf("Open(%q) succeeded", p)
		} else {
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open's error shows the password: %v", err)
			}
			t.Logf("Open(%q): %v", p, err)
		}
	}
}

func TestAreas(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)

	a := must[Area](t)(db.GetArea(ctx, "quang-nam/tam-ky/tam-thanh"))
	if a.Name != "Tam Thanh" || a.Parent != "quang-nam/tam-ky" || a.Depth != 3 || !a.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("GetArea: %+v", a)
	}
	if a.CreatedAt.Location().String() != "UTC" {
		t.Fatalf("times come back in %v, want UTC", a.CreatedAt.Location())
	}
	// A commune directly under the province (no district level).
	b := must[Area](t)(db.GetArea(ctx, "quang-nam/duy-hai"))
	if b.Parent != "quang-nam" || b.Depth != 2 {
		t.Fatalf("commune under province: %+v", b)
	}
	// Explicit matching parent is accepted.
	must[Area](t)(db.AddArea(ctx, Area{ID: "quang-nam/tam-ky/tam-thanh/thon-1", Name: "Thôn 1", Parent: "quang-nam/tam-ky/tam-thanh"}))

	_, err := db.AddArea(ctx, Area{ID: "quang-nam/tam-ky", Name: "again"})
	wantErr(t, err, ErrExists, "duplicate id")
	_, err = db.AddArea(ctx, Area{ID: "da-nang/hai-chau", Name: "Hải Châu"})
	wantErr(t, err, ErrNotFound, "missing parent")
	_, err = db.AddArea(ctx, Area{ID: "quang-nam/x", Name: "X", Parent: "quang-nam/x"})
	wantErr(t, err, ErrInvalid, "own parent")
	_, err = db.AddArea(ctx, Area{ID: "quang-nam/tam-ky", Name: "X", Parent: "quang-nam/tam-ky/tam-thanh"})
	wantErr(t, err, ErrInvalid, "cycle: parent below the area")
	_, err = db.AddArea(ctx, Area{ID: "quang-nam/tam-ky/y", Name: "Y", Parent: "quang-nam/duy-hai"})
	wantErr(t, err, ErrInvalid, "id not under the given parent")
	for _, bad := range []string{"", "Quang-Nam", "quang nam", "quang-nam/", "/quang-nam", "quang-nam//x", "-x", "quảng-nam", strings.Repeat("a", 64)} {
		_, err = db.AddArea(ctx, Area{ID: bad, Name: "bad"})
		wantErr(t, err, ErrInvalid, fmt.Sprintf("bad id %q", bad))
	}
	_, err = db.AddArea(ctx, Area{ID: "hue", Name: " "})
	wantErr(t, err, ErrInvalid, "empty name")

	roots := must[[]Area](t)(db.ListChildren(ctx, ""))
	if len(roots) != 1 || roots[0].ID != "quang-nam" {
		t.Fatalf("roots: %+v", roots)
	}
	kids := must[[]Area](t)(db.ListChildren(ctx, "quang-nam"))
	if ids(kids) != "quang-nam/duy-hai quang-nam/tam-ky" {
		t.Fatalf("children of quang-nam: %s", ids(kids))
	}
	kids = must[[]Area](t)(db.ListChildren(ctx, "quang-nam/tam-ky"))
	if ids(kids) != "quang-nam/tam-ky/tam-phu quang-nam/tam-ky/tam-thanh" {
		t.Fatalf("children of tam-ky: %s", ids(kids))
	}
	sub := must[[]Area](t)(db.ListSubtree(ctx, "quang-nam/tam-ky"))
	if ids(sub) != "quang-nam/tam-ky quang-nam/tam-ky/tam-phu quang-nam/tam-ky/tam-thanh quang-nam/tam-ky/tam-thanh/thon-1" {
		t.Fatalf("subtree of tam-ky: %s", ids(sub))
	}
	anc := must[[]Area](t)(db.Ancestors(ctx, "quang-nam/tam-ky/tam-thanh"))
	if ids(anc) != "quang-nam quang-nam/tam-ky" {
		t.Fatalf("ancestors: %s", ids(anc))
	}
	if anc := must[[]Area](t)(db.Ancestors(ctx, "quang-nam")); len(anc) != 0 {
		t.Fatalf("ancestors of a root: %s", ids(anc))
	}
	_, err = db.Ancestors(ctx, "quang-nam/nowhere")
	wantErr(t, err, ErrNotFound, "ancestors of a missing area")
	_, err = db.GetArea(ctx, "nowhere")
	wantErr(t, err, ErrNotFound, "get missing area")
}

func ids(as []Area) string {
	var s []string
	for _, a := range as {
		s = append(s, a.ID)
	}
	return strings.Join(s, " ")
}

// An 8-level tree with two branches at each level: ancestry from the store, the subtree
// queries and the pure IsWithin test must agree everywhere.
func TestDeepTree(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	const levels = 8
	var all []string
	var grow func(parent string, level int)
	grow = func(parent string, level int) {
		if level > levels {
			return
		}
		for _, n := range []string{"a", "b"} {
			if level > 3 && n == "b" {
				continue // keep the tree small: branch on the first three levels only
			}
			id := fmt.Sprintf("l%d%s", level, n)
			if parent != "" {
				id = parent + "/" + id
			}
			must[Area](t)(db.AddArea(ctx, Area{ID: id, Name: id}))
			all = append(all, id)
			grow(id, level+1)
		}
	}
	grow("", 1)
	// Parents as the store reports them, to compute ancestry without using ids.
	parent := map[string]string{}
	for _, id := range all {
		parent[id] = must[Area](t)(db.GetArea(ctx, id)).Parent
	}
	isAncestor := func(a, anc string) bool {
		for p := a; p != ""; p = parent[p] {
			if p == anc {
				return true
			}
		}
		return false
	}
	deepest := ""
	for _, id := range all {
		if strings.Count(id, "/") == levels-1 {
			deepest = id
		}
	}
	if deepest == "" {
		t.Fatal("no area at depth 8")
	}
	anc := must[[]Area](t)(db.Ancestors(ctx, deepest))
	if len(anc) != levels-1 {
		t.Fatalf("deepest %s has %d ancestors, want %d", deepest, len(anc), levels-1)
	}
	for i, a := range anc {
		if a.Depth != i+1 || !isAncestor(deepest, a.ID) || (i > 0 && a.Parent != anc[i-1].ID) {
			t.Fatalf("ancestor %d of %s: %+v", i, deepest, a)
		}
	}
	// Devices at every area; each area's subtree lists exactly the devices below it.
	for i, id := range all {
		enrol(t, db, fmt.Sprintf("d%d", i), id)
	}
	for _, anc := range all {
		sub := must[[]Area](t)(db.ListSubtree(ctx, anc))
		devs := must[[]Device](t)(db.ListDevices(ctx, anc))
		want := 0
		for _, id := range all {
			if IsWithin(id, anc) != isAncestor(id, anc) {
				t.Fatalf("IsWithin(%s, %s) = %v, tree says %v", id, anc, IsWithin(id, anc), isAncestor(id, anc))
			}
			if isAncestor(id, anc) {
				want++
			}
		}
		if len(sub) != want || len(devs) != want {
			t.Fatalf("under %s: %d areas, %d devices; want %d", anc, len(sub), len(devs), want)
		}
		for _, d := range devs {
			if !isAncestor(d.Area, anc) {
				t.Fatalf("device %s in %s listed under %s", d.ID, d.Area, anc)
			}
		}
	}
	_, err := db.AddArea(ctx, Area{ID: strings.Repeat("x/", MaxAreaDepth) + "x", Name: "too deep"})
	wantErr(t, err, ErrInvalid, "deeper than the limit")
}

func TestIsWithinAndAllowed(t *testing.T) {
	cases := []struct {
		area, anc string
		want      bool
	}{
		{"quang-nam/tam-ky/tam-thanh", "quang-nam", true},
		{"quang-nam/tam-ky/tam-thanh", "quang-nam/tam-ky", true},
		{"quang-nam/tam-ky/tam-thanh", "quang-nam/tam-ky/tam-thanh", true},
		{"quang-nam/tam-ky/tam-thanh", "quang-nam/tam-ky/tam-phu", false},
		{"quang-nam/tam-ky", "quang-nam/tam-ky/tam-thanh", false}, // a commune cannot act on its district
		{"quang-nam/tam-ky-2", "quang-nam/tam-ky", false},         // a prefix that is not a whole segment
		{"quang-nam/tam-ky.b", "quang-nam/tam-ky", false},
		{"quang-nam", "", false},
		{"", "quang-nam", false},
	}
	for _, c := range cases {
		if got := IsWithin(c.area, c.anc); got != c.want {
			t.Errorf("IsWithin(%q, %q) = %v, want %v", c.area, c.anc, got, c.want)
		}
		if got := Allowed(c.anc, c.area); got != c.want {
			t.Errorf("Allowed(scope %q, target %q) = %v, want %v", c.anc, c.area, got, c.want)
		}
	}
}

// The subtree SQL range must agree with IsWithin on ids whose characters sort below '/'
// ('-' and '.'), the case a naive LIKE 'x%' gets wrong.
func TestSubtreeRangeMatchesIsWithin(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	var all []string
	for _, id := range []string{"q", "q/a", "q/a-b", "q/a.b", "q/a/x", "q/a0", "q/a-b/y", "q/ab", "q/a_", "q/a/x/z"} {
		must[Area](t)(db.AddArea(ctx, Area{ID: id, Name: id}))
		all = append(all, id)
	}
	for _, anc := range all {
		got := ids(must[[]Area](t)(db.ListSubtree(ctx, anc)))
		var want []string
		for _, id := range all {
			if IsWithin(id, anc) {
				want = append(want, id)
			}
		}
		// ListSubtree orders by id; so does this.
		if w := strings.Join(sortStrings(want), " "); got != w {
			t.Fatalf("subtree of %s: got %q, want %q", anc, got, w)
		}
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}
