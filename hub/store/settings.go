package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Setting is one of the hub's settings staff keep (schema step 11): a value by key, kept as
// text (the hub decides its form), with when it was last set.
type Setting struct {
	Key, Value string
	UpdatedAt  time.Time
}

// GetSetting reads a setting; one never set is ErrNotFound.
func (db *DB) GetSetting(ctx context.Context, key string) (Setting, error) {
	s := Setting{Key: key}
	var at sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT value, updated_at FROM settings WHERE key = ?", key).Scan(&s.Value, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%w: setting %q was never set", ErrNotFound, key)
	}
	if err != nil {
		return s, fmt.Errorf("read setting %q: %w", key, err)
	}
	s.UpdatedAt = fromTS(at)
	return s, nil
}

// SetSetting stores a setting's value.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	if err := checkText("setting "+key, value, false, 4096); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, ts(db.now()))
		if err != nil {
			return fmt.Errorf("store setting %q: %w", key, err)
		}
		return nil
	})
}
