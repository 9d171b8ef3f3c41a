package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

func testCommand(id string, seq int64, target Target, area string, now time.Time, devices ...string) Command {
	c := Command{ID: id, Seq: seq, KeyID: "hub-1", Target: target, Area: area, Action: "stop", IssuedBy: "admin",
		IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		Parts: []CommandPart{{Payload: []byte(`{"id":"` + id + `"}`), Signature: []byte("sig-" + id)}}}
	for _, d := range devices {
		c.Devices = append(c.Devices, CommandDevice{DeviceID: d})
	}
	return c
}

func TestCommandsAddSendReportList(t *testing.T) {
	db, clk, path := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tp/cl-2", "quang-nam/tam-ky/tam-phu")
	enrol(t, db, "dh/cl-3", "quang-nam/duy-hai")
	now := clk.Now()

	vol := 0.3
	c1 := testCommand("cmd-1", 1, AreaTarget("quang-nam/tam-ky"), "quang-nam/tam-ky", now, "tt/cl-1", "tp/cl-2")
	c1.Action, c1.Volume, c1.Output = "volume", &vol, "speakers"
	// Two parts: each device is named by one of them.
	c1.Parts = append(c1.Parts, CommandPart{Payload: []byte("part two"), Signature: []byte("sig two")})
	c1.Devices[1].Part = 1
	noErr(t, db.AddCommand(ctx, c1))

	// Sequences only go up, ids are unique, devices must exist; a failed add stores nothing.
	wantErr(t, db.AddCommand(ctx, testCommand("cmd-x", 1, DeviceTarget("dh/cl-3"), "quang-nam/duy-hai", now, "dh/cl-3")), ErrStaleRevision, "seq reused")
	wantErr(t, db.AddCommand(ctx, testCommand("cmd-1", 2, DeviceTarget("dh/cl-3"), "quang-nam/duy-hai", now, "dh/cl-3")), ErrExists, "id reused")
	wantErr(t, db.AddCommand(ctx, testCommand("cmd-y", 2, AreaTarget("quang-nam"), "quang-nam", now, "dh/cl-3", "nope/cl-9")), ErrNotFound, "unknown device")
	if _, err := db.GetCommand(ctx, "cmd-y", ""); err == nil {
		t.Fatal("a command refused for an unknown device was stored in part")
	}
	wantErr(t, db.AddCommand(ctx, Command{ID: "cmd-z", Seq: 9}), ErrInvalid, "empty command")

	clk.Advance(time.Minute)
	c2 := testCommand("cmd-2", 2, DeviceTarget("tt/cl-1"), "quang-nam/tam-ky/tam-thanh", clk.Now(), "tt/cl-1")
	c2.Action, c2.Content, c2.Class, c2.Title = "play_now", refOf("clip"), "priority", "Thông báo"
	noErr(t, db.AddCommand(ctx, c2))
	short := testCommand("cmd-3", 3, DeviceTarget("tt/cl-1"), "quang-nam/tam-ky/tam-thanh", clk.Now(), "tt/cl-1")
	short.ExpiresAt = clk.Now().Add(30 * time.Second)
	noErr(t, db.AddCommand(ctx, short))

	// A device connecting gets what it has not answered, oldest first, not what expired.
	pend := must[[]PendingCommand](t)(db.PendingCommands(ctx, "tt/cl-1", clk.Now()))
	if len(pend) != 3 || pend[0].ID != "cmd-1" || pend[1].ID != "cmd-2" || pend[2].ID != "cmd-3" || string(pend[0].Payload) != `{"id":"cmd-1"}` ||
		string(pend[0].Signature) != "sig-cmd-1" || pend[0].KeyID != "hub-1" {
		t.Fatalf("pending for tt/cl-1: %+v", pend)
	}
	if pend := must[[]PendingCommand](t)(db.PendingCommands(ctx, "tp/cl-2", clk.Now())); len(pend) != 1 || string(pend[0].Payload) != "part two" {
		t.Fatalf("tp/cl-2 must get the part naming it: %+v", pend)
	}
	if pend := must[[]PendingCommand](t)(db.PendingCommands(ctx, "tt/cl-1", clk.Now().Add(45*time.Second))); len(pend) != 2 {
		t.Fatalf("an expired command is still pending: %+v", pend)
	}

	noErr(t, db.MarkCommandsSent(ctx, []CommandSend{{"cmd-1", "tt/cl-1"}, {"cmd-2", "tt/cl-1"}}))
	noErr(t, db.MarkCommandsSent(ctx, []CommandSend{{"cmd-1", "tt/cl-1"}}))
	d := must[CommandDevice](t)(db.CommandDeviceState(ctx, "cmd-1", "tt/cl-1"))
	if d.State != CommandSent || d.Sends != 2 || d.SentAt.IsZero() {
		t.Fatalf("after two sends: %+v", d)
	}
	noErr(t, db.ReportCommand(ctx, "cmd-1", "tt/cl-1", CommandExecuted, "", ""))
	wantErr(t, db.ReportCommand(ctx, "cmd-1", "tt/cl-1", CommandRefused, "replayed", "again"), ErrExists, "second answer")
	wantErr(t, db.ReportCommand(ctx, "cmd-1", "dh/cl-3", CommandExecuted, "", ""), ErrNotFound, "answer from a device not targeted")
	wantErr(t, db.ReportCommand(ctx, "cmd-2", "tt/cl-1", CommandSent, "", ""), ErrInvalid, "sent is not an answer")
	long := strings.Repeat("ế", 3000) // 9000 bytes: cut, still valid UTF-8
	noErr(t, db.ReportCommand(ctx, "cmd-2", "tt/cl-1", CommandFailed, "", long))
	if pend := must[[]PendingCommand](t)(db.PendingCommands(ctx, "tt/cl-1", clk.Now())); len(pend) != 1 || pend[0].ID != "cmd-3" {
		t.Fatalf("answered commands are still pending: %+v", pend)
	}

	got := must[Command](t)(db.GetCommand(ctx, "cmd-1", ""))
	if got.Action != "volume" || got.Volume == nil || *got.Volume != 0.3 || got.Output != "speakers" || got.Target != AreaTarget("quang-nam/tam-ky") ||
		!got.IssuedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(10*time.Minute)) || len(got.Devices) != 2 ||
		got.Devices[0].DeviceID != "tp/cl-2" || got.Devices[0].State != CommandPending || got.Devices[0].Area != "quang-nam/tam-ky/tam-phu" ||
		got.Devices[1].State != CommandExecuted || got.Devices[1].ReportedAt.IsZero() {
		t.Fatalf("cmd-1 read back: %+v", got)
	}
	if c := must[Command](t)(db.GetCommand(ctx, "cmd-2", "")); c.Devices[0].State != CommandFailed || len(c.Devices[0].Reason) > maxText || c.Content != c2.Content || c.Title != "Thông báo" {
		t.Fatalf("cmd-2 read back: %+v", c)
	}
	// Scope: a commune sees the district's command with its own device only; another
	// commune's staff do not see it.
	if c := must[Command](t)(db.GetCommand(ctx, "cmd-1", "quang-nam/tam-ky/tam-thanh")); len(c.Devices) != 1 || c.Devices[0].DeviceID != "tt/cl-1" {
		t.Fatalf("cmd-1 seen from tam-thanh: %+v", c.Devices)
	}
	_, err := db.GetCommand(ctx, "cmd-1", "quang-nam/duy-hai")
	wantErr(t, err, ErrNotFound, "a command seen from an area it does not reach")

	list := must[[]Command](t)(db.ListCommands(ctx, CommandFilter{Area: "quang-nam/tam-ky/tam-phu"}))
	if len(list) != 1 || list[0].ID != "cmd-1" || len(list[0].Devices) != 1 || list[0].Devices[0].DeviceID != "tp/cl-2" {
		t.Fatalf("list for tam-phu: %+v", list)
	}
	list = must[[]Command](t)(db.ListCommands(ctx, CommandFilter{Area: "quang-nam", Limit: 2}))
	if len(list) != 2 || list[0].ID != "cmd-3" || list[1].ID != "cmd-2" {
		t.Fatalf("newest two for the province: %+v", list)
	}
	list = must[[]Command](t)(db.ListCommands(ctx, CommandFilter{Device: "tp/cl-2"}))
	if len(list) != 1 || len(list[0].Devices) != 1 || list[0].Devices[0].DeviceID != "tp/cl-2" {
		t.Fatalf("list for one device: %+v", list)
	}
	if list := must[[]Command](t)(db.ListCommands(ctx, CommandFilter{Area: "quang-nam/duy-hai"})); len(list) != 0 {
		t.Fatalf("duy-hai sees commands that do not reach it: %+v", list)
	}

	// The last sequence survives a restart of the hub.
	noErr(t, db.Close())
	db2, err := Open(ctx, path, clk, testLogger(t))
	noErr(t, err)
	defer db2.Close()
	if last := must[int64](t)(db2.LastCommandSeq(ctx)); last != 3 {
		t.Fatalf("last command seq after reopening: %d, want 3", last)
	}
}

func TestConfirmationVolumeStored(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	at := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	c := Confirmation{Confirmation: protocol.Confirmation{Seq: 1, Output: "speakers", Program: "command:cmd-7", Item: refOf("x"), Start: at, End: at.Add(time.Second), Result: "completed", Volume: 0.3, Proof: protocol.Proof{PlayedS: 1}}}
	c2 := c
	c2.Seq, c2.Volume = 2, 0
	must[int64](t)(db.AddConfirmations(ctx, "tt/cl-1", []Confirmation{c, c2}))
	cs := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{}))
	if len(cs) != 2 || cs[0].Volume != 0.3 || cs[1].Volume != 0 {
		t.Fatalf("volumes read back: %+v", cs)
	}
}

// A file of schema step 3 takes the commands step with its confirmations intact.
func TestMigrateCommands(t *testing.T) {
	sqliteOnly(t, "SQLite's schema steps 3 and 4 on a file made before them; PostgreSQL starts at step 14")
	path := filepath.Join(t.TempDir(), "hub.db")
	ctx := context.Background()
	db, err := Open(ctx, path, newClock(), testLogger(t))
	noErr(t, err)
	seedTree(t, db)
	enrol(t, db, "tt/cl-1", "quang-nam/tam-ky/tam-thanh")
	at := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	must[int64](t)(db.AddConfirmations(ctx, "tt/cl-1", []Confirmation{{Confirmation: protocol.Confirmation{Seq: 1, Output: "speakers", Program: "p", Start: at, Result: "completed", Volume: 0.5}}}))
	// Undo step 4 by hand, as a step-3 file has it.
	for _, q := range []string{"DROP TABLE rollout_devices", "DROP TABLE rollouts", "DROP TABLE releases",
		"ALTER TABLE devices DROP COLUMN arch", "ALTER TABLE devices DROP COLUMN upgrades",
		"DROP TABLE command_devices", "DROP TABLE command_payloads", "DROP TABLE commands",
		"ALTER TABLE confirmations DROP COLUMN volume", "ALTER TABLE confirmations DROP COLUMN amplifier",
		"ALTER TABLE confirmations DROP COLUMN dropouts", "ALTER TABLE confirmations DROP COLUMN reconnects",
		"ALTER TABLE confirmations DROP COLUMN missing_s", "ALTER TABLE confirmations DROP COLUMN frames_dropped",
		"ALTER TABLE devices DROP COLUMN journal_id", "ALTER TABLE devices DROP COLUMN seq_offset",
		"ALTER TABLE confirmations DROP COLUMN from_s", "ALTER TABLE devices DROP COLUMN parts",
		"DROP TABLE play_months", "DROP TABLE play_days", "DROP TABLE play_programs", "DROP TABLE play_reasons",
		"DROP TABLE sessions", "ALTER TABLE users DROP COLUMN role", "ALTER TABLE users DROP COLUMN password_hash",
		"ALTER TABLE users DROP COLUMN failed_logins", "ALTER TABLE users DROP COLUMN locked_until",
		"ALTER TABLE emergencies DROP COLUMN device_id",
		"DROP TABLE online_days", "DROP TABLE settings",
		"DROP TABLE schedule_templates",
		"ALTER TABLE areas DROP COLUMN approval", "ALTER TABLE areas DROP COLUMN self_approval",
		"ALTER TABLE schedules DROP COLUMN approved_by", "ALTER TABLE schedules DROP COLUMN approved_at",
		"DROP TABLE submissions", "ALTER TABLE emergencies DROP COLUMN reviewed_by",
		"ALTER TABLE emergencies DROP COLUMN reviewed_at", "ALTER TABLE emergencies DROP COLUMN review_note",
		"ALTER TABLE confirmations DROP COLUMN start_error_s", "ALTER TABLE confirmations DROP COLUMN rate_ppm",
		"ALTER TABLE content DROP COLUMN area_id", "ALTER TABLE content DROP COLUMN state",
		"ALTER TABLE content DROP COLUMN decided_by", "ALTER TABLE content DROP COLUMN decided_at",
		"ALTER TABLE content DROP COLUMN reason",
		"ALTER TABLE emergencies DROP COLUMN review_wanted",
		"ALTER TABLE devices DROP COLUMN clock_error_ns", "ALTER TABLE devices DROP COLUMN clock_source",
		"DELETE FROM schema_version WHERE version >= 4"} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	noErr(t, db.Close())
	db, err = Open(ctx, path, newClock(), testLogger(t))
	noErr(t, err)
	defer db.Close()
	if v := must[int](t)(db.FileSchemaVersion(ctx)); v != SchemaVersion() {
		t.Fatalf("schema version %d after Open", v)
	}
	cs := must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{}))
	if len(cs) != 1 || cs[0].Volume != 0 || cs[0].Program != "p" {
		t.Fatalf("confirmations after the migration: %+v", cs)
	}
	if last := must[int64](t)(db.LastCommandSeq(ctx)); last != 0 {
		t.Fatalf("last command seq of a migrated file: %d", last)
	}
	// Step 8 summed the confirmation stored before it for the reports.
	var plays, month int
	noErr(t, db.r.QueryRowContext(ctx, "SELECT COALESCE(SUM(plays), 0), COALESCE(MAX(month), 0) FROM play_months").Scan(&plays, &month))
	if plays != 1 || month != 202611 {
		t.Fatalf("report summaries after the migration: %d plays, month %d", plays, month)
	}
}
