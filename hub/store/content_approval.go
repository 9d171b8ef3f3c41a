package store

import (
	"context"
	"database/sql"
	"fmt"
)

// checkApproval checks an item's approval fields as AddContent takes them: no state is an item
// approved at once.
func (c *Content) checkApproval() error {
	switch c.State {
	case "":
		c.State = StateApproved
	case StateApproved, StateSubmitted:
	default:
		return fmt.Errorf("%w: content %s: state %q; a new item is %s or %s", ErrInvalid, c.Ref, c.State, StateSubmitted, StateApproved)
	}
	if c.State == StateSubmitted && c.Area == "" {
		return fmt.Errorf("%w: content %s waits for approval but names no area whose approvers decide", ErrInvalid, c.Ref)
	}
	if c.Area != "" {
		if err := ValidateAreaID(c.Area); err != nil {
			return err
		}
	}
	if c.State == StateApproved && c.DecidedBy != "" && c.DecidedAt.IsZero() {
		c.DecidedAt = c.UploadedAt
	}
	c.Reason = ""
	return checkText("content "+c.Ref+" approver", c.DecidedBy, false, 200)
}

// DecideContent approves (approve) or rejects with a reason a content item that waits for
// approval. A rejected item may still be approved later (its maker may have convinced the
// approver); an approved one is final.
func (db *DB) DecideContent(ctx context.Context, ref, by string, approve bool, reason string) (Content, error) {
	canon, _, err := ParseRef(ref)
	if err != nil {
		return Content{}, err
	}
	if err := checkText("approver", by, true, 200); err != nil {
		return Content{}, err
	}
	state := StateApproved
	if !approve {
		state = StateRejected
		if err := checkText("the reason for rejecting", reason, true, 2000); err != nil {
			return Content{}, err
		}
	}
	var out Content
	err = db.write(ctx, func(tx *sql.Tx) error {
		c, err := getContent(ctx, tx, canon)
		if err != nil {
			return err
		}
		if c.State == StateApproved || (c.State == StateRejected && !approve) {
			who := c.DecidedBy
			if who == "" {
				who = "nobody: no approval was needed"
			}
			return fmt.Errorf("%w: content %s was %s by %s", ErrDecided, canon, c.State, who)
		}
		c.State, c.DecidedBy, c.DecidedAt, c.Reason = state, by, db.now(), reason
		if _, err := tx.ExecContext(ctx, "UPDATE content SET state = ?, decided_by = ?, decided_at = ?, reason = ? WHERE ref = ?",
			c.State, c.DecidedBy, ts(c.DecidedAt), c.Reason, canon); err != nil {
			return fmt.Errorf("decide content %s: %w", canon, err)
		}
		out = c
		return nil
	})
	return out, err
}
