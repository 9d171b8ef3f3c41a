package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// `loa-hub migrate` copies a store into a new one (SQLite to SQLite here: the copy itself,
// and into PostgreSQL, is hub/store's TestCopy) and refuses a --from that is not there.
func TestMigrate(t *testing.T) {
	hubBin, _, _ := bins(t)
	dir := t.TempDir()
	from, to := filepath.Join(dir, "district.db"), filepath.Join(dir, "copy.db")
	ctx := context.Background()
	db, err := store.Open(ctx, from, clock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddArea(ctx, store.Area{ID: "quang-nam", Name: "Quảng Nam"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddUser(ctx, store.User{ID: "lan", Name: "Lan", Scope: "quang-nam"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	run := func(args ...string) (int, string) {
		cmd := exec.Command(hubBin, append([]string{"migrate"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run("--from", "sqlite:"+from, "--to", "sqlite:"+to); code != 0 || !strings.Contains(out, "copied 2 rows") {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	cp, err := store.Open(ctx, to, clock{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if u, err := cp.ListUsers(ctx, ""); err != nil || len(u) != 1 || u[0].ID != "lan" || u[0].CreatedAt.After(time.Now()) {
		t.Fatalf("users in the copy: %+v %v", u, err)
	}
	if code, out := run("--from", "sqlite:"+from, "--to", "sqlite:"+to); code != 1 || !strings.Contains(out, "has rows") {
		t.Errorf("migrate into a store with rows: exit %d\n%s", code, out)
	}
	if code, out := run("--from", filepath.Join(dir, "typo.db"), "--to", "sqlite:"+filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(out, "no hub store to copy") {
		t.Errorf("migrate from a missing file: exit %d\n%s", code, out)
	}
	if code, out := run("--from", "sqlite:"+from); code != 2 || !strings.Contains(out, "--from and --to are required") {
		t.Errorf("migrate without --to: exit %d\n%s", code, out)
	}
}
