package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Template is a schedule document saved under a name by an area's staff, to push to the
// areas below it.
type Template struct {
	Area      string
	Name      string
	Document  []byte
	Author    string
	CreatedAt time.Time
}

// SaveTemplate stores t, replacing the area's template of the same name.
func (db *DB) SaveTemplate(ctx context.Context, t Template) (Template, error) {
	if err := checkText("template name", t.Name, true, 200); err != nil {
		return Template{}, err
	}
	if err := checkText("template author", t.Author, true, 200); err != nil {
		return Template{}, err
	}
	if len(t.Document) == 0 || len(t.Document) > MaxDocument {
		return Template{}, fmt.Errorf("%w: template %q is %d bytes; want 1 to %d", ErrInvalid, t.Name, len(t.Document), MaxDocument)
	}
	out := t
	out.Document = append([]byte(nil), t.Document...)
	out.CreatedAt = db.now()
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := targetExists(ctx, tx, AreaTarget(t.Area)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schedule_templates(area_id, name, document, author, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(area_id, name) DO UPDATE SET document = excluded.document, author = excluded.author, created_at = excluded.created_at`,
			t.Area, t.Name, out.Document, t.Author, ts(out.CreatedAt))
		if err != nil {
			return fmt.Errorf("store template %q of %s: %w", t.Name, t.Area, err)
		}
		return nil
	})
	if err != nil {
		return Template{}, err
	}
	return out, nil
}

// Templates lists the templates of the given areas, by area then name.
func (db *DB) Templates(ctx context.Context, areas []string) ([]Template, error) {
	var out []Template
	for _, a := range areas {
		rows, err := db.r.QueryContext(ctx, "SELECT area_id, name, document, author, created_at FROM schedule_templates WHERE area_id = ? ORDER BY name", a)
		if err != nil {
			return nil, fmt.Errorf("list templates of %s: %w", a, err)
		}
		for rows.Next() {
			var t Template
			var created sql.NullInt64
			if err := rows.Scan(&t.Area, &t.Name, &t.Document, &t.Author, &created); err != nil {
				rows.Close()
				return nil, err
			}
			t.CreatedAt = fromTS(created)
			out = append(out, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetTemplate returns one template.
func (db *DB) GetTemplate(ctx context.Context, area, name string) (Template, error) {
	var t Template
	var created sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT area_id, name, document, author, created_at FROM schedule_templates WHERE area_id = ? AND name = ?",
		area, name).Scan(&t.Area, &t.Name, &t.Document, &t.Author, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, fmt.Errorf("%w: no template %q for area %s", ErrNotFound, name, area)
	}
	if err != nil {
		return Template{}, fmt.Errorf("template %q of %s: %w", name, area, err)
	}
	t.CreatedAt = fromTS(created)
	return t, nil
}
