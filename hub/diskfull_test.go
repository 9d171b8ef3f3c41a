package hub

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// smallDisk mounts a tmpfs of size bytes: a disk the test can fill and empty again.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("mounting a small tmpfs (the full disk) needs root")
		}
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// storedSeqs is how many confirmations of the device the store holds.
func (h *testHub) storedSeqs(device string) int {
	h.t.Helper()
	cs, err := h.db.ListConfirmations(context.Background(), store.ConfirmationFilter{DeviceID: device})
	if err != nil {
		h.t.Fatal(err)
	}
	return len(cs)
}

// fill writes a ballast file until the disk refuses more.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// The hub's disk fills while agents send confirmations and staff upload: uploads are refused
// saying the disk is full (507), confirmations are not acknowledged (not_stored, with a retry
// time) while the agent stays connected and served, nothing acknowledged is lost, and once there
// is space again the resent confirmations are stored and acknowledged, and uploads work.
func TestHubDiskFull(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe", "sox")
	dir := smallDisk(t, 48<<20)
	h := newTestHubIn(t, dir)
	h.addArea("qn/tk")
	secret := h.enrol("c1/cl-01", "qn/tk")
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{})

	batch := func(from, n uint64) *protocol.Confirmations {
		m := &protocol.Confirmations{}
		for seq := from; seq < from+n; seq++ {
			c := confirmation("c1/cl-01", seq)
			c.Error = strings.Repeat("lỗi phát ", 300) // big records fill the disk sooner
			m.Records = append(m.Records, c)
		}
		return m
	}
	// answer reads the hub's answer to a batch: its ack, or its refusal.
	answer := func() (uint64, *protocol.ErrorMessage) {
		t.Helper()
		for {
			switch m := a.next().(type) {
			case *protocol.Ack:
				return m.Seq, nil
			case *protocol.ErrorMessage:
				return 0, m
			}
		}
	}
	a.send(batch(1, 20))
	if ack, e := answer(); ack != 20 {
		t.Fatalf("with space: ack %d, error %+v; want ack 20", ack, e)
	}

	wav := filepath.Join(t.TempDir(), "tone.wav")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", wav, "synth", "20", "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	ballast := filepath.Join(dir, "ballast")
	fill(t, ballast)

	code, _, msg := upload(t, h, wav, map[string]string{"title": "Bản tin"})
	if code != http.StatusInsufficientStorage || !strings.Contains(msg, "disk is full") {
		t.Errorf("upload on a full disk: %d %q, want 507 saying the disk is full", code, msg)
	}
	// Confirmations until the store refuses (SQLite may find room in pages it has).
	next, refused := uint64(21), (*protocol.ErrorMessage)(nil)
	acked := uint64(20)
	for i := 0; i < 200 && refused == nil; i++ {
		a.send(batch(next, 50))
		ack, e := answer()
		next += 50
		if e != nil {
			refused = e
			break
		}
		acked = ack
	}
	if refused == nil {
		t.Fatal("the store never refused confirmations on a full disk")
	}
	if refused.Code != protocol.CodeNotStored || refused.RetryAfterS <= 0 {
		t.Fatalf("refusal: %+v, want code %s with retry_after_s", refused, protocol.CodeNotStored)
	}
	t.Logf("acknowledged up to %d; refused from %d: %s", acked, next-50, refused.Message)
	// Still connected and answered: another batch gets its own answer on the same connection.
	a.send(batch(next, 50))
	if _, e := answer(); e == nil || e.Code != protocol.CodeNotStored {
		t.Fatalf("second batch on a full disk: %+v", e)
	}
	next += 50
	// Everything acknowledged is stored.
	if n := h.storedSeqs("c1/cl-01"); n < int(acked) {
		t.Fatalf("acknowledged %d, stored %d", acked, n)
	}

	// Space again: the agent sends everything unacknowledged again.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var ack uint64
	for from := acked + 1; from < next; from += 50 {
		a.send(batch(from, min(50, next-from)))
		var e *protocol.ErrorMessage
		if ack, e = answer(); e != nil {
			t.Fatalf("after space came back, batch from %d: %+v", from, e)
		}
	}
	if ack != next-1 {
		t.Fatalf("after space came back: ack %d, want %d", ack, next-1)
	}
	if n := h.storedSeqs("c1/cl-01"); n != int(next-1) {
		t.Fatalf("stored %d confirmations, want %d", n, next-1)
	}
	if code, c, msg := upload(t, h, wav, map[string]string{"title": "Bản tin"}); code != http.StatusCreated || c.Ref == "" {
		t.Fatalf("upload after space came back: %d %q", code, msg)
	}
}
