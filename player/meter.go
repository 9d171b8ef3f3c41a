package player

import "math"

// silenceDBFS is the level under which a 10 ms block counts as silence in the proof.
const silenceDBFS = -50

// floorDBFS stands for "no signal" in proofs (JSON has no -Inf).
const floorDBFS = -120

// meter measures what is handed to the output: peak, RMS and silent time.
type meter struct {
	block      int // frames per silence block
	peak       float64
	sumSq      float64
	frames     int64
	blkSumSq   float64
	blkFrames  int
	silentFrms int64
}

func newMeter(rate int) *meter { return &meter{block: max(1, rate/100)} }

func (m *meter) add(s []float32) {
	for i := 0; i+1 < len(s); i += 2 {
		l, r := float64(s[i]), float64(s[i+1])
		sq := (l*l + r*r) / 2
		if a := math.Abs(l); a > m.peak {
			m.peak = a
		}
		if a := math.Abs(r); a > m.peak {
			m.peak = a
		}
		m.sumSq += sq
		m.blkSumSq += sq
		m.blkFrames++
		if m.blkFrames == m.block {
			m.closeBlock()
		}
	}
	m.frames += int64(len(s) / 2)
}

func (m *meter) closeBlock() {
	if m.blkFrames == 0 {
		return
	}
	if dbfs(math.Sqrt(m.blkSumSq/float64(m.blkFrames))) < silenceDBFS {
		m.silentFrms += int64(m.blkFrames)
	}
	m.blkSumSq, m.blkFrames = 0, 0
}

func (m *meter) peakDBFS() float64 { return dbfs(m.peak) }

func (m *meter) rmsDBFS() float64 {
	if m.frames == 0 {
		return floorDBFS
	}
	return dbfs(math.Sqrt(m.sumSq / float64(m.frames)))
}

func dbfs(v float64) float64 {
	if v <= 0 {
		return floorDBFS
	}
	d := 20 * math.Log10(v)
	if d < floorDBFS {
		return floorDBFS
	}
	return math.Round(d*100) / 100
}
