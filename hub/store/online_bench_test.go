package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkStatusOnline: what recording online time adds to a status (the hub's heartbeat,
// every minute from every connected device): one op = one device's status stored, without and
// with its online time, over 2,000 devices in the same run.
func BenchmarkStatusOnline(b *testing.B) {
	db, clk, _ := openTest(b)
	ctx := context.Background()
	seedTree(b, db)
	const devices = 2000
	ids := make([]string, devices)
	for i := range ids {
		ids[i] = fmt.Sprintf("cl-%04d", i)
		enrol(b, db, ids[i], "quang-nam/tam-ky/tam-thanh")
	}
	st := Status{NowPlaying: "Bản tin sáng", Volume: 0.8, DiskFreeBytes: 3 << 30, TemperatureC: 45, SoftwareVersion: "loa-agent 1.0"}
	b.Run("status", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := db.UpdateStatus(ctx, ids[i%devices], st); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("status-and-online", func(b *testing.B) {
		i := 0
		for b.Loop() {
			now := clk.Advance(30 * time.Millisecond) // 2,000 devices a minute apart
			if err := db.UpdateStatus(ctx, ids[i%devices], st); err != nil {
				b.Fatal(err)
			}
			if err := db.AddOnline(ctx, ids[i%devices], now.Add(-time.Minute), now); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
