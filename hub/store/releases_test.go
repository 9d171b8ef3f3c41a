package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

func testRelease(version, arch, sum string) Release {
	return Release{ReleasePackage: protocol.ReleasePackage{Name: protocol.ReleaseName, Version: version, Arch: arch, Size: 100,
		SHA256: strings.Repeat(sum, 64), KeyID: "rel", Signature: strings.Repeat("ab", 64)}, UploadedBy: "admin"}
}

// A release is kept once per version and arch: the same bytes again are the same release,
// other bytes under a held version are refused.
func TestReleases(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	r, created, err := db.AddRelease(ctx, testRelease("1.2.0", "arm64", "a"))
	noErr(t, err)
	if !created || r.UploadedAt.IsZero() {
		t.Fatalf("first upload: created %v, %+v", created, r)
	}
	if _, created, err = db.AddRelease(ctx, testRelease("1.2.0", "arm64", "a")); err != nil || created {
		t.Fatalf("same bytes again: created %v, err %v", created, err)
	}
	_, _, err = db.AddRelease(ctx, testRelease("1.2.0", "arm64", "b"))
	wantErr(t, err, ErrExists, "other bytes under a held version")
	if !strings.Contains(err.Error(), "never replaced") {
		t.Fatalf("refusal does not say why: %v", err)
	}
	_, _, err = db.AddRelease(ctx, testRelease("v1", "arm64", "a"))
	wantErr(t, err, ErrInvalid, "a bad version")
	must[Release](t)(func() (Release, error) {
		r, _, err := db.AddRelease(ctx, testRelease("1.2.0", "armhf", "c"))
		return r, err
	}())
	got := must[Release](t)(db.GetRelease(ctx, "1.2.0", "armhf"))
	if got.SHA256 != strings.Repeat("c", 64) || got.Name != protocol.ReleaseName {
		t.Fatalf("read back: %+v", got)
	}
	_, err = db.GetRelease(ctx, "1.2.0", "amd64")
	wantErr(t, err, ErrNotFound, "a release not held")
	if all := must[[]Release](t)(db.ListReleases(ctx)); len(all) != 2 {
		t.Fatalf("%d releases listed, want 2", len(all))
	}
}

// Rollouts: one per overlapping area while running, stage moves happen once, the device
// states agents report are kept with the hub's time of the first healthy.
func TestRollouts(t *testing.T) {
	db, clock, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tt/cl-2", "quang-nam/tam-ky/tam-thanh")
	noErr(t, db.SetAgent(ctx, "tt/cl-1", "loa-agent/1.1.0", "arm64", true))
	d := must[Device](t)(db.GetDevice(ctx, "tt/cl-1"))
	if d.Arch != "arm64" || !d.Upgrades || d.Status.SoftwareVersion != "loa-agent/1.1.0" {
		t.Fatalf("agent not recorded: %+v", d)
	}
	r := Rollout{ID: "ro-1", Area: "quang-nam/tam-ky", Version: "1.2.0", CanaryPercent: 50, HealthyFor: time.Minute,
		HealthyWithinS: 600, MaxFailurePercent: 20, CreatedBy: "admin"}
	devs := []RolloutDevice{{Device: "tt/cl-1", Stage: DeviceCanary, Arch: "arm64", From: "1.1.0", State: UpgradePending},
		{Device: "tt/cl-2", Stage: DeviceNone, State: UpgradeCannot, Error: "its agent does not install upgrades"}}
	must[Rollout](t)(db.AddRollout(ctx, r, devs))
	r2 := r
	r2.ID, r2.Area = "ro-2", "quang-nam/tam-ky/tam-thanh"
	_, err := db.AddRollout(ctx, r2, nil)
	wantErr(t, err, ErrExists, "a rollout below a running one")
	if !strings.Contains(err.Error(), "ro-1") {
		t.Fatalf("refusal does not name the running rollout: %v", err)
	}
	r2.Area = "quang-nam/duy-hai"
	must[Rollout](t)(db.AddRollout(ctx, r2, nil)) // a separate area
	if open := must[[]Rollout](t)(db.OpenRollouts(ctx)); len(open) != 2 {
		t.Fatalf("%d open rollouts, want 2", len(open))
	}

	if ok := must[bool](t)(db.SetRolloutDevice(ctx, "ro-1", "tt/cl-1", []string{UpgradePending}, UpgradeSent, "")); !ok {
		t.Fatal("pending -> sent not set")
	}
	if ok := must[bool](t)(db.SetRolloutDevice(ctx, "ro-1", "tt/cl-1", []string{UpgradePending}, UpgradeSent, "")); ok {
		t.Fatal("pending -> sent set twice")
	}
	clock.Advance(time.Second)
	healthyAt := clock.Now()
	u := protocol.UpgradeStatus{Rollout: "ro-1", Version: "1.2.0", State: protocol.UpgradeHealthy, Since: healthyAt.Add(time.Hour)}
	if ch := must[bool](t)(db.ReportUpgrade(ctx, "tt/cl-1", u)); !ch {
		t.Fatal("healthy not recorded")
	}
	clock.Advance(time.Second)
	if ch := must[bool](t)(db.ReportUpgrade(ctx, "tt/cl-1", u)); ch {
		t.Fatal("the same state again counted as a change")
	}
	if ch := must[bool](t)(db.ReportUpgrade(ctx, "tt/cl-1", protocol.UpgradeStatus{Rollout: "ro-9", Version: "1.2.0", State: "healthy"})); ch {
		t.Fatal("a rollout that did not name the device changed it")
	}
	rds := must[[]RolloutDevice](t)(db.RolloutDevices(ctx, "ro-1"))
	if len(rds) != 2 || rds[0].State != protocol.UpgradeHealthy || !rds[0].HealthyAt.Equal(healthyAt) || rds[0].Since.After(clock.Now()) {
		t.Fatalf("devices after healthy: %+v", rds)
	}
	if moved := must[bool](t)(db.AdvanceRollout(ctx, "ro-1", RolloutCanary, RolloutRest, "")); !moved {
		t.Fatal("canary -> rest not moved")
	}
	if moved := must[bool](t)(db.AdvanceRollout(ctx, "ro-1", RolloutCanary, RolloutStopped, "late")); moved {
		t.Fatal("a move from a stage the rollout left happened")
	}
	must[bool](t)(db.ReportUpgrade(ctx, "tt/cl-1", protocol.UpgradeStatus{Rollout: "ro-1", Version: "1.2.0", State: protocol.UpgradeRolledBack, Error: "audio silent"}))
	up := must[DeviceUpgrade](t)(db.LatestUpgrade(ctx, "tt/cl-1"))
	if up.Rollout != "ro-1" || up.Version != "1.2.0" || up.State != protocol.UpgradeRolledBack || up.Error != "audio silent" ||
		up.Rollbacks != 1 || !up.HealthyAt.IsZero() {
		t.Fatalf("latest upgrade: %+v", up)
	}
	if _, err := db.LatestUpgrade(ctx, "tt/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a device no rollout named: %v", err)
	}
	got := must[Rollout](t)(db.GetRollout(ctx, "ro-1"))
	if got.Stage != RolloutRest || got.HealthyFor != time.Minute || got.Window != "" || got.CreatedBy != "admin" {
		t.Fatalf("rollout read back: %+v", got)
	}
}
