package protocol

import (
	"encoding/json"
	"math"
	"testing"
)

func TestProofFinite(t *testing.T) {
	peak, rms := math.Inf(-1), -18.5
	p := Proof{PlayedS: 3, PeakDBFS: &peak, RMSDBFS: &rms}.Finite()
	if p.PeakDBFS != nil || p.RMSDBFS == nil || *p.RMSDBFS != -18.5 || p.PlayedS != 3 {
		t.Fatalf("Finite: %+v", p)
	}
	if _, err := json.Marshal(p); err != nil {
		t.Fatal(err)
	}
	if peak != math.Inf(-1) {
		t.Fatal("Finite changed the level it was given")
	}
}

// The proof's fields are the confirmation's own on the wire (embedded, not nested).
func TestProofOnTheWire(t *testing.T) {
	var c Confirmation
	if err := json.Unmarshal([]byte(`{"device":"d","seq":1,"played_s":2.5,"peak_dbfs":-3,"frames_dropped":4,"result":"completed"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.PlayedS != 2.5 || c.PeakDBFS == nil || *c.PeakDBFS != -3 || c.FramesDropped != 4 || c.Result != ResultCompleted {
		t.Fatalf("decoded %+v", c)
	}
}
