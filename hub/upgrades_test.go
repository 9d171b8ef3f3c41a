package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/metrics"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/promtest"
	"github.com/loa-project/loa/protocol"
)

// upgradeHub is a test hub trusting one release key, with its rollout engine running (ticking
// every 50 ms: the tests wait for what it does, never for a time).
type upgradeHub struct {
	*testHub
	releaseKey ed25519.PrivateKey
}

func newUpgradeHub(t *testing.T) *upgradeHub {
	t.Helper()
	pub, priv, err := protocol.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHubWithOptions(t, t.TempDir(), nil, func(o *Options) {
		o.ReleaseKeys = protocol.TrustedKeys{"rel-1": pub}
		o.RolloutTick = 50 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.srv.RunUpgrades(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &upgradeHub{testHub: h, releaseKey: priv}
}

// fakeDeb is a package's bytes (the hub does not read inside them) and its signed statement.
func (h *upgradeHub) fakeDeb(version, arch string) ([]byte, protocol.ReleasePackage) {
	h.t.Helper()
	deb := make([]byte, 4096)
	rand.Read(deb)
	sum := sha256.Sum256(deb)
	p := protocol.ReleasePackage{Name: protocol.ReleaseName, Version: version, Arch: arch, Size: int64(len(deb)), SHA256: hex.EncodeToString(sum[:])}
	protocol.SignRelease(&p, "rel-1", h.releaseKey)
	return deb, p
}

// upload posts a package and a statement (raw JSON) and returns the status and body.
func (h *upgradeHub) upload(token string, deb []byte, statement []byte) (int, string) {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if statement != nil {
		w, _ := mw.CreateFormFile("statement", "loa-agent.deb.release.json")
		w.Write(statement)
	}
	w, _ := mw.CreateFormFile("package", "loa-agent.deb")
	w.Write(deb)
	mw.Close()
	req, _ := http.NewRequest("POST", h.http.URL+"/api/releases", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(b)
}

func (h *upgradeHub) mustUpload(version, arch string) ([]byte, protocol.ReleasePackage) {
	h.t.Helper()
	deb, p := h.fakeDeb(version, arch)
	stmt, _ := json.Marshal(p)
	if code, body := h.upload(h.admin, deb, stmt); code != http.StatusCreated {
		h.t.Fatalf("upload %s %s: %d %s", version, arch, code, body)
	}
	return deb, p
}

func TestReleaseUploadRefusals(t *testing.T) {
	h := newUpgradeHub(t)
	deb, p := h.fakeDeb("1.4.0", "arm64")
	stmtOf := func(edit func(*protocol.ReleasePackage)) []byte {
		q := p
		edit(&q)
		b, _ := json.Marshal(q)
		return b
	}
	_, otherKey, _ := protocol.GenerateKey(nil)
	tampered := slices.Clone(deb)
	tampered[100] ^= 1
	for _, c := range []struct {
		name string
		deb  []byte
		stmt []byte
		code int
		want []string
	}{
		{"no statement", deb, nil, 400, []string{`no "statement" part`, "unsigned package is refused"}},
		{"unsigned", deb, stmtOf(func(q *protocol.ReleasePackage) { q.Signature = "" }), 400, []string{"signature", "loa release sign"}},
		{"untrusted key", deb, stmtOf(func(q *protocol.ReleasePackage) { protocol.SignRelease(q, "someone", otherKey) }), 403,
			[]string{`"someone"`, "not trusted here (trusted: rel-1)"}},
		{"signed by another key under a trusted id", deb, stmtOf(func(q *protocol.ReleasePackage) { protocol.SignRelease(q, "rel-1", otherKey) }), 403,
			[]string{"does not match", "changed after signing"}},
		{"tampered bytes", tampered, stmtOf(func(*protocol.ReleasePackage) {}), 422,
			[]string{"not the package its statement signs", p.SHA256, "changed after signing"}},
		{"bad version", deb, stmtOf(func(q *protocol.ReleasePackage) { q.Version = "v1.4"; protocol.SignRelease(q, "rel-1", h.releaseKey) }), 400,
			[]string{"version", "starts with a digit"}},
		{"unknown field", deb, []byte(`{"name":"loa-agent","colour":"red"}`), 400, []string{`unknown field "colour"`}},
		{"a url in the statement", deb, stmtOf(func(q *protocol.ReleasePackage) { q.URL = "/x" }), 400, []string{"names a url"}},
	} {
		code, body := h.upload(h.admin, c.deb, c.stmt)
		if code != c.code {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: answer does not say %q: %s", c.name, w, body)
			}
		}
	}
	// Only administrators upload.
	op := h.userToken("op", "qn")
	if err := h.db.SetRole(context.Background(), "op", store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	if code, body := h.upload(op, deb, stmtOf(func(*protocol.ReleasePackage) {})); code != http.StatusForbidden || !strings.Contains(body, "needs admin") {
		t.Fatalf("an operator's upload: %d %s", code, body)
	}
	// Nothing refused was kept.
	var rels []api.ReleaseJSON
	h.mustCall(h.admin, "GET", "/api/releases", nil, &rels, http.StatusOK)
	if len(rels) != 0 {
		t.Fatalf("refused uploads were kept: %+v", rels)
	}
	// The good one, twice (the same release), then other bytes under its version.
	good := stmtOf(func(*protocol.ReleasePackage) {})
	if code, body := h.upload(h.admin, deb, good); code != http.StatusCreated {
		t.Fatalf("good upload: %d %s", code, body)
	}
	if code, body := h.upload(h.admin, deb, good); code != http.StatusOK || strings.Contains(body, `"created"`) {
		t.Fatalf("the same upload again: %d %s", code, body)
	}
	deb2, p2 := h.fakeDeb("1.4.0", "arm64")
	b2, _ := json.Marshal(p2)
	if code, body := h.upload(h.admin, deb2, b2); code != http.StatusConflict || !strings.Contains(body, "never replaced") {
		t.Fatalf("other bytes under a held version: %d %s", code, body)
	}
	h.mustCall(h.admin, "GET", "/api/releases", nil, &rels, http.StatusOK)
	if len(rels) != 1 || rels[0].SHA256 != p.SHA256 || rels[0].URL != "/api/releases/1.4.0/arm64/package" || rels[0].UploadedBy != "admin" {
		t.Fatalf("releases: %+v", rels)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit", nil, &audit, http.StatusOK)
	if !slices.ContainsFunc(audit, func(e api.AuditJSON) bool { return e.Action == "release.add" && e.Target == "release:1.4.0/arm64" }) {
		t.Fatalf("the upload was not audited: %+v", audit)
	}
}

func TestReleaseDownload(t *testing.T) {
	h := newUpgradeHub(t)
	h.addArea("qn/tk")
	secret := h.enrol("tk/cl-1", "qn/tk")
	deb, _ := h.mustUpload("1.4.0~rc1", "armhf")
	path := "/api/releases/1.4.0~rc1/armhf/package"
	get := func(auth, rng string) (int, []byte) {
		req, _ := http.NewRequest("GET", h.http.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	if code, _ := get(protocol.FormatDeviceAuth("tk/cl-1", "loa-ds1-"+strings.Repeat("A", 43)), ""); code != http.StatusUnauthorized {
		t.Fatalf("a wrong device secret: %d", code)
	}
	if code, b := get(protocol.FormatDeviceAuth("tk/cl-1", secret), ""); code != http.StatusOK || !bytes.Equal(b, deb) {
		t.Fatalf("device download: %d, %d bytes (want the %d uploaded)", code, len(b), len(deb))
	}
	if code, b := get(protocol.FormatDeviceAuth("tk/cl-1", secret), "bytes=1000-"); code != http.StatusPartialContent || !bytes.Equal(b, deb[1000:]) {
		t.Fatalf("device resume: %d, %d bytes", code, len(b))
	}
	if code, b := get("Bearer "+h.admin, ""); code != http.StatusOK || !bytes.Equal(b, deb) {
		t.Fatalf("staff download: %d, %d bytes", code, len(b))
	}
	if code, _ := get("Bearer nonsense", ""); code != http.StatusUnauthorized {
		t.Fatalf("a wrong staff token: %d", code)
	}
	path = "/api/releases/9.9.9/armhf/package"
	if code, b := get("Bearer "+h.admin, ""); code != http.StatusNotFound || !strings.Contains(string(b), "no release 9.9.9 for armhf") {
		t.Fatalf("a release not held: %d %s", code, b)
	}
}

// upgradeAgent connects a device whose agent installs upgrades.
func (h *upgradeHub) upgradeAgent(id, secret, version string, upgrades bool) *fakeAgent {
	h.t.Helper()
	a, _ := h.connect(id, secret, protocol.Hello{SoftwareVersion: "loa-agent/" + version, Arch: "arm64", Upgrades: upgrades})
	return a
}

// nextUpgrade is the agent's next message, which must be an upgrade.
func (a *fakeAgent) nextUpgrade() *protocol.Upgrade {
	a.t.Helper()
	m := a.next()
	u, ok := m.(*protocol.Upgrade)
	if !ok {
		a.t.Fatalf("agent %s got %T, want an upgrade", a.id, m)
	}
	return u
}

// nothingMore checks the hub has sent the agent nothing it has not read: a time request's
// answer is the next message (anything sent before it would arrive first).
func (a *fakeAgent) nothingMore(when string) {
	a.t.Helper()
	a.send(&protocol.Time{SentAt: time.Now()})
	if m := a.next(); m.Type() != protocol.TypeTime {
		a.t.Fatalf("%s got a %s %s", a.id, m.Type(), when)
	}
}

func (a *fakeAgent) reportUpgrade(u *protocol.Upgrade, state, errText string) {
	a.t.Helper()
	a.send(&protocol.Status{At: time.Now(), UptimeS: 5, Upgrade: &protocol.UpgradeStatus{Rollout: u.Rollout, Version: u.Package.Version,
		State: state, Error: errText, Since: time.Now()}})
}

func (h *upgradeHub) rollout(id string) api.RolloutJSON {
	h.t.Helper()
	var j api.RolloutJSON
	h.mustCall(h.admin, "GET", "/api/rollouts/"+id, nil, &j, http.StatusOK)
	return j
}

// waitRollout polls the rollout until ok says it is as wanted.
func (h *upgradeHub) waitRollout(id, what string, ok func(api.RolloutJSON) bool) api.RolloutJSON {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j := h.rollout(id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("rollout %s: %s did not happen within 10 s: %+v", id, what, j)
		}
	}
}

func stateOf(j api.RolloutJSON, device string) api.RolloutDeviceJSON {
	for _, d := range j.Devices {
		if d.Device == device {
			return d
		}
	}
	return api.RolloutDeviceJSON{}
}

func intp(v int) *int { return &v }

// Ten devices, canary 20%: two get the upgrade, nobody else until both report healthy and
// stay so for healthy_for; then the other eight get it, and the rollout is done once all
// eight are healthy.
func TestRolloutCanariesThenRest(t *testing.T) {
	h := newUpgradeHub(t)
	h.addArea("qn/tk")
	h.mustUpload("1.0.0", "arm64")
	_, pkg := h.mustUpload("1.1.0", "arm64")
	agents := map[string]*fakeAgent{}
	for i := range 10 {
		id := fmt.Sprintf("tk/cl-%02d", i)
		agents[id] = h.upgradeAgent(id, h.enrol(id, "qn/tk"), "1.0.0", true)
	}
	var ro api.RolloutJSON
	h.mustCall(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0", CanaryPercent: intp(20),
		HealthyForS: intp(1), HealthyWithinS: intp(300), Window: "02:00-04:00"}, &ro, http.StatusCreated)
	var canaries []string
	for _, d := range ro.Devices {
		if d.Stage == "canary" {
			canaries = append(canaries, d.Device)
		}
	}
	if len(canaries) != 2 || ro.Counts["rest"]["pending"] != 8 || ro.Stage != "canary" {
		t.Fatalf("rollout as created: %+v", ro)
	}
	for _, id := range canaries {
		u := agents[id].nextUpgrade()
		if u.Rollout != ro.ID || u.Package.Version != "1.1.0" || u.Package.SHA256 != pkg.SHA256 || u.Package.URL != "/api/releases/1.1.0/arm64/package" ||
			u.Previous == nil || u.Previous.Version != "1.0.0" || u.Window != "02:00-04:00" || u.HealthyWithinS != 300 || u.Cancel {
			t.Fatalf("canary %s got %+v (previous %+v)", id, u, u.Previous)
		}
		if err := protocol.VerifyRelease(&u.Package, h.srv.opts.ReleaseKeys); err != nil {
			t.Fatalf("the package sent does not verify: %v", err)
		}
		agents[id].reportUpgrade(u, protocol.UpgradeInstalling, "")
	}
	j := h.waitRollout(ro.ID, "both canaries installing", func(j api.RolloutJSON) bool { return j.Counts["canary"]["installing"] == 2 })
	if j.Stage != "canary" || j.Counts["rest"]["pending"] != 8 {
		t.Fatalf("the rest were sent before the canaries were healthy: %+v", j.Counts)
	}
	// The metrics count the devices of the running rollout by state (after the engine's next step).
	h.srv.up.Step(context.Background())
	ms := httptest.NewServer(h.srv.MetricsHandler())
	defer ms.Close()
	got := promtest.Scrape(t, ms.URL)
	if got.Value(metrics.UpgradeDevices, "state", "installing") != 2 || got.Value(metrics.UpgradeDevices, "state", "pending") != 8 ||
		got.Value(metrics.UpgradeDevices, "state", "healthy") != 0 {
		t.Fatalf("%s: installing %v, pending %v, healthy %v", metrics.UpgradeDevices, got.Value(metrics.UpgradeDevices, "state", "installing"),
			got.Value(metrics.UpgradeDevices, "state", "pending"), got.Value(metrics.UpgradeDevices, "state", "healthy"))
	}
	for _, id := range canaries {
		agents[id].reportUpgrade(&protocol.Upgrade{Rollout: ro.ID, Package: pkg}, protocol.UpgradeHealthy, "")
	}
	j = h.waitRollout(ro.ID, "the rest sent", func(j api.RolloutJSON) bool { return j.Stage == "rest" })
	var healthyAt time.Time
	for _, id := range canaries {
		if at := stateOf(j, id).Since; at.After(healthyAt) {
			healthyAt = at
		}
	}
	if j.StageAt.Sub(healthyAt) < time.Second {
		t.Fatalf("the rest started %v after the last canary was healthy; healthy_for is 1 s", j.StageAt.Sub(healthyAt))
	}
	for id, a := range agents {
		if slices.Contains(canaries, id) {
			continue
		}
		u := a.nextUpgrade()
		if u.Rollout != ro.ID || u.Package.Version != "1.1.0" {
			t.Fatalf("%s got %+v", id, u)
		}
		a.reportUpgrade(u, protocol.UpgradeHealthy, "")
	}
	j = h.waitRollout(ro.ID, "done", func(j api.RolloutJSON) bool { return j.Stage == "done" })
	if j.Counts["canary"]["healthy"] != 2 || j.Counts["rest"]["healthy"] != 8 {
		t.Fatalf("done with %+v", j.Counts)
	}
	// Each device was sent the upgrade once: nothing more is waiting on any connection.
	h.srv.up.Step(context.Background())
	for _, a := range agents {
		a.nothingMore("after the rollout was done")
	}
	var dev api.DeviceJSON
	h.mustCall(h.admin, "GET", "/api/devices/"+canaries[0], nil, &dev, http.StatusOK)
	if dev.Arch != "arm64" || !dev.Upgrades || dev.Upgrade == nil || dev.Upgrade.State != "healthy" || dev.Upgrade.Version != "1.1.0" ||
		dev.Upgrade.Rollout != ro.ID || dev.Rollbacks != 0 {
		t.Fatalf("device as shown: %+v (upgrade %+v)", dev, dev.Upgrade)
	}
}

// A canary that rolls back with max failures 20% (1 of the 2 sent) stops the rollout: the
// rest are never sent it, the other canary (not yet installing) is told to cancel.
func TestRolloutStopsOnFailures(t *testing.T) {
	h := newUpgradeHub(t)
	h.addArea("qn/tk")
	h.mustUpload("1.1.0", "arm64")
	agents := map[string]*fakeAgent{}
	for i := range 10 {
		id := fmt.Sprintf("tk/cl-%02d", i)
		agents[id] = h.upgradeAgent(id, h.enrol(id, "qn/tk"), "1.0.0", true)
	}
	var ro api.RolloutJSON
	h.mustCall(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0", CanaryPercent: intp(20),
		MaxFailurePercent: intp(20), HealthyForS: intp(1)}, &ro, http.StatusCreated)
	var canaries []string
	for _, d := range ro.Devices {
		if d.Stage == "canary" {
			canaries = append(canaries, d.Device)
		}
	}
	bad, slow := agents[canaries[0]], agents[canaries[1]]
	ub, us := bad.nextUpgrade(), slow.nextUpgrade()
	if ub.Previous != nil {
		t.Fatalf("previous sent though the hub holds no 1.0.0: %+v", ub.Previous)
	}
	slow.reportUpgrade(us, protocol.UpgradeDownloading, "")
	h.waitRollout(ro.ID, "downloading", func(j api.RolloutJSON) bool { return j.Counts["canary"]["downloading"] == 1 })
	bad.reportUpgrade(ub, protocol.UpgradeRolledBack, "not healthy within 600 s: audio output not consuming")
	j := h.waitRollout(ro.ID, "stopped", func(j api.RolloutJSON) bool { return j.Stage == "stopped" })
	if !strings.Contains(j.Reason, "1 of the 2 devices sent version 1.1.0 rolled back, refused it or failed: more than the 20% allowed") {
		t.Fatalf("stop reason: %q", j.Reason)
	}
	cancel := slow.nextUpgrade()
	if !cancel.Cancel || cancel.Rollout != ro.ID {
		t.Fatalf("the slow canary got %+v, want a cancel", cancel)
	}
	j = h.waitRollout(ro.ID, "cancel recorded", func(j api.RolloutJSON) bool { return stateOf(j, canaries[1]).State == "cancelled" })
	// Its status still says downloading until it acts on the cancel: it stays cancelled (the
	// round trip after it: the hub has handled the status).
	slow.reportUpgrade(us, protocol.UpgradeDownloading, "")
	slow.nothingMore("after its cancel")
	if j.Counts["rest"]["cancelled"] != 8 || j.Counts["canary"]["rolled_back"] != 1 {
		t.Fatalf("counts after the stop: %+v", j.Counts)
	}
	h.srv.up.Step(context.Background())
	for id, a := range agents {
		if id != canaries[0] && id != canaries[1] {
			a.nothingMore("from a stopped rollout")
		}
	}
	if d := stateOf(h.rollout(ro.ID), canaries[1]); d.State != "cancelled" {
		t.Fatalf("the cancelled canary is now %s", d.State)
	}
	var dev api.DeviceJSON
	h.mustCall(h.admin, "GET", "/api/devices/"+canaries[0], nil, &dev, http.StatusOK)
	if dev.Rollbacks != 1 || dev.Upgrade == nil || dev.Upgrade.State != "rolled_back" || !strings.Contains(dev.Upgrade.Error, "audio output") {
		t.Fatalf("the rolled-back canary as shown: %+v", dev.Upgrade)
	}
	// A stopped rollout no longer holds its area.
	h.mustCall(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0"}, nil, http.StatusCreated)
}

// An offline eligible device gets its upgrade when it connects; one whose agent does not
// install upgrades is never sent anything and is listed as cannot upgrade; one already at
// the version is done; previous is sent only where the hub holds the running version.
func TestRolloutOfflineCannotAndCurrent(t *testing.T) {
	h := newUpgradeHub(t)
	h.addArea("qn/tk")
	h.mustUpload("1.1.0", "arm64")
	h.mustUpload("1.0.0", "arm64")
	off := h.enrol("tk/off", "qn/tk")
	h.upgradeAgent("tk/off", off, "1.0.0", true).ws.Close() // known to install upgrades, now offline
	old := h.upgradeAgent("tk/old", h.enrol("tk/old", "qn/tk"), "0.9.0", false)
	cur := h.upgradeAgent("tk/cur", h.enrol("tk/cur", "qn/tk"), "1.1.0", true)
	odd := h.upgradeAgent("tk/odd", h.enrol("tk/odd", "qn/tk"), "0.8.0", true) // the hub holds no 0.8.0
	for deadline := time.Now().Add(10 * time.Second); h.srv.link.Online("tk/off"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection is still registered")
		}
	}
	var ro api.RolloutJSON
	h.mustCall(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0", CanaryPercent: intp(100)}, &ro, http.StatusCreated)
	if d := stateOf(ro, "tk/old"); d.State != "cannot" || d.Stage != "none" || !strings.Contains(d.Error, "does not install upgrades") {
		t.Fatalf("the old agent: %+v", d)
	}
	if d := stateOf(ro, "tk/cur"); d.State != "current" || d.Stage != "none" {
		t.Fatalf("the current agent: %+v", d)
	}
	if ro.HealthyForS != 1800 || ro.HealthyWithinS != 600 || ro.MaxFailurePercent != 20 {
		t.Fatalf("defaults: %+v", ro)
	}
	u := odd.nextUpgrade()
	if u.Previous != nil {
		t.Fatalf("previous sent for a version the hub does not hold: %+v", u.Previous)
	}
	a := h.upgradeAgent("tk/off", off, "1.0.0", true)
	u = a.nextUpgrade()
	if u.Rollout != ro.ID || u.Previous == nil || u.Previous.Version != "1.0.0" || u.Previous.URL != "/api/releases/1.0.0/arm64/package" {
		t.Fatalf("the device that came back got %+v (previous %+v)", u, u.Previous)
	}
	// Reconnecting before it is done: sent again.
	a.ws.Close()
	a = h.upgradeAgent("tk/off", off, "1.0.0", true)
	if u2 := a.nextUpgrade(); u2.Rollout != ro.ID {
		t.Fatalf("after reconnecting: %+v", u2)
	}
	h.srv.up.Step(context.Background())
	old.nothingMore("though its agent does not install upgrades")
	cur.nothingMore("though it runs the version")
	var dev api.DeviceJSON
	h.mustCall(h.admin, "GET", "/api/devices/tk/old", nil, &dev, http.StatusOK)
	if dev.Upgrades || dev.Upgrade == nil || dev.Upgrade.State != "cannot" {
		t.Fatalf("the old agent as shown: %+v", dev)
	}
}

func TestRolloutRequests(t *testing.T) {
	h := newUpgradeHub(t)
	h.addArea("qn/tk")
	h.addArea("qn/tk/tt")
	h.mustUpload("1.1.0", "arm64")
	var e api.Error
	if code := h.call(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "v2", CanaryPercent: intp(120),
		Window: "2-4", HealthyForS: intp(0), HealthyWithinS: intp(100000), MaxFailurePercent: intp(-1)}, &e); code != http.StatusBadRequest {
		t.Fatalf("a bad request: %d %s", code, e.Error)
	}
	for _, w := range []string{"version:", "canary_percent 120", "max_failure_percent -1", "window:", "healthy_for_s 0", "healthy_within_s 100000"} {
		if !strings.Contains(e.Error, w) {
			t.Errorf("the refusal does not name %q: %s", w, e.Error)
		}
	}
	if code := h.call(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.2.0"}, &e); code != http.StatusNotFound ||
		!strings.Contains(e.Error, "no release of version 1.2.0") {
		t.Fatalf("a version not held: %d %s", code, e.Error)
	}
	if code := h.call(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0"}, &e); code != http.StatusUnprocessableEntity ||
		!strings.Contains(e.Error, "the area has no devices") {
		t.Fatalf("an area with no device: %d %s", code, e.Error)
	}
	h.upgradeAgent("tt/cl-1", h.enrol("tt/cl-1", "qn/tk/tt"), "1.0.0", true)
	var ro api.RolloutJSON
	h.mustCall(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0"}, &ro, http.StatusCreated)
	if code := h.call(h.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk/tt", Version: "1.1.0"}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, ro.ID) || !strings.Contains(e.Error, "still running") {
		t.Fatalf("an overlapping rollout: %d %s", code, e.Error)
	}
	viewer := h.userToken("v", "qn")
	if err := h.db.SetRole(context.Background(), "v", store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if code := h.call(viewer, "POST", "/api/rollouts/"+ro.ID+"/stop", api.RolloutStopRequest{Reason: "x"}, &e); code != http.StatusForbidden {
		t.Fatalf("a viewer's stop: %d %s", code, e.Error)
	}
	if code := h.call(h.admin, "POST", "/api/rollouts/"+ro.ID+"/stop", api.RolloutStopRequest{}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "reason") {
		t.Fatalf("a stop without a reason: %d %s", code, e.Error)
	}
	var stopped api.RolloutJSON
	h.mustCall(h.admin, "POST", "/api/rollouts/"+ro.ID+"/stop", api.RolloutStopRequest{Reason: "wrong build"}, &stopped, http.StatusOK)
	if stopped.Stage != "stopped" || stopped.Reason != "stopped by admin: wrong build" {
		t.Fatalf("stopped: %+v", stopped)
	}
	if code := h.call(h.admin, "POST", "/api/rollouts/"+ro.ID+"/stop", api.RolloutStopRequest{Reason: "again"}, &e); code != http.StatusConflict ||
		!strings.Contains(e.Error, "already stopped") {
		t.Fatalf("a second stop: %d %s", code, e.Error)
	}
	var list []api.RolloutJSON
	h.mustCall(viewer, "GET", "/api/rollouts", nil, &list, http.StatusOK)
	if len(list) != 1 || list[0].ID != ro.ID || list[0].Devices != nil {
		t.Fatalf("list: %+v", list)
	}
	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit", nil, &audit, http.StatusOK)
	if !slices.ContainsFunc(audit, func(e api.AuditJSON) bool { return e.Action == "rollout.stop" }) ||
		!slices.ContainsFunc(audit, func(e api.AuditJSON) bool { return e.Action == "rollout.start" }) {
		t.Fatalf("rollouts not audited: %+v", audit)
	}
}

// Two hubs on one PostgreSQL database, each holding one of two devices, engines ticking only
// hourly: the rollout started through one reaches the device on the other, and the move to
// the rest stage made by one (when its canary's healthy_for ran out) reaches the device on
// the other, through the replicas' announcements.
func TestRolloutAcrossReplicas(t *testing.T) {
	pub, priv, err := protocol.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	hubs := newHubsOnOneDatabaseWith(t, func(o *Options) {
		o.ReleaseKeys = protocol.TrustedKeys{"rel-1": pub}
		o.RolloutTick = time.Hour
	}, "a", "b")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range hubs {
		wg.Go(func() { h.srv.RunUpgrades(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	a, b := &upgradeHub{testHub: hubs[0], releaseKey: priv}, &upgradeHub{testHub: hubs[1], releaseKey: priv}
	a.addArea("qn/tk")
	a.mustUpload("1.1.0", "arm64")
	agents := map[string]*fakeAgent{
		"tk/cl-a": a.upgradeAgent("tk/cl-a", a.enrol("tk/cl-a", "qn/tk"), "1.0.0", true),
		"tk/cl-b": b.upgradeAgent("tk/cl-b", a.enrol("tk/cl-b", "qn/tk"), "1.0.0", true),
	}
	var ro api.RolloutJSON
	a.mustCall(a.admin, "POST", "/api/rollouts", api.RolloutRequest{Area: "qn/tk", Version: "1.1.0", CanaryPercent: intp(50),
		HealthyForS: intp(1)}, &ro, http.StatusCreated)
	var canary, rest string
	for _, d := range ro.Devices {
		if d.Stage == "canary" {
			canary = d.Device
		} else {
			rest = d.Device
		}
	}
	u := agents[canary].nextUpgrade()
	agents[canary].reportUpgrade(u, protocol.UpgradeHealthy, "")
	u = agents[rest].nextUpgrade()
	if u.Rollout != ro.ID {
		t.Fatalf("the rest got %+v", u)
	}
	agents[rest].reportUpgrade(u, protocol.UpgradeHealthy, "")
	b.waitRollout(ro.ID, "done", func(j api.RolloutJSON) bool { return j.Stage == "done" })
}
