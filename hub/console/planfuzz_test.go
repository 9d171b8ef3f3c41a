package console

import (
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

// FuzzEditor feeds the editor what a browser could post: any YAML into the forms and back,
// and any cron through the weekly reading. Nothing may panic, and a document the forms show
// must come back from them as one the scheduler reads the same way.
func FuzzEditor(f *testing.F) {
	f.Add("version: 1\nid: x\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: a\n    cron: \"0 30 5 * * MON-SAT\"\n    volume: 0.7\n    items: [{text: t, duration: 1m}]\n", "0 30 5 * * 1-5")
	f.Add("programs: [{id: b, at: \"2026-12-20 16:00\", items: [{content: x}]}]", "0 0 25 * * MON")
	f.Add("{", "0 61 1 * * SUN-MON,*")
	f.Fuzz(func(t *testing.T, src, cron string) {
		readWeekly(cron)
		loose, err := decodeLoose([]byte(src))
		if err != nil {
			return
		}
		want, werr := scheduler.Parse("fuzz", []byte(src))
		form := fromDocument(loose, time.UTC)
		form.addBlanks()
		back := readEditorForm(formValues(form))
		out := back.toYAML(time.UTC)
		got, gerr := scheduler.Parse("fuzz", out)
		if werr != nil || gerr != nil {
			return // a document with mistakes shows them; whether the forms keep each is not asked
		}
		for i := range want.Programs {
			if i >= len(got.Programs) {
				t.Fatalf("programme %d lost:\n%s", i, out)
			}
			w, g := want.Programs[i], got.Programs[i]
			if w.ID != g.ID || w.Class != g.Class || len(w.Items) != len(g.Items) || w.Gain() != g.Gain() {
				t.Fatalf("programme %d changed:\n%s\n--- from\n%s", i, out, src)
			}
		}
	})
}
