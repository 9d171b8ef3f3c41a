package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// User is a staff account. Scope is the area whose subtree the user may act on.
type User struct {
	ID        string
	Name      string
	Scope     string
	Role      Role // what the user, and each of their tokens, may do in Scope
	CreatedAt time.Time
	Disabled  bool
}

// AddUser creates a staff account scoped to an existing area (its subtree).
func (db *DB) AddUser(ctx context.Context, u User) (User, error) {
	if err := checkPath("user", u.ID, 1); err != nil {
		return User{}, err
	}
	if err := checkText("user "+u.ID+" name", u.Name, true, 200); err != nil {
		return User{}, err
	}
	if err := ValidateAreaID(u.Scope); err != nil {
		return User{}, fmt.Errorf("user %q scope: %w", u.ID, err)
	}
	if u.Role == "" {
		u.Role = RoleAdmin // `loa-hub user add` without --role: the bootstrap administrator
	}
	if _, err := ParseRole(string(u.Role)); err != nil {
		return User{}, fmt.Errorf("user %q: %w", u.ID, err)
	}
	out := User{ID: u.ID, Name: u.Name, Scope: u.Scope, Role: u.Role, CreatedAt: db.now()}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := areaExists(ctx, tx, u.Scope); err != nil {
			return fmt.Errorf("user %q scope: %w", u.ID, err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO users(id, name, scope_area, role, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(id) DO NOTHING`, u.ID, u.Name, u.Scope, string(u.Role), ts(out.CreatedAt))
		if err != nil {
			return fmt.Errorf("add user %q: %w", u.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %q", ErrExists, u.ID)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return out, nil
}

const userCols = "id, name, scope_area, role, created_at, disabled_at"

func scanUser(s interface{ Scan(...any) error }, extra ...any) (User, error) {
	var u User
	var created, disabled sql.NullInt64
	var role string
	err := s.Scan(append([]any{&u.ID, &u.Name, &u.Scope, &role, &created, &disabled}, extra...)...)
	u.Role = Role(role)
	u.CreatedAt, u.Disabled = fromTS(created), disabled.Valid
	return u, err
}

// GetUser returns one staff account.
func (db *DB) GetUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: user %q", ErrNotFound, id)
	}
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", id, err)
	}
	return u, nil
}

// ListUsers returns the accounts scoped to area or below it, by id ("" = all).
func (db *DB) ListUsers(ctx context.Context, area string) ([]User, error) {
	cond, args := subtree("scope_area", area)
	rows, err := db.r.QueryContext(ctx, "SELECT "+userCols+" FROM users WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// DisableUser stops every token of a user from authenticating.
func (db *DB) DisableUser(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?", ts(db.now()), id)
		if err != nil {
			return fmt.Errorf("disable user %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %q", ErrNotFound, id)
		}
		return nil
	})
}

// AddToken stores the SHA-256 hash of a token the caller generated for a user. A zero expires
// means the token does not expire.
func (db *DB) AddToken(ctx context.Context, userID string, tokenHash [32]byte, label string, expires time.Time) error {
	if tokenHash == [32]byte{} {
		return fmt.Errorf("%w: empty token hash for user %q", ErrInvalid, userID)
	}
	if err := checkText("token label", label, false, 200); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ?", userID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: user %q", ErrNotFound, userID)
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens(hash, user_id, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(hash) DO NOTHING`, tokenHash[:], userID, label, ts(db.now()), ts(expires))
		if err != nil {
			return fmt.Errorf("add token for user %q: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: this token is already stored; generate a fresh one", ErrExists)
		}
		return nil
	})
}

// RevokeToken stops one token from authenticating.
func (db *DB) RevokeToken(ctx context.Context, tokenHash [32]byte) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE hash = ?", ts(db.now()), tokenHash[:])
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no such token", ErrNotFound)
		}
		return nil
	})
}

// Authenticate returns the user a token belongs to and the area scope they may act on. The
// token is looked up by its SHA-256 hash (an attacker cannot steer the hash, so the index
// lookup leaks nothing useful). Unknown, revoked or expired tokens and disabled users wrap
// ErrUnauthorized; the message says which, for the hub's log.
func (db *DB) Authenticate(ctx context.Context, tokenHash [32]byte) (User, string, error) {
	var expires, revoked sql.NullInt64
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT u.id, u.name, u.scope_area, u.role, u.created_at, u.disabled_at,
		t.expires_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, tokenHash[:]),
		&expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	if err != nil {
		return User{}, "", fmt.Errorf("authenticate: %w", err)
	}
	switch {
	case revoked.Valid:
		return User{}, "", fmt.Errorf("%w: token of user %q was revoked", ErrUnauthorized, u.ID)
	case expires.Valid && !db.now().Before(fromTS(expires)):
		return User{}, "", fmt.Errorf("%w: token of user %q expired at %s", ErrUnauthorized, u.ID, fromTS(expires).Format(time.RFC3339))
	case u.Disabled:
		return User{}, "", fmt.Errorf("%w: user %q is disabled", ErrUnauthorized, u.ID)
	}
	return u, u.Scope, nil
}
