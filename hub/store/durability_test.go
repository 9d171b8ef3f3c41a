package store

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshot renders everything the store holds through its public API, for comparison.
func snapshot(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	p := func(v any) { fmt.Fprintf(&b, "%+v\n", v) }
	p(must[[]Area](t)(db.ListSubtree(ctx, "")))
	devs := must[[]Device](t)(db.ListDevices(ctx, ""))
	p(devs)
	p(must[[]Term](t)(db.ListTerms(ctx, "")))
	p(must[[]Content](t)(db.ListContent(ctx, ContentFilter{})))
	for _, d := range devs {
		for _, s := range must[[]Schedule](t)(db.SchedulesForDevice(ctx, d.ID)) {
			p(s)
		}
		if e, err := db.LatestEffective(ctx, d.ID); err == nil {
			p(e)
		}
	}
	for _, c := range must[[]Confirmation](t)(db.ListConfirmations(ctx, ConfirmationFilter{})) {
		j, err := json.Marshal(c) // levels are pointers: their values, not their addresses
		noErr(t, err)
		p(string(j))
	}
	p(must[[]ReportRow](t)(db.Report(ctx, ReportFilter{From: t0.Add(-time.Hour), To: t0.Add(1000 * time.Hour), GroupBy: Dimensions()})))
	p(must[[]User](t)(db.ListUsers(ctx, "")))
	p(must[[]AuditEntry](t)(db.ListAudit(ctx, AuditFilter{})))
	return b.String()
}

func TestReopenKeepsEverything(t *testing.T) {
	db, clk, path := openTest(t)
	ctx := context.Background()
	populate(t, db)
	before := snapshot(t, db)
	noErr(t, db.Close())
	db2, err := Open(ctx, path, clk, testLogger(t))
	noErr(t, err)
	defer db2.Close()
	if after := snapshot(t, db2); after != before {
		t.Fatalf("reopened store differs.\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Derived state is intact too: the ack continues from 3 and the secrets still check.
	checkDerived(t, db2)
	if n := strings.Count(before, "\n"); n < 10 {
		t.Fatalf("snapshot too small to mean anything: %d lines", n)
	}
}

// checkDerived checks what a store populated by populate derives from its rows: the ack
// continues from 3, the device's secret and the user's token still check.
func checkDerived(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	if ack, err := db.AddConfirmations(ctx, "tam-thanh/cl-07", confs(4)); err != nil || ack != 5 {
		t.Fatalf("ack: %d %v", ack, err)
	}
	must[Device](t)(db.CheckSecret(ctx, "tam-thanh/cl-07", hashOf("secret-tam-thanh/cl-07")))
	if _, scope, err := db.Authenticate(ctx, hashOf("tok")); err != nil || scope != "quang-nam/tam-ky/tam-thanh" {
		t.Fatalf("token: %q %v", scope, err)
	}
}

// populate puts rows in the store's main tables through its API.
func populate(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	seedTree(t, db)
	enrol(t, db, "tam-thanh/cl-07", "quang-nam/tam-ky/tam-thanh")
	enrol(t, db, "tam-phu/cl-01", "quang-nam/tam-ky/tam-phu")
	noErr(t, db.UpdateStatus(ctx, "tam-thanh/cl-07", Status{NowPlaying: "x", Volume: 0.5, TemperatureC: 40}))
	noErr(t, db.RevokeDevice(ctx, "tam-phu/cl-01"))
	noErr(t, db.AddTerm(ctx, Term{DimLanguage, "vi", "Tiếng Việt"}))
	must3(t)(db.AddContent(ctx, Content{Ref: refOf("item0"), Size: 10, Language: "vi", Title: "Bản tin"}))
	must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: AreaTarget("quang-nam"), ID: "p", Document: []byte("a: 1"), Author: "admin"}))
	must[Schedule](t)(db.PutSchedule(ctx, Schedule{Target: DeviceTarget("tam-thanh/cl-07"), ID: "d", Document: []byte("b: 2"), Author: "lan"}))
	must[EffectiveSchedule](t)(db.AddEffective(ctx, EffectiveSchedule{DeviceID: "tam-thanh/cl-07", Revision: 4, Document: []byte("signed"), Sources: []SourceRevision{{AreaTarget("quang-nam"), 1}}}))
	must[Delivery](t)(db.MarkDelivery(ctx, "tam-thanh/cl-07", 4, StateActive, ""))
	_, err := db.AddConfirmations(ctx, "tam-thanh/cl-07", confs(1, 2, 3, 5))
	noErr(t, err)
	must[User](t)(db.AddUser(ctx, User{ID: "lan", Name: "Lan", Scope: "quang-nam/tam-ky/tam-thanh"}))
	noErr(t, db.AddToken(ctx, "lan", hashOf("tok"), "laptop", time.Time{}))
	must[AuditEntry](t)(db.AppendAudit(ctx, AuditEntry{Actor: "lan", Action: "schedule.push", Target: "device:tam-thanh/cl-07", Detail: json.RawMessage(`{"r":1}`)}))
}

const childEnv = "LOA_HUBSTORE_CHILD"

// TestMain lets the test binary act as a hub process that writes until it is killed, and
// starts PostgreSQL when the tests run on it (runTests).
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		childWriter(path)
		return
	}
	os.Exit(runTests(m))
}

// childWriter stores batches of 50 contiguous confirmations forever, printing the ack after
// each commit; the parent kills it with SIGKILL mid-write.
func childWriter(path string) {
	ctx := context.Background()
	db, err := Open(ctx, path, newClock(), nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if _, err := db.GetDevice(ctx, "cl-1"); err != nil {
		db.AddArea(ctx, Area{ID: "q", Name: "Q"})
		if _, err := db.EnrolDevice(ctx, Device{ID: "cl-1", Name: "1", Area: "q", Kind: KindCluster}, hashOf("s")); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	}
	ack, _ := db.AckedSeq(ctx, "cl-1")
	for {
		var batch []Confirmation
		for i := int64(1); i <= 50; i++ {
			batch = append(batch, conf(ack+i))
		}
		if ack, err = db.AddConfirmations(ctx, "cl-1", batch); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("ack", ack)
	}
}

// A hub process killed (SIGKILL, no Close) while writing: on reopen every confirmation it had
// acknowledged is there, nothing is half-stored, and ingest continues. Twice, to reopen a file
// left by a killed process and then kill that one too.
func TestReopenAfterProcessKilled(t *testing.T) {
	path := testSource(t)
	var lastAck int64
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, err := cmd.StdoutPipe()
		noErr(t, err)
		cmd.Stderr = os.Stderr
		noErr(t, cmd.Start())
		// Read acks; after the 20th, SIGKILL the child while it writes and read what it printed
		// before dying (it runs ahead of this reader).
		sc := bufio.NewScanner(out)
		acks := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 || f[0] != "ack" {
				t.Fatalf("child: %s", sc.Text())
			}
			a, _ := strconv.ParseInt(f[1], 10, 64)
			if a <= lastAck {
				t.Fatalf("round %d: ack went from %d to %d", round, lastAck, a)
			}
			lastAck = a
			if acks++; acks == 20 {
				cmd.Process.Kill()
			}
		}
		cmd.Wait()
		if acks < 20 {
			t.Fatalf("round %d: child stopped after %d batches", round, acks)
		}

		ctx := context.Background()
		db, err := Open(ctx, path, newClock(), testLogger(t))
		noErr(t, err)
		if !db.pg {
			var check string
			noErr(t, db.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check))
			if check != "ok" {
				t.Fatalf("integrity check after kill: %s", check)
			}
		}
		ack := must[int64](t)(db.AckedSeq(ctx, "cl-1"))
		seqs := storedSeqs(t, db, "cl-1")
		// Everything acknowledged is stored; at most the batch in flight committed after that,
		// and whole batches only.
		if ack < lastAck || ack > lastAck+50 || ack%50 != 0 || int64(len(seqs)) != ack || seqs[len(seqs)-1] != ack {
			t.Fatalf("round %d: last ack seen %d; after reopen ack %d with %d records (last %d)", round, lastAck, ack, len(seqs), seqs[len(seqs)-1])
		}
		lastAck = ack
		noErr(t, db.Close())
	}
}

// Many goroutines write and read at once, plus a second handle on the same file (as another
// process would be): no lost or doubled confirmation, no SQLITE_BUSY surfacing, and -race clean.
func TestConcurrentWriters(t *testing.T) {
	db, clk, path := openTest(t)
	ctx := context.Background()
	seedTree(t, db)
	db2, err := Open(ctx, path, clk, testLogger(t))
	noErr(t, err)
	defer db2.Close()

	const devices, per, batch = 6, 200, 40
	for i := range devices {
		enrol(t, db, fmt.Sprintf("cl-%d", i), "quang-nam/tam-ky/tam-thanh")
	}
	enrol(t, db, "shared", "quang-nam/duy-hai")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := db
			if i%2 == 1 {
				h = db2
			}
			r := rand.New(rand.NewPCG(uint64(i), 1))
			seqs := r.Perm(per)
			dev := fmt.Sprintf("cl-%d", i)
			for len(seqs) > 0 {
				n := min(batch, len(seqs))
				var b []Confirmation
				for _, s := range seqs[:n] {
					b = append(b, conf(int64(s+1)))
				}
				b = append(b, conf(int64(r.IntN(per)+1))) // a duplicate of some record
				if _, err := h.AddConfirmations(ctx, dev, b); err != nil {
					errs <- err
					return
				}
				seqs = seqs[n:]
				if err := h.UpdateStatus(ctx, dev, Status{NowPlaying: fmt.Sprint(len(seqs))}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Two senders race on one device with the same records (a reconnect while the old link
	// is still draining).
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := []*DB{db, db2}[k]
			for s := int64(1); s <= per; s += batch {
				var b []Confirmation
				for j := s; j < s+batch && j <= per; j++ {
					b = append(b, conf(j))
				}
				if _, err := h.AddConfirmations(ctx, "shared", b); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.ListDevices(ctx, "quang-nam"); err != nil {
					errs <- err
					return
				}
				if _, err := db.CheckSecret(ctx, "cl-0", hashOf("secret-cl-0")); err != nil {
					errs <- err
					return
				}
				if _, err := db.Report(ctx, ReportFilter{From: t0, To: t0.Add(time.Hour * 1000), GroupBy: []Dimension{DimLanguage}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, dev := range []string{"cl-0", "cl-1", "cl-2", "cl-3", "cl-4", "cl-5", "shared"} {
		seqs := storedSeqs(t, db, dev)
		ack := must[int64](t)(db.AckedSeq(ctx, dev))
		if len(seqs) != per || seqs[0] != 1 || seqs[per-1] != per || ack != per {
			t.Fatalf("%s: %d records (want %d), ack %d", dev, len(seqs), per, ack)
		}
	}
}
