package api

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// The CSV export is ConfirmationJSON's fields by their JSON names: the columns staff have
// always had, in their places, then any newer field; and each cell is the field's value.
func TestConfirmationsCSV(t *testing.T) {
	at := time.Date(2026, 11, 26, 6, 30, 0, 500, time.UTC)
	end := at.Add(95 * time.Second)
	peak, vol := -1.5, 0.75
	c := ConfirmationJSON{Device: "tt/cl-07", Seq: 42, Area: "qn/tk/tt", Output: "speakers", ScheduleID: "dev-tt/cl-07",
		Revision: 12, Program: "command:c-9", Title: "Bản tin, sáng", ItemTitle: "Lũ \"lớn\"", CommandID: "c-9", ItemIndex: 1,
		Item: "sha256:" + strings.Repeat("ab", 32), Start: &at, End: &end,
		Proof: protocol.Proof{FromS: 1.5, PlayedS: 93.25, PeakDBFS: &peak, SilenceS: 0.5, Gaps: 1, Underruns: 2,
			Dropouts: 3, Reconnects: 4, MissingS: 2.5, FramesDropped: 5},
		Result: "completed", Error: "", Clock: "synced", Volume: &vol, Amplifier: "on", ReceivedAt: end.Add(time.Second)}
	var b bytes.Buffer
	if err := WriteConfirmationsCSV(&b, []ConfirmationJSON{c, {Device: "x", Seq: 1, Result: "missed"}}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV: %v rows, %v\n%s", len(rows), err, b.String())
	}
	if !slices.Equal(rows[0][:len(confirmationCSVOrder)], confirmationCSVOrder) {
		t.Errorf("header %v; the first columns must stay %v", rows[0], confirmationCSVOrder)
	}
	// Every JSON field is a column (a new field too), and nothing else is.
	fields := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[ConfirmationJSON]()) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && !f.Anonymous {
			fields[name] = true
		}
	}
	if len(rows[0]) != len(fields) {
		t.Errorf("%d columns %v for %d JSON fields", len(rows[0]), rows[0], len(fields))
	}
	got := map[string]string{}
	for i, name := range rows[0] {
		if !fields[name] {
			t.Errorf("column %q is no JSON field", name)
		}
		got[name] = rows[1][i]
	}
	want := map[string]string{"device": "tt/cl-07", "seq": "42", "area": "qn/tk/tt", "output": "speakers",
		"schedule_id": "dev-tt/cl-07", "revision": "12", "program": "command:c-9", "item_index": "1",
		"item": c.Item, "scheduled": "", "start": "2026-11-26T06:30:00.0000005Z", "end": "2026-11-26T06:31:35.0000005Z",
		"played_s": "93.25", "peak_dbfs": "-1.5", "rms_dbfs": "", "silence_s": "0.5", "gaps": "1", "underruns": "2",
		"result": "completed", "error": "", "clock": "synced", "received_at": "2026-11-26T06:31:36.0000005Z",
		"command_id": "c-9", "volume": "0.75", "amplifier": "on", "dropouts": "3", "reconnects": "4", "missing_s": "2.5",
		"frames_dropped": "5", "title": "Bản tin, sáng", "item_title": "Lũ \"lớn\"", "from_s": "1.5"}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("column %s = %q, want %q", name, got[name], w)
		}
	}
	if rows[2][0] != "x" || rows[2][1] != "1" || got["result"] != "completed" {
		t.Errorf("second row %v", rows[2])
	}
}
