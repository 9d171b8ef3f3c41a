package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/agent"
	"github.com/loa-project/loa/hub/metrics"
)

const monitoring = "../../firmware-config/monitoring"

var metricRef = regexp.MustCompile(`\bloa_[a-z0-9_]+`)

// checkExpr reports what is wrong with a PromQL expression of the dashboard or the rules: it
// must name a metric the hub or the agent exports (or up), and nothing else of ours.
func checkExpr(expr string) []string {
	var errs []string
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 && !strings.Contains(expr, "up{") {
		errs = append(errs, "names no Loa metric")
	}
	for _, r := range refs {
		if slices.Contains(metrics.Names, r) || slices.Contains(agent.MetricNames, r) {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(r, "_bucket"), "_sum"), "_count")
		if base != r && slices.Contains(metrics.Histograms, base) {
			continue
		}
		errs = append(errs, r+" is not a metric the hub or the agent exports")
	}
	return errs
}

type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

// The dashboard loads as Grafana's JSON model, and every panel's expressions name metrics the
// hub or the agent actually exports, so a renamed metric cannot leave a panel blank.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoring, "loa-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("loa-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Fatalf("dashboard title %q uid %q schemaVersion %d, %d panels: not a Grafana dashboard", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	ids := map[int]bool{}
	seen := map[string]bool{}
	for _, p := range d.Panels {
		where := "panel " + p.Title
		if p.ID == 0 || ids[p.ID] || p.Title == "" || p.Type == "" || p.Datasource.Type != "prometheus" || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("%s: id %d (unique, not 0), type %q, datasource %q, size %dx%d", where, p.ID, p.Type, p.Datasource.Type, p.GridPos.W, p.GridPos.H)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("%s has no query", where)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" {
				t.Errorf("%s: a query has no refId", where)
			}
			for _, e := range checkExpr(tg.Expr) {
				t.Errorf("%s: %q: %s", where, tg.Expr, e)
			}
			for _, r := range metricRef.FindAllString(tg.Expr, -1) {
				seen[strings.TrimSuffix(r, "_bucket")] = true
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, want := range []string{metrics.AgentsConnected, metrics.DeliverySeconds, metrics.Confirmations, metrics.EmergencyFirstPlay,
		metrics.StoreSeconds, metrics.HTTPAnswers, metrics.WebsocketErrors, agent.MetricPlays, agent.MetricJournalUnack, agent.MetricClockOffset} {
		if !seen[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// The alert rules have Prometheus's structure and name exported metrics; promtool checks
// their PromQL too when it is installed (Debian's prometheus package ships it).
func TestAlertRulesParse(t *testing.T) {
	path := filepath.Join(monitoring, "loa-alerts.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("group %s rule %q: alert, expr, labels.severity, annotations.summary and .description are required", g.Name, r.Alert)
			}
			for _, e := range checkExpr(r.Expr) {
				t.Errorf("alert %s: %q: %s", r.Alert, r.Expr, e)
			}
			alerts[r.Alert] = true
		}
	}
	for _, want := range []string{"LoaHubDown", "LoaAgentsDisconnected", "LoaDeliverySlow", "LoaStoreSlow", "LoaJournalBacklogGrowing"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (apt install prometheus): the rules' PromQL is not checked beyond the metric names")
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := exec.Command(promtool, "test", "rules", filepath.Join(monitoring, "loa-alerts_test.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
