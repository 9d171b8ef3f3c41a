package packaging

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The guides a technician reads on the box (/usr/share/doc/loa-agent) are installed with the
// guides they link to, so no link there leads nowhere; and the agent config shipped names
// the sign's serial settings the install guide tells the technician to set.
func TestAgentDocsInstalled(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, "firmware-config", "debian", "loa-agent.install"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	installed := map[string]bool{} // docs/X.md installed as /usr/share/doc/loa-agent/X.md
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && strings.HasPrefix(fs[1], "docs/") && fs[2] == "/usr/share/doc/loa-agent/"+filepath.Base(fs[1]) {
			installed[filepath.Base(fs[1])] = true
		}
	}
	for _, must := range []string{"install.md", "agent.md", "signs.md", "amplifier.md"} {
		if !installed[must] {
			t.Errorf("docs/%s is not installed in /usr/share/doc/loa-agent", must)
		}
	}
	link := regexp.MustCompile(`\]\(([a-z0-9-]+\.md)(#[^)]*)?\)|\x60([a-z0-9-]+\.md)\x60`)
	for doc := range installed {
		b, err := os.ReadFile(filepath.Join(root, "docs", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[3]
			if target == "cli.md" || target == "hub.md" || target == "protocol.md" || target == "hub-storage.md" || target == "cap.md" || target == "operations.md" || target == "scale.md" {
				continue // the district's side: not on a box
			}
			if !installed[target] {
				t.Errorf("docs/%s links to %s, which the agent package does not install", doc, target)
			}
		}
	}
	cfg, err := os.ReadFile(filepath.Join(root, "firmware-config", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"#  port: /dev/loa-sign", "#  baud: 9600", "#  parity: even", "#  data_bits: 7", "#  stop_bits: 1", "#  address: \"00\""} {
		if !strings.Contains(string(cfg), key) {
			t.Errorf("firmware-config/agent.yaml's board block lacks %q", key)
		}
	}
}
