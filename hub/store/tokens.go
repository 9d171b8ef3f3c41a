package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token is a staff API token as administrators see it: never its value, only the hash that
// names it, whose it is and how long it is good for.
type Token struct {
	Hash      [32]byte
	User      User
	Label     string
	CreatedAt time.Time
	Expires   time.Time // zero: does not expire
	Revoked   time.Time // zero: not revoked
}

// ListTokens lists the tokens of the users scoped to area's subtree, newest first.
func (db *DB) ListTokens(ctx context.Context, area string) ([]Token, error) {
	cond, args := subtree("u.scope_area", area)
	rows, err := db.r.QueryContext(ctx, `SELECT u.id, u.name, u.scope_area, u.role, u.created_at, u.disabled_at,
		t.hash, t.label, t.created_at, t.expires_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE `+cond+` ORDER BY t.created_at DESC, u.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var hash []byte
		var created, expires, revoked sql.NullInt64
		if t.User, err = scanUser(rows, &hash, &t.Label, &created, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		copy(t.Hash[:], hash)
		t.CreatedAt, t.Expires, t.Revoked = fromTS(created), fromTS(expires), fromTS(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenUser returns whose a token is, given its hash, whatever its state (revoked, expired).
func (db *DB) TokenUser(ctx context.Context, tokenHash [32]byte) (User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, "SELECT u.id, u.name, u.scope_area, u.role, u.created_at, u.disabled_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?", tokenHash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: no such token", ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("token user: %w", err)
	}
	return u, nil
}

// SetScope moves a user to another area's subtree (an existing area).
func (db *DB) SetScope(ctx context.Context, id, area string) error {
	var one int
	err := db.r.QueryRowContext(ctx, "SELECT 1 FROM areas WHERE id = ?", area).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: area %q", ErrNotFound, area)
	}
	if err != nil {
		return fmt.Errorf("set scope of %q: %w", id, err)
	}
	return db.updateUser(ctx, id, "UPDATE users SET scope_area = ? WHERE id = ?", area, id)
}

// DeliveryHead is what a device list shows of a device's schedule: its newest revision, how
// far that got, and the newest revision it reported active.
type DeliveryHead struct {
	Revision       int64
	Delivery       Delivery
	ActiveRevision int64
}

// DeliveryHeads returns the DeliveryHead of every device in area and below ("" = all) that
// has an effective schedule, in one query: a list of 10,000 devices read them per device in
// 20,000 queries.
func (db *DB) DeliveryHeads(ctx context.Context, area string) (map[string]DeliveryHead, error) {
	cond, args := subtree("d.area_id", area)
	rows, err := db.r.QueryContext(ctx, `SELECT d.id, e.revision, e.sent_at, e.received_at, e.content_ready_at, e.active_at,
		e.refused_at, e.refused_reason,
		(SELECT a.revision FROM effective a WHERE a.device_id = d.id AND a.active_at IS NOT NULL ORDER BY a.revision DESC LIMIT 1)
		FROM devices d JOIN effective e ON e.device_id = d.id
			AND e.revision = (SELECT m.revision FROM effective m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1)
		WHERE `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("delivery of the devices under %q: %w", area, err)
	}
	defer rows.Close()
	out := map[string]DeliveryHead{}
	for rows.Next() {
		var id string
		var h DeliveryHead
		var sent, recv, ready, active, refused, activeRev sql.NullInt64
		if err := rows.Scan(&id, &h.Revision, &sent, &recv, &ready, &active, &refused, &h.Delivery.RefusedReason, &activeRev); err != nil {
			return nil, fmt.Errorf("delivery of the devices under %q: %w", area, err)
		}
		d := &h.Delivery
		d.SentAt, d.ReceivedAt, d.ContentReadyAt, d.ActiveAt, d.RefusedAt = fromTS(sent), fromTS(recv), fromTS(ready), fromTS(active), fromTS(refused)
		d.State = d.derive()
		h.ActiveRevision = activeRev.Int64
		out[id] = h
	}
	return out, rows.Err()
}
