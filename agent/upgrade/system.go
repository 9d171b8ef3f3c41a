package upgrade

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/loa-project/loa/internal/atomicfile"
)

// UnderSystemd reports whether systemd runs this machine (sd_booted(3)).
func UnderSystemd() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// Service is the agent's systemd unit.
const Service = "loa-agent.service"

// Detached starts the guard out of the agent's reach: under systemd by asking
// loa-agent-upgrade.path (the request file) to start loa-agent-upgrade.service, which runs as
// root (the agent runs as user loa without privileges) and is not stopped when dpkg restarts
// the agent; otherwise with setsid --fork, in a session and process group of its own that a
// supervisor stopping the agent does not touch, its output appended to guard.log.
type Detached struct {
	Exe     string // the running binary (os.Executable)
	Systemd bool
}

func (l Detached) Launch(statePath string) error {
	dir := filepath.Dir(statePath)
	if l.Systemd {
		return atomicfile.Write(filepath.Join(dir, RequestFile), []byte(statePath+"\n"), 0o640)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "guard.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("setsid", "--fork", l.Exe, "upgrade-guard", "--state", statePath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("setsid --fork %s upgrade-guard: %w", l.Exe, err)
	}
	return nil
}

// Debian installs with dpkg and restarts the agent through systemd, or by stopping it for its
// supervisor to start again.
type Debian struct {
	Systemd bool
}

func (Debian) Install(deb string) (string, error) {
	// --force-confdef --force-confold: a config the technician changed is kept (the new
	// default goes beside it as .dpkg-dist), without a question nobody is there to answer.
	cmd := exec.Command("dpkg", "--force-confdef", "--force-confold", "--install", deb)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d Debian) Restart(pid int) error {
	if d.Systemd {
		// reset-failed: a release that failed to start hit the unit's start limit.
		exec.Command("systemctl", "reset-failed", Service).Run()
		if out, err := exec.Command("systemctl", "restart", "--no-block", Service).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl restart %s: %v: %s", Service, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if pid <= 0 || !isAgent(pid) {
		return nil // not running: its supervisor starts it
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}

// isAgent reports whether pid is a loa-agent (and not a process that reused the number).
func isAgent(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 1 && strings.HasSuffix(args[0], "loa-agent") && args[1] == "run"
}
