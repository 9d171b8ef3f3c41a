package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// throwawayRoot is a copy-on-write copy of this machine's own root file system: an overlay
// whose lower layer is / and whose upper layer is a tmpfs, mounted in a private mount
// namespace and entered with chroot. Packages install into it with the real dpkg, their
// maintainer scripts run as on a device (useradd, deb-systemd-helper), their dependencies are
// checked against this machine's installed packages, and nothing reaches the host: the
// namespace and every change go away when the holder process is killed. It needs root and
// overlayfs, and no network or mirror, unlike a debootstrap.
type throwawayRoot struct {
	holder *exec.Cmd
	pid    int
}

const holderScript = `set -e
mount -t tmpfs -o mode=0755 loa-throwaway-root "$1"
mkdir "$1/upper" "$1/work" "$1/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root"
mount --rbind /dev "$1/root/dev"
mount -t proc proc "$1/root/proc"
# A fresh /run: no /run/systemd/system, so the scripts act as in an image build (no daemon
# to reload or restart), whatever the host runs.
mount -t tmpfs -o mode=0755 tmpfs "$1/root/run"
echo ready
exec chroot "$1/root" sleep infinity
`

func newThrowawayRoot(t *testing.T) *throwawayRoot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the install test mounts an overlay of this system in a private mount namespace, which needs root (CI runs as root)")
	}
	for _, tool := range []string{"unshare", "nsenter", "chroot", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (util-linux, coreutils, dpkg are part of every Debian system): %v", tool, err)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", holderScript, "sh", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the throwaway root: %v", err)
	}
	r := &throwawayRoot{holder: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the throwaway root did not come up (overlayfs and mount namespaces are needed): %s", stderr.Bytes())
	}
	// The holder has exec'd chroot and sleep once its root is the overlay; wait for that so
	// that /proc/PID/root is the throwaway root and not the host's. The bound is generous:
	// make test runs this package at idle CPU priority, where it waits for busy cores.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(r.pid), "exe")); strings.HasSuffix(exe, "/sleep") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the throwaway root's holder did not reach sleep: %s", stderr.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(r.path("/usr/bin/dpkg")); err != nil {
		t.Fatalf("the throwaway root has no /usr/bin/dpkg: %v", err)
	}
	return r
}

// path is where a file of the throwaway root is seen from the test (through the holder's
// root, which the kernel resolves in the holder's mount namespace).
func (r *throwawayRoot) path(p string) string {
	return filepath.Join("/proc", strconv.Itoa(r.pid), "root", p)
}

// run runs a command inside the root and returns its combined output and error.
func (r *throwawayRoot) run(name string, args ...string) (string, error) {
	all := append([]string{"--target", strconv.Itoa(r.pid), "--mount", "--root", "--wd", "--", name}, args...)
	cmd := exec.Command("nsenter", all...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs a command inside the root and fails the test if it fails.
func (r *throwawayRoot) must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := r.run(name, args...)
	if err != nil {
		t.Fatalf("in the throwaway root: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// copyIn puts a host file into the root and returns its path there.
func (r *throwawayRoot) copyIn(t *testing.T, src, dst string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(r.path(dst)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path(dst), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func (r *throwawayRoot) exists(p string) bool {
	_, err := os.Lstat(r.path(p))
	return err == nil
}

func (r *throwawayRoot) read(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(r.path(p))
	if err != nil {
		t.Fatalf("in the throwaway root: %v", err)
	}
	return string(data)
}

// TestThrowawayRootLeavesHostAlone checks the test's own tool: what happens in the root is
// not seen on the host, and the host's files are seen in the root.
func TestThrowawayRootLeavesHostAlone(t *testing.T) {
	r := newThrowawayRoot(t)
	marker := "/etc/loa-throwaway-root-test"
	r.must(t, "sh", "-c", "echo inside > "+marker+" && useradd --system loa-throwaway-test")
	if got := r.read(t, marker); got != "inside\n" {
		t.Fatalf("the root does not keep its own file: %q", got)
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatalf("%s written in the throwaway root appeared on the host", marker)
	}
	if passwd, _ := os.ReadFile("/etc/passwd"); bytes.Contains(passwd, []byte("loa-throwaway-test")) {
		t.Fatal("a user added in the throwaway root appeared in the host's /etc/passwd")
	}
	if !strings.Contains(r.read(t, "/etc/os-release"), "ID=") {
		t.Fatal("the host's /etc/os-release is not seen in the root")
	}
}
