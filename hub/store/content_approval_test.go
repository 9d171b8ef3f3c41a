package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// An item added without a state is approved at once; one submitted waits in its area, is
// listed by state and subtree, is rejected with a reason, may be approved after all, and an
// approval is final.
func TestContentApproval(t *testing.T) {
	db, _, _ := openTest(t)
	seedTree(t, db)
	ctx := context.Background()
	commune := "quang-nam/tam-ky/tam-thanh"
	ref := func(b string) string { return "sha256:" + strings.Repeat(b, 32) }
	old := must[Content](t)(first(db.AddContent(ctx, Content{Ref: ref("01"), Size: 1, Title: "Cũ", UploadedBy: "admin"})))
	if old.State != StateApproved || old.DecidedBy != "" {
		t.Fatalf("an item added with no state: %+v", old)
	}
	if _, _, err := db.AddContent(ctx, Content{Ref: ref("02"), Size: 1, Title: "Mới", UploadedBy: "lan", State: StateSubmitted}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a submitted item with no area: %v", err)
	}
	if _, _, err := db.AddContent(ctx, Content{Ref: ref("02"), Size: 1, Title: "Mới", UploadedBy: "lan", Area: commune, State: StateRejected}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an item added rejected: %v", err)
	}
	sub := must[Content](t)(first(db.AddContent(ctx, Content{Ref: ref("02"), Size: 1, Title: "Mới", UploadedBy: "lan", Area: commune, State: StateSubmitted})))
	got := must[Content](t)(db.GetContent(ctx, sub.Ref))
	if got.State != StateSubmitted || got.Area != commune || !got.DecidedAt.IsZero() {
		t.Fatalf("the submitted item read back: %+v", got)
	}
	waiting := must[[]Content](t)(db.ListContent(ctx, ContentFilter{State: StateSubmitted, Area: "quang-nam/tam-ky"}))
	if len(waiting) != 1 || waiting[0].Ref != sub.Ref {
		t.Fatalf("what waits in the district: %+v", waiting)
	}
	if other := must[[]Content](t)(db.ListContent(ctx, ContentFilter{State: StateSubmitted, Area: "quang-nam/hoi-an"})); len(other) != 0 {
		t.Fatalf("another district sees %+v", other)
	}
	if _, err := db.DecideContent(ctx, sub.Ref, "hung", false, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	rej := must[Content](t)(db.DecideContent(ctx, sub.Ref, "hung", false, "Sai tên xã"))
	if rej.State != StateRejected || rej.Reason != "Sai tên xã" || rej.DecidedBy != "hung" || rej.DecidedAt.IsZero() {
		t.Fatalf("the rejection: %+v", rej)
	}
	if _, err := db.DecideContent(ctx, sub.Ref, "hung", false, "again"); !errors.Is(err, ErrDecided) {
		t.Fatalf("rejecting twice: %v", err)
	}
	ok := must[Content](t)(db.DecideContent(ctx, sub.Ref, "mai", true, ""))
	if got := must[Content](t)(db.GetContent(ctx, sub.Ref)); got.State != StateApproved || got.DecidedBy != "mai" || got.Reason != "" || !got.DecidedAt.Equal(ok.DecidedAt) {
		t.Fatalf("approved after the rejection: %+v", got)
	}
	if _, err := db.DecideContent(ctx, old.Ref, "hung", true, ""); !errors.Is(err, ErrDecided) {
		t.Fatalf("approving an approved item: %v", err)
	}
	// The same bytes uploaded again keep their record and its state.
	again, created, err := db.AddContent(ctx, Content{Ref: sub.Ref, Size: 1, Title: "x", UploadedBy: "lan", Area: commune, State: StateSubmitted})
	if err != nil || created || again.State != StateApproved {
		t.Fatalf("the same bytes again: %+v %v %v", again, created, err)
	}
}

// first drops AddContent's created flag.
func first(c Content, _ bool, err error) (Content, error) { return c, err }
