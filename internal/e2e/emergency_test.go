package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// hubEnv starts a hub with an admin token and returns the CLI's environment, the hub URL, the
// agents' trusted key line and the hub process.
func hubEnv(t *testing.T, bins binaries) ([]string, string, string, *proc) {
	t.Helper()
	h := newHub(t, bins)
	return h.env, h.url, h.keyLine, h.proc
}

// jrec is a journal record with the fields these tests look at.
type jrec struct {
	Seq       uint64    `json:"seq"`
	Program   string    `json:"program"`
	ItemIndex int       `json:"item_index"`
	Item      string    `json:"item"`
	Scheduled time.Time `json:"scheduled"`
	Start     time.Time `json:"start"`
	Result    string    `json:"result"`
	Error     string    `json:"error"`
}

func (b *agentBox) records(bins binaries) []jrec { return journalOf[jrec](b, bins) }

// journalOf reads the agent's journal (`loa-agent journal --json`) into records of type R.
func journalOf[R any](b *agentBox, bins binaries) []R {
	out, err := exec.Command(bins.agent, "journal", "--config", b.config, "--json").Output()
	if err != nil {
		return nil
	}
	var recs []R
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r R
		if json.Unmarshal([]byte(l), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

func having(recs []jrec, f func(jrec) bool) []jrec {
	var out []jrec
	for _, r := range recs {
		if f(r) {
			out = append(out, r)
		}
	}
	return out
}

func prog(p, result string) func(jrec) bool {
	return func(r jrec) bool { return r.Program == p && (result == "" || r.Result == result) }
}

func dumpJournal(recs []jrec) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "  %d %s item %d %s scheduled %s start %s %s %s\n", r.Seq, r.Program, r.ItemIndex, r.Result,
			r.Scheduled.Format("15:04:05.000"), r.Start.Format("15:04:05.000"), r.Item, r.Error)
	}
	return b.String()
}

// TestEmergencyEndToEnd: a normal programme is playing on two agents; `loa emergency`
// preempts it, the normal one resumes, the repeat fires; an agent killed during the emergency
// resumes it; an agent cut off when an emergency is sent plays it on reconnect while it has
// not expired, and never once it has.
func TestEmergencyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes for two minutes")
	}
	bins := build(t)
	env, hubURL, keyLine, hub := hubEnv(t, bins)
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	s1 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]
	s2 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-02", "--area", "qn/tk"))[1]
	media := t.TempDir()
	for name, spec := range map[string][]string{"normal": {"8", "500"}, "alarm": {"2", "900"}} {
		if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", filepath.Join(media, name+".wav"), "synth", spec[0], "sine", spec[1]).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
	}
	refRe := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	refN := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add", filepath.Join(media, "normal.wav"), "--title", "Bản tin"))
	refE := refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add", filepath.Join(media, "alarm.wav"), "--title", "Còi báo"))

	link2 := newLink(t, strings.TrimPrefix(hubURL, "http://"))
	a1 := newAgent(t, bins, "qn/tk/cl-01", s1, hubURL, keyLine)
	a2 := newAgent(t, bins, "qn/tk/cl-02", s2, "http://"+link2.Addr(), keyLine)
	a1.start(t, bins)
	a2.start(t, bins)
	logs := func() string {
		return "hub:\n" + hub.String() + "\nagent 1:\n" + a1.proc.String() + "\nagent 2:\n" + a2.proc.String() +
			"\njournal 1:\n" + dumpJournal(a1.records(bins)) + "\njournal 2:\n" + dumpJournal(a2.records(bins))
	}
	const normal = "qn/tk/normal"
	sched := filepath.Join(media, "commune.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: normal, cron: \"*/20 * * * * *\", max_duration: 18s, on_interrupt: resume, items: [{content: %q}]}\n", refN)), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	playing := func(b *agentBox, p string) func() bool {
		return func() bool { return len(having(b.records(bins), prog(p, "playing"))) > 0 }
	}
	waitFor(t, "the normal programme playing on both agents", 60*time.Second, func() bool {
		return playing(a1, normal)() && playing(a2, normal)()
	}, logs)

	// The emergency preempts it at once on both.
	out := testkit.Run(t, env, bins.cli, "emergency", "--to", "qn/tk", "--content", refE, "--text", "Cảnh báo khẩn cấp",
		"--repeat-every", "20s", "--until", "5m", "--series", "e2e-storm")
	m := regexp.MustCompile(`emergency (\d+) \(series e2e-storm\)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "2 device(s) got a new schedule, 2 of them online") {
		t.Fatalf("loa emergency:\n%s", out)
	}
	em1 := "emergency:" + m[1] + "/speakers"
	stoppedAs := map[string]bool{}
	for i, b := range []*agentBox{a1, a2} {
		waitFor(t, fmt.Sprintf("agent %d: normal stopped, emergency completed, normal resumed", i+1), 40*time.Second, func() bool {
			recs := b.records(bins)
			pre := having(recs, func(r jrec) bool {
				return r.Program == normal && (r.Result == "preempted" || r.Result == "interrupted")
			})
			if len(pre) == 0 || len(having(recs, func(r jrec) bool { return prog(em1, "completed")(r) && r.Item == refE })) == 0 {
				return false
			}
			stoppedAs[pre[0].Result] = true
			// Resumed: the same occurrence plays on after the emergency, inside its 18 s
			// window (the next occurrence is 20 s after it). Records carry the segment's
			// scheduled start, so the window is what tells.
			return len(having(recs, func(r jrec) bool {
				return r.Program == normal && r.Seq > pre[0].Seq && r.Start.Before(pre[0].Scheduled.Add(18*time.Second)) && r.Result != "playing"
			})) > 0
		}, logs)
	}
	if stoppedAs["interrupted"] {
		t.Errorf("the normal programme stopped by the pushed emergency is journaled interrupted, not preempted\n%s", logs())
	}
	for i, b := range []*agentBox{a1, a2} {
		waitFor(t, fmt.Sprintf("agent %d: the emergency repeated", i+1), 40*time.Second, func() bool {
			return len(having(b.records(bins), func(r jrec) bool { return prog(em1, "completed")(r) && r.Item == refE })) >= 2
		}, logs)
	}
	// Each play starts with the spoken issue time.
	if intro := having(a1.records(bins), func(r jrec) bool { return r.Program == em1 && r.ItemIndex == 0 }); len(intro) == 0 || !strings.Contains(intro[0].Item, "Bản tin phát lúc") {
		t.Errorf("no spoken issue time before the emergency:\n%s", dumpJournal(intro))
	}

	// Killed during the emergency (a power cut, a crash): it carries on after the restart.
	waitFor(t, "agent 1 playing the emergency", 30*time.Second, playing(a1, em1), logs)
	a1.proc.signal(syscall.SIGKILL)
	a1.stopCard()
	killed := time.Now()
	a1.start(t, bins)
	waitFor(t, "agent 1 to resume the emergency after SIGKILL", 30*time.Second, func() bool {
		recs := a1.records(bins)
		return len(having(recs, prog(em1, "interrupted"))) > 0 &&
			len(having(recs, func(r jrec) bool { return prog(em1, "completed")(r) && r.Start.After(killed) })) > 0
	}, logs)

	// Cancelled: it stops being played.
	testkit.Run(t, env, bins.cli, "emergency", "cancel", m[1])
	cancelled := time.Now()

	// Agent 2 is cut off when the next emergency is sent; it plays it on reconnect.
	link2.Down()
	out = testkit.Run(t, env, bins.cli, "emergency", "--to", "qn/tk", "--text", "Lũ quét ở thượng nguồn", "--until", "2m")
	m = regexp.MustCompile(`emergency (\d+) \(series`).FindStringSubmatch(out)
	em2 := "emergency:" + m[1] + "/speakers"
	waitFor(t, "agent 1 to play the second emergency", 30*time.Second, func() bool { return len(having(a1.records(bins), prog(em2, "completed"))) > 0 }, logs)
	if len(having(a2.records(bins), prog(em2, ""))) > 0 {
		t.Fatal("agent 2 played an emergency sent while it was cut off")
	}
	link2.Up()
	waitFor(t, "agent 2 to play the second emergency on reconnect", 60*time.Second, func() bool {
		return len(having(a2.records(bins), prog(em2, "completed"))) > 0
	}, logs)

	// Cut off again; this emergency expires before the link is back: it is never played.
	link2.Down()
	out = testkit.Run(t, env, bins.cli, "emergency", "--to", "qn/tk", "--text", "Sạt lở đất", "--until", "12s")
	m = regexp.MustCompile(`emergency (\d+) \(series`).FindStringSubmatch(out)
	em3 := "emergency:" + m[1] + "/speakers"
	waitFor(t, "agent 1 to play the short-lived emergency", 30*time.Second, func() bool { return len(having(a1.records(bins), prog(em3, "completed"))) > 0 }, logs)
	time.Sleep(time.Until(time.Now().Add(14 * time.Second))) // past its expiry
	link2.Up()
	waitFor(t, "agent 2 back with the hub's newest schedule active", 60*time.Second, func() bool {
		out, err := exec.Command(bins.cli, "--hub", hubURL, "--token", strings.TrimPrefix(env[1], "LOA_TOKEN="), "device", "show", "qn/tk/cl-02", "--json").Output()
		var d struct {
			Online         bool  `json:"online"`
			Revision       int64 `json:"revision"`
			ActiveRevision int64 `json:"active_revision"`
		}
		return err == nil && json.Unmarshal(out, &d) == nil && d.Online && d.Revision > 0 && d.ActiveRevision == d.Revision
	}, logs)
	time.Sleep(3 * time.Second) // a grace-window start would show by now
	if recs := having(a2.records(bins), prog(em3, "")); len(recs) > 0 {
		t.Errorf("agent 2 played an emergency that expired while it was cut off:\n%s", dumpJournal(recs))
	}
	for i, b := range []*agentBox{a1, a2} {
		if late := having(b.records(bins), func(r jrec) bool { return r.Program == em1 && r.Start.After(cancelled.Add(2*time.Second)) }); len(late) > 0 {
			t.Errorf("agent %d played the emergency after it was cancelled:\n%s", i+1, dumpJournal(late))
		}
		if bad := having(b.records(bins), func(r jrec) bool { return strings.HasPrefix(r.Program, "emergency:") && r.Result == "failed" }); len(bad) > 0 {
			t.Errorf("agent %d: failed emergency plays:\n%s", i+1, dumpJournal(bad))
		}
	}
}
