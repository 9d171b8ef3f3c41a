package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-project/loa/internal/testkit"
)

// TestConsoleWithWholeAgents: a staff member signs in to the console of a real loa-hub,
// sends a typed warning through the emergency page's confirmation step to a commune of two
// real agents playing on FIFO sound cards, sees both clusters' confirmations land on the
// open live view, cancels it there, and downloads the play log whose rows for the warning are
// those `loa confirmations --csv` gives.
func TestConsoleWithWholeAgents(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	if testing.Short() {
		t.Skip("real processes and Chromium")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/install-deps (Debian package chromium)")
	}
	bins := build(t)
	h := newHub(t, bins)
	env := h.env
	const pass = "bao-lu-tam-ky-2026"
	add := exec.Command(bins.hub, "user", "add", "lan", "--scope", "qn", "--role", "emergency", "--password", "--config", h.config)
	add.Stdin = strings.NewReader(pass + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("loa-hub user add lan: %v\n%s", err, out)
	}
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk", "--name", "Tam Kỳ")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	devs := []string{"qn/tk/cl-01", "qn/tk/cl-02"}
	var agents []*agentBox
	for _, id := range devs {
		s := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", id, "--area", "qn/tk"))[1]
		a := newAgent(t, bins, id, s, h.url, h.keyLine)
		a.start(t, bins)
		agents = append(agents, a)
	}
	logs := func() string {
		s := "hub:\n" + h.proc.String()
		for i, a := range agents {
			s += fmt.Sprintf("\nagent %d:\n%s\njournal %d:\n%s", i+1, a.proc.String(), i+1, dumpJournal(a.records(bins)))
		}
		return s
	}
	waitFor(t, "both agents online", 30*time.Second, func() bool {
		for _, d := range devs {
			out, err := exec.Command(bins.cli, "--hub", h.url, "--token", h.token, "device", "show", d, "--json").Output()
			var dev struct {
				Online bool `json:"online"`
			}
			if err != nil || json.Unmarshal(out, &dev) != nil || !dev.Online {
				return false
			}
		}
		return true
	}, logs)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			dumpRunning(t)
			t.Fatalf("in the browser, %s: %v\n%s", what, err, logs())
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}

	do("signing in", chromedp.Navigate(h.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), "lan"), chromedp.SendKeys(chromedp.CSS("#password"), pass),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("table.tree")))
	do("filling in the emergency", chromedp.Navigate(h.url+"/console/emergency"), chromedp.WaitVisible(chromedp.CSS("form.emergency")),
		chromedp.Click(chromedp.CSS(`input[name=to][value="qn/tk"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=title]`), "Cảnh báo lũ"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=text]`), "Nước sông Tam Kỳ đang lên. Đề nghị bà con vùng trũng di chuyển lên chỗ cao ngay."),
		chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#reach")))
	if reach := text("#reach"); reach != "Sẽ phát tới 1 xã, 2 cụm loa." {
		t.Errorf("the confirmation step says %q, want 1 commune and 2 clusters", reach)
	}
	if out := testkit.Run(t, env, bins.cli, "emergency", "list", "--json"); strings.Contains(out, "qn/tk") {
		t.Fatalf("the confirmation step sent the emergency:\n%s", out)
	}
	do("sending", chromedp.Click(chromedp.CSS("#send")), chromedp.WaitVisible(chromedp.CSS("#reached")))
	// Marks this page: still there at the end, the confirmations came without a reload.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__loaded = document.getElementById("heard").textContent`)); err != nil {
		t.Fatal(err)
	}
	series, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new URLSearchParams(location.search).get("series")`))
	if err != nil || series == "" {
		t.Fatalf("not on an emergency's live view (%v)", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#reached tbody tr").length`)); n != 2 {
		t.Errorf("the live view lists %d clusters, want 2", n)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("heard").textContent === "2"`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		dumpRunning(t)
		t.Fatalf("the live view never showed both clusters' confirmations (%v); it shows:\n%s\n%s", err, text("#reached"), logs())
	}
	before, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__loaded`))
	if before == "2" {
		t.Error("both confirmations were there when the page loaded: the live update was not seen")
	} else if before == "" {
		t.Error("the live view was reloaded: the confirmations did not arrive live")
	}
	for _, d := range devs {
		if cell := text(fmt.Sprintf(`tr[data-device=%q] .heard`, d)); !strings.HasPrefix(cell, "đã phát · ") {
			t.Errorf("%s's confirmation on the live view: %q, want played", d, cell)
		}
	}
	if rows := text("#reached tbody"); !strings.Contains(rows, devs[0]) || !strings.Contains(rows, devs[1]) {
		t.Errorf("the live view does not name both devices:\n%s", rows)
	}
	if dir := os.Getenv("LOA_CONSOLE_SCREENSHOTS"); dir != "" {
		do("screenshot", chromedp.EmulateViewport(1280, 740))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "emergency-live-agents-1280.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do("cancelling", chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	var ems []struct {
		Area      string `json:"area"`
		Series    string `json:"series"`
		Program   string `json:"program"`
		Active    bool   `json:"active"`
		EndReason string `json:"end_reason"`
	}
	out := testkit.Run(t, env, bins.cli, "emergency", "list", "--all", "--json")
	if err := json.Unmarshal([]byte(out), &ems); err != nil || len(ems) != 1 || ems[0].Series != series || ems[0].Area != "qn/tk" ||
		ems[0].Active || ems[0].EndReason != "cancelled" {
		t.Fatalf("after cancelling on the page the hub has (%v):\n%s", err, out)
	}

	// The play log's CSV of the warning's programme, from the console, against the CLI's.
	program := ems[0].Program
	cliRows := func() []string {
		var rows []string
		for _, d := range devs {
			rows = append(rows, playRows(t, "loa confirmations --csv", testkit.Run(t, env, bins.cli, "confirmations", "--device", d, "--csv"), program)...)
		}
		sort.Strings(rows)
		return rows
	}
	// The plays cut short by the cancel are confirmed after it: wait until every play of the
	// warning each agent journaled is closed and at the hub.
	waitFor(t, "every play of the warning closed and at the hub", 30*time.Second, func() bool {
		atHub := map[string]bool{}
		for _, r := range cliRows() {
			f := strings.Fields(r)
			atHub[f[0]+"#"+f[1]] = true
		}
		n := 0
		for i, a := range agents {
			open := map[uint64]bool{}
			for _, r := range having(a.records(bins), prog(program, "")) {
				open[r.Seq] = open[r.Seq] || r.Result == "playing"
				if r.Result != "playing" {
					open[r.Seq] = false
					n++
					if !atHub[fmt.Sprintf("%s#%d", devs[i], r.Seq)] {
						return false
					}
				}
			}
			for _, o := range open {
				if o {
					return false
				}
			}
		}
		return n == len(atHub)
	}, logs)
	do("opening the play log", chromedp.Navigate(h.url+"/console/confirmations?program="+url.QueryEscape(program)), chromedp.WaitVisible(chromedp.CSS("#csv")))
	consoleCSV, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.getElementById("csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	got := playRows(t, "the console's CSV", consoleCSV, program)
	want := cliRows()
	if len(got) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the console's CSV rows of %s:\n%s\nloa confirmations --csv:\n%s", program, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%d play(s) of %s in both CSVs; the live view showed %s confirmed when it loaded", len(got), program, before)
	for _, d := range devs {
		if !strings.Contains(strings.Join(got, "\n"), d+" ") {
			t.Errorf("the CSV has no play of %s", d)
		}
	}
}

// playRows are a confirmations CSV's rows of one programme as "device seq item_index result
// played_s", sorted: the columns that do not depend on the reader's time zone.
func playRows(t *testing.T, what, data, program string) []string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("%s is not CSV (%v):\n%s", what, err, data)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, c := range []string{"device", "seq", "program", "item_index", "result", "played_s"} {
		if _, ok := col[c]; !ok {
			t.Fatalf("%s has no column %s: %v", what, c, recs[0])
		}
	}
	var out []string
	for _, r := range recs[1:] {
		if r[col["program"]] == program {
			out = append(out, strings.Join([]string{r[col["device"]], r[col["seq"]], r[col["item_index"]], r[col["result"]], r[col["played_s"]]}, " "))
		}
	}
	sort.Strings(out)
	return out
}
