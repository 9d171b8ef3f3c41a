package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/pgtest"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// The hub's tests run on SQLite; those of several hubs on one database start a PostgreSQL
// server (internal/pgtest) when the first of them runs.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, func(url string) error {
		db, err := store.Open(context.Background(), url, realClock{}, nil)
		if err != nil {
			return err
		}
		return db.Close()
	}))
}

// newReplicas starts two hubs on one fresh PostgreSQL database, with one signing key and
// one content directory, each behind its own loopback server and listening to the other.
func newReplicas(t testing.TB) (a, b *testHub) {
	t.Helper()
	hubs := newHubsOnOneDatabase(t, "a", "b")
	return hubs[0], hubs[1]
}

// alone is a hub's store that does not say it is shared: the hub announces nothing and
// hears nothing, as if its notifications were lost.
type alone struct{ Store }

// newHubsOnOneDatabase is newReplicas for hubs with the given names; one named "alone"
// neither announces nor listens.
func newHubsOnOneDatabase(t testing.TB, names ...string) []*testHub {
	t.Helper()
	return newHubsOnOneDatabaseWith(t, nil, names...)
}

// newHubsOnOneDatabaseWith is newHubsOnOneDatabase with edit applied to each hub's Options.
func newHubsOnOneDatabaseWith(t testing.TB, edit func(*Options), names ...string) []*testHub {
	t.Helper()
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	pub, signer := testSigner(t)
	hubs := make([]*testHub, len(names))
	for i, name := range names {
		log := testLog().With("replica", name)
		db, err := store.Open(context.Background(), url, realClock{}, log)
		if err != nil {
			t.Fatal(err)
		}
		var st Store = db
		if name == "alone" {
			st = alone{db}
		}
		opts := Options{Store: st, Signer: signer, ContentDir: filepath.Join(dir, "content"), Log: log, StatusInterval: time.Minute,
			Transcoder: &media.Transcoder{FFmpeg: "ffmpeg", FFprobe: "ffprobe", LoudnessLUFS: -16, TempDir: filepath.Join(dir, name, "tmp")}}
		if edit != nil {
			edit(&opts)
		}
		srv, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		ctx, stop := context.WithCancel(context.Background())
		var loops sync.WaitGroup
		loops.Go(func() { srv.RunReplicas(ctx) })
		t.Cleanup(func() {
			hs.CloseClientConnections()
			srv.Close()
			hs.Close()
			stop()
			loops.Wait()
			db.Close()
		})
		hubs[i] = &testHub{t: t, db: db, srv: srv, http: hs, pub: pub, dir: dir}
	}
	admin, err := AddUser(context.Background(), hubs[0].db, "admin", "Province admin", "qn", "Quảng Nam")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hubs {
		h.admin = admin
		h.waitReady(http.StatusOK)
	}
	return hubs
}

// waitReady waits until GET /readyz answers want.
func (h *testHub) waitReady(want int) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.http.URL + "/readyz")
		if err != nil {
			h.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("GET /readyz: %d %q, want %d", resp.StatusCode, body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// What is done through one replica reaches the agents connected to the other: an emergency,
// a push, a command and a revocation.
func TestReplicasReachEachOthersAgents(t *testing.T) {
	a, b := newReplicas(t)
	a.addArea("qn/tk")
	s1 := a.enrol("tk/cl-01", "qn/tk")
	s2 := a.enrol("tk/cl-02", "qn/tk")
	onB := b.cmdAgent("tk/cl-01", s1, realClock{}, nil)
	onA, _ := a.connect("tk/cl-02", s2, protocol.Hello{})

	// An emergency sent through A is played by the agent on B.
	var res api.EmergencyResponse
	a.mustCall(a.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk", Text: "Bão số 13 sắp đổ bộ.", Series: "storm-13"},
		&res, http.StatusCreated)
	p1, doc := verifySchedule(t, b, "tk/cl-01", nextSchedule(t, onB.fakeAgent), 0)
	if eps := emergencyPrograms(doc); len(eps) == 0 || eps[0].ID != res.Emergencies[0].Program {
		t.Fatalf("the agent on B got %+v, want the emergency %s", eps, res.Emergencies[0].Program)
	}
	p2, _ := verifySchedule(t, a, "tk/cl-02", nextSchedule(t, onA), 0) // and the one on A, locally

	// A push through B reaches the agent on A.
	ref := addFakeContent(t, b, "44", 30*time.Second)
	if code, _, msg := b.push(b.admin, "qn/tk", docWith("tk", "Asia/Ho_Chi_Minh", "morning", ref)); code != http.StatusOK {
		t.Fatalf("push through B: %d %s", code, msg)
	}
	_, doc = verifySchedule(t, a, "tk/cl-02", nextSchedule(t, onA), p2.Revision)
	if !hasProgram(doc, "qn/tk/morning") {
		t.Fatalf("the agent on A got programmes %v, want qn/tk/morning", programIDs(doc))
	}
	verifySchedule(t, b, "tk/cl-01", nextSchedule(t, onB.fakeAgent), p1.Revision)

	// A command issued through A reaches the agent on B, which carries it out.
	vol := 0.4
	c := a.issue(a.admin, api.CommandRequest{To: "tk/cl-01", Action: "volume", Volume: &vol})
	if p, err := onB.command(); err != nil || p.ID != c.ID {
		t.Fatalf("the agent on B: command %+v, %v; want %s", p, err, c.ID)
	}
	a.outcomes(c.ID, map[string]string{"tk/cl-01": "executed"})

	// A device revoked through A loses its connection to B at once.
	a.mustCall(a.admin, "DELETE", "/api/devices/tk/cl-01", nil, nil, http.StatusOK)
	if _, err := onB.closed(); err == nil {
		t.Fatal("the revoked device's connection to B ended without an error")
	}
}

// The database restarts: both replicas report not ready while it is down, come back by
// themselves, and a push through one after that reaches the agent on the other.
func TestReplicasRecoverAfterDatabaseRestart(t *testing.T) {
	a, b := newReplicas(t)
	a.addArea("qn/tk")
	s1 := a.enrol("tk/cl-01", "qn/tk")
	onB, _ := b.connect("tk/cl-01", s1, protocol.Hello{})

	pgtest.Stop(t)
	restarted := false
	defer func() {
		if !restarted { // the other tests need the server
			pgtest.Restart(t)
		}
	}()
	a.waitReady(http.StatusServiceUnavailable)
	b.waitReady(http.StatusServiceUnavailable)
	if resp, err := http.Get(a.http.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz while the database is down: %v %v, want 200 (the process is alive)", resp, err)
	}
	pgtest.Restart(t)
	restarted = true
	a.waitReady(http.StatusOK)
	b.waitReady(http.StatusOK)

	ref := addFakeContent(t, a, "45", 30*time.Second)
	if code, _, msg := a.push(a.admin, "qn/tk", docWith("tk", "Asia/Ho_Chi_Minh", "noon", ref)); code != http.StatusOK {
		t.Fatalf("push through A after the restart: %d %s", code, msg)
	}
	_, doc := verifySchedule(t, b, "tk/cl-01", nextSchedule(t, onB), 0)
	if !hasProgram(doc, "qn/tk/noon") {
		t.Fatalf("the agent on B got programmes %v, want qn/tk/noon", programIDs(doc))
	}
}

func programIDs(doc *scheduler.Document) []string {
	var ids []string
	for _, p := range doc.Programs {
		ids = append(ids, p.ID)
	}
	return ids
}

func hasProgram(doc *scheduler.Document, id string) bool { return slices.Contains(programIDs(doc), id) }

// Every replica serves every item: they share one content directory (docs/scale.md), so an
// item uploaded through A is downloaded, whole and as uploaded, through B.
func TestReplicasServeEachOthersContent(t *testing.T) {
	needTools(t, "sox", "ffmpeg", "ffprobe")
	a, b := newReplicas(t)
	a.addArea("qn/tk")
	secret := a.enrol("tk/cl-01", "qn/tk")
	wav := filepath.Join(t.TempDir(), "tone.wav")
	if out, err := exec.Command("sox", "-D", "-n", "-r", "44100", "-c", "1", "-b", "16", wav, "synth", "1", "sine", "440", "vol", "0.1").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	code, c, msg := upload(t, a, wav, map[string]string{"title": "Bản tin thử"})
	if code != http.StatusCreated {
		t.Fatalf("upload through A: %d %q", code, msg)
	}
	req, _ := http.NewRequest("GET", b.http.URL+"/content/"+c.Ref, nil)
	req.Header.Set("Authorization", protocol.FormatDeviceAuth("tk/cl-01", secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if sum := sha256.Sum256(data); resp.StatusCode != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != c.Ref || int64(len(data)) != c.Size {
		t.Fatalf("GET %s through B: %d, %d bytes of sha256 %x; want 200 and the %d bytes uploaded through A", c.Ref, resp.StatusCode, len(data), sum, c.Size)
	}
}

// One hub on SQLite: alive and ready; with its store closed, still alive but not ready, and
// the answer says nothing more.
func TestHealthAndReadiness(t *testing.T) {
	h := newTestHub(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(h.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		if code, body := get(path); code != http.StatusOK || body != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	h.db.Close()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Fatalf("GET /readyz with the store closed: %d %q, want 503 and nothing more", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz with the store closed: %d, want 200 (the process is alive)", code)
	}
}

// Staff looking through A see a device connected to B online, and what it plays: its status
// is announced to A, whose overview read the devices before it came.
func TestReplicasShowEachOthersDevices(t *testing.T) {
	a, b := newReplicas(t)
	a.addArea("qn/tk")
	secret := a.enrol("tk/cl-01", "qn/tk")
	var ov api.OverviewJSON
	a.mustCall(a.admin, "GET", "/api/overview", nil, &ov, http.StatusOK) // A's view of the devices, cached
	if len(ov.Counts) != 1 || ov.Counts[0].Online != 0 {
		t.Fatalf("before the device connects: %+v", ov.Counts)
	}
	onB, _ := b.connect("tk/cl-01", secret, protocol.Hello{})
	onB.send(&protocol.Status{At: time.Now(), UptimeS: 12, NowPlaying: []protocol.NowPlaying{{Output: "speakers", Program: "qn/tk/morning"}}})
	want := api.AreaCountJSON{Area: "qn/tk", Kind: "cluster", Online: 1, Playing: 1}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a.mustCall(a.admin, "GET", "/api/overview", nil, &ov, http.StatusOK)
		if len(ov.Counts) == 1 && ov.Counts[0] == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's overview %+v, want %+v", ov.Counts, want)
		}
	}
	var d api.DeviceJSON
	a.mustCall(a.admin, "GET", "/api/devices/tk/cl-01", nil, &d, http.StatusOK)
	if !d.Online || d.NowPlaying == "" {
		t.Fatalf("the device through A: online %v, playing %q; want online and playing", d.Online, d.NowPlaying)
	}
}

// What a replica did while another was not listening (its notifications lost) reaches the
// other's agents when it resynchronises, as after its listening connection came back: the
// newest schedule, an unanswered command, and a revoked device's connection closed.
func TestReplicaResyncCatchesUpLostNotifications(t *testing.T) {
	hubs := newHubsOnOneDatabase(t, "alone", "b")
	lost, b := hubs[0], hubs[1]
	lost.addArea("qn/tk")
	s1 := lost.enrol("tk/cl-01", "qn/tk")
	s2 := lost.enrol("tk/cl-02", "qn/tk")
	onB := b.cmdAgent("tk/cl-01", s1, realClock{}, nil)
	revoked, _ := b.connect("tk/cl-02", s2, protocol.Hello{})

	ref := addFakeContent(t, lost, "47", 30*time.Second)
	if code, _, msg := lost.push(lost.admin, "qn/tk", docWith("tk", "Asia/Ho_Chi_Minh", "morning", ref)); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, msg)
	}
	vol := 0.5
	c := lost.issue(lost.admin, api.CommandRequest{To: "tk/cl-01", Action: "volume", Volume: &vol})
	lost.mustCall(lost.admin, "DELETE", "/api/devices/tk/cl-02", nil, nil, http.StatusOK)
	select {
	case m := <-onB.msgs:
		t.Fatalf("the agent on B got %T before B resynchronised: the notifications were not lost", m)
	case <-time.After(300 * time.Millisecond):
	}

	b.srv.link.Resync(context.Background())
	_, doc := verifySchedule(t, b, "tk/cl-01", onB.next(), 0)
	if !hasProgram(doc, "qn/tk/morning") {
		t.Fatalf("after the resync the agent on B got programmes %v, want qn/tk/morning", programIDs(doc))
	}
	if p, err := onB.command(); err != nil || p.ID != c.ID {
		t.Fatalf("after the resync, command %+v, %v; want %s", p, err, c.ID)
	}
	if _, err := revoked.closed(); err == nil {
		t.Fatal("the revoked device's connection to B ended without an error")
	}
}
