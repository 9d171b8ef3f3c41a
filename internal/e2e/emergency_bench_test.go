package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// TestEmergencyLatencyBench measures, on loopback with a real hub and agent (ALSA into a
// FIFO-paced card), the time from POST /api/emergencies to the agent's journal record of the
// emergency's first sample handed to the audio output (its Start), over RUNS runs with the
// clip cached on the device and with a ~100 kB clip it does not have. Run by
// scripts/bench-emergency (make bench); skipped otherwise.
func TestEmergencyLatencyBench(t *testing.T) {
	if os.Getenv("LOA_BENCH_EMERGENCY") == "" {
		t.Skip("a benchmark: run scripts/bench-emergency")
	}
	runs := 50
	if n, err := strconv.Atoi(os.Getenv("RUNS")); err == nil && n > 0 {
		runs = n
	}
	bins := build(t)
	env, hubURL, keyLine, hub := hubEnv(t, bins)
	token := strings.TrimPrefix(env[1], "LOA_TOKEN=")
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secret := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`).FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]
	media := t.TempDir()
	refRe := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	clip := func(name, secs, freq string) string {
		p := filepath.Join(media, name+".wav")
		if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", p, "synth", secs, "sine", freq).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
		return refRe.FindString(testkit.Run(t, env, bins.cli, "content", "add", p, "--title", name))
	}
	cached := clip("cached", "2", "900")
	// 100 kB: about 16.7 s of 48 kbit/s mono MP3, one distinct clip per run.
	var fresh []string
	for i := range runs {
		fresh = append(fresh, clip(fmt.Sprintf("fresh-%d", i), "16.7", strconv.Itoa(300+7*i)))
	}
	// The cached clip reaches the device through a programme that never plays.
	sched := filepath.Join(media, "s.yaml")
	os.WriteFile(sched, []byte(fmt.Sprintf("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n"+
		"  - {id: holder, at: \"2001-01-01T00:00:00+07:00\", items: [{content: %q}]}\n", cached)), 0o644)
	testkit.Run(t, env, bins.cli, "schedule", "push", sched, "--to", "qn/tk")
	a := newAgent(t, bins, "qn/tk/cl-01", secret, hubURL, keyLine)
	a.start(t, bins)
	logs := func() string { return "hub:\n" + hub.String() + "\nagent:\n" + a.proc.String() }
	waitFor(t, "the agent to hold the cached clip", 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(a.dir, "data"))
		return err == nil && strings.Contains(a.proc.String(), cached[7:20])
	}, logs)
	time.Sleep(2 * time.Second)

	post := func(path string, body any) []byte {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", hubURL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %s %s", path, resp.Status, out.String())
		}
		return out.Bytes()
	}
	measure := func(what string, refs func(i int) string, checkClip bool) {
		var lat []time.Duration
		for i := range runs {
			t0 := time.Now()
			body := post("/api/emergencies", map[string]any{"to": "qn/tk", "content": refs(i), "text": "Cảnh báo thử", "until": "1m"})
			var res struct {
				Emergencies []struct {
					ID int64 `json:"id"`
				} `json:"emergencies"`
			}
			json.Unmarshal(body, &res)
			p := fmt.Sprintf("emergency:%d/speakers", res.Emergencies[0].ID)
			var first, item jrec
			waitFor(t, "the emergency's first sample on the agent", 30*time.Second, func() bool {
				for _, r := range a.records(bins) {
					if r.Program == p && r.ItemIndex == 0 && !r.Start.IsZero() {
						first = r
					}
					if r.Program == p && r.ItemIndex == 1 && !r.Start.IsZero() {
						item = r
					}
				}
				return !first.Start.IsZero() && (!checkClip || !item.Start.IsZero())
			}, logs)
			lat = append(lat, first.Start.Sub(t0))
			if checkClip && item.Item != refs(i) {
				t.Errorf("%s run %d: the clip was not played (item %q): its fallback was spoken", what, i, item.Item)
			}
			post(fmt.Sprintf("/api/emergencies/%d/cancel", res.Emergencies[0].ID), nil)
			waitFor(t, "the emergency to stop", 30*time.Second, func() bool {
				for _, r := range a.records(bins) {
					if r.Program == p && r.Result == "playing" {
						return false
					}
				}
				return true
			}, logs)
		}
		slices.Sort(lat)
		pct := func(d []time.Duration, q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
		fmt.Printf("emergency %-24s runs %d: POST -> first sample median %6.1f ms  p99 %6.1f ms  min %6.1f ms  max %6.1f ms\n",
			what, runs, ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(lat[0]), ms(lat[len(lat)-1]))
	}
	measure("clip cached", func(int) string { return cached }, false)
	// Not cached: the agent activates the emergency at once and fetches the clip while the
	// issue time is spoken; each run also checks that the clip itself, not its fallback, played.
	measure("100 kB clip not cached", func(i int) string { return fresh[i] }, true)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
