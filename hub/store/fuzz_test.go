package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/loa-project/loa/protocol"
)

// Ids come from staff (CLI) and devices (hello): never a panic, and a valid id behaves as a
// path (its parent is valid and contains it).
func FuzzAreaAndDeviceID(f *testing.F) {
	for _, s := range []string{"quang-nam", "quang-nam/tam-ky/tam-thanh", "tam-thanh/cl-07", "", "/", "a//b", "A", "a/", "ả", strings.Repeat("a/", 40)} {
		f.Add(s, "quang-nam")
	}
	f.Fuzz(func(t *testing.T, id, other string) {
		aerr := ValidateAreaID(id)
		derr := ValidateDeviceID(id)
		if aerr != nil && !errors.Is(aerr, ErrInvalid) || derr != nil && !errors.Is(derr, ErrInvalid) {
			t.Fatalf("unexpected error kinds: %v / %v", aerr, derr)
		}
		if derr == nil && aerr != nil {
			t.Fatalf("device id %q valid but the same path is not a valid area id: %v", id, aerr)
		}
		if aerr == nil {
			if !IsWithin(id, id) {
				t.Fatalf("%q not within itself", id)
			}
			if p := ParentArea(id); p != "" {
				if ValidateAreaID(p) != nil || !IsWithin(id, p) || IsWithin(p, id) {
					t.Fatalf("parent %q of %q", p, id)
				}
			}
		}
		// IsWithin is a segment-prefix relation, whatever the strings.
		if IsWithin(id, other) && !(id == other || strings.HasPrefix(id, other+"/")) {
			t.Fatalf("IsWithin(%q, %q)", id, other)
		}
	})
}

// Content refs come from uploads, schedules and confirmations.
func FuzzParseRef(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32))
	f.Add("sha256:" + strings.Repeat("AB", 32))
	f.Add("sha256:xyz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		canon, digest, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error kind: %v", err)
			}
			return
		}
		again, d2, err := ParseRef(canon)
		if err != nil || again != canon || d2 != digest || !strings.EqualFold(canon, s) || strings.ToLower(canon) != canon {
			t.Fatalf("ParseRef(%q) = %q; again %q %v", s, canon, again, err)
		}
	})
}

// Confirmations come from devices: any field values either store and read back or are refused
// with ErrInvalid, and never break the ack.
func FuzzAddConfirmation(f *testing.F) {
	f.Add(int64(1), "speakers", "completed", "", 95.5, -1.0)
	f.Add(int64(0), "", "", "\x00", -1.0, 0.0)
	f.Add(int64(-5), "ả", "failed", strings.Repeat("e", 5000), 1e308, -1e308)
	db, _, _ := openTest(f)
	ctx := context.Background()
	if _, err := db.AddArea(ctx, Area{ID: "q", Name: "Q"}); err != nil {
		f.Fatal(err)
	}
	enrol(f, db, "cl", "q")
	f.Fuzz(func(t *testing.T, seq int64, output, result, errText string, played, peak float64) {
		before := must[int64](t)(db.AckedSeq(ctx, "cl"))
		c := conf(seq)
		c.Output, c.Result, c.Error, c.PlayedS, c.PeakDBFS = output, protocol.Result(result), errText, played, &peak
		ack, err := db.AddConfirmations(ctx, "cl", []Confirmation{c})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if ack < before {
			t.Fatalf("ack went back from %d to %d", before, ack)
		}
		got := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{DeviceID: "cl", Since: c.Start, Until: c.Start.Add(1)}))
		found := false
		for _, g := range got {
			found = found || g.Seq == uint64(seq)
		}
		if !found {
			t.Fatalf("seq %d accepted but not listed", seq)
		}
	})
}
