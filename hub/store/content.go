package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Content is one item of the library, addressed by the SHA-256 of its bytes. The metadata is
// what the annual reports group by.
type Content struct {
	Ref           string // sha256:<64 lowercase hex>
	Size          int64  // bytes
	Duration      time.Duration
	MIME          string // media type of the stored bytes, e.g. audio/mpeg
	Title         string
	Theme         string // taxonomy dimension "theme", e.g. human-rights
	Language      string // taxonomy dimension "language", e.g. vi, ctu (Cơ Tu)
	Format        string // taxonomy dimension "format": radio-report, drama, skit, video…
	ProducingUnit string // taxonomy dimension "unit"
	UploadedBy    string
	UploadedAt    time.Time

	// Editorial approval (issue 22): Area is where it was uploaded (the uploader's scope),
	// whose approvers decide; State is StateApproved ("" when added), StateSubmitted while it
	// waits, or StateRejected with Reason. DecidedBy is "" for an item approved at once.
	Area, State, DecidedBy, Reason string
	DecidedAt                      time.Time
}

// Dimension is one axis of the content taxonomy.
type Dimension string

// The taxonomy dimensions. Their values are data (AddTerm), not code: each deployment keeps
// its own list of themes, languages, formats and producing units.
const (
	DimTheme    Dimension = "theme"
	DimLanguage Dimension = "language"
	DimFormat   Dimension = "format"
	DimUnit     Dimension = "unit"
)

// Dimensions lists the taxonomy dimensions in a stable order.
func Dimensions() []Dimension { return []Dimension{DimTheme, DimLanguage, DimFormat, DimUnit} }

func (d Dimension) valid() bool {
	switch d {
	case DimTheme, DimLanguage, DimFormat, DimUnit:
		return true
	}
	return false
}

// column is the content column holding the dimension; only the four constants map.
func (d Dimension) column() string {
	if d == DimUnit {
		return "producing_unit"
	}
	return string(d)
}

// Term is one allowed value of a taxonomy dimension, with a label for people.
type Term struct {
	Dimension Dimension
	Value     string // slug stored on content, e.g. "ctu"
	Label     string // e.g. "Cơ Tu"
}

// AddTerm adds a value to a dimension of the taxonomy, or relabels it. Once a dimension has
// any term, content must use one of its values there (or leave it empty).
func (db *DB) AddTerm(ctx context.Context, t Term) error {
	if !t.Dimension.valid() {
		return fmt.Errorf("%w: taxonomy dimension %q; want one of %v", ErrInvalid, t.Dimension, Dimensions())
	}
	if err := checkSegment(t.Value); err != nil {
		return fmt.Errorf("%w: %s value: %v", ErrInvalid, t.Dimension, err)
	}
	if err := checkText(string(t.Dimension)+" "+t.Value+" label", t.Label, false, 200); err != nil {
		return err
	}
	label := t.Label
	if label == "" {
		label = t.Value
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO taxonomy(dimension, value, label) VALUES (?, ?, ?)
			ON CONFLICT(dimension, value) DO UPDATE SET label = excluded.label`, string(t.Dimension), t.Value, label)
		if err != nil {
			return fmt.Errorf("add %s %q: %w", t.Dimension, t.Value, err)
		}
		return nil
	})
}

// ListTerms returns the terms of one dimension ("" = all), by dimension and value.
func (db *DB) ListTerms(ctx context.Context, dim Dimension) ([]Term, error) {
	q := "SELECT dimension, value, label FROM taxonomy"
	var args []any
	if dim != "" {
		q += " WHERE dimension = ?"
		args = append(args, string(dim))
	}
	rows, err := db.r.QueryContext(ctx, q+" ORDER BY dimension, value", args...)
	if err != nil {
		return nil, fmt.Errorf("list taxonomy: %w", err)
	}
	defer rows.Close()
	var out []Term
	for rows.Next() {
		var t Term
		var d string
		if err := rows.Scan(&d, &t.Value, &t.Label); err != nil {
			return nil, err
		}
		t.Dimension = Dimension(d)
		out = append(out, t)
	}
	return out, rows.Err()
}

// checkTerms refuses a value not in its dimension's list when the list is not empty.
func checkTerms(ctx context.Context, tx *sql.Tx, c Content) error {
	for _, dv := range []struct {
		d Dimension
		v string
	}{{DimTheme, c.Theme}, {DimLanguage, c.Language}, {DimFormat, c.Format}, {DimUnit, c.ProducingUnit}} {
		if dv.v == "" {
			continue
		}
		rows, err := tx.QueryContext(ctx, "SELECT value FROM taxonomy WHERE dimension = ? ORDER BY value", string(dv.d))
		if err != nil {
			return err
		}
		var known []string
		found := false
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			known = append(known, v)
			found = found || v == dv.v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(known) > 0 && !found {
			return fmt.Errorf("%w: content %s: %s %q is not in the taxonomy (known: %s); fix the spelling or add the term first",
				ErrInvalid, c.Ref, dv.d, dv.v, strings.Join(known, ", "))
		}
	}
	return nil
}

// AddContent records an item in the library. It is idempotent on Ref: adding bytes that are
// already there returns the stored record unchanged and created=false. The upload time comes
// from the clock.
func (db *DB) AddContent(ctx context.Context, c Content) (stored Content, created bool, err error) {
	ref, _, err := ParseRef(c.Ref)
	if err != nil {
		return Content{}, false, err
	}
	c.Ref = ref
	if c.Size < 0 || c.Duration < 0 {
		return Content{}, false, fmt.Errorf("%w: content %s: negative size %d or duration %v", ErrInvalid, ref, c.Size, c.Duration)
	}
	for what, v := range map[string]string{"mime type": c.MIME, "title": c.Title, "uploaded-by": c.UploadedBy} {
		if err := checkText("content "+ref+" "+what, v, false, 1024); err != nil {
			return Content{}, false, err
		}
	}
	for _, f := range [...]struct {
		d Dimension
		v string
	}{{DimTheme, c.Theme}, {DimLanguage, c.Language}, {DimFormat, c.Format}, {DimUnit, c.ProducingUnit}} {
		if f.v != "" {
			if err := checkSegment(f.v); err != nil {
				return Content{}, false, fmt.Errorf("%w: content %s %s: %v", ErrInvalid, ref, f.d, err)
			}
		}
	}
	c.UploadedAt = db.now()
	if err := c.checkApproval(); err != nil {
		return Content{}, false, err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		old, err := getContent(ctx, tx, ref)
		if err == nil {
			if old.Size != c.Size {
				return fmt.Errorf("%w: content %s is stored with size %d but was given size %d: the bytes cannot match their hash",
					ErrInvalid, ref, old.Size, c.Size)
			}
			stored = old
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := checkTerms(ctx, tx, c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO content(ref, size, duration_ns, mime, title, theme, language,
			format, producing_unit, uploaded_by, uploaded_at, area_id, state, decided_by, decided_at, reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ref, c.Size, int64(c.Duration), c.MIME, c.Title, c.Theme, c.Language, c.Format, c.ProducingUnit,
			c.UploadedBy, ts(c.UploadedAt), c.Area, c.State, c.DecidedBy, ts(c.DecidedAt), c.Reason)
		if err != nil {
			return fmt.Errorf("add content %s: %w", ref, err)
		}
		stored, created = c, true
		return nil
	})
	if err != nil {
		return Content{}, false, err
	}
	return stored, created, nil
}

const contentCols = `ref, size, duration_ns, mime, title, theme, language, format, producing_unit, uploaded_by, uploaded_at,
	area_id, state, decided_by, decided_at, reason`

func scanContent(s interface{ Scan(...any) error }) (Content, error) {
	var c Content
	var dur int64
	var up, decided sql.NullInt64
	err := s.Scan(&c.Ref, &c.Size, &dur, &c.MIME, &c.Title, &c.Theme, &c.Language, &c.Format,
		&c.ProducingUnit, &c.UploadedBy, &up, &c.Area, &c.State, &c.DecidedBy, &decided, &c.Reason)
	c.Duration, c.UploadedAt, c.DecidedAt = time.Duration(dur), fromTS(up), fromTS(decided)
	return c, err
}

func getContent(ctx context.Context, q queryer, ref string) (Content, error) {
	c, err := scanContent(q.QueryRowContext(ctx, "SELECT "+contentCols+" FROM content WHERE ref = ?", ref))
	if errors.Is(err, sql.ErrNoRows) {
		return Content{}, fmt.Errorf("%w: content %s is not in the library", ErrNotFound, ref)
	}
	if err != nil {
		return Content{}, fmt.Errorf("get content %s: %w", ref, err)
	}
	return c, nil
}

// GetContent returns one item of the library.
func (db *DB) GetContent(ctx context.Context, ref string) (Content, error) {
	canon, _, err := ParseRef(ref)
	if err != nil {
		return Content{}, err
	}
	return getContent(ctx, db.r, canon)
}

// ContentFilter selects library items; empty fields do not filter.
type ContentFilter struct {
	Theme, Language, Format, ProducingUnit, UploadedBy string
	Title                                              string    // the title contains it
	State                                              string    // approval state: submitted, approved, rejected
	Area                                               string    // uploaded in this area's subtree
	Since, Until                                       time.Time // uploaded in [Since, Until)
	Limit                                              int       // 0: no limit
}

// ListContent returns library items matching f, newest upload first.
func (db *DB) ListContent(ctx context.Context, f ContentFilter) ([]Content, error) {
	var conds []string
	var args []any
	for col, v := range map[string]string{"theme": f.Theme, "language": f.Language, "format": f.Format,
		"producing_unit": f.ProducingUnit, "uploaded_by": f.UploadedBy, "state": f.State} {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "uploaded_at >= ?"), append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "uploaded_at < ?"), append(args, ts(f.Until))
	}
	if f.Area != "" {
		cond, a := subtree("area_id", f.Area)
		conds, args = append(conds, cond), append(args, a...)
	}
	if f.Title != "" {
		// instr, not LIKE: no wildcards to escape, and case kept as typed (Vietnamese letters
		// have no ASCII case folding in SQLite anyway).
		conds, args = append(conds, "instr(title, ?) > 0"), append(args, f.Title)
	}
	q := "SELECT " + contentCols + " FROM content"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := db.r.QueryContext(ctx, q+" ORDER BY uploaded_at DESC, ref"+limitClause(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list content: %w", err)
	}
	defer rows.Close()
	var out []Content
	for rows.Next() {
		c, err := scanContent(rows)
		if err != nil {
			return nil, fmt.Errorf("list content: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ContentUpdate changes an item's metadata; nil fields are kept, "" clears one.
type ContentUpdate struct {
	Title, Theme, Language, Format, ProducingUnit *string
}

// UpdateContent changes an item's title and metadata (the bytes and their hash never change),
// checked as AddContent checks them, and returns the record after the change.
func (db *DB) UpdateContent(ctx context.Context, ref string, u ContentUpdate) (Content, error) {
	canon, _, err := ParseRef(ref)
	if err != nil {
		return Content{}, err
	}
	var out Content
	err = db.write(ctx, func(tx *sql.Tx) error {
		c, err := getContent(ctx, tx, canon)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			dst *string
			src *string
		}{{&c.Title, u.Title}, {&c.Theme, u.Theme}, {&c.Language, u.Language}, {&c.Format, u.Format}, {&c.ProducingUnit, u.ProducingUnit}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		if err := checkText("content "+canon+" title", c.Title, false, 1024); err != nil {
			return err
		}
		if c.Title == "" {
			return fmt.Errorf("%w: content %s: the title cannot be empty", ErrInvalid, canon)
		}
		for _, f := range [...]struct {
			d Dimension
			v string
		}{{DimTheme, c.Theme}, {DimLanguage, c.Language}, {DimFormat, c.Format}, {DimUnit, c.ProducingUnit}} {
			if f.v != "" {
				if err := checkSegment(f.v); err != nil {
					return fmt.Errorf("%w: content %s %s: %v", ErrInvalid, canon, f.d, err)
				}
			}
		}
		if err := checkTerms(ctx, tx, c); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE content SET title = ?, theme = ?, language = ?, format = ?,
			producing_unit = ? WHERE ref = ?`, c.Title, c.Theme, c.Language, c.Format, c.ProducingUnit, canon); err != nil {
			return fmt.Errorf("update content %s: %w", canon, err)
		}
		out = c
		return nil
	})
	return out, err
}
