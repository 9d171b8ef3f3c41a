package store

import (
	"context"
	"errors"
	"testing"
)

// An area's policy follows the nearest area above with a setting; "inherit" clears its own.
// A decision is taken once: an approval makes the next revision with its approver, a second
// decision is refused, a rejection needs its reason.
func TestPolicyAndDecide(t *testing.T) {
	db, _, _ := openTest(t)
	seedTree(t, db)
	ctx := context.Background()
	commune := "quang-nam/tam-ky/tam-thanh"
	if p := must[EffectivePolicy](t)(db.PolicyOf(ctx, commune)); p.Required || p.SelfApproval {
		t.Fatalf("the default policy: %+v", p)
	}
	noErr(t, db.SetPolicy(ctx, "quang-nam/tam-ky", Policy{Approval: ApprovalRequired}))
	noErr(t, db.SetPolicy(ctx, commune, Policy{SelfApproval: SelfAllowed}))
	if p := must[EffectivePolicy](t)(db.PolicyOf(ctx, commune)); !p.Required || !p.SelfApproval {
		t.Fatalf("approval from the district, self-approval the commune's own: %+v", p)
	}
	noErr(t, db.SetPolicy(ctx, commune, Policy{SelfApproval: "inherit"}))
	if p := must[EffectivePolicy](t)(db.PolicyOf(ctx, commune)); !p.Required || p.SelfApproval {
		t.Fatalf("after inherit: %+v", p)
	}
	if err := db.SetPolicy(ctx, commune, Policy{Approval: "yes"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("approval yes: %v", err)
	}
	if err := db.SetPolicy(ctx, "quang-nam/nowhere", Policy{Approval: ApprovalRequired}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an area that does not exist: %v", err)
	}

	doc := []byte("version: 1\nid: tt\nprograms: []\n")
	sub := must[Submission](t)(db.Submit(ctx, commune, Schedule{Target: AreaTarget(commune), ID: "tt", Document: doc, Author: "lan"}))
	if _, err := db.LatestSchedule(ctx, AreaTarget(commune)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a submission made a revision: %v", err)
	}
	if _, err := db.Decide(ctx, sub.ID, "hung", false, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	got := must[Submission](t)(db.Decide(ctx, sub.ID, "hung", true, ""))
	sc := must[Schedule](t)(db.LatestSchedule(ctx, AreaTarget(commune)))
	if got.State != StateApproved || got.Revision != 1 || sc.Revision != 1 || sc.Author != "lan" || sc.ApprovedBy != "hung" || sc.ApprovedAt.IsZero() {
		t.Fatalf("the approval: %+v, revision %+v", got, sc)
	}
	if _, err := db.Decide(ctx, sub.ID, "mai", false, "muộn"); !errors.Is(err, ErrDecided) {
		t.Fatalf("a second decision: %v", err)
	}
	if subs := must[[]Submission](t)(db.ListSubmissions(ctx, "quang-nam/duy-hai", "", 0)); len(subs) != 0 {
		t.Fatalf("another district lists %+v", subs)
	}
}
