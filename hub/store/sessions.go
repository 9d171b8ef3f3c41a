package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SetRole changes what a user may do.
func (db *DB) SetRole(ctx context.Context, id string, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	return db.updateUser(ctx, id, "UPDATE users SET role = ? WHERE id = ?", string(role), id)
}

// SetPassword stores a user's password hash (the caller hashes it), clears any lockout and
// ends the user's console sessions: a reset password signs out whoever had the old one.
func (db *DB) SetPassword(ctx context.Context, id, hash string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?", hash, id)
		if err != nil {
			return fmt.Errorf("set password of %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %q", ErrNotFound, id)
		}
		_, err = tx.ExecContext(ctx, "UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL", ts(db.now()), id)
		return err
	})
}

func (db *DB) updateUser(ctx context.Context, id, q string, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("update user %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: user %q", ErrNotFound, id)
		}
		return nil
	})
}

// Login is what sign-in needs of a user.
type Login struct {
	User         User
	PasswordHash string    // "" when the user has no password (tokens only)
	LockedUntil  time.Time // zero when not locked
}

// GetLogin returns a user with their password hash and lockout.
func (db *DB) GetLogin(ctx context.Context, id string) (Login, error) {
	var l Login
	var locked sql.NullInt64
	u, err := scanUser(db.r.QueryRowContext(ctx, "SELECT "+userCols+", password_hash, locked_until FROM users WHERE id = ?", id),
		&l.PasswordHash, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return Login{}, fmt.Errorf("%w: user %q", ErrNotFound, id)
	}
	if err != nil {
		return Login{}, fmt.Errorf("get login %q: %w", id, err)
	}
	l.User, l.LockedUntil = u, fromTS(locked)
	return l, nil
}

// LoginFailed counts a failed sign-in; the limit-th in a row locks the user out for lockFor
// (and starts the count again). It reports whether the user is now locked.
func (db *DB) LoginFailed(ctx context.Context, id string, limit int, lockFor time.Duration) (bool, error) {
	locked := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins", id).Scan(&n); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: user %q", ErrNotFound, id)
			}
			return fmt.Errorf("count failed sign-in of %q: %w", id, err)
		}
		if n < limit {
			return nil
		}
		locked = true
		_, err := tx.ExecContext(ctx, "UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?", ts(db.now().Add(lockFor)), id)
		return err
	})
	return locked, err
}

// LoginSucceeded clears the count of failed sign-ins.
func (db *DB) LoginSucceeded(ctx context.Context, id string) error {
	return db.updateUser(ctx, id, "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", id)
}

// AddSession stores a console session by the SHA-256 of its cookie.
func (db *DB) AddSession(ctx context.Context, hash [32]byte, userID, csrf string) error {
	now := ts(db.now())
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO sessions(hash, user_id, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
			hash[:], userID, csrf, now, now)
		if err != nil {
			return fmt.Errorf("add session for %q: %w", userID, err)
		}
		return nil
	})
}

// Session returns the user of a live session and its CSRF token. A session that was ended,
// unused for idle, older than maxAge, or whose user is disabled wraps ErrUnauthorized. With
// touch it counts as used now, written at most once a minute (each page would otherwise be
// a write); a page left open checks without touching, so it does not hold the session open.
func (db *DB) Session(ctx context.Context, hash [32]byte, idle, maxAge time.Duration, touch bool) (User, string, error) {
	var csrf string
	var created, seen, ended sql.NullInt64
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT u.id, u.name, u.scope_area, u.role, u.created_at, u.disabled_at,
		s.csrf, s.created_at, s.last_seen, s.ended_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?`, hash[:]),
		&csrf, &created, &seen, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", fmt.Errorf("%w: unknown session", ErrUnauthorized)
	}
	if err != nil {
		return User{}, "", fmt.Errorf("session: %w", err)
	}
	now := db.now()
	switch {
	case ended.Valid:
		return User{}, "", fmt.Errorf("%w: session of %q was ended", ErrUnauthorized, u.ID)
	case now.Sub(fromTS(seen)) > idle:
		return User{}, "", fmt.Errorf("%w: session of %q idle since %s", ErrUnauthorized, u.ID, fromTS(seen).Format(time.RFC3339))
	case now.Sub(fromTS(created)) > maxAge:
		return User{}, "", fmt.Errorf("%w: session of %q older than %v", ErrUnauthorized, u.ID, maxAge)
	case u.Disabled:
		return User{}, "", fmt.Errorf("%w: user %q is disabled", ErrUnauthorized, u.ID)
	}
	if touch && now.Sub(fromTS(seen)) > time.Minute {
		err := db.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE sessions SET last_seen = ? WHERE hash = ?", ts(now), hash[:])
			return err
		})
		if err != nil {
			return User{}, "", fmt.Errorf("session: %w", err)
		}
	}
	return u, csrf, nil
}

// EndSession ends one session (sign-out); its cookie is refused from then on.
func (db *DB) EndSession(ctx context.Context, hash [32]byte) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE sessions SET ended_at = COALESCE(ended_at, ?) WHERE hash = ?", ts(db.now()), hash[:])
		return err
	})
}
