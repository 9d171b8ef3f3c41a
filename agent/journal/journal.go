// Package journal is the agent's confirmation journal: one record per play, written when the
// play starts (write-ahead) and closed when it ends, kept in a bbolt file until the hub has
// acknowledged it. Every bbolt commit is fsync'd, so a record whose Begin returned survives a
// power cut; a record a crash left open is closed as `interrupted` by the next Open.
//
// Records carry a per-device sequence number: strictly +1, no gaps, no repeats, also across
// crashes (the counter is committed in the same transaction as the record). The hub
// acknowledges the highest contiguous sequence it holds; only acknowledged records are ever
// dropped to respect the size cap. See docs/journal.md.
package journal

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// Record is one play as the journal keeps it: the confirmation the hub receives, which the
// journal stores as it is (its JSON is the wire's), plus what only the agent needs.
// `loa-agent journal --json` prints it.
type Record struct {
	protocol.Confirmation
	// Checkpoint is when the open record was last brought up to date; a crash closes the
	// record with End = Checkpoint (or Start if none).
	Checkpoint time.Time `json:"checkpoint,omitzero"`
}

// Options configure Open.
type Options struct {
	DeviceID string // required; a journal belongs to one device
	// MaxRecords and MaxBytes cap the journal (0: no cap). Bytes count keys and encoded
	// records; the file is larger by bbolt's page overhead (see the benchmark). Only
	// acknowledged records are dropped to respect the cap.
	MaxRecords int
	MaxBytes   int64
	Logger     *slog.Logger
	Clock      clock.Clock // the wall time of checkpoints; nil: the system clock
}

// ErrDamaged marks a journal file that cannot be read (a torn SD card write, a bad block):
// the agent sets it aside and starts a new one rather than stop playing.
var ErrDamaged = errors.New("the journal file is damaged")

// ID names this journal: made at random with the file, so the hub can tell a journal that
// restarted its numbering (a damaged file set aside) from the one it knew.
func (j *Journal) ID() string { return j.id }

// Stats describes the journal.
type Stats struct {
	Records   int    `json:"records"`
	Bytes     int64  `json:"bytes"`
	Open      int    `json:"open"`
	Unacked   uint64 `json:"unacked"`
	HighWater uint64 `json:"high_water"`
	Acked     uint64 `json:"acked"`
}

// Journal is an open journal file. Its methods are safe for concurrent use; one process at a
// time can hold the file.
type Journal struct {
	db    *bolt.DB
	path  string
	opts  Options
	log   *slog.Logger
	clock clock.Clock
	id    string // random, made with the file: names this journal to the hub

	mu        sync.Mutex
	written   uint64 // highest sequence ever written
	acked     uint64 // highest contiguous sequence the hub acknowledged
	count     int    // records held
	bytes     int64  // key + value bytes held
	capWarnAt uint64 // high water when the cap of unacked records was last reported
}

var (
	bucketRecords = []byte("records")
	bucketOpen    = []byte("open")
	bucketMeta    = []byte("meta")
	keyDevice     = []byte("device")
	keyWritten    = []byte("written")
	keyAcked      = []byte("acked")
	keyID         = []byte("id")
	keyFormat     = []byte("format")
)

// format names the records' form: protocol.Confirmation's JSON (see legacy.go for the one
// before).
const format = "loa-journal-2"

// ErrNotFound is returned (wrapped) for a sequence the journal does not hold.
var ErrNotFound = errors.New("no such record in the journal")

// Open opens or creates the journal at path. Records a crash left open are closed as
// `interrupted`, with the played duration of their last checkpoint and End at that checkpoint.
func Open(path string, opts Options) (j *Journal, err error) {
	// bbolt panics on some damaged pages; a damaged file is an error the agent can act on.
	defer func() {
		if p := recover(); p != nil {
			j, err = nil, fmt.Errorf("journal %s: %w: %v", path, ErrDamaged, p)
		}
	}()
	return openFile(path, opts)
}

func openFile(path string, opts Options) (*Journal, error) {
	if opts.DeviceID == "" {
		return nil, fmt.Errorf("journal %s: no device id given", path)
	}
	if opts.MaxRecords < 0 || opts.MaxBytes < 0 {
		return nil, fmt.Errorf("journal %s: negative cap", path)
	}
	j := &Journal{path: path, opts: opts, log: opts.Logger, clock: opts.Clock}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if j.clock == nil {
		j.clock = clock.NewSystem()
	}
	_, statErr := os.Stat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second,
		// Not writing the freelist on every commit means fewer page writes per record (SD
		// wear); bbolt rebuilds it by a scan at Open, which is quick for a journal.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("journal %s is in use by another process; stop it first", path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal %s cannot be opened: %w: %w", path, ErrDamaged, err)
	}
	j.db = db
	if errors.Is(statErr, fs.ErrNotExist) {
		// bbolt syncs the file, not its name: without this a power cut can take a new
		// journal, and every record Begin said was on disk, away.
		if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, fmt.Errorf("journal %s: making the new file durable: %w", path, err)
		}
	}
	var closed []Record
	upgraded := false
	err = db.Update(func(tx *bolt.Tx) error {
		recs, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		open, err := tx.CreateBucketIfNotExists(bucketOpen)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if f := meta.Get(keyFormat); f == nil || string(f) == formatV1 {
			if f != nil {
				if err := upgradeV1(recs); err != nil {
					return err
				}
				upgraded = true
			}
			if err := meta.Put(keyFormat, []byte(format)); err != nil {
				return err
			}
		} else if string(f) != format {
			return fmt.Errorf("journal %s has format %q, this agent reads %q", path, f, format)
		}
		if d := meta.Get(keyDevice); d == nil {
			if err := meta.Put(keyDevice, []byte(opts.DeviceID)); err != nil {
				return err
			}
		} else if string(d) != opts.DeviceID {
			return fmt.Errorf("journal %s belongs to device %q, the config says %q: fix device_id or move the journal aside", path, d, opts.DeviceID)
		}
		j.written = getU64(meta, keyWritten)
		j.acked = getU64(meta, keyAcked)
		if id := meta.Get(keyID); id != nil {
			j.id = string(id)
		} else {
			// Journals made before ids existed get one now: the hub records the first id it
			// is told without shifting anything.
			b := make([]byte, 8)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			j.id = hex.EncodeToString(b)
			if err := meta.Put(keyID, []byte(j.id)); err != nil {
				return err
			}
		}

		// Close what a crash left open.
		var seqs [][]byte
		open.ForEach(func(k, _ []byte) error { seqs = append(seqs, append([]byte(nil), k...)); return nil })
		for _, k := range seqs {
			v := recs.Get(k)
			if v == nil {
				if err := open.Delete(k); err != nil {
					return err
				}
				continue
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("journal %s: record %d is unreadable: %w: %w", path, binary.BigEndian.Uint64(k), ErrDamaged, err)
			}
			r.Result = protocol.ResultInterrupted
			r.End = r.Checkpoint
			if r.End.IsZero() {
				r.End = r.Start
			}
			r.Error = "the agent stopped during the play (crash or power loss); played duration is up to the last checkpoint"
			normalize(&r)
			b, err := json.Marshal(&r)
			if err != nil {
				return err
			}
			if err := recs.Put(k, b); err != nil {
				return err
			}
			if err := open.Delete(k); err != nil {
				return err
			}
			closed = append(closed, r)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			j.count++
			j.bytes += int64(len(k) + len(v))
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w: %w", path, ErrDamaged, err)
	}
	if upgraded {
		j.log.Info("journal upgraded from format "+formatV1, "path", path, "to", format)
	}
	for _, r := range closed {
		j.log.Warn("a play was cut by a crash or power loss; closed its record as interrupted",
			"seq", r.Seq, "program", r.Program, "item", r.ItemIndex, "played_s", r.PlayedS, "last_checkpoint", r.End)
	}
	j.log.Info("journal opened", "path", path, "records", j.count, "high_water", j.written, "acked", j.acked)
	return j, nil
}

// Close closes the file. Open records stay open (the next Open closes them as interrupted).
func (j *Journal) Close() error { return j.db.Close() }

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// normalize keeps records honest and encodable: levels at least MinDBFS and finite, and only
// when something played; an end earlier than the start (the wall clock stepped back during
// the play) becomes start + played, with the clock marked unsynced, rather than a record that
// ends before it began. The command that caused a play is named from its program id.
func normalize(r *Record) {
	if math.IsNaN(r.PlayedS) || r.PlayedS < 0 {
		r.PlayedS = 0
	}
	// Every level of the proof (its *float64 fields), so a new one is kept honest too.
	proof := reflect.ValueOf(&r.Proof).Elem()
	for i := range proof.NumField() {
		if lv, ok := proof.Field(i).Addr().Interface().(**float64); ok {
			if r.PlayedS == 0 {
				*lv = nil
			} else {
				*lv = clampDB(*lv)
			}
		}
	}
	if !r.Start.IsZero() && !r.End.IsZero() && r.End.Before(r.Start) {
		r.End = r.Start.Add(protocol.Duration(r.PlayedS))
		r.Clock = protocol.ClockUnsynced
	}
	if r.CommandID == "" {
		r.CommandID = protocol.CommandOf(r.Program)
	}
}

func clampDB(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	if math.IsNaN(v) || v < protocol.MinDBFS {
		v = protocol.MinDBFS
	}
	if math.IsInf(v, 1) {
		v = math.MaxFloat32
	}
	return &v
}

func check(r *Record) error {
	var missing []string
	if r.Output == "" {
		missing = append(missing, "output")
	}
	if r.Program == "" {
		missing = append(missing, "program")
	}
	if r.Scheduled.IsZero() {
		missing = append(missing, "scheduled")
	}
	if len(missing) > 0 {
		return fmt.Errorf("journal record of program %q: missing %v", r.Program, missing)
	}
	if r.Clock != protocol.ClockSynced && r.Clock != protocol.ClockUnsynced {
		return fmt.Errorf("journal record of program %q: clock state %q, want %q or %q", r.Program, r.Clock, protocol.ClockSynced, protocol.ClockUnsynced)
	}
	if r.ItemIndex < 0 {
		return fmt.Errorf("journal record of program %q: negative item index %d", r.Program, r.ItemIndex)
	}
	return nil
}

// Begin writes the record of a play that is about to start and returns its sequence number.
// Call it before the first sample goes out: when it returns, the record is on disk. rec.Start
// is required; Seq, DeviceID and Result are set by the journal (Result = playing).
func (j *Journal) Begin(c protocol.Confirmation) (uint64, error) {
	rec := Record{Confirmation: c}
	if rec.Result != "" && rec.Result != protocol.ResultPlaying {
		return 0, fmt.Errorf("journal: Begin of program %q with result %q: use Record for one-shot results", rec.Program, rec.Result)
	}
	if rec.Start.IsZero() {
		return 0, fmt.Errorf("journal: Begin of program %q without a start time", rec.Program)
	}
	rec.Result = protocol.ResultPlaying
	rec.End = time.Time{}
	rec.Checkpoint = time.Time{}
	return j.append(rec)
}

// Record writes a one-shot record (missed, failed, suppressed, or a play recorded after the
// fact) and returns its sequence number.
func (j *Journal) Record(c protocol.Confirmation) (uint64, error) {
	rec := Record{Confirmation: c}
	if !rec.Result.Closed() {
		return 0, fmt.Errorf("journal: Record of program %q with result %q: want one of completed, preempted, interrupted, failed, missed, suppressed", rec.Program, rec.Result)
	}
	return j.append(rec)
}

func (j *Journal) append(rec Record) (uint64, error) {
	if err := check(&rec); err != nil {
		return 0, err
	}
	rec.Device = j.opts.DeviceID
	normalize(&rec)
	j.mu.Lock()
	defer j.mu.Unlock()
	seq := j.written + 1
	rec.Seq = seq
	b, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("journal: encoding record of program %q: %w", rec.Program, err)
	}
	var dropped int
	var droppedBytes int64
	err = j.db.Update(func(tx *bolt.Tx) error {
		k := key(seq)
		recs := tx.Bucket(bucketRecords)
		// Keys only ever grow: pack pages full instead of bbolt's default half, which would
		// leave every page half empty (bigger file, more pages written per commit).
		recs.FillPercent = 0.9
		if err := recs.Put(k, b); err != nil {
			return err
		}
		if rec.Result == protocol.ResultPlaying {
			if err := tx.Bucket(bucketOpen).Put(k, nil); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keyWritten, key(seq)); err != nil {
			return err
		}
		dropped, droppedBytes, err = j.trimLocked(tx, 1, int64(len(k)+len(b)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal %s: writing record %d: %w", j.path, seq, err)
	}
	j.written = seq
	j.count += 1 - dropped
	j.bytes += int64(8+len(b)) - droppedBytes
	j.reportCapLocked()
	return seq, nil
}

// trimLocked drops the oldest acknowledged records while the journal, with addCount records
// and addBytes bytes about to be counted, is over its cap.
func (j *Journal) trimLocked(tx *bolt.Tx, addCount int, addBytes int64) (int, int64, error) {
	if j.opts.MaxRecords == 0 && j.opts.MaxBytes == 0 {
		return 0, 0, nil
	}
	count, size := j.count+addCount, j.bytes+addBytes
	over := func() bool {
		return j.opts.MaxRecords > 0 && count > j.opts.MaxRecords || j.opts.MaxBytes > 0 && size > j.opts.MaxBytes
	}
	var dropped int
	var droppedBytes int64
	c := tx.Bucket(bucketRecords).Cursor()
	for k, v := c.First(); k != nil && over(); k, v = c.First() {
		if binary.BigEndian.Uint64(k) > j.acked {
			break // never drop what the hub has not acknowledged
		}
		n := int64(len(k) + len(v))
		if err := c.Delete(); err != nil {
			return 0, 0, err
		}
		count--
		size -= n
		dropped++
		droppedBytes += n
	}
	return dropped, droppedBytes, nil
}

// reportCapLocked says loudly when the cap is reached with only unacknowledged records: they
// are all kept (losing proof of play is worse than a bigger file), and the log says so at the
// first record over the cap and every 100 records after.
func (j *Journal) reportCapLocked() {
	over := j.opts.MaxRecords > 0 && j.count > j.opts.MaxRecords || j.opts.MaxBytes > 0 && j.bytes > j.opts.MaxBytes
	if !over {
		j.capWarnAt = 0
		return
	}
	if j.capWarnAt != 0 && j.written-j.capWarnAt < 100 {
		return
	}
	j.capWarnAt = j.written
	j.log.Error("journal is over its size cap and every record in it is still unacknowledged by the hub: keeping them all; check the link to the hub",
		"path", j.path, "records", j.count, "bytes", j.bytes, "max_records", j.opts.MaxRecords, "max_bytes", j.opts.MaxBytes,
		"unacked", j.written-j.acked, "acked", j.acked)
}

// update rewrites the open record seq with fn.
func (j *Journal) update(seq uint64, fn func(*Record) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var delta int64
	err := j.db.Update(func(tx *bolt.Tx) error {
		k := key(seq)
		recs := tx.Bucket(bucketRecords)
		recs.FillPercent = 0.9
		v := recs.Get(k)
		if v == nil {
			return fmt.Errorf("record %d: %w", seq, ErrNotFound)
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("record %d is unreadable: %w", seq, err)
		}
		if r.Result != protocol.ResultPlaying {
			return fmt.Errorf("record %d is not playing any more (result %s)", seq, r.Result)
		}
		old := len(v)
		if err := fn(&r); err != nil {
			return err
		}
		normalize(&r)
		b, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		if err := recs.Put(k, b); err != nil {
			return err
		}
		if r.Result != protocol.ResultPlaying {
			if err := tx.Bucket(bucketOpen).Delete(k); err != nil {
				return err
			}
		}
		delta = int64(len(b) - old)
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.bytes += delta
	return nil
}

// Checkpoint brings an open record up to date: the duration the output has consumed so far
// and the levels so far, stamped with the clock's time. If the agent dies, the record is closed
// with these figures. Call it every few seconds, not more: each call is a bbolt commit (two
// fsyncs and a few 4 KiB page writes), and SD cards wear out by writes. Every 5 s is about
// 17,000 commits a day of playing.
func (j *Journal) Checkpoint(seq uint64, p protocol.Proof) error {
	now := j.clock.Now()
	return j.update(seq, func(r *Record) error {
		p.FromS = r.FromS // where the play began is the record's, not the output's
		r.Proof = p
		r.Checkpoint = now
		return nil
	})
}

// Finish closes an open record with its result, end time, proof and error text (empty if
// none).
func (j *Journal) Finish(seq uint64, result protocol.Result, end time.Time, p protocol.Proof, errText string) error {
	if !result.Closed() {
		return fmt.Errorf("journal: Finish of record %d with result %q: want one of completed, preempted, interrupted, failed, missed, suppressed", seq, result)
	}
	if end.IsZero() {
		return fmt.Errorf("journal: Finish of record %d without an end time", seq)
	}
	return j.update(seq, func(r *Record) error {
		r.Result = result
		r.End = end
		p.FromS = r.FromS
		r.Proof = p
		r.Error = errText
		return nil
	})
}

// Get returns one record.
func (j *Journal) Get(seq uint64) (Record, error) {
	var r Record
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get(key(seq))
		if v == nil {
			return fmt.Errorf("record %d: %w", seq, ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return Record{}, fmt.Errorf("journal %s: %w", j.path, err)
	}
	return r, nil
}

// Recent returns the records whose latest time (end, checkpoint or start) is at or after
// since, newest first, at most max of them: what the agent's runner must know after a restart.
func (j *Journal) Recent(since time.Time, max int) ([]Record, error) {
	return j.walk(true, 0, func(n int, r Record) bool { return n < max && !r.Latest().Before(since) })
}

// Latest is the latest wall time the record holds: when the agent was last known to be alive
// writing it.
func (r Record) Latest() time.Time {
	t := r.Scheduled
	for _, u := range []time.Time{r.Start, r.Checkpoint, r.End} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// List returns up to limit records (0: all) with a sequence above after, open ones included:
// for display.
func (j *Journal) List(after uint64, limit int) ([]Record, error) {
	return j.scan(after, limit, false)
}

// Since returns up to limit closed records (0: all) with a sequence above after, in order, for
// sending to the hub. It stops before the first record still playing, so that an
// acknowledgement (the highest contiguous sequence) can never cover an open record.
func (j *Journal) Since(after uint64, limit int) ([]Record, error) {
	return j.scan(after, limit, true)
}

func (j *Journal) scan(after uint64, limit int, closedOnly bool) ([]Record, error) {
	if after == math.MaxUint64 {
		return nil, nil
	}
	return j.walk(false, after+1, func(n int, r Record) bool {
		return (limit <= 0 || n < limit) && !(closedOnly && r.Result == protocol.ResultPlaying)
	})
}

// walk reads records in sequence order from first, or backwards from the last, for as long as
// more (given how many it has and the next one) says to take the next.
func (j *Journal) walk(backwards bool, first uint64, more func(n int, r Record) bool) ([]Record, error) {
	var out []Record
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		k, v := c.Seek(key(first))
		next := c.Next
		if backwards {
			k, v = c.Last()
			next = c.Prev
		}
		for ; k != nil; k, v = next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %d is unreadable: %w", binary.BigEndian.Uint64(k), err)
			}
			if !more(len(out), r) {
				break
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	return out, nil
}

// Ack records that the hub holds every record up to seq. A seq at or below the current ack is
// ignored (acks may arrive late or twice); one above the last written record, or covering a
// record still playing, is refused.
func (j *Journal) Ack(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq <= j.acked {
		return nil
	}
	if seq > j.written {
		return fmt.Errorf("journal: ack of %d refused: the last record written is %d", seq, j.written)
	}
	var dropped int
	var droppedBytes int64
	prev := j.acked
	err := j.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOpen).Cursor()
		if k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq {
			return fmt.Errorf("ack of %d refused: record %d is still playing", seq, binary.BigEndian.Uint64(k))
		}
		if err := tx.Bucket(bucketMeta).Put(keyAcked, key(seq)); err != nil {
			return err
		}
		j.acked = seq // trimLocked reads it; restored below if the commit fails
		var err error
		dropped, droppedBytes, err = j.trimLocked(tx, 0, 0)
		return err
	})
	if err != nil {
		j.acked = prev
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.count -= dropped
	j.bytes -= droppedBytes
	j.reportCapLocked()
	return nil
}

// HighWater returns the highest sequence written (0: none yet). The agent sends it in its hello.
func (j *Journal) HighWater() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.written
}

// Acked returns the highest acknowledged sequence.
func (j *Journal) Acked() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.acked
}

// Stats reports the journal's size and state.
func (j *Journal) Stats() (Stats, error) {
	j.mu.Lock()
	s := Stats{Records: j.count, Bytes: j.bytes, HighWater: j.written, Acked: j.acked, Unacked: j.written - j.acked}
	j.mu.Unlock()
	err := j.db.View(func(tx *bolt.Tx) error {
		s.Open = tx.Bucket(bucketOpen).Stats().KeyN
		return nil
	})
	return s, err
}
