package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Policy is an area's editorial approval policy, as set on the area ("" follows the area above).
type Policy struct {
	Approval     string // "required", "not_required" or ""
	SelfApproval string // "allowed", "not_allowed" or ""
}

// The policy values.
const (
	ApprovalRequired    = "required"
	ApprovalNotRequired = "not_required"
	SelfAllowed         = "allowed"
	SelfNotAllowed      = "not_allowed"
)

// EffectivePolicy is what applies in an area: its own settings, else the nearest area above
// with one, else the defaults (approval not required, self-approval not allowed).
type EffectivePolicy struct {
	Required     bool
	SelfApproval bool
}

// SetPolicy sets an area's policy; an empty field leaves that setting as it is, "inherit"
// clears it so the area above decides.
func (db *DB) SetPolicy(ctx context.Context, area string, p Policy) error {
	if err := ValidateAreaID(area); err != nil {
		return err
	}
	check := func(what, v string, ok ...string) error {
		if v == "" || v == "inherit" {
			return nil
		}
		for _, o := range ok {
			if v == o {
				return nil
			}
		}
		return fmt.Errorf("%w: %s %q: use %s, %s or inherit", ErrInvalid, what, v, ok[0], ok[1])
	}
	if err := check("approval", p.Approval, ApprovalRequired, ApprovalNotRequired); err != nil {
		return err
	}
	if err := check("self-approval", p.SelfApproval, SelfAllowed, SelfNotAllowed); err != nil {
		return err
	}
	clear := func(v string) string {
		if v == "inherit" {
			return ""
		}
		return v
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := targetExists(ctx, tx, AreaTarget(area)); err != nil {
			return err
		}
		if p.Approval != "" {
			if _, err := tx.ExecContext(ctx, "UPDATE areas SET approval = ? WHERE id = ?", clear(p.Approval), area); err != nil {
				return fmt.Errorf("set approval of %s: %w", area, err)
			}
		}
		if p.SelfApproval != "" {
			if _, err := tx.ExecContext(ctx, "UPDATE areas SET self_approval = ? WHERE id = ?", clear(p.SelfApproval), area); err != nil {
				return fmt.Errorf("set self-approval of %s: %w", area, err)
			}
		}
		return nil
	})
}

// PolicyOf returns the policy that applies in area, from it and the areas above it.
func (db *DB) PolicyOf(ctx context.Context, area string) (EffectivePolicy, error) {
	if err := ValidateAreaID(area); err != nil {
		return EffectivePolicy{}, err
	}
	var approval, self string
	for a := area; a != "" && (approval == "" || self == ""); a = ParentArea(a) {
		var ap, sp string
		err := db.r.QueryRowContext(ctx, "SELECT approval, self_approval FROM areas WHERE id = ?", a).Scan(&ap, &sp)
		if errors.Is(err, sql.ErrNoRows) {
			return EffectivePolicy{}, fmt.Errorf("%w: area %q", ErrNotFound, a)
		}
		if err != nil {
			return EffectivePolicy{}, fmt.Errorf("policy of %s: %w", a, err)
		}
		if approval == "" {
			approval = ap
		}
		if self == "" {
			self = sp
		}
	}
	return EffectivePolicy{Required: approval == ApprovalRequired, SelfApproval: self == SelfAllowed}, nil
}

// Submission states.
const (
	StateSubmitted = "submitted"
	StateApproved  = "approved"
	StateRejected  = "rejected"
)

// Submission kinds: a schedule, or a bulletin, live relay or play-now command (issue 22).
const (
	SubmitSchedule = "schedule"
	SubmitCommand  = "command"
)

// Submission is a schedule (or a bulletin, relay or command) waiting for approval, or decided.
type Submission struct {
	ID          int64
	Kind        string // SubmitSchedule, KindBulletin, KindLive or SubmitCommand; Document is then the request (JSON)
	Area        string // the target's area
	Target      Target
	ScheduleID  string
	Document    []byte
	SubmittedBy string
	SubmittedAt time.Time
	State       string
	DecidedBy   string
	DecidedAt   time.Time
	Reason      string
	Revision    int64 // the schedule revision its approval made
}

// Submit stores a schedule that waits for approval. area is the target's area.
func (db *DB) Submit(ctx context.Context, area string, s Schedule) (Submission, error) {
	if err := s.Target.check(); err != nil {
		return Submission{}, err
	}
	if len(s.Document) == 0 || len(s.Document) > MaxDocument {
		return Submission{}, fmt.Errorf("%w: schedule document for %s is %d bytes; want 1 to %d", ErrInvalid, s.Target, len(s.Document), MaxDocument)
	}
	return db.addSubmission(ctx, Submission{Kind: SubmitSchedule, Area: area, Target: s.Target, ScheduleID: s.ID, Document: s.Document, SubmittedBy: s.Author})
}

// SubmitBroadcast stores a bulletin, live relay or play-now command (kind) that waits for
// approval: request is its API request as sent, target its (first) target, area that
// target's area.
func (db *DB) SubmitBroadcast(ctx context.Context, area string, target Target, kind, by string, request []byte) (Submission, error) {
	switch kind {
	case KindBulletin, KindLive, SubmitCommand:
	default:
		return Submission{}, fmt.Errorf("%w: a broadcast submission is a %s, %s or %s, not %q", ErrInvalid, KindBulletin, KindLive, SubmitCommand, kind)
	}
	if err := target.check(); err != nil {
		return Submission{}, err
	}
	if len(request) == 0 || len(request) > MaxDocument {
		return Submission{}, fmt.Errorf("%w: %s request for %s is %d bytes; want 1 to %d", ErrInvalid, kind, target, len(request), MaxDocument)
	}
	return db.addSubmission(ctx, Submission{Kind: kind, Area: area, Target: target, ScheduleID: kind, Document: request, SubmittedBy: by})
}

func (db *DB) addSubmission(ctx context.Context, out Submission) (Submission, error) {
	s := Schedule{Target: out.Target, ID: out.ScheduleID, Author: out.SubmittedBy}
	area := out.Area
	out.Document, out.SubmittedAt, out.State = append([]byte(nil), out.Document...), db.now(), StateSubmitted
	var device any
	if s.Target.Kind == TargetDevice {
		device = s.Target.ID
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := targetExists(ctx, tx, s.Target); err != nil {
			return err
		}
		// RETURNING, not LastInsertId: PostgreSQL's driver has none.
		err := tx.QueryRowContext(ctx, `INSERT INTO submissions(area_id, device_id, schedule_id, document, submitted_by, submitted_at, state, kind)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, area, device, s.ID, out.Document, s.Author, ts(out.SubmittedAt), StateSubmitted, out.Kind).Scan(&out.ID)
		if err != nil {
			return fmt.Errorf("store submission for %s: %w", s.Target, err)
		}
		return nil
	})
	if err != nil {
		return Submission{}, err
	}
	return out, nil
}

const submissionCols = "id, area_id, COALESCE(device_id, ''), schedule_id, document, submitted_by, submitted_at, state, decided_by, decided_at, reason, revision, kind"

func scanSubmission(s interface{ Scan(...any) error }) (Submission, error) {
	var out Submission
	var device string
	var at, decided sql.NullInt64
	err := s.Scan(&out.ID, &out.Area, &device, &out.ScheduleID, &out.Document, &out.SubmittedBy, &at, &out.State,
		&out.DecidedBy, &decided, &out.Reason, &out.Revision, &out.Kind)
	out.Target = AreaTarget(out.Area)
	if device != "" {
		out.Target = DeviceTarget(device)
	}
	out.SubmittedAt, out.DecidedAt = fromTS(at), fromTS(decided)
	return out, err
}

// GetSubmission returns one submission.
func (db *DB) GetSubmission(ctx context.Context, id int64) (Submission, error) {
	s, err := scanSubmission(db.r.QueryRowContext(ctx, "SELECT "+submissionCols+" FROM submissions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Submission{}, fmt.Errorf("%w: submission %d", ErrNotFound, id)
	}
	if err != nil {
		return Submission{}, fmt.Errorf("submission %d: %w", id, err)
	}
	return s, nil
}

// ListSubmissions lists the submissions in area's subtree ("" = all), newest first; state ""
// lists every state.
func (db *DB) ListSubmissions(ctx context.Context, area, state string, limit int) ([]Submission, error) {
	cond, args := subtree("area_id", area)
	if state != "" {
		cond += " AND state = ?"
		args = append(args, state)
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+submissionCols+" FROM submissions WHERE "+cond+" ORDER BY id DESC"+limitClause(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("submissions under %q: %w", area, err)
	}
	defer rows.Close()
	var out []Submission
	for rows.Next() {
		s, err := scanSubmission(rows)
		if err != nil {
			return nil, fmt.Errorf("submissions under %q: %w", area, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ErrDecided is returned for a submission already approved or rejected, and for a broadcast
// already reviewed.
var ErrDecided = errors.New("already decided")

// Decide approves (reason "" and approve) or rejects a waiting submission. An approval stores
// its document as the target's next schedule revision, recording the approver, in the same
// transaction; the revision is returned in the submission.
func (db *DB) Decide(ctx context.Context, id int64, by string, approve bool, reason string) (Submission, error) {
	if err := checkText("approver", by, true, 200); err != nil {
		return Submission{}, err
	}
	if !approve {
		if err := checkText("the reason for rejecting", reason, true, 2000); err != nil {
			return Submission{}, err
		}
	}
	var out Submission
	err := db.write(ctx, func(tx *sql.Tx) error {
		s, err := scanSubmission(tx.QueryRowContext(ctx, "SELECT "+submissionCols+" FROM submissions WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: submission %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if s.State != StateSubmitted {
			return fmt.Errorf("%w: submission %d was %s by %s", ErrDecided, id, s.State, s.DecidedBy)
		}
		s.DecidedBy, s.DecidedAt, s.Reason = by, db.now(), reason
		if approve && s.Kind != SubmitSchedule {
			s.State = StateApproved // the hub sends the broadcast once this is stored
		} else if approve {
			s.State = StateApproved
			sc := Schedule{Target: s.Target, ID: s.ScheduleID, Document: s.Document, Author: s.SubmittedBy,
				CreatedAt: s.DecidedAt, ApprovedBy: by, ApprovedAt: s.DecidedAt}
			if err := putSchedule(ctx, tx, &sc); err != nil {
				return err
			}
			s.Revision = sc.Revision
		} else {
			s.State = StateRejected
		}
		if _, err := tx.ExecContext(ctx, "UPDATE submissions SET state = ?, decided_by = ?, decided_at = ?, reason = ?, revision = ? WHERE id = ?",
			s.State, by, ts(s.DecidedAt), reason, s.Revision, id); err != nil {
			return fmt.Errorf("decide submission %d: %w", id, err)
		}
		out = s
		return nil
	})
	return out, err
}

// Review records that an emergency broadcast was reviewed after it went out.
func (db *DB) Review(ctx context.Context, id int64, by, note string) (Emergency, error) {
	if err := checkText("reviewer", by, true, 200); err != nil {
		return Emergency{}, err
	}
	if err := checkText("the review's note", note, false, 2000); err != nil {
		return Emergency{}, err
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var reviewed sql.NullInt64
		var who string
		err := tx.QueryRowContext(ctx, "SELECT reviewed_at, reviewed_by FROM emergencies WHERE id = ?", id).Scan(&reviewed, &who)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: broadcast %d", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if reviewed.Valid {
			return fmt.Errorf("%w: broadcast %d was reviewed by %s", ErrDecided, id, who)
		}
		_, err = tx.ExecContext(ctx, "UPDATE emergencies SET reviewed_at = ?, reviewed_by = ?, review_note = ? WHERE id = ?", ts(db.now()), by, note, id)
		return err
	})
	if err != nil {
		return Emergency{}, err
	}
	return db.GetEmergency(ctx, id)
}

// FlagForReview marks broadcasts (bulletins, relays) sent at once by the emergency role where
// approval is required: they wait for a review afterwards, as warnings do.
func (db *DB) FlagForReview(ctx context.Context, ids []int64) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, "UPDATE emergencies SET review_wanted = 1 WHERE id = ? AND reviewed_at IS NULL", id); err != nil {
				return fmt.Errorf("flag broadcast %d for review: %w", id, err)
			}
		}
		return nil
	})
}
