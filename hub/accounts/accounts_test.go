package accounts

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/store"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// A token issued to a user authenticates as that user by its hash, until it expires; a
// validity outside a minute to MaxTokenLifetime is refused before anything is stored.
func TestIssueTokenOnARealStore(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), wallClock{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AddArea(ctx, store.Area{ID: "qn", Name: "Quảng Nam"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddUser(ctx, store.User{ID: "an", Name: "Nguyễn Văn An", Scope: "qn", Role: store.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, expires, err := IssueToken(ctx, db, "an", "test", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "loa-st1-") || !expires.Equal(now.Add(DefaultTokenLifetime)) {
		t.Errorf("token %q expiring %v, want loa-st1-… expiring after the default lifetime", tok, expires)
	}
	u, scope, err := db.Authenticate(ctx, HashToken(tok))
	if err != nil || u.ID != "an" || scope != "qn" {
		t.Errorf("the issued token authenticates as %q in %q (%v), want an in qn", u.ID, scope, err)
	}
	if _, _, err := db.Authenticate(ctx, HashToken(tok+"x")); err == nil {
		t.Error("another token authenticates")
	}
	for _, d := range []time.Duration{time.Second, MaxTokenLifetime + time.Hour} {
		if _, _, err := IssueToken(ctx, db, "an", "test", d, now); err == nil || !strings.Contains(err.Error(), "may be valid") {
			t.Errorf("valid for %v: %v, want a refusal naming the bounds", d, err)
		}
	}
	a, _ := NewToken()
	b, _ := NewToken()
	if a == b || len(a) != len(b) {
		t.Errorf("two new tokens %q and %q", a, b)
	}
}
