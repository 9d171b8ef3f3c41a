package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func TestRoles(t *testing.T) {
	if !Can(RoleAdmin, RoleViewer) || !Can(RoleEmergency, RoleOperator) || Can(RoleOperator, RoleEmergency) || Can(RoleViewer, RoleOperator) {
		t.Fatal("the role ladder is viewer < operator < emergency < admin")
	}
	if Can("root", RoleViewer) || Can(RoleAdmin, "root") {
		t.Fatal("an unknown role may do nothing and is needed by nothing")
	}
	if _, err := ParseRole("superuser"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseRole(superuser) = %v", err)
	}
}

// A session lives until sign-out, idleness, its age or its user's disabling; sign-in is
// locked after the limit of failures in a row.
func TestSessionsAndLockout(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	u := must[User](t)(db.AddUser(ctx, User{ID: "lan", Name: "Lan", Scope: "quang-nam/tam-ky", Role: RoleViewer}))
	if u.Role != RoleViewer {
		t.Fatalf("role %q", u.Role)
	}
	if _, err := db.AddUser(ctx, User{ID: "x", Name: "X", Scope: "quang-nam", Role: "boss"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a user with role boss: %v", err)
	}
	noErr(t, db.SetPassword(ctx, "lan", "$argon2id$fake"))
	l := must[Login](t)(db.GetLogin(ctx, "lan"))
	if l.PasswordHash != "$argon2id$fake" || !l.LockedUntil.IsZero() || l.User.Role != RoleViewer {
		t.Fatalf("login %+v", l)
	}
	for i := 1; i <= 3; i++ {
		locked := must[bool](t)(db.LoginFailed(ctx, "lan", 3, 15*time.Minute))
		if locked != (i == 3) {
			t.Fatalf("failure %d: locked %v", i, locked)
		}
	}
	if l := must[Login](t)(db.GetLogin(ctx, "lan")); !l.LockedUntil.Equal(clk.Now().UTC().Add(15 * time.Minute)) {
		t.Fatalf("locked until %v", l.LockedUntil)
	}
	noErr(t, db.LoginSucceeded(ctx, "lan"))
	if l := must[Login](t)(db.GetLogin(ctx, "lan")); !l.LockedUntil.IsZero() {
		t.Fatalf("still locked after a good sign-in: %v", l.LockedUntil)
	}

	h := sha256.Sum256([]byte("cookie"))
	noErr(t, db.AddSession(ctx, h, "lan", "csrf-1"))
	got, csrf, err := db.Session(ctx, h, time.Hour, 12*time.Hour, true)
	if err != nil || got.ID != "lan" || csrf != "csrf-1" {
		t.Fatalf("session: %v %q %v", got, csrf, err)
	}
	clk.Advance(50 * time.Minute)
	if _, _, err := db.Session(ctx, h, time.Hour, 12*time.Hour, false); err != nil {
		t.Fatalf("a session used 50 min ago: %v", err)
	}
	clk.Advance(20 * time.Minute) // a check without touch did not count as use
	if _, _, err := db.Session(ctx, h, time.Hour, 12*time.Hour, true); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session only checked for 70 min: %v", err)
	}
	h = sha256.Sum256([]byte("cookie-1b"))
	noErr(t, db.AddSession(ctx, h, "lan", "csrf-1"))
	clk.Advance(50 * time.Minute)
	if _, _, err := db.Session(ctx, h, time.Hour, 12*time.Hour, true); err != nil {
		t.Fatalf("a session used 50 min ago: %v", err)
	}
	clk.Advance(61 * time.Minute)
	if _, _, err := db.Session(ctx, h, time.Hour, 12*time.Hour, true); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session idle 61 min: %v", err)
	}
	h2 := sha256.Sum256([]byte("cookie-2"))
	noErr(t, db.AddSession(ctx, h2, "lan", "csrf-2"))
	noErr(t, db.EndSession(ctx, h2))
	if _, _, err := db.Session(ctx, h2, time.Hour, 12*time.Hour, true); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("an ended session: %v", err)
	}
	h3 := sha256.Sum256([]byte("cookie-3"))
	noErr(t, db.AddSession(ctx, h3, "lan", "csrf-3"))
	noErr(t, db.DisableUser(ctx, "lan"))
	if _, _, err := db.Session(ctx, h3, time.Hour, 12*time.Hour, true); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a disabled user's session: %v", err)
	}
	h4 := sha256.Sum256([]byte("cookie-4"))
	noErr(t, db.AddSession(ctx, h4, "lan", "csrf-4"))
	noErr(t, db.SetPassword(ctx, "lan", "$argon2id$new"))
	if _, _, err := db.Session(ctx, h4, 24*time.Hour, 24*time.Hour, true); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session from before a password reset: %v", err)
	}
}
