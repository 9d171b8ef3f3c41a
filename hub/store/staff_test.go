package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestStaffAndScopes(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-phu/cl-01", "quang-nam/tam-ky/tam-phu")

	lan := must[User](t)(db.AddUser(ctx, User{ID: "lan", Name: "Nguyễn Thị Lan", Scope: "quang-nam/tam-ky/tam-thanh"}))
	must[User](t)(db.AddUser(ctx, User{ID: "minh", Name: "Trần Minh", Scope: "quang-nam/tam-ky"}))
	must[User](t)(db.AddUser(ctx, User{ID: "admin", Name: "Sở TT&TT", Scope: "quang-nam"}))
	_, err := db.AddUser(ctx, User{ID: "lan", Name: "again", Scope: "quang-nam"})
	wantErr(t, err, ErrExists, "duplicate user")
	_, err = db.AddUser(ctx, User{ID: "x", Name: "x", Scope: "quang-nam/nowhere"})
	wantErr(t, err, ErrNotFound, "scope area missing")
	_, err = db.AddUser(ctx, User{ID: "x", Name: "x", Scope: ""})
	wantErr(t, err, ErrInvalid, "empty scope")
	_, err = db.AddUser(ctx, User{ID: "a/b", Name: "x", Scope: "quang-nam"})
	wantErr(t, err, ErrInvalid, "user id with a slash")
	if got := must[User](t)(db.GetUser(ctx, "lan")); got != lan {
		t.Fatalf("GetUser: %+v, want %+v", got, lan)
	}
	if us := must[[]User](t)(db.ListUsers(ctx, "quang-nam/tam-ky")); len(us) != 2 || us[0].ID != "lan" || us[1].ID != "minh" {
		t.Fatalf("users under tam-ky: %+v", us)
	}

	noErr(t, db.AddToken(ctx, "lan", hashOf("tok-lan"), "laptop", time.Time{}))
	noErr(t, db.AddToken(ctx, "minh", hashOf("tok-minh"), "laptop", clk.Now().Add(24*time.Hour)))
	noErr(t, db.AddToken(ctx, "minh", hashOf("tok-minh-2"), "phone", time.Time{}))
	wantErr(t, db.AddToken(ctx, "lan", hashOf("tok-lan"), "again", time.Time{}), ErrExists, "reused token")
	wantErr(t, db.AddToken(ctx, "nobody", hashOf("t"), "", time.Time{}), ErrNotFound, "token for unknown user")

	u, scope, err := db.Authenticate(ctx, hashOf("tok-lan"))
	noErr(t, err)
	if u.ID != "lan" || scope != "quang-nam/tam-ky/tam-thanh" {
		t.Fatalf("Authenticate: %+v %q", u, scope)
	}
	// The scope rule the hub applies to every push: a commune's staff cannot act elsewhere.
	devArea := func(id string) string { return must[Device](t)(db.GetDevice(ctx, id)).Area }
	if !Allowed(scope, devArea("tam-thanh/cl-07")) || Allowed(scope, devArea("tam-phu/cl-01")) ||
		Allowed(scope, "quang-nam/tam-ky") || Allowed(scope, "quang-nam") {
		t.Fatal("commune staff scope is wrong")
	}
	_, mscope, err := db.Authenticate(ctx, hashOf("tok-minh"))
	noErr(t, err)
	if !Allowed(mscope, devArea("tam-thanh/cl-07")) || !Allowed(mscope, devArea("tam-phu/cl-01")) ||
		Allowed(mscope, "quang-nam/duy-hai") || Allowed(mscope, "quang-nam") {
		t.Fatal("district staff scope is wrong")
	}

	_, _, err = db.Authenticate(ctx, hashOf("guess"))
	wantErr(t, err, ErrUnauthorized, "unknown token")
	clk.Advance(24 * time.Hour)
	_, _, err = db.Authenticate(ctx, hashOf("tok-minh"))
	wantErr(t, err, ErrUnauthorized, "expired token")
	must3u(t)(db.Authenticate(ctx, hashOf("tok-minh-2")))
	noErr(t, db.RevokeToken(ctx, hashOf("tok-minh-2")))
	_, _, err = db.Authenticate(ctx, hashOf("tok-minh-2"))
	wantErr(t, err, ErrUnauthorized, "revoked token")
	wantErr(t, db.RevokeToken(ctx, hashOf("never")), ErrNotFound, "revoke unknown token")
	noErr(t, db.DisableUser(ctx, "lan"))
	_, _, err = db.Authenticate(ctx, hashOf("tok-lan"))
	wantErr(t, err, ErrUnauthorized, "disabled user")
	if !must[User](t)(db.GetUser(ctx, "lan")).Disabled {
		t.Fatal("lan not disabled")
	}
}

func must3u(t testing.TB) func(User, string, error) {
	return func(_ User, _ string, err error) {
		t.Helper()
		noErr(t, err)
	}
}

func TestAudit(t *testing.T) {
	db, clk, _ := openTest(t)
	ctx := context.Background()
	e1 := must[AuditEntry](t)(db.AppendAudit(ctx, AuditEntry{Actor: "lan", Action: "schedule.push",
		Target: "area:quang-nam/tam-ky/tam-thanh", Detail: json.RawMessage(`{"revision":3,"schedule":"commune-tam-thanh"}`)}))
	at1 := clk.Now()
	clk.Advance(time.Hour)
	e2 := must[AuditEntry](t)(db.AppendAudit(ctx, AuditEntry{Actor: "minh", Action: "device.enrol", Target: "device:tam-phu/cl-01"}))
	clk.Advance(time.Hour)
	must[AuditEntry](t)(db.AppendAudit(ctx, AuditEntry{Actor: "lan", Action: "device.revoke", Target: "device:tam-thanh/cl-07"}))
	if e2.ID <= e1.ID || !e1.At.Equal(at1) || string(e2.Detail) != "{}" {
		t.Fatalf("entries: %+v %+v", e1, e2)
	}
	_, err := db.AppendAudit(ctx, AuditEntry{Actor: "lan", Action: "x", Detail: json.RawMessage(`{"unclosed"`)})
	wantErr(t, err, ErrInvalid, "bad detail JSON")
	_, err = db.AppendAudit(ctx, AuditEntry{Action: "x"})
	wantErr(t, err, ErrInvalid, "no actor")

	all := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{}))
	if len(all) != 3 || all[0].Action != "device.revoke" || all[2].ID != e1.ID || string(all[2].Detail) != string(e1.Detail) {
		t.Fatalf("audit newest first: %+v", all)
	}
	if got := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{Actor: "lan"})); len(got) != 2 {
		t.Fatalf("by actor: %+v", got)
	}
	if got := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{Action: "schedule.push", Target: "area:quang-nam/tam-ky/tam-thanh"})); len(got) != 1 || got[0].ID != e1.ID {
		t.Fatalf("by action and target: %+v", got)
	}
	if got := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{Since: at1.Add(time.Minute), Limit: 1})); len(got) != 1 || got[0].Action != "device.revoke" {
		t.Fatalf("since, limit: %+v", got)
	}
	if got := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{Until: at1.Add(time.Minute)})); len(got) != 1 || got[0].ID != e1.ID {
		t.Fatalf("until: %+v", got)
	}
	// Append-only, even for someone with the file and SQL.
	if _, err := db.w.ExecContext(ctx, "UPDATE audit SET actor = 'someone-else'"); err == nil {
		t.Fatal("the audit log accepted an UPDATE")
	}
	if _, err := db.w.ExecContext(ctx, "DELETE FROM audit"); err == nil {
		t.Fatal("the audit log accepted a DELETE")
	}
	if got := must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{})); len(got) != 3 || got[2].Actor != "lan" {
		t.Fatalf("audit changed: %+v", got)
	}
}
