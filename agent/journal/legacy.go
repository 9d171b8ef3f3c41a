package journal

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-project/loa/protocol"
)

// formatV1 is the journal of agents before the record became protocol.Confirmation: its own
// field names (program_id, played_ns…) and durations in nanoseconds. Open rewrites such a
// file's records once, so an agent upgraded with records not yet sent loses none.
const formatV1 = "loa-journal-1"

type recordV1 struct {
	Seq              uint64          `json:"seq"`
	DeviceID         string          `json:"device_id"`
	Output           string          `json:"output"`
	ScheduleID       string          `json:"schedule_id"`
	ScheduleRevision uint64          `json:"schedule_revision"`
	ProgramID        string          `json:"program_id"`
	ItemIndex        int             `json:"item_index"`
	ItemRef          string          `json:"item_ref"`
	Scheduled        time.Time       `json:"scheduled"`
	Start            time.Time       `json:"start"`
	From             time.Duration   `json:"from_ns"`
	End              time.Time       `json:"end"`
	Played           time.Duration   `json:"played_ns"`
	PeakDBFS         float64         `json:"peak_dbfs"`
	RMSDBFS          float64         `json:"rms_dbfs"`
	Silence          time.Duration   `json:"silence_ns"`
	Gaps             int             `json:"gaps"`
	Underruns        int             `json:"underruns"`
	Dropouts         int             `json:"dropouts"`
	Reconnects       int             `json:"reconnects"`
	Missing          time.Duration   `json:"missing_ns"`
	FramesDropped    int             `json:"frames_dropped"`
	Result           protocol.Result `json:"result"`
	Error            string          `json:"error"`
	Clock            struct {
		State protocol.ClockState `json:"state"`
	} `json:"clock"`
	Volume     float64   `json:"volume"`
	Amplifier  string    `json:"amplifier"`
	Checkpoint time.Time `json:"checkpoint"`
}

func (o *recordV1) record() Record {
	r := Record{Checkpoint: o.Checkpoint, Confirmation: protocol.Confirmation{
		Device: o.DeviceID, Seq: o.Seq, Output: o.Output, ScheduleID: o.ScheduleID, Revision: o.ScheduleRevision,
		Program: o.ProgramID, ItemIndex: o.ItemIndex, Item: o.ItemRef, Scheduled: o.Scheduled, Start: o.Start, End: o.End,
		Proof: protocol.Proof{FromS: o.From.Seconds(), PlayedS: o.Played.Seconds(), SilenceS: o.Silence.Seconds(),
			Gaps: o.Gaps, Underruns: o.Underruns, Dropouts: o.Dropouts, Reconnects: o.Reconnects,
			MissingS: o.Missing.Seconds(), FramesDropped: o.FramesDropped},
		Volume: o.Volume, Amplifier: o.Amplifier, Result: o.Result, Error: o.Error, Clock: o.Clock.State,
	}}
	// Version 1 always held levels; they were sent only when something played (normalize).
	peak, rms := o.PeakDBFS, o.RMSDBFS
	r.PeakDBFS, r.RMSDBFS = &peak, &rms
	normalize(&r)
	return r
}

// upgradeV1 rewrites every record of a version-1 journal in the current form, in the
// transaction that opens it: all or nothing.
func upgradeV1(recs *bolt.Bucket) error {
	type kv struct{ k, v []byte }
	var all []kv
	err := recs.ForEach(func(k, v []byte) error {
		var o recordV1
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("version-1 record %x is unreadable: %w: %w", k, ErrDamaged, err)
		}
		r := o.record()
		b, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		all = append(all, kv{append([]byte(nil), k...), b})
		return nil
	})
	if err != nil {
		return err
	}
	recs.FillPercent = 0.9
	for _, e := range all {
		if err := recs.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}
