package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/hub"
)

// alsaConfigParses loads alsa-lib's own configuration plus firmware-config/alsa/60-loa.conf
// and opens the "loa" device with the agent. With no sound card here the open fails, but it
// must fail for the missing card, not with "Unknown PCM" (a name alsa-lib did not define) or
// a parse error; a misspelt name, as a control, must give "Unknown PCM".
func alsaConfigParses(t *testing.T, b built) {
	if _, err := os.Stat("/usr/share/alsa/alsa.conf"); err != nil {
		t.Skip("alsa-lib's /usr/share/alsa/alsa.conf is missing (libasound2-data)")
	}
	conf, err := os.ReadFile(filepath.Join(b.root, "firmware-config", "alsa", "60-loa.conf"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "asound.conf")
	if err := os.WriteFile(path, append([]byte("</usr/share/alsa/alsa.conf>\n"), conf...), 0o644); err != nil {
		t.Fatal(err)
	}
	silence := filepath.Join(t.TempDir(), "s.wav")
	if err := os.WriteFile(silence, makeWAV(1, 16, 1, 48000, make([]byte, 960)), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(device string) string {
		cmd := exec.Command(b.bin["amd64"], "play", silence, "--out", "alsa:"+device)
		cmd.Env = append(os.Environ(), "ALSA_CONFIG_PATH="+path)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, dev := range []string{"loa", "loa:CARD=Headphones", "loa:CARD=0,DEV=1"} {
		out := open(dev)
		if strings.Contains(out, "Unknown PCM") || strings.Contains(out, "parse") || strings.Contains(out, "Invalid") {
			t.Errorf("alsa:%s is not defined by 60-loa.conf:\n%s", dev, out)
		}
		if !strings.Contains(out, "card") && !strings.Contains(out, "played") {
			t.Errorf("alsa:%s: expected a missing-card error (no sound card here) or a play, got:\n%s", dev, out)
		}
	}
	if out := open("loa-misspelt"); !strings.Contains(out, "Unknown PCM") {
		t.Errorf("control: an undefined device did not give Unknown PCM, so this check proves nothing:\n%s", out)
	}
}

// installUpgradePurge installs the amd64 agent package into a throwaway root, checks what it
// did, upgrades it twice with the technician's config kept (once with the same default config,
// once with a changed one), checks that a disabled service stays disabled, then purges.
func installUpgradePurge(t *testing.T, b built) {
	r := newThrowawayRoot(t)
	v1 := r.copyIn(t, b.debs["amd64"], "/var/cache/loa-test/v1.deb")
	v2 := r.copyIn(t, b.newer["amd64"], "/var/cache/loa-test/v2.deb")
	v3 := r.copyIn(t, repackWithNewConfig(t, b.newer["amd64"], b.vThird), "/var/cache/loa-test/v3.deb")
	const cfgPath = "/etc/loa/agent.yaml"
	const wantsLink = "/etc/systemd/system/multi-user.target.wants/loa-agent.service"
	const guardLink = "/etc/systemd/system/paths.target.wants/loa-agent-upgrade.path"

	// Without --force-depends: libasound2, libmpg123-0, espeak-ng must be what this system has.
	out := r.must(t, "dpkg", "--install", v1)
	t.Logf("install:\n%s", out)

	// Files.
	for _, f := range []string{"/usr/bin/loa-agent", "/lib/systemd/system/loa-agent.service", cfgPath,
		"/lib/systemd/system/loa-agent-upgrade.service", "/lib/systemd/system/loa-agent-upgrade.path", "/usr/share/doc/loa-agent/upgrades.md",
		"/etc/alsa/conf.d/60-loa.conf", "/lib/udev/rules.d/99-loa-serial.rules",
		"/usr/share/doc/loa-agent/copyright", "/usr/share/doc/loa-agent/changelog.gz", "/usr/share/doc/loa-agent/install.md",
		"/usr/share/doc/loa-agent/signs.md", "/usr/share/doc/loa-agent/amplifier.md"} {
		if !r.exists(f) {
			t.Errorf("%s not installed", f)
		}
	}
	if got := r.must(t, "stat", "-c", "%U:%G %a", "/usr/bin/loa-agent"); got != "root:root 755\n" {
		t.Errorf("/usr/bin/loa-agent: %q, want root:root 755", got)
	}
	if got := r.must(t, "dpkg-query", "-W", "-f=${Conffiles}", "loa-agent"); !strings.Contains(got, " "+cfgPath+" ") ||
		!strings.Contains(got, " /etc/alsa/conf.d/60-loa.conf ") {
		t.Errorf("conffiles are %q, want %s and /etc/alsa/conf.d/60-loa.conf", got, cfgPath)
	}
	unit := r.read(t, "/lib/systemd/system/loa-agent.service")
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitBurst=", "User=loa",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/loa\n", "NoNewPrivileges=yes", "PrivateTmp=yes",
		"After=time-sync.target", "ExecStart=/usr/bin/loa-agent run --config /etc/loa/agent.yaml"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the installed unit lacks %q", want)
		}
	}

	// The user: a system user with no login, in the groups the hardware needs (gpio is made
	// here: plain Debian has none).
	pw := strings.Split(strings.TrimSpace(r.must(t, "getent", "passwd", "loa")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/loa" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("loa user is %v, want home /var/lib/loa and shell /usr/sbin/nologin", pw)
	}
	if uid, _ := strconv.Atoi(pw[2]); uid <= 0 || uid >= 1000 {
		t.Errorf("loa has uid %s, want a system uid (1..999)", pw[2])
	}
	groups := strings.Fields(r.must(t, "id", "-nG", "loa"))
	for _, g := range []string{"loa", "audio", "dialout", "gpio", "video"} {
		if !contains(groups, g) {
			t.Errorf("loa is not in group %s (groups %v)", g, groups)
		}
	}
	// Data directory owned by loa; the config readable by root and the loa group only.
	if got := r.must(t, "stat", "-c", "%U:%G %a", "/var/lib/loa", cfgPath); got != "loa:loa 750\nroot:loa 640\n" {
		t.Errorf("/var/lib/loa and %s are %q, want loa:loa 750 and root:loa 640", cfgPath, got)
	}
	// Enabled for boot.
	if link, err := os.Readlink(r.path(wantsLink)); err != nil || link != "/lib/systemd/system/loa-agent.service" {
		t.Errorf("loa-agent.service is not enabled in multi-user.target: %q %v", link, err)
	}
	if link, err := os.Readlink(r.path(guardLink)); err != nil || link != "/lib/systemd/system/loa-agent-upgrade.path" {
		t.Errorf("loa-agent-upgrade.path is not enabled in paths.target: %q %v", link, err)
	}

	// The technician sets device_id; the agent, as the loa user with its groups, reads the
	// config and its data directory (and its libraries resolve in the root).
	cfg := strings.Replace(r.read(t, cfgPath), `device_id: ""`, `device_id: "tam-thanh-03"`, 1)
	if !strings.Contains(cfg, "tam-thanh-03") {
		t.Fatal("the shipped agent.yaml has no `device_id: \"\"` line to change")
	}
	if err := os.WriteFile(r.path(cfgPath), []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	status := r.must(t, "setpriv", "--reuid=loa", "--regid=loa", "--init-groups",
		"/usr/bin/loa-agent", "status", "--config", cfgPath)
	if !strings.Contains(status, "tam-thanh-03") {
		t.Errorf("loa-agent status as the loa user does not name the device:\n%s", status)
	}
	if err := os.WriteFile(r.path("/var/lib/loa/journal.db"), []byte("confirmations"), 0o640); err != nil {
		t.Fatal(err)
	}
	passwd, group := r.read(t, "/etc/passwd"), r.read(t, "/etc/group")

	// Upgrade, same default config: the changed config and the data are kept, without a question.
	out = r.must(t, "dpkg", "--install", v2)
	t.Logf("upgrade to %s:\n%s", b.vNewer, out)
	if got := r.must(t, "dpkg-query", "-W", "-f=${Version} ${Status}", "loa-agent"); got != b.vNewer+" install ok installed" {
		t.Errorf("after the upgrade dpkg says %q, want %s installed", got, b.vNewer)
	}
	if got := r.read(t, cfgPath); got != cfg {
		t.Errorf("the upgrade did not keep the changed config:\n%s", got)
	}
	if got := r.read(t, "/var/lib/loa/journal.db"); got != "confirmations" {
		t.Errorf("the upgrade lost the data: journal.db is %q", got)
	}
	if r.read(t, "/etc/passwd") != passwd || r.read(t, "/etc/group") != group {
		t.Errorf("the upgrade changed passwd or group")
	}
	if !r.exists(wantsLink) {
		t.Errorf("the upgrade disabled the service")
	}

	// The technician disables the service; an upgrade that brings a new default config keeps
	// theirs (as unattended upgrades answer: keep the old one), puts the new one beside it, and
	// does not enable the service again.
	r.must(t, "systemctl", "disable", "loa-agent.service")
	if r.exists(wantsLink) {
		t.Fatal("systemctl disable left the wants link")
	}
	out = r.must(t, "dpkg", "--force-confdef", "--force-confold", "--install", v3)
	t.Logf("upgrade to %s:\n%s", b.vThird, out)
	if got := r.read(t, cfgPath); got != cfg {
		t.Errorf("the upgrade with a new default config did not keep the changed one:\n%s", got)
	}
	if dist := r.read(t, cfgPath+".dpkg-dist"); !strings.Contains(dist, newConfigLine) {
		t.Errorf("the new default config is not in %s.dpkg-dist:\n%s", cfgPath, dist)
	}
	if got := r.must(t, "stat", "-c", "%U:%G %a", cfgPath); got != "root:loa 640\n" {
		t.Errorf("after the upgrade %s is %q, want root:loa 640", cfgPath, got)
	}
	if r.exists(wantsLink) {
		t.Errorf("the upgrade enabled the service the technician had disabled")
	}

	// Purge: config (with the .dpkg-dist), data, unit, binary gone; the loa user stays
	// (documented: files it owned elsewhere must not pass to a reused uid).
	out = r.must(t, "dpkg", "--purge", "loa-agent")
	t.Logf("purge:\n%s", out)
	for _, f := range []string{"/usr/bin/loa-agent", "/lib/systemd/system/loa-agent.service", cfgPath, "/etc/loa",
		"/var/lib/loa", "/etc/alsa/conf.d/60-loa.conf", "/lib/udev/rules.d/99-loa-serial.rules", wantsLink, guardLink} {
		if r.exists(f) {
			t.Errorf("%s is still there after purge", f)
		}
	}
	if got, _ := r.run("dpkg-query", "-W", "-f=${Status}", "loa-agent"); strings.Contains(got, "installed") && !strings.Contains(got, "not-installed") {
		t.Errorf("after purge dpkg says %q", got)
	}
	if _, err := r.run("getent", "passwd", "loa"); err != nil {
		t.Errorf("purge removed the loa user; docs/install.md says it stays")
	}
}

// newConfigLine marks the default config of the third package version.
const newConfigLine = "# A line the next version's default config adds."

// repackWithNewConfig makes a newer version of a package whose default agent.yaml differs, as
// a release that changes a default would.
func repackWithNewConfig(t *testing.T, deb, version string) string {
	t.Helper()
	return repack(t, deb, version, func(tree string) {
		f, err := os.OpenFile(filepath.Join(tree, "etc/loa/agent.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("\n" + newConfigLine + "\n")
		f.Close()
	})
}

// repack makes another version of a package: its tree extracted, changed by change, and
// built again at version.
func repack(t *testing.T, deb, version string, change func(tree string)) string {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	run(t, dir, nil, "dpkg-deb", "--raw-extract", deb, tree)
	change(tree)
	control := filepath.Join(tree, "DEBIAN/control")
	text := regexp.MustCompile(`(?m)^Version: .*$`).ReplaceAllString(readFile(t, control), "Version: "+version)
	if err := os.WriteFile(control, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "loa-agent_"+version+"_amd64.deb")
	run(t, dir, nil, "dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", tree, out) // fast: a test fixture
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unitsVerify runs systemd-analyze verify on each unit in firmware-config/systemd, with the
// binaries it starts replaced by existing executables (verify checks that they exist). Any
// message about the unit fails: systemd-analyze exits 0 on unknown keys and bad values.
func unitsVerify(t *testing.T, root string, binaries map[string]string) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed in this container: the units are not verified")
	}
	units, err := filepath.Glob(filepath.Join(root, "firmware-config", "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in firmware-config/systemd (%v)", err)
	}
	dir := t.TempDir()
	exe := regexp.MustCompile(`/usr/bin/loa[a-z-]*`)
	for _, u := range units {
		text := exe.ReplaceAllStringFunc(readFile(t, u), func(s string) string {
			if b, ok := binaries[s]; ok {
				return b
			}
			return "/bin/true"
		})
		unitCopy := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(unitCopy, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("systemd-analyze", "verify", unitCopy)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		msgs := stderr.String()
		if err != nil || strings.Contains(msgs, filepath.Base(u)) {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(u), err, msgs)
		}
		if sec, err := exec.Command("systemd-analyze", "security", "--offline=yes", unitCopy).CombinedOutput(); err == nil {
			lines := strings.Split(strings.TrimSpace(string(sec)), "\n")
			t.Logf("%s: %s", filepath.Base(u), lines[len(lines)-1])
		}
	}
}

// TestUnitsVerify checks the units without building anything.
func TestUnitsVerify(t *testing.T) {
	unitsVerify(t, repoRoot(t), nil)
}

// TestShippedAgentConfig loads firmware-config/agent.yaml with the agent's own loader: every
// key must be one the agent knows, and the only thing missing must be device_id, which the
// technician sets.
func TestShippedAgentConfig(t *testing.T) {
	root := repoRoot(t)
	shipped := filepath.Join(root, "firmware-config", "agent.yaml")
	_, err := agent.LoadConfig(shipped)
	if err == nil || !strings.Contains(err.Error(), "device_id is missing") {
		t.Fatalf("the shipped config should only lack device_id, got %v", err)
	}
	if strings.Count(err.Error(), "\n") > 0 {
		t.Fatalf("the shipped config has more than one problem:\n%v", err)
	}
	data := bytes.Replace([]byte(readFile(t, shipped)), []byte(`device_id: ""`), []byte(`device_id: "tam-thanh-03"`), 1)
	set := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(set, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := agent.LoadConfig(set)
	if err != nil {
		t.Fatalf("with device_id set: %v", err)
	}
	if c.DataDir != "/var/lib/loa" || !strings.HasPrefix(c.Audio.Output, "alsa") {
		t.Errorf("data_dir %q, audio.output %q: want /var/lib/loa and an ALSA output", c.DataDir, c.Audio.Output)
	}
	unit := readFile(t, filepath.Join(root, "firmware-config", "systemd", "loa-agent.service"))
	if !strings.Contains(unit, "ReadWritePaths="+c.DataDir+"\n") {
		t.Errorf("the unit's ReadWritePaths is not the config's data_dir %s", c.DataDir)
	}

	// Each commented example block, uncommented as a technician would, must load too.
	for _, block := range []struct{ start, nth, extra string }{
		{"#hub:", "1", ""}, {"#amplifier:", "1", ""}, {"#amplifier:", "2", ""},
		{"#board:", "1", "outputs: [speakers, board]\n"}, {"#screen:", "1", "outputs: [speakers, screen]\n"},
	} {
		text, ok := uncomment(string(data), block.start, block.nth)
		if !ok {
			t.Errorf("the shipped config has no commented %s example number %s", block.start, block.nth)
			continue
		}
		text = strings.Replace(text, "outputs: [speakers]\n", block.extra, 1)
		if err := os.WriteFile(set, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err = agent.LoadConfig(set)
		if err != nil {
			t.Errorf("the shipped %s example %s, uncommented: %v", block.start, block.nth, err)
			continue
		}
		switch block.start {
		case "#hub:":
			if c.Hub.URL == "" || c.Hub.SecretFile == "" || len(c.Hub.TrustedKeys) == 0 {
				t.Errorf("the uncommented hub example gives %+v, want a URL, a secret file and a trusted key", c.Hub)
			}
		case "#amplifier:":
			if c.Amplifier.Driver == "" || c.Amplifier.Driver == "none" {
				t.Errorf("the uncommented amplifier example %s gives driver %q", block.nth, c.Amplifier.Driver)
			}
		case "#screen:":
			if c.Screen.VO != "drm" {
				t.Errorf("the uncommented screen example gives vo %q", c.Screen.VO)
			}
		case "#board:":
			if c.Board.Port != "/dev/loa-sign" {
				t.Errorf("the uncommented board example gives port %q", c.Board.Port)
			}
		}
	}
}

// uncomment removes the "#" of the nth (1-based) block that starts with the line start and
// goes on with "#  " lines.
func uncomment(text, start, nth string) (string, bool) {
	lines := strings.Split(text, "\n")
	seen, in, found := 0, false, false
	for i, l := range lines {
		switch {
		case l == start:
			seen++
			in = strconv.Itoa(seen) == nth
		case in && strings.HasPrefix(l, "#  "):
		default:
			in = false
		}
		if in {
			lines[i] = l[1:]
			found = true
		}
	}
	return strings.Join(lines, "\n"), found
}

// TestShippedHubConfig loads firmware-config/hub.yaml with the hub's own loader.
func TestShippedHubConfig(t *testing.T) {
	c, err := hub.LoadConfig(filepath.Join(repoRoot(t), "firmware-config", "hub.yaml"))
	if err != nil {
		t.Fatalf("the shipped hub config does not load: %v", err)
	}
	unit := readFile(t, filepath.Join(repoRoot(t), "firmware-config", "systemd", "loa-hub.service"))
	if !strings.Contains(unit, "ReadWritePaths="+c.DataDir+"\n") {
		t.Errorf("loa-hub.service's ReadWritePaths is not the config's data_dir %s", c.DataDir)
	}
}

// TestUdevRules checks each rule line is key-op-value pairs udev knows, that the USB ids are
// 4 hex digits, and that both stable names are given.
func TestUdevRules(t *testing.T) {
	text := readFile(t, filepath.Join(repoRoot(t), "firmware-config", "udev", "99-loa-serial.rules"))
	pair := regexp.MustCompile(`^(SUBSYSTEM|KERNEL|ATTRS\{(idVendor|idProduct|serial)\}|ENV\{ID_PATH\}|SYMLINK|GROUP|MODE)(==|\+=|=)"([^"]*)"$`)
	names := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, kv := range strings.Split(line, ", ") {
			m := pair.FindStringSubmatch(kv)
			if m == nil {
				t.Errorf("line %d: %q is not a known key, operator and quoted value", i+1, kv)
				continue
			}
			if strings.HasPrefix(m[1], "ATTRS{id") && !regexp.MustCompile(`^[0-9a-f]{4}$`).MatchString(m[4]) {
				t.Errorf("line %d: %s %q is not 4 lowercase hex digits", i+1, m[1], m[4])
			}
			if m[1] == "SYMLINK" {
				names[m[4]] = true
			}
		}
	}
	for _, n := range []string{"loa-relay", "loa-sign"} {
		if !names[n] {
			t.Errorf("no rule gives /dev/%s", n)
		}
	}
}

// TestMaintainerScripts checks the maintainer scripts and the packaging scripts with sh -n and, when installed,
// shellcheck (installed by scripts/install-cross-deps). What they do is checked by
// TestPackages/InstallUpgradePurge.
func TestMaintainerScripts(t *testing.T) {
	scripts, _ := filepath.Glob(filepath.Join(repoRoot(t), "firmware-config", "debian", "*.p*"))
	if len(scripts) < 6 {
		t.Fatal("no maintainer scripts in firmware-config/debian")
	}
	_, noShellcheck := exec.LookPath("shellcheck")
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", filepath.Base(s), err, out)
		}
		if noShellcheck == nil {
			if out, err := exec.Command("shellcheck", "-s", "sh", s).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", filepath.Base(s), err, out)
			}
		}
	}
	// The build scripts (bash) too.
	for _, s := range []string{"package", "install-cross-deps", "bench-package"} {
		path := filepath.Join(repoRoot(t), "scripts", s)
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n scripts/%s: %v\n%s", s, err, out)
		}
		if noShellcheck == nil {
			if out, err := exec.Command("shellcheck", path).CombinedOutput(); err != nil {
				t.Errorf("shellcheck scripts/%s: %v\n%s", s, err, out)
			}
		}
	}
	if noShellcheck != nil {
		t.Log("shellcheck is not installed: only sh -n was run (scripts/install-cross-deps installs it)")
	}
}
