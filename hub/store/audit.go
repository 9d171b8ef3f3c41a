package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one line of the append-only audit log: who did what to what, and when.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string          // user id, or "device:<id>", or "hub"
	Action string          // e.g. schedule.push, device.enrol, device.revoke
	Target string          // e.g. area:quang-nam/tam-ky, device:tam-thanh/cl-07
	Detail json.RawMessage // a JSON value; empty means {}
}

// AppendAudit adds an entry; its time comes from the clock. Triggers in the file refuse any
// UPDATE or DELETE of the log.
func (db *DB) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	for what, v := range map[string]string{"audit actor": e.Actor, "audit action": e.Action} {
		if err := checkText(what, v, true, 200); err != nil {
			return AuditEntry{}, err
		}
	}
	if err := checkText("audit target", e.Target, false, 1024); err != nil {
		return AuditEntry{}, err
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	if len(e.Detail) > 64<<10 || !json.Valid(e.Detail) {
		return AuditEntry{}, fmt.Errorf("%w: audit detail for %s %s is not a JSON value of at most 64 KiB", ErrInvalid, e.Action, e.Target)
	}
	e.Detail = append(json.RawMessage(nil), e.Detail...)
	e.At = db.now()
	err := db.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "INSERT INTO audit(at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) RETURNING id",
			ts(e.At), e.Actor, e.Action, e.Target, string(e.Detail)).Scan(&e.ID)
		if err != nil {
			return fmt.Errorf("append audit %s by %s: %w", e.Action, e.Actor, err)
		}
		return nil
	})
	if err != nil {
		return AuditEntry{}, err
	}
	return e, nil
}

// AuditFilter selects audit entries; empty fields do not filter.
type AuditFilter struct {
	Actor, Action, Target string
	Since, Until          time.Time // at or after, before
	Limit                 int       // 0: no limit
}

// ListAudit returns entries matching f, newest first.
func (db *DB) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	conds := []string{"TRUE"}
	var args []any
	for col, v := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target} {
		if v != "" {
			conds, args = append(conds, col+" = ?"), append(args, v)
		}
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, ts(f.Until))
	}
	rows, err := db.r.QueryContext(ctx, "SELECT id, at, actor, action, target, detail FROM audit WHERE "+
		strings.Join(conds, " AND ")+" ORDER BY id DESC"+limitClause(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at sql.NullInt64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At, e.Detail = fromTS(at), json.RawMessage(detail)
		out = append(out, e)
	}
	return out, rows.Err()
}
