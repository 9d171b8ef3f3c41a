package store

import (
	"context"
	"database/sql"
	"fmt"
)

// On PostgreSQL every statement is a network round trip, and a delivery report from each of
// thousands of agents, one after a push, was three of them (the savepoint that keeps a group
// commit's writes apart, the update, its release), all under the writers' lock that every
// replica's writes share: a push's own writes waited behind its agents' reports. The reports
// waiting at one moment are therefore folded into one update per state (markBatch), as the
// group writer folds writes into one transaction.

// markReq is one MarkDelivery waiting for the delivery batcher.
type markReq struct {
	state    DeliveryState
	deviceID string
	revision int64
	reason   string
	out      Delivery
	err      error
	done     chan struct{} // closed when out or err is set
}

// maxMarkBatch bounds the reports folded into one statement.
const maxMarkBatch = 2000

// markDeliveryBatched is MarkDelivery through the batcher (PostgreSQL).
func (db *DB) markDeliveryBatched(ctx context.Context, r *markReq) (Delivery, error) {
	r.done = make(chan struct{})
	select {
	case db.markQ <- r:
	case <-db.quit:
		return Delivery{}, ErrClosed
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
	<-r.done
	return r.out, r.err
}

// marker is the goroutine that takes the delivery reports waiting at one moment and writes
// them at once, until the store closes.
func (db *DB) marker() {
	defer close(db.markDone)
	for {
		var batch []*markReq
		select {
		case r := <-db.markQ:
			batch = append(batch, r)
		case <-db.quit:
			return
		}
	more:
		for len(batch) < maxMarkBatch {
			select {
			case r := <-db.markQ:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := db.writeWeighted(context.Background(), len(batch), func(tx *sql.Tx) error {
			return markBatch(context.Background(), tx, ts(db.now()), batch)
		})
		for _, r := range batch {
			if err != nil {
				r.out, r.err = Delivery{}, err
			}
			close(r.done)
		}
	}
}

// markBatch records every report of batch in one statement per state. A (device, revision)
// reported twice in the same state is written once (the first report's reason); each report
// gets the delivery as its statement left it, or ErrNotFound.
func markBatch(ctx context.Context, tx *sql.Tx, now any, batch []*markReq) error {
	for _, state := range []DeliveryState{StateSent, StateReceived, StateContentReady, StateActive, StateRefused} {
		var ids, reasons []string
		var revs []int64
		seen := map[DeviceRevision]bool{}
		var mine []*markReq
		for _, r := range batch {
			if r.state != state {
				continue
			}
			mine = append(mine, r)
			k := DeviceRevision{r.deviceID, r.revision}
			if !seen[k] {
				seen[k] = true
				ids, revs, reasons = append(ids, r.deviceID), append(revs, r.revision), append(reasons, r.reason)
			}
		}
		if len(mine) == 0 {
			continue
		}
		col := deliveryColumn[state]
		q := "UPDATE effective e SET " + col + " = COALESCE(e." + col + ", ?1)"
		if state == StateRefused {
			q += ", refused_reason = CASE WHEN e.refused_reason = '' THEN v.reason ELSE e.refused_reason END"
		}
		rows, err := tx.QueryContext(ctx, q+`
			FROM unnest(CAST(?2 AS TEXT[]), CAST(?3 AS BIGINT[]), CAST(?4 AS TEXT[])) AS v(device_id, revision, reason)
			WHERE e.device_id = v.device_id AND e.revision = v.revision
			RETURNING e.device_id, e.revision, e.sent_at, e.received_at, e.content_ready_at, e.active_at, e.refused_at, e.refused_reason`,
			now, ids, revs, reasons)
		if err != nil {
			return fmt.Errorf("mark %d revisions %s: %w", len(ids), state, err)
		}
		got := map[DeviceRevision]Delivery{}
		for rows.Next() {
			var k DeviceRevision
			var d Delivery
			var sent, recv, ready, active, refused sql.NullInt64
			if err := rows.Scan(&k.DeviceID, &k.Revision, &sent, &recv, &ready, &active, &refused, &d.RefusedReason); err != nil {
				rows.Close()
				return fmt.Errorf("mark %d revisions %s: %w", len(ids), state, err)
			}
			d.SentAt, d.ReceivedAt, d.ContentReadyAt, d.ActiveAt, d.RefusedAt = fromTS(sent), fromTS(recv), fromTS(ready), fromTS(active), fromTS(refused)
			d.State = d.derive()
			got[k] = d
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("mark %d revisions %s: %w", len(ids), state, err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mark %d revisions %s: %w", len(ids), state, err)
		}
		for _, r := range mine {
			if d, ok := got[DeviceRevision{r.deviceID, r.revision}]; ok {
				r.out = d
			} else {
				r.err = fmt.Errorf("%w: device %q has no effective revision %d", ErrNotFound, r.deviceID, r.revision)
			}
		}
	}
	return nil
}
