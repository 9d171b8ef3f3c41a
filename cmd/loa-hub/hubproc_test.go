package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// bins is loa-hub, loa and loa-agent, built once for the package's tests.
func bins(t *testing.T) (hubBin, loaBin, agentBin string) {
	t.Helper()
	return testkit.Binary(t, "loa-hub"), testkit.Binary(t, "loa"), testkit.Binary(t, "loa-agent")
}

// hubProc is a real loa-hub process on loopback with its SQLite file, and an admin token
// for the loa CLI.
type hubProc struct {
	dir, cfg, base, admin string
	hubBin, loaBin        string
	env                   []string // LOA_HUB, LOA_TOKEN (admin) and HOME for the CLI
}

// startHubProc starts loa-hub serve with extra config lines (given the port it listens on,
// or nil); the admin's scope is qn.
func startHubProc(t *testing.T, extra func(port string) string) *hubProc {
	t.Helper()
	return startHubAs(t, "qn", "Quảng Nam", extra)
}

// startHubAs is startHubProc with the admin's scope (a root area) named.
func startHubAs(t *testing.T, scope, scopeName string, extra func(port string) string) *hubProc {
	t.Helper()
	h := &hubProc{dir: t.TempDir()}
	h.hubBin, h.loaBin, _ = bins(t)
	addr := testkit.FreeAddr(t)
	more := ""
	if extra != nil {
		more = extra(addr[strings.LastIndex(addr, ":")+1:])
	}
	testkit.Run(t, nil, h.hubBin, "keygen", "--out", filepath.Join(h.dir, "hub.key"), "--key-id", "hub-test")
	h.cfg = filepath.Join(h.dir, "hub.yaml")
	os.WriteFile(h.cfg, []byte(fmt.Sprintf("listen: %s\ndata_dir: data\nsigning_key_file: hub.key\nsigning_key_id: hub-test\n%s", addr, more)), 0o644)
	out := testkit.Run(t, nil, h.hubBin, "user", "add", "admin", "--scope", scope, "--area-name", scopeName, "--config", h.cfg)
	h.admin = lastLine(out)
	h.base = "http://" + addr
	logf, _ := os.Create(filepath.Join(h.dir, "hub.log"))
	cmd := exec.Command(h.hubBin, "serve", "--config", h.cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("hub log:\n%s", b)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(h.base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hub did not start listening")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.env = []string{"LOA_HUB=" + h.base, "LOA_TOKEN=" + h.admin, "HOME=" + h.dir}
	return h
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndex(s, "\n")+1:])
}

// loa runs the CLI with the admin's token and returns its exit code, stdout and stderr.
func (h *hubProc) loa(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(h.loaBin, args...)
	cmd.Env = append(os.Environ(), h.env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("loa %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// loaOK runs the CLI and fails the test unless it exits 0.
func (h *hubProc) loaOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := h.loa(t, args...)
	if code != 0 {
		t.Fatalf("loa %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}
