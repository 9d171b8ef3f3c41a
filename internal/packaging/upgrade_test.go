package packaging

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/agent/upgrade"
	"github.com/loa-project/loa/protocol"
)

// upgradeHub is a small real hub for the upgrade test: a loopback HTTP server that welcomes
// the agent on its websocket, keeps its hellos and statuses, offers an upgrade on every
// connection until the agent's status reports it final (as the real hub does), and serves
// release packages with Range.
type upgradeHub struct {
	t    *testing.T
	addr string
	srv  *http.Server

	mu       sync.Mutex
	hellos   []*protocol.Hello
	statuses map[string]protocol.UpgradeStatus // by rollout: the last the agent reported
	offer    *protocol.Upgrade
	packages map[string][]byte // URL path -> bytes
	conn     *websocket.Conn
	wmu      sync.Mutex
}

func newUpgradeHub(t *testing.T) *upgradeHub {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &upgradeHub{t: t, addr: ln.Addr().String(), statuses: map[string]protocol.UpgradeStatus{}, packages: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/agent/ws", h.serveWS)
	mux.HandleFunc("/api/releases/", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		b, ok := h.packages[r.URL.Path]
		h.mu.Unlock()
		if !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "Loa-Device ") {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "package.deb", time.Time{}, bytes.NewReader(b))
	})
	h.srv = &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() { defer close(done); h.srv.Serve(ln) }()
	t.Cleanup(func() { h.srv.Close(); <-done })
	return h
}

func (h *upgradeHub) send(c *websocket.Conn, m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		h.t.Errorf("hub: encoding %s: %v", m.Type(), err)
		return
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	c.WriteMessage(websocket.TextMessage, b)
}

func (h *upgradeHub) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	_, b, err := c.ReadMessage()
	if err != nil {
		return
	}
	m, err := protocol.Decode(b)
	hello, ok := m.(*protocol.Hello)
	if err != nil || !ok {
		h.t.Errorf("hub: the agent's first message is not a hello: %v", err)
		return
	}
	h.mu.Lock()
	h.hellos = append(h.hellos, hello)
	h.mu.Unlock()
	now := time.Now()
	h.send(c, &protocol.Welcome{Header: protocol.Header{ID: "w-1", Re: hello.ID}, HelloReceivedAt: now, HubTime: now,
		ResendFrom: hello.Journal.Acked + 1, StatusIntervalS: 1})
	offered := ""
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		m, err := protocol.Decode(b)
		if err != nil {
			h.t.Errorf("hub: the agent sent a message that does not decode: %v", err)
			return
		}
		st, ok := m.(*protocol.Status)
		if !ok {
			continue
		}
		h.mu.Lock()
		if st.Upgrade != nil {
			h.statuses[st.Upgrade.Rollout] = *st.Upgrade
		}
		offer := h.offer
		h.mu.Unlock()
		// Offered once per connection until the agent reports the rollout.
		if offer != nil && offered != offer.Rollout && (st.Upgrade == nil || st.Upgrade.Rollout != offer.Rollout) {
			offered = offer.Rollout
			h.send(c, offer)
		}
	}
}

func (h *upgradeHub) status(rollout string) (protocol.UpgradeStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.statuses[rollout]
	return s, ok
}

func (h *upgradeHub) lastHello() *protocol.Hello {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hellos) == 0 {
		return nil
	}
	return h.hellos[len(h.hellos)-1]
}

// release signs a package with the release key and serves it (data, when given, is served
// in place of the file's bytes: a package changed after signing).
func (h *upgradeHub) release(t *testing.T, deb, version string, priv ed25519.PrivateKey, served []byte) protocol.ReleasePackage {
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	p := protocol.ReleasePackage{Name: protocol.ReleaseName, Version: version, Arch: "amd64", Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), URL: "/api/releases/" + version + "/amd64/package"}
	protocol.SignRelease(&p, "release-test", priv)
	if served == nil {
		served = data
	}
	h.mu.Lock()
	h.packages[p.URL] = served
	h.mu.Unlock()
	return p
}

func (h *upgradeHub) rollout(u *protocol.Upgrade) {
	u.Header = protocol.Header{ID: "u-" + u.Rollout}
	h.mu.Lock()
	h.offer = u
	h.mu.Unlock()
}

// upgradeOnDevice installs the amd64 agent in a throwaway root, runs it under a supervisor
// loop (no systemd there: a stopped agent is started again a second later) against a small
// hub, and rolls out through the hub's upgrade messages: a release whose agent does not
// start is rolled back by the guard by itself; a good release is installed with the
// technician's config kept and reports healthy from its own health check (connected to the
// hub: the real link); a package changed after signing is refused and nothing is installed.
func upgradeOnDevice(t *testing.T, b built) {
	// The good release's version has the length of vOld: its binary is restamped in place.
	vGood, vBad, vTampered := "1.0~test7", "1.0~test6", "1.0~test8"
	start := time.Now()
	good := repackRestamped(t, b.debs["amd64"], b.vOld, vGood)
	bad := repackBroken(t, good, vBad)
	t.Logf("the good and the broken release repacked in %v", time.Since(start).Round(time.Second))

	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	hubPub, _, _ := ed25519.GenerateKey(nil)
	h := newUpgradeHub(t)
	r := newThrowawayRoot(t)
	// Four installs follow: man-db's trigger (seconds each on a busy machine) says nothing here.
	r.must(t, "rm", "-f", "/var/lib/man-db/auto-update")
	r.must(t, "dpkg", "--install", r.copyIn(t, b.debs["amd64"], "/var/cache/loa-test/v1.deb"))
	const cfgPath = "/etc/loa/agent.yaml"
	cfg := strings.Replace(r.read(t, cfgPath), `device_id: ""`, `device_id: "tam-thanh-03"`, 1)
	cfg = regexp.MustCompile(`(?m)^  output: .*$`).ReplaceAllString(cfg, `  output: "null"`)
	cfg += fmt.Sprintf(`
hub:
  url: http://%s
  secret: loa-ds1-gpia34qax7pm6syqbmp73jkkzpwrrr76qho4mvpfp42jadezvhsq
  trusted_keys: {hub-test: %q}
  reconnect_max: 2s
upgrade:
  release_keys: {release-test: %q}
`, h.addr, protocol.FormatPublicKey(hubPub), protocol.FormatPublicKey(pub))
	if err := os.WriteFile(r.path(cfgPath), []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	r.startSupervisor(t, "/usr/bin/loa-agent run --config "+cfgPath, "/var/log/loa-agent.log")
	const state = "/var/lib/loa/upgrade/state.json"
	dump := func() {
		for _, f := range []string{"/var/log/loa-agent.log", "/var/lib/loa/upgrade/guard.log", state} {
			if r.exists(f) {
				t.Logf("%s:\n%s", f, r.read(t, f))
			}
		}
	}
	waitHub := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				dump()
				t.Fatalf("%s: not within 3 minutes", what)
			}
		}
	}
	waitHub("the agent's hello", func() bool { return h.lastHello() != nil })
	if hello := h.lastHello(); !hello.Upgrades || hello.Arch != "amd64" || hello.SoftwareVersion != "loa-agent/"+b.vOld {
		t.Fatalf("hello says upgrades %v arch %q version %q", hello.Upgrades, hello.Arch, hello.SoftwareVersion)
	}
	v1 := h.release(t, b.debs["amd64"], b.vOld, priv, nil)
	installed := func() string {
		return r.must(t, "dpkg-query", "-W", "-f=${Version} ${Status}", "loa-agent")
	}
	final := func(rollout string) protocol.UpgradeStatus {
		t.Helper()
		var s protocol.UpgradeStatus
		waitHub("rollout "+rollout+" final at the hub", func() bool {
			var ok bool
			s, ok = h.status(rollout)
			return ok && (s.State == protocol.UpgradeHealthy || s.State == protocol.UpgradeRolledBack ||
				s.State == protocol.UpgradeRefused || s.State == protocol.UpgradeFailed)
		})
		return s
	}

	// (b) A release whose agent does not start: the guard reinstalls the previous version by
	// itself when the deadline passes, and says why.
	step := time.Now()
	h.rollout(&protocol.Upgrade{Rollout: "r-bad", Package: h.release(t, bad, vBad, priv, nil), Previous: &v1, HealthyWithinS: 8})
	s := final("r-bad")
	want := vBad + " did not report healthy within 8 s: it did not start"
	if s.State != protocol.UpgradeRolledBack || s.Error != want || s.From != b.vOld {
		dump()
		t.Fatalf("the broken release ended %+v, want rolled_back saying %q", s, want)
	}
	if got := installed(); got != b.vOld+" install ok installed" {
		t.Errorf("after the rollback dpkg says %q, want %s installed", got, b.vOld)
	}
	waitHub("the previous version back at the hub", func() bool { return h.lastHello().SoftwareVersion == "loa-agent/"+b.vOld })
	t.Logf("broken release rolled back in %v", time.Since(step).Round(time.Second))

	// (a) A good release: installed with the technician's config kept, restarted by the
	// guard, healthy by the new agent's own check (connected to this hub).
	step = time.Now()
	h.rollout(&protocol.Upgrade{Rollout: "r-good", Package: h.release(t, good, vGood, priv, nil), Previous: &v1, HealthyWithinS: 120})
	s = final("r-good")
	if s.State != protocol.UpgradeHealthy || s.Version != vGood || s.Error != "" {
		dump()
		t.Fatalf("the good release ended %+v, want healthy", s)
	}
	if got := installed(); got != vGood+" install ok installed" {
		t.Errorf("after the upgrade dpkg says %q, want %s installed", got, vGood)
	}
	if hello := h.lastHello(); hello.SoftwareVersion != "loa-agent/"+vGood {
		t.Errorf("the agent that reported healthy says it is %q", hello.SoftwareVersion)
	}
	if got := r.read(t, cfgPath); got != cfg {
		t.Errorf("the upgrade did not keep the technician's config:\n%s", got)
	}
	st, err := upgrade.LoadState(r.path(state))
	if err != nil || st.Phase != upgrade.PhaseDone || st.Status.State != protocol.UpgradeHealthy {
		t.Errorf("state file: %+v %v", st, err)
	}
	if !r.exists("/var/lib/loa/upgrade/kept.deb") || r.exists("/var/lib/loa/upgrade/loa-agent_"+b.vOld+"_amd64.deb") {
		t.Errorf("after a healthy upgrade the new package is not kept, or the old one was left")
	}
	t.Logf("good release healthy in %v", time.Since(step).Round(time.Second))

	// (c) A package changed after signing: refused, deleted, nothing installed.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(data)
	tampered[len(tampered)/2] ^= 1
	h.rollout(&protocol.Upgrade{Rollout: "r-tampered", Package: h.release(t, good, vTampered, priv, tampered), HealthyWithinS: 60})
	s = final("r-tampered")
	if s.State != protocol.UpgradeRefused || !strings.Contains(s.Error, "the package was changed after signing") {
		dump()
		t.Fatalf("the tampered package ended %+v, want refused", s)
	}
	if got := installed(); got != vGood+" install ok installed" {
		t.Errorf("after the tampered package dpkg says %q, want %s still", got, vGood)
	}
	if debs, _ := filepath.Glob(r.path("/var/lib/loa/upgrade/loa-agent_*")); len(debs) > 0 {
		t.Errorf("the tampered package was left on disk: %v", debs)
	}
	if t.Failed() {
		dump()
	}
	t.Logf("upgrade test: %v in all", time.Since(start).Round(time.Second))
}

// repackBroken makes a release whose agent exits at once: the package of deb with
// /usr/bin/loa-agent replaced by `exit 1`, at version.
func repackBroken(t *testing.T, deb, version string) string {
	t.Helper()
	return repack(t, deb, version, func(tree string) {
		if err := os.WriteFile(filepath.Join(tree, "usr/bin/loa-agent"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
}

// repackRestamped makes the package of version `to` from deb at version `from` (of the same
// length), with the version stamped in its binary (agent.SoftwareVersion, set at link time)
// replaced: the binary then says it is `to`, as one built at that version would, without the
// minute a second build takes.
func repackRestamped(t *testing.T, deb, from, to string) string {
	t.Helper()
	if len(from) != len(to) {
		t.Fatalf("versions %q and %q differ in length: the binary's string cannot be replaced in place", from, to)
	}
	return repack(t, deb, to, func(tree string) {
		bin := filepath.Join(tree, "usr/bin/loa-agent")
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		old, stamp := []byte("loa-agent/"+from), []byte("loa-agent/"+to)
		if n := bytes.Count(data, old); n != 1 {
			t.Fatalf("the binary holds %q %d times, want once", old, n)
		}
		if err := os.WriteFile(bin, bytes.Replace(data, old, stamp, 1), 0o755); err != nil {
			t.Fatal(err)
		}
	})
}

// startSupervisor runs cmd in the root again and again (a second apart) with its output
// appended to logPath, as a supervisor without systemd would. At the end of the test every
// process in the root's mount namespace is stopped: the supervisor, the agent, a guard.
func (r *throwawayRoot) startSupervisor(t *testing.T, cmd, logPath string) {
	loop := fmt.Sprintf("while :; do %s >>%s 2>&1; sleep 1; done", cmd, logPath)
	c := exec.Command("nsenter", "--target", strconv.Itoa(r.pid), "--mount", "--root", "--wd", "--", "sh", "-c", loop)
	c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); c.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
		r.killAll(t)
	})
}

// killAll stops every process but the holder in the root's mount namespace (a guard runs in
// a session of its own, out of the supervisor's process group).
func (r *throwawayRoot) killAll(t *testing.T) {
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(r.pid), "ns", "mnt"))
	if err != nil {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == r.pid {
			continue
		}
		if other, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns", "mnt")); err == nil && other == ns {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Logf("stopping process %d of the throwaway root: %v", pid, err)
			}
		}
	}
}
