package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
)

// buildDeb builds a small real package with dpkg-deb (what `make package` uses).
func buildDeb(t *testing.T, dir, name, version, arch string) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (apt install dpkg): loa release sign reads packages with it")
	}
	tree := filepath.Join(dir, "tree-"+version)
	if err := os.MkdirAll(filepath.Join(tree, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch +
		"\nMaintainer: Loa <loa@example.vn>\nDescription: test package\n"
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, name+"_"+version+"_"+arch+".deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", tree, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	return deb
}

// connectAgent holds a device's websocket as an agent that installs upgrades would, answering
// nothing; the messages it gets go to msgs.
func connectAgent(t *testing.T, hubURL, id, secret, version string) chan protocol.Message {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hubURL, "http")+"/agent/ws",
		http.Header{"Authorization": {protocol.FormatDeviceAuth(id, secret)}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := protocol.Encode(&protocol.Hello{Header: protocol.Header{ID: "a-1"}, DeviceID: id, SoftwareVersion: "loa-agent/" + version,
		Arch: "arm64", Upgrades: true})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan protocol.Message, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if m, err := protocol.Decode(b); err == nil {
				msgs <- m
			}
		}
	})
	t.Cleanup(func() { ws.Close(); wg.Wait() })
	return msgs
}

func TestReleaseAndUpgradeCLI(t *testing.T) {
	dir := t.TempDir()
	env := Env{}
	keyFile := filepath.Join(dir, "release.key")
	code, out, e := runCLI(env, "release", "keygen", "--out", keyFile, "--key-id", "rel-2026")
	if code != 0 || !strings.Contains(out, `rel-2026: "ed25519:`) {
		t.Fatalf("keygen: %d\n%s%s", code, out, e)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the private key file: %v %v", fi.Mode(), err)
	}
	if code, _, e := runCLI(env, "release", "keygen", "--out", keyFile); code != 1 || !strings.Contains(e, "exists") {
		t.Fatalf("keygen over a key: %d %s", code, e)
	}
	pubLine := out[strings.Index(out, `rel-2026: "`):]
	pub, err := protocol.ParsePublicKey(strings.Trim(strings.TrimSpace(strings.TrimPrefix(pubLine, "rel-2026:")), `"`))
	if err != nil {
		t.Fatal(err)
	}

	url, tok, _, srv := startHubWith(t, "Quảng Nam", func(o *hub.Options) {
		o.ReleaseKeys = protocol.TrustedKeys{"rel-2026": pub}
		o.RolloutTick = 50 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.RunUpgrades(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	env = Env{Getenv: func(k string) string { return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k] }}

	deb := buildDeb(t, dir, "loa-agent", "1.2.0", "arm64")
	if code, out, e := runCLI(env, "release", "sign", "--key", keyFile, "--key-id", "rel-2026", deb); code != 0 || !strings.Contains(out, "signed loa-agent 1.2.0 (arm64)") {
		t.Fatalf("sign: %d\n%s%s", code, out, e)
	}
	var stmt protocol.ReleasePackage
	b, _ := os.ReadFile(deb + StatementSuffix)
	if err := json.Unmarshal(b, &stmt); err != nil || protocol.VerifyRelease(&stmt, protocol.TrustedKeys{"rel-2026": pub}) != nil {
		t.Fatalf("the statement written does not verify: %v\n%s", err, b)
	}
	hubDeb := buildDeb(t, dir, "loa-hub", "1.2.0", "arm64")
	if code, _, e := runCLI(env, "release", "sign", "--key", keyFile, hubDeb); code != 1 || !strings.Contains(e, `"loa-hub": a release is a loa-agent package`) {
		t.Fatalf("signing another package: %d %s", code, e)
	}
	// A package changed after signing is refused by the hub.
	tampered := filepath.Join(dir, "tampered.deb")
	data, _ := os.ReadFile(deb)
	os.WriteFile(tampered, append(data, 0), 0o644)
	if code, _, e := runCLI(env, "release", "upload", tampered, "--statement", deb+StatementSuffix); code != 1 || !strings.Contains(e, "changed after signing") {
		t.Fatalf("tampered upload: %d %s", code, e)
	}
	if code, _, e := runCLI(env, "release", "upload", hubDeb); code != 1 || !strings.Contains(e, "loa release sign") {
		t.Fatalf("an upload without a statement: %d %s", code, e)
	}
	if code, out, e := runCLI(env, "release", "upload", deb); code != 0 || !strings.Contains(out, "loa-agent 1.2.0 (arm64) uploaded") {
		t.Fatalf("upload: %d\n%s%s", code, out, e)
	}
	if code, out, e := runCLI(env, "release", "list"); code != 0 || !strings.Contains(out, "1.2.0") || !strings.Contains(out, "rel-2026") ||
		!strings.Contains(out, stmt.SHA256[:12]) {
		t.Fatalf("list: %d\n%s%s", code, out, e)
	}

	for _, args := range [][]string{{"area", "add", "qn/tk"}, {"device", "enroll", "tk/cl-01", "--area", "qn/tk"}} {
		if code, _, e := runCLI(env, args...); code != 0 {
			t.Fatalf("%v: %s", args, e)
		}
	}
	secret := enrolSecret(t, env, "tk/cl-02", "qn/tk")
	msgs := connectAgent(t, url, "tk/cl-02", secret, "1.1.0")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out, _ := runCLI(env, "device", "show", "tk/cl-02")
		if strings.Contains(out, "loa-agent/1.1.0 (arm64)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's hello is not shown:\n%s", out)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"upgrade", "--version", "1.2.0"}, "needs --to AREA and --version V"},
		{[]string{"upgrade", "--to", "qn/tk", "--version", "1.2.0", "--canary", "lots"}, `--canary "lots": give a share`},
		{[]string{"upgrade", "stop", "ro-x"}, "needs --reason"},
		{[]string{"upgrade", "status", "a", "b"}, "at most one ROLLOUT"},
	} {
		if code, _, e := runCLI(env, tc.args...); code != 2 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, e, tc.want)
		}
	}
	if code, _, e := runCLI(env, "upgrade", "--to", "qn/tk", "--version", "1.2.0", "--window", "2-4"); code != 1 || !strings.Contains(e, "window:") {
		t.Fatalf("a bad window: %d %s", code, e)
	}
	code, out, e = runCLI(env, "upgrade", "--to", "qn/tk", "--version", "1.2.0", "--canary", "50%", "--healthy-for", "1s", "--max-failures", "0%", "--window", "02:00-04:00")
	if code != 0 || !strings.Contains(out, "rollout ro-") || !strings.Contains(out, "canary 50%, healthy for 1s, healthy within 10m0s, stop above 0% failures, window 02:00-04:00") ||
		!strings.Contains(out, "canaries: 1 pending") || !strings.Contains(out, "not upgraded: 1 cannot") {
		t.Fatalf("upgrade: %d\n%s%s", code, out, e)
	}
	id := strings.Fields(out)[1]
	for got := false; !got; {
		select {
		case m := <-msgs:
			if _, ok := m.(*protocol.Welcome); ok {
				continue
			}
			if u, ok := m.(*protocol.Upgrade); !ok || u.Rollout != id || u.Package.SHA256 != stmt.SHA256 {
				t.Fatalf("the agent got %#v, want the upgrade", m)
			}
			got = true
		case <-time.After(10 * time.Second):
			t.Fatal("the agent got no upgrade")
		}
	}
	// The hub records the device as sent just after writing to it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, e = runCLI(env, "upgrade", "status", id)
		if strings.Contains(out, "1 sent") || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || !strings.Contains(out, "tk/cl-02  canary") || !strings.Contains(out, "1.1.0") || !strings.Contains(out, "sent") ||
		!strings.Contains(out, "does not install upgrades") {
		t.Fatalf("status %s: %d\n%s%s", id, code, out, e)
	}
	if code, out, e = runCLI(env, "upgrade", "status"); code != 0 || !strings.Contains(out, id) || strings.Contains(out, "DEVICE") {
		t.Fatalf("status: %d\n%s%s", code, out, e)
	}
	if code, out, e = runCLI(env, "upgrade", "stop", id, "--reason", "wrong build"); code != 0 || !strings.Contains(out, "stopped (stopped by admin: wrong build)") {
		t.Fatalf("stop: %d\n%s%s", code, out, e)
	}
	code, out, e = runCLI(env, "device", "show", "tk/cl-02")
	if code != 0 || !strings.Contains(out, "upgrade") || !strings.Contains(out, id+" to 1.2.0: ") {
		t.Fatalf("device show: %d\n%s%s", code, out, e)
	}
	var d api.DeviceJSON
	if _, out, _ := runCLI(env, "device", "show", "tk/cl-02", "--json"); json.Unmarshal([]byte(out), &d) != nil || d.Arch != "arm64" || !d.Upgrades {
		t.Fatalf("device show --json: %s", out)
	}
}

// enrolSecret enrols a device and returns its secret from the CLI's output.
func enrolSecret(t *testing.T, env Env, id, area string) string {
	t.Helper()
	code, out, e := runCLI(env, "device", "enroll", id, "--area", area)
	if code != 0 {
		t.Fatalf("enroll %s: %s", id, e)
	}
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "loa-ds1-") {
			return f
		}
	}
	t.Fatalf("no secret in:\n%s", out)
	return ""
}
