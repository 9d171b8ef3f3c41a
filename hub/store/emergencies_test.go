package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testEmergency(area, series string, now time.Time) Emergency {
	return Emergency{Series: series, Kind: KindEmergency, Area: area, Class: "emergency", Title: "Bão số 13",
		Text: "Cảnh báo bão", Items: []byte(`[{"text":"Cảnh báo bão","duration":"10s"}]`), IssuedAt: now, Start: now,
		Every: 2 * time.Hour, Until: now.Add(6 * time.Hour), Volume: 1, Source: "cli", CreatedBy: "admin"}
}

func TestEmergenciesAddReplaceEndList(t *testing.T) {
	db, clk, path := openTest(t)
	ctx := context.Background()
	for _, a := range []string{"qn", "qn/tk", "qn/hoi-an"} {
		if _, err := db.AddArea(ctx, Area{ID: a, Name: a}); err != nil {
			t.Fatal(err)
		}
	}
	now := clk.Now()
	added, replaced, err := db.AddEmergencies(ctx, []Emergency{testEmergency("qn/tk", "storm-13", now)})
	if err != nil || len(added) != 1 || len(replaced) != 0 || added[0].ID == 0 {
		t.Fatalf("first add: %+v %+v %v", added, replaced, err)
	}
	first := added[0]
	got, err := db.GetEmergency(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Series != "storm-13" || got.Every != 2*time.Hour || !got.Until.Equal(now.Add(6*time.Hour)) || string(got.Items) != string(first.Items) ||
		got.Volume != 1 || got.CreatedBy != "admin" || !got.Active(now) {
		t.Fatalf("stored emergency differs: %+v", got)
	}

	// A newer one of the same series, for two areas, replaces the first in one step.
	clk.Advance(time.Minute)
	e2, e3 := testEmergency("qn/tk", "storm-13", clk.Now()), testEmergency("qn/hoi-an", "storm-13", clk.Now())
	added, replaced, err = db.AddEmergencies(ctx, []Emergency{e2, e3})
	if err != nil || len(added) != 2 || len(replaced) != 1 || replaced[0].ID != first.ID || replaced[0].ReplacedBy != added[0].ID {
		t.Fatalf("replace: %+v %+v %v", added, replaced, err)
	}
	old, _ := db.GetEmergency(ctx, first.ID)
	if old.Active(clk.Now()) || old.EndReason != "replaced" || old.ReplacedBy != added[0].ID {
		t.Fatalf("replaced row not ended: %+v", old)
	}
	active, err := db.ListEmergencies(ctx, EmergencyFilter{ActiveAt: clk.Now()})
	if err != nil || len(active) != 2 {
		t.Fatalf("active after replace: %d %v", len(active), err)
	}
	if l, _ := db.ListEmergencies(ctx, EmergencyFilter{Area: "qn/hoi-an"}); len(l) != 1 || l[0].Area != "qn/hoi-an" {
		t.Fatalf("area filter: %+v", l)
	}
	if l, _ := db.ListEmergencies(ctx, EmergencyFilter{Area: "qn"}); len(l) != 3 {
		t.Fatalf("subtree filter: %d rows, want 3", len(l))
	}

	// Ending: only rows not ended are touched; an expired row is no longer active.
	ended, err := db.EndEmergencies(ctx, []int64{added[0].ID, first.ID}, "cancelled", "admin")
	if err != nil || len(ended) != 1 || ended[0].ID != added[0].ID || ended[0].EndReason != "cancelled" {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if active, _ := db.ListEmergencies(ctx, EmergencyFilter{ActiveAt: clk.Now().Add(7 * time.Hour)}); len(active) != 0 {
		t.Fatalf("rows active after their until: %+v", active)
	}

	// Rows survive a reopen.
	db.Close()
	db2, err := Open(ctx, path, clk, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if l, _ := db2.ListEmergencies(ctx, EmergencyFilter{}); len(l) != 3 {
		t.Fatalf("after reopen: %d rows", len(l))
	}
}

func TestEmergenciesRefused(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	db.AddArea(ctx, Area{ID: "qn", Name: "qn"})
	now := clk.Now()
	for name, mod := range map[string]func(*Emergency){
		"unknown area":       func(e *Emergency) { e.Area = "qn/nowhere" },
		"until before start": func(e *Emergency) { e.Until = e.Start.Add(-time.Second) },
		"bad class":          func(e *Emergency) { e.Class = "urgent" },
		"bad kind":           func(e *Emergency) { e.Kind = "alarm" },
		"no series":          func(e *Emergency) { e.Series = "" },
		"bad items":          func(e *Emergency) { e.Items = []byte("{") },
		"loud":               func(e *Emergency) { e.Volume = 1.5 },
	} {
		e := testEmergency("qn", "s", now)
		mod(&e)
		_, _, err := db.AddEmergencies(ctx, []Emergency{e})
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
	if l, _ := db.ListEmergencies(ctx, EmergencyFilter{}); len(l) != 0 {
		t.Fatalf("refused rows were stored: %+v", l)
	}
	a, b := testEmergency("qn", "s1", now), testEmergency("qn", "s2", now)
	if _, _, err := db.AddEmergencies(ctx, []Emergency{a, b}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two series in one add: %v", err)
	}
}
