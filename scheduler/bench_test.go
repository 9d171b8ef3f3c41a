package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/clock"
)

// bigSchedule is a commune-district mix: 500 programmes of every class with weekday crons,
// quiet hours, repeats and three outputs, like a district pushing to a busy board cluster.
func bigSchedule(n int) string {
	var b strings.Builder
	b.WriteString(header + "quiet_hours: [{from: \"22:00\", to: \"05:00\"}]\nprograms:\n")
	for i := 0; i < n; i++ {
		class := []string{"normal", "normal", "normal", "priority", "emergency"}[i%5]
		outs := []string{"speakers", "speakers, board", "screen"}[i%3]
		fmt.Fprintf(&b, "  - id: p%d\n    class: %s\n    priority: %d\n    cron: \"0 %d %d * * %s\"\n    max_duration: 20m\n    outputs: [%s]\n    on_interrupt: %s\n",
			i, class, i%4, (i*7)%60, 5+(i%17), []string{"*", "MON-FRI", "SAT,SUN"}[i%3], outs, []string{"resume", "restart", "skip"}[i%3])
		if i%10 == 0 {
			b.WriteString("    repeat: {count: 2, gap: 10m}\n")
		}
		fmt.Fprintf(&b, "    items:\n      - {file: a%d.mp3, duration: %ds}\n      - {file: b%d.mp3, duration: %ds}\n", i, 60+i%300, i, 30+i%90)
	}
	return b.String()
}

// BenchmarkCompile500Programs7Days is the figure the issue names: the agent compiles on every
// push and every clock step, on a Pi.
func BenchmarkCompile500Programs7Days(b *testing.B) {
	doc, err := Parse("big", []byte(bigSchedule(500)))
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, doc.Location())
	b.ReportAllocs()
	b.ResetTimer()
	var segs int
	for i := 0; i < b.N; i++ {
		tl, err := Compile(doc, from, from.AddDate(0, 0, 7), CompileOptions{})
		if err != nil {
			b.Fatal(err)
		}
		segs = len(tl.Segments)
	}
	b.ReportMetric(float64(segs), "segments")
}

// BenchmarkParse500Programs is the cost of reading and validating the same document.
func BenchmarkParse500Programs(b *testing.B) {
	src := []byte(bigSchedule(500))
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse("big", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestartFirstStep is what a restart costs the runner: its first step (a day's
// timeline compiled) with the journal's last day remembered, beside the same first step
// with nothing remembered (a first boot), for the 500-programme schedule.
func BenchmarkRestartFirstStep(b *testing.B) {
	doc, err := Parse("big", []byte(bigSchedule(500)))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, doc.Location())
	tl, err := Compile(doc, now.Add(-24*time.Hour), now, CompileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var past []Past
	for _, s := range tl.Segments {
		if s.Audible() {
			past = append(past, Past{Output: s.Output, Program: s.Program, Item: s.Item, Planned: s.Planned(), Start: s.Start, Was: PastDone})
		}
	}
	for _, c := range []struct {
		name string
		past []Past
	}{{"first-boot", nil}, {"restart", past}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := NewRunner(RunnerOptions{Clock: clock.NewFake(now), LastRun: now.Add(-time.Minute)})
				r.SetSchedule(doc)
				r.Remember(c.past...)
				r.Step()
			}
			b.ReportMetric(float64(len(c.past)), "records")
		})
	}
}

// BenchmarkStepWhenDenseScheduleArrives is the runner's step at which a new revision with a
// play every 2 s all day (57,600 plays over the 32 hours compiled) is handed over: compiled
// inside the step (as before, and as Step alone still does) or beside the loop (as Run does),
// beside a step with nothing new (the reference).
func BenchmarkStepWhenDenseScheduleArrives(b *testing.B) {
	light, err := Parse("light", []byte(header+"programs:\n  - {id: news, cron: \"0 0 6 * * *\", items: [{file: n.mp3, duration: 5m}]}\n"))
	if err != nil {
		b.Fatal(err)
	}
	dense, err := Parse("dense", []byte(strings.Replace(header, "revision: 1", "revision: 2", 1)+
		"programs:\n  - {id: tick, cron: \"*/2 * * * * *\", items: [{file: t.mp3, duration: 1s}]}\n"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, light.Location())
	for _, c := range []struct {
		name          string
		async, change bool
	}{{"nothing-new", true, false}, {"compiled-in-step", false, true}, {"compiled-beside", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r := NewRunner(RunnerOptions{Clock: clock.NewFake(now)})
				r.SetSchedule(light)
				r.Step()
				r.async = c.async
				if c.change {
					r.SetSchedule(dense)
				}
				b.StartTimer()
				r.Step()
				b.StopTimer()
				r.compiles.Wait()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkFirstTimelineAfterRestart is what stands between a restart and the first play with
// a dense schedule (a play every 2 s, another every 4 s, as the power-cut soak plays): the
// first timeline over the runner's whole window (as before) beside the short first one.
func BenchmarkFirstTimelineAfterRestart(b *testing.B) {
	doc, err := Parse("dense", []byte(header+"programs:\n  - {id: beep, cron: \"*/2 * * * * *\", items: [{file: b.wav, duration: 1s}]}\n"+
		"  - {id: stored, class: priority, cron: \"1/4 * * * * *\", items: [{file: s.wav, duration: 1s}]}\n"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, doc.Location())
	for _, c := range []struct {
		name  string
		short bool
	}{{"whole-window", false}, {"short-first", true}} {
		b.Run(c.name, func(b *testing.B) {
			r := NewRunner(RunnerOptions{Clock: clock.NewFake(now), LastRun: now.Add(-30 * time.Second)})
			r.lastPlausibe = r.opts.LastRun // as its first step sets it
			var runs int
			for i := 0; i < b.N; i++ {
				cp := r.newCompiled(doc, now, c.short).make(r.opts.Compile, nil)
				if cp.err != nil {
					b.Fatal(cp.err)
				}
				runs = len(cp.tl.Runs())
			}
			b.ReportMetric(float64(runs), "runs")
		})
	}
}
