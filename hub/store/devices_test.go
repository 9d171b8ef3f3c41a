package store

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDevices(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)

	d := must[Device](t)(db.EnrolDevice(ctx, Device{ID: "tam-thanh/cl-07", Name: "Cụm 7", Area: "quang-nam/tam-ky/tam-thanh",
		Kind: KindCluster, Outputs: []string{"speakers", "board"}}, hashOf("s3cret")))
	enrolledAt := clk.Now()
	got := must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07"))
	if got.Name != "Cụm 7" || got.Area != "quang-nam/tam-ky/tam-thanh" || got.Kind != KindCluster ||
		!slices.Equal(got.Outputs, []string{"speakers", "board"}) || !got.EnrolledAt.Equal(enrolledAt) ||
		got.Revoked || !got.LastSeen.IsZero() || got.AckedSeq != 0 || !math.IsNaN(got.Status.TemperatureC) {
		t.Fatalf("GetDevice: %+v", got)
	}
	if !got.EnrolledAt.Equal(d.EnrolledAt) {
		t.Fatalf("EnrolDevice returned %v, stored %v", d.EnrolledAt, got.EnrolledAt)
	}
	must[Device](t)(db.EnrolDevice(ctx, Device{ID: "tam-phu/board-1", Name: "Bảng 1", Area: "quang-nam/tam-ky/tam-phu", Kind: KindBoard}, hashOf("b")))
	must[Device](t)(db.EnrolDevice(ctx, Device{ID: "dh-01", Name: "Duy Hải 1", Area: "quang-nam/duy-hai", Kind: KindCluster}, hashOf("c")))

	_, err := db.EnrolDevice(ctx, Device{ID: "tam-thanh/cl-07", Name: "again", Area: "quang-nam/duy-hai", Kind: KindCluster}, hashOf("x"))
	wantErr(t, err, ErrExists, "duplicate device")
	_, err = db.EnrolDevice(ctx, Device{ID: "x/cl-1", Name: "x", Area: "quang-nam/nowhere", Kind: KindCluster}, hashOf("x"))
	wantErr(t, err, ErrNotFound, "unknown area")
	_, err = db.EnrolDevice(ctx, Device{ID: "x/cl-1", Name: "x", Area: "quang-nam", Kind: "speaker"}, hashOf("x"))
	wantErr(t, err, ErrInvalid, "bad kind")
	_, err = db.EnrolDevice(ctx, Device{ID: "a/b/c/d/e", Name: "x", Area: "quang-nam", Kind: KindCluster}, hashOf("x"))
	wantErr(t, err, ErrInvalid, "too many segments")
	_, err = db.EnrolDevice(ctx, Device{ID: "x/cl-1", Name: "x", Area: "quang-nam", Kind: KindCluster}, [32]byte{})
	wantErr(t, err, ErrInvalid, "empty hash")
	_, err = db.EnrolDevice(ctx, Device{ID: "x/cl-1", Name: "x", Area: "quang-nam", Kind: KindCluster, Outputs: []string{"Loa Ngoài"}}, hashOf("x"))
	wantErr(t, err, ErrInvalid, "bad output name")

	list := func(area string) string {
		var s []string
		for _, d := range must[[]Device](t)(db.ListDevices(ctx, area)) {
			s = append(s, d.ID)
		}
		return strings.Join(s, " ")
	}
	if got := list("quang-nam/tam-ky/tam-thanh"); got != "tam-thanh/cl-07" {
		t.Fatalf("devices in tam-thanh: %s", got)
	}
	if got := list("quang-nam/tam-ky"); got != "tam-phu/board-1 tam-thanh/cl-07" {
		t.Fatalf("devices in tam-ky: %s", got)
	}
	if got := list("quang-nam"); got != "dh-01 tam-phu/board-1 tam-thanh/cl-07" {
		t.Fatalf("devices in quang-nam: %s", got)
	}
	if got := list(""); got != "dh-01 tam-phu/board-1 tam-thanh/cl-07" {
		t.Fatalf("all devices: %s", got)
	}

	// Secrets.
	if d, err := db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("s3cret")); err != nil || d.ID != "tam-thanh/cl-07" {
		t.Fatalf("right secret: %v %+v", err, d)
	}
	_, err = db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("guess"))
	wantErr(t, err, ErrUnauthorized, "wrong secret")
	_, err = db.CheckSecret(ctx, "tam-thanh/cl-99", hashOf("s3cret"))
	wantErr(t, err, ErrUnauthorized, "unknown device")
	noErr(t, db.ReplaceSecret(ctx, "tam-thanh/cl-07", hashOf("new")))
	_, err = db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("s3cret"))
	wantErr(t, err, ErrUnauthorized, "old secret after replacement")
	must[Device](t)(db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("new")))

	// Status and last seen.
	clk.Advance(time.Minute)
	noErr(t, db.Seen(ctx, "tam-phu/board-1"))
	if got := must[Device](t)(db.GetDevice(ctx, "tam-phu/board-1")); !got.LastSeen.Equal(clk.Now()) || !got.StatusAt.IsZero() {
		t.Fatalf("after Seen: %+v", got)
	}
	clk.Advance(time.Minute)
	st := Status{NowPlaying: "morning/2 sha256:ab…", Volume: 0.8, ClockOffset: -1500 * time.Millisecond,
		DiskFreeBytes: 1 << 30, DiskTotalBytes: 8 << 30, TemperatureC: 61.5, Uptime: 49 * time.Hour,
		Link: "4g -87dBm", SoftwareVersion: "0.3.0", ClockError: 14200 * time.Microsecond, ClockSource: "chrony"}
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", st))
	got = must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07"))
	if got.Status != st || !got.LastSeen.Equal(clk.Now()) || !got.StatusAt.Equal(clk.Now()) {
		t.Fatalf("status round trip: %+v", got)
	}
	st.TemperatureC = math.NaN()
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", st))
	if got := must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07")); !math.IsNaN(got.Status.TemperatureC) {
		t.Fatalf("unknown temperature came back as %v", got.Status.TemperatureC)
	}
	// Parts: kept as given, and gone when a heartbeat has none (an older agent).
	since := clk.Now().Add(-time.Hour).UTC()
	st.Parts = Parts{Relay: &Part{State: "unknown", Error: "LCUS relay /dev/loa-relay: open: no such file", Since: since}, Sign: &Part{State: "connected"}}
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", st))
	p := must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07")).Status.Parts
	if p.Relay == nil || *p.Relay != *st.Parts.Relay || p.Sign == nil || *p.Sign != *st.Parts.Sign || p.Screen != nil ||
		strings.Join(p.Faults(), "|") != "relay: LCUS relay /dev/loa-relay: open: no such file" {
		t.Fatalf("parts round trip: %+v %+v %+v", p.Relay, p.Sign, p.Screen)
	}
	st.Parts = Parts{}
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", st))
	if p := must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07")).Status.Parts; p != (Parts{}) {
		t.Fatalf("parts after a heartbeat without them: %+v", p)
	}
	wantErr(t, db.UpdateStatus(ctx, "nope", st), ErrNotFound, "status of unknown device")
	wantErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", Status{Volume: math.Inf(1)}), ErrInvalid, "infinite volume")
	wantErr(t, db.Seen(ctx, "nope"), ErrNotFound, "seen unknown device")

	// Moving keeps the id and secret.
	noErr(t, db.MoveDevice(ctx, "tam-thanh/cl-07", "quang-nam/duy-hai"))
	if got := list("quang-nam/duy-hai"); got != "dh-01 tam-thanh/cl-07" {
		t.Fatalf("after move: %s", got)
	}
	wantErr(t, db.MoveDevice(ctx, "tam-thanh/cl-07", "quang-nam/nowhere"), ErrNotFound, "move to unknown area")

	// Revocation.
	revokedAt := clk.Advance(time.Hour)
	noErr(t, db.RevokeDevice(ctx, "tam-thanh/cl-07"))
	clk.Advance(time.Hour)
	noErr(t, db.RevokeDevice(ctx, "tam-thanh/cl-07"))
	got = must[Device](t)(db.GetDevice(ctx, "tam-thanh/cl-07"))
	if !got.Revoked || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("revoked: %v at %v, want at %v", got.Revoked, got.RevokedAt, revokedAt)
	}
	_, err = db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("new"))
	wantErr(t, err, ErrUnauthorized, "revoked device with its right secret")
	wantErr(t, db.RevokeDevice(ctx, "nope"), ErrNotFound, "revoke unknown device")
}

func TestContent(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	ref := refOf("bulletin-1")
	c := Content{Ref: strings.ToUpper(ref[:7]) + strings.ToUpper(ref[7:]), Size: 123456, Duration: 95 * time.Second,
		MIME: "audio/mpeg", Title: "Bản tin sáng", Theme: "human-rights", Language: "vi", Format: "radio-report",
		ProducingUnit: "tam-ky-radio", UploadedBy: "lan"}
	_, _, err := db.AddContent(ctx, c)
	wantErr(t, err, ErrInvalid, "uppercase prefix")
	c.Ref = "sha256:" + strings.ToUpper(ref[7:])
	stored, created, err := db.AddContent(ctx, c)
	noErr(t, err)
	if !created || stored.Ref != ref || !stored.UploadedAt.Equal(clk.Now()) {
		t.Fatalf("AddContent: created=%v %+v", created, stored)
	}
	clk.Advance(time.Hour)
	again := c
	again.Title = "changed"
	stored2, created, err := db.AddContent(ctx, again)
	noErr(t, err)
	if created || stored2 != stored {
		t.Fatalf("second add of the same bytes: created=%v %+v, want the first record %+v", created, stored2, stored)
	}
	got := must[Content](t)(db.GetContent(ctx, ref))
	if got != stored {
		t.Fatalf("GetContent: %+v, want %+v", got, stored)
	}
	again.Size = 1
	_, _, err = db.AddContent(ctx, again)
	wantErr(t, err, ErrInvalid, "same ref, other size")
	for _, bad := range []string{"", "md5:abc", "sha256:xyz", "sha256:" + strings.Repeat("g", 64), ref + "0"} {
		_, _, err = db.AddContent(ctx, Content{Ref: bad})
		wantErr(t, err, ErrInvalid, "bad ref "+bad)
	}
	_, err = db.GetContent(ctx, refOf("missing"))
	wantErr(t, err, ErrNotFound, "missing content")

	// Taxonomy: free while a dimension has no terms, enforced once it has.
	noErr(t, db.AddTerm(ctx, Term{DimLanguage, "vi", "Tiếng Việt"}))
	noErr(t, db.AddTerm(ctx, Term{DimLanguage, "ctu", "Cơ Tu"}))
	noErr(t, db.AddTerm(ctx, Term{DimLanguage, "ctu", "Cơ Tu (Katu)"}))
	wantErr(t, db.AddTerm(ctx, Term{"genre", "x", ""}), ErrInvalid, "unknown dimension")
	wantErr(t, db.AddTerm(ctx, Term{DimTheme, "Bad Value", ""}), ErrInvalid, "bad term value")
	terms := must[[]Term](t)(db.ListTerms(ctx, DimLanguage))
	if len(terms) != 2 || terms[0] != (Term{DimLanguage, "ctu", "Cơ Tu (Katu)"}) || terms[1].Value != "vi" {
		t.Fatalf("terms: %+v", terms)
	}
	_, _, err = db.AddContent(ctx, Content{Ref: refOf("x"), Language: "cotu", Theme: "anything"})
	wantErr(t, err, ErrInvalid, "language not in the taxonomy")
	if err == nil || !strings.Contains(err.Error(), "ctu, vi") {
		t.Fatalf("the error should list the known languages: %v", err)
	}

	clk.Advance(time.Hour)
	mid := clk.Now()
	must3(t)(db.AddContent(ctx, Content{Ref: refOf("drama"), Language: "ctu", Theme: "human-rights", Format: "drama", ProducingUnit: "nam-giang", UploadedBy: "hoa"}))
	clk.Advance(time.Hour)
	must3(t)(db.AddContent(ctx, Content{Ref: refOf("skit"), Language: "vi", Theme: "health", Format: "skit", ProducingUnit: "nam-giang", UploadedBy: "hoa"}))

	list := func(f ContentFilter) string {
		var s []string
		for _, c := range must[[]Content](t)(db.ListContent(ctx, f)) {
			s = append(s, c.Ref[7:11])
		}
		return strings.Join(s, " ")
	}
	short := func(r string) string { return r[7:11] }
	if got, want := list(ContentFilter{}), strings.Join([]string{short(refOf("skit")), short(refOf("drama")), short(ref)}, " "); got != want {
		t.Fatalf("all content newest first: %s, want %s", got, want)
	}
	if got := list(ContentFilter{ProducingUnit: "nam-giang", Language: "ctu"}); got != short(refOf("drama")) {
		t.Fatalf("ctu from nam-giang: %s", got)
	}
	if got := list(ContentFilter{Theme: "human-rights"}); got != short(refOf("drama"))+" "+short(ref) {
		t.Fatalf("human-rights: %s", got)
	}
	if got := list(ContentFilter{Since: mid, Limit: 1}); got != short(refOf("skit")) {
		t.Fatalf("since mid, limit 1: %s", got)
	}
	if got := list(ContentFilter{Until: mid}); got != short(ref) {
		t.Fatalf("until mid: %s", got)
	}
}

func must3(t testing.TB) func(Content, bool, error) {
	return func(_ Content, _ bool, err error) {
		t.Helper()
		noErr(t, err)
	}
}
