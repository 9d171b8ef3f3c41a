package packaging

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/testkit"
)

// rolloutFromHub is issue 20's done-when with the real parts: a real `loa-hub` on loopback
// with release keys, staff's `loa release sign|upload` and `loa upgrade`, and two devices —
// each the v1 package installed by dpkg in its own throwaway root, its agent under a
// supervisor loop. A release whose agent does not start is rolled back by itself on the canary,
// the rollout stops and the other device never installs it; a good release reaches the canary
// first and the other device only after the canary has stayed healthy, and both run it.
func rolloutFromHub(t *testing.T, b built) {
	start := time.Now()
	hubBin, cli := testkit.Binary(t, "loa-hub"), testkit.Binary(t, "loa")
	dir := t.TempDir()
	relOut := testkit.Run(t, nil, cli, "release", "keygen", "--out", filepath.Join(dir, "release.key"), "--key-id", "rel-test")
	relLine := regexp.MustCompile(`rel-test: "ed25519:[^"]+"`).FindString(relOut)
	hubOut := testkit.Run(t, nil, hubBin, "keygen", "--out", filepath.Join(dir, "hub.key"), "--key-id", "hub-test")
	hubLine := regexp.MustCompile(`hub-test: "ed25519:[^"]+"`).FindString(hubOut)
	if relLine == "" || hubLine == "" {
		t.Fatalf("key lines not found:\n%s\n%s", relOut, hubOut)
	}
	addr := testkit.FreeAddr(t)
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\ndata_dir: data\nsigning_key_file: hub.key\nsigning_key_id: hub-test\nstatus_interval: 2s\nrelease_keys: {%s}\n",
		addr, relLine)), 0o644)
	token := regexp.MustCompile(`loa-st1-[a-z0-9]+`).FindString(testkit.Run(t, nil, hubBin, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", cfg))
	var hubLog strings.Builder
	hub := exec.Command(hubBin, "serve", "--config", cfg)
	hub.Stdout, hub.Stderr = &hubLog, &hubLog
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Process.Kill(); hub.Wait() })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub does not listen:\n%s", hubLog.String())
		}
	}
	env := []string{"LOA_HUB=http://" + addr, "LOA_TOKEN=" + token}
	loa := func(args ...string) string { t.Helper(); return testkit.Run(t, env, cli, args...) }
	loa("area", "add", "qn/tk")

	// Two devices, v1 installed by dpkg in a root each.
	devices := []string{"qn/tk/cl-01", "qn/tk/cl-02"}
	roots := map[string]*throwawayRoot{}
	for _, id := range devices {
		secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(loa("device", "enroll", id, "--area", "qn/tk"))[1]
		r := newThrowawayRoot(t)
		r.must(t, "rm", "-f", "/var/lib/man-db/auto-update")
		r.must(t, "dpkg", "--install", r.copyIn(t, b.debs["amd64"], "/var/cache/loa-test/v1.deb"))
		const cfgPath = "/etc/loa/agent.yaml"
		c := strings.Replace(r.read(t, cfgPath), `device_id: ""`, fmt.Sprintf("device_id: %q", id), 1)
		c = regexp.MustCompile(`(?m)^  output: .*$`).ReplaceAllString(c, `  output: "null"`)
		c += fmt.Sprintf("hub:\n  url: http://%s\n  secret: %s\n  trusted_keys: {%s}\n  reconnect_max: 2s\nupgrade:\n  release_keys: {%s}\n",
			addr, secret, hubLine, relLine)
		if err := os.WriteFile(r.path(cfgPath), []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
		// The shipped config trusts the clock once timesyncd says so (clock.sync_file); this
		// root's /run is fresh, so say it here, as a synchronised box would.
		r.must(t, "mkdir", "-p", "/run/systemd/timesync")
		r.must(t, "touch", "/run/systemd/timesync/synchronized")
		r.startSupervisor(t, "/usr/bin/loa-agent run --config "+cfgPath, "/var/log/loa-agent.log")
		roots[id] = r
	}
	dump := func() {
		t.Logf("hub log:\n%s", hubLog.String())
		for id, r := range roots {
			for _, f := range []string{"/var/log/loa-agent.log", "/var/lib/loa/upgrade/guard.log", "/var/lib/loa/upgrade/state.json"} {
				if r.exists(f) {
					t.Logf("%s %s:\n%s", id, f, r.read(t, f))
				}
			}
		}
	}
	wait := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !cond(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				dump()
				t.Fatalf("%s: not within %s", what, d)
			}
		}
	}
	installed := func(id string) string {
		return roots[id].must(t, "dpkg-query", "-W", "-f=${Version}", "loa-agent")
	}
	wait("both agents connected, saying they take upgrades", 3*time.Minute, func() bool {
		for _, id := range devices {
			out, err := exec.Command(cli, "--hub", "http://"+addr, "--token", token, "device", "show", id, "--json").Output()
			var d api.DeviceJSON
			if err != nil || json.Unmarshal(out, &d) != nil || !d.Online || !d.Upgrades || d.Arch != "amd64" {
				return false
			}
		}
		return true
	})

	// Staff sign and upload the running version (the way back), a broken one and a good one.
	vGood, vBad := "1.0~test7", "1.0~test6"
	good := repackRestamped(t, b.debs["amd64"], b.vOld, vGood)
	bad := repackBroken(t, good, vBad)
	for _, deb := range []string{b.debs["amd64"], bad, good} {
		local := filepath.Join(dir, filepath.Base(deb))
		if data, err := os.ReadFile(deb); err != nil || os.WriteFile(local, data, 0o644) != nil {
			t.Fatalf("copying %s: %v", deb, err)
		}
		loa("release", "sign", "--key", filepath.Join(dir, "release.key"), "--key-id", "rel-test", local)
		loa("release", "upload", local)
	}
	status := func(id string) api.RolloutJSON {
		out, err := exec.Command(cli, "--hub", "http://"+addr, "--token", token, "upgrade", "status", id, "--json").Output()
		var ro api.RolloutJSON
		if err != nil || json.Unmarshal(out, &ro) != nil {
			return api.RolloutJSON{}
		}
		return ro
	}
	rollout := func(version, within string) string {
		out := loa("upgrade", "--to", "qn/tk", "--version", version, "--canary", "50%", "--healthy-for", "3s",
			"--healthy-within", within, "--max-failures", "20%", "--json")
		var ro api.RolloutJSON
		if err := json.Unmarshal([]byte(out), &ro); err != nil || ro.ID == "" {
			t.Fatalf("loa upgrade: %v\n%s", err, out)
		}
		return ro.ID
	}
	byStage := func(ro api.RolloutJSON, stage string) []api.RolloutDeviceJSON {
		var out []api.RolloutDeviceJSON
		for _, d := range ro.Devices {
			if d.Stage == stage {
				out = append(out, d)
			}
		}
		return out
	}

	// The broken release: the canary rolls back by itself, the rollout stops, the other
	// device is never sent it.
	step := time.Now()
	id := rollout(vBad, "8s")
	var ro api.RolloutJSON
	wait("the broken release's rollout stopped", 4*time.Minute, func() bool { ro = status(id); return ro.Stage == "stopped" })
	canary, rest := byStage(ro, "canary"), byStage(ro, "rest")
	if len(canary) != 1 || len(rest) != 1 {
		dump()
		t.Fatalf("rollout devices %+v: want one canary and one other", ro.Devices)
	}
	if canary[0].State != "rolled_back" || !strings.Contains(canary[0].Error, "did not report healthy") {
		t.Errorf("the canary of the broken release: %+v, want rolled_back saying why", canary[0])
	}
	if rest[0].State == "healthy" || rest[0].State == "rolled_back" || rest[0].State == "installing" || rest[0].State == "checking" {
		t.Errorf("the other device reached %q in a rollout that stopped on its canary", rest[0].State)
	}
	for _, dev := range devices {
		if v := installed(dev); v != b.vOld {
			t.Errorf("%s runs %s after the broken rollout, want %s", dev, v, b.vOld)
		}
	}
	t.Logf("broken release: canary rolled back and the rollout stopped (%s) in %v", ro.Reason, time.Since(step).Round(time.Second))

	// A session plays on both devices when the good release comes: neither installs before
	// it has ended (the agent's quiet-moment check, with the real scheduler and player).
	session := filepath.Join(dir, "session.wav")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", session, "synth", "12", "sine", "440", "vol", "0.3").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	for _, r := range roots {
		r.copyIn(t, session, "/var/lib/loa/session.wav")
	}
	sched := filepath.Join(dir, "tk.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: session, at: %q, items: [{file: /var/lib/loa/session.wav}]}\n", time.Now().Add(6*time.Second).UTC().Format(time.RFC3339))), 0o644)
	loa("schedule", "push", sched, "--to", "qn/tk")
	wait("the session playing on both devices", 2*time.Minute, func() bool {
		for _, dev := range devices {
			out, err := exec.Command(cli, "--hub", "http://"+addr, "--token", token, "device", "show", dev, "--json").Output()
			var d api.DeviceJSON
			if err != nil || json.Unmarshal(out, &d) != nil || !strings.Contains(d.NowPlaying, "session") {
				return false
			}
		}
		return true
	})

	// The good release: the canary first, the other only once the canary is healthy and has
	// stayed so.
	step = time.Now()
	id = rollout(vGood, "120s")
	sawCanaryHealthy := false
	wait("the good release's rollout done", 5*time.Minute, func() bool {
		ro = status(id)
		if c, r := byStage(ro, "canary"), byStage(ro, "rest"); len(c) == 1 && len(r) == 1 && c[0].State == "healthy" && !sawCanaryHealthy {
			sawCanaryHealthy = true
			if ro.Stage == "canary" && r[0].State != "pending" {
				t.Errorf("while the canary was healthy but not yet for 3 s, the other device was %q, want pending", r[0].State)
			}
		}
		if ro.Stage == "canary" {
			for _, r := range byStage(ro, "rest") {
				if r.State != "pending" {
					t.Errorf("in the canary stage the other device is %q, want pending", r.State)
				}
			}
		}
		return ro.Stage == "done" || ro.Stage == "stopped"
	})
	if ro.Stage != "done" || !sawCanaryHealthy {
		dump()
		t.Fatalf("the good rollout ended %s (%s), canary seen healthy %v", ro.Stage, ro.Reason, sawCanaryHealthy)
	}
	for _, d := range ro.Devices {
		if d.State != "healthy" {
			t.Errorf("%s: %s %q, want healthy", d.Device, d.State, d.Error)
		}
	}
	for _, dev := range devices {
		if v := installed(dev); v != vGood {
			t.Errorf("%s runs %s after the good rollout, want %s", dev, v, vGood)
		}
	}
	// Each began installing only after its session's last sample (the play's confirmed end).
	installRe := regexp.MustCompile(`time=(\S+) level=INFO msg="upgrade: installing now`)
	for _, dev := range devices {
		var installing time.Time
		for _, m := range installRe.FindAllStringSubmatch(roots[dev].read(t, "/var/log/loa-agent.log"), -1) {
			installing, _ = time.Parse(time.RFC3339Nano, m[1]) // the last: the good release's
		}
		var cs []api.ConfirmationJSON
		out, err := exec.Command(cli, "--hub", "http://"+addr, "--token", token, "confirmations", "--device", dev, "--json").Output()
		if err != nil || json.Unmarshal(out, &cs) != nil {
			t.Fatalf("%s's confirmations: %v %s", dev, err, out)
		}
		var ended time.Time
		for _, c := range cs {
			if strings.HasSuffix(c.Program, "session") && c.End != nil {
				ended = *c.End
			}
		}
		if installing.IsZero() || ended.IsZero() || !installing.After(ended) {
			t.Errorf("%s began installing at %s, its session ended at %s: want the install after the session", dev, installing, ended)
		}
	}
	if t.Failed() {
		dump()
	}
	t.Logf("good release: canary then the other, both healthy, in %v; the whole test %v", time.Since(step).Round(time.Second), time.Since(start).Round(time.Second))
}
