package player_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/player"
)

// TestIcecastRelayDropouts relays a live MP3 stream from a real Icecast server fed by ffmpeg
// and forces two drop-outs while it plays: first the source (ffmpeg) is killed and comes back
// with another tone, then the Icecast server itself is killed and restarted with a third. The
// item must play on to its end, the audio after each gap must be the new source's tone, and
// the proof must report the drop-outs and reconnects.
func TestIcecastRelayDropouts(t *testing.T) {
	ice := newIcecast(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is not installed: run scripts/install-deps")
	}
	ice.start()
	src := ice.feed(440)

	dir := t.TempDir()
	outPath := filepath.Join(dir, "relay.wav")
	out, err := player.NewWAVOutput(outPath, rate)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	p, err := player.New(player.Config{Output: out, Log: slog.New(slog.NewTextHandler(logs, nil)),
		BackoffMin: 100 * time.Millisecond, BackoffMax: 300 * time.Millisecond, StallTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("player log:\n%s\nicecast log:\n%s", logs.String(), ice.log.String())
		}
	}()
	const dur = 10 * time.Second
	t0 := time.Now()
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{{URL: ice.url(), Duration: dur}}, Gain: 1})
	if err != nil {
		t.Fatal(err)
	}
	// waitFrames waits until the item has played n frames more than it had at from.
	waitFrames := func(what string, from, n int64) {
		t.Helper()
		for pb.Progress().ItemFrames < from+n {
			select {
			case <-pb.Done():
				t.Fatalf("the item ended before %s (%d frames played)", what, pb.Progress().ItemFrames)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	const down = 700 * time.Millisecond // each forced outage lasts at least this

	waitFrames("the first tone played", 0, rate)
	// Drop-out 1: the encoder goes away (Icecast drops its listeners), then comes back.
	src.kill()
	time.Sleep(down)
	src = ice.feed(660)
	waitFrames("the second tone played", pb.Progress().ItemFrames, rate)
	// Drop-out 2: the server itself goes away and comes back on the same port.
	ice.kill()
	src.kill()
	time.Sleep(down)
	ice.start()
	src = ice.feed(880)

	res := pb.Wait()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	src.kill()
	proof := res.Items[0]
	t.Logf("proof %s", fmtProof(proof))
	if proof.Ended != player.EndCompleted || proof.Error != "" {
		t.Fatalf("the relay did not play on to its end: %s", fmtProof(proof))
	}
	if proof.End.Before(t0.Add(dur)) {
		t.Errorf("the item ended at +%v, before its %v", proof.End.Sub(t0), dur)
	}
	if proof.Dropouts < 2 || proof.Reconnects < 2 || proof.Gaps < 2 {
		t.Errorf("dropouts %d, reconnects %d, gaps %d: want at least the 2 forced", proof.Dropouts, proof.Reconnects, proof.Gaps)
	}
	if proof.ConnectFailures < 1 {
		t.Errorf("no failed connection reported, yet the mount and the server were away")
	}
	if proof.GapS < 2*0.9*down.Seconds() || proof.MissingS < proof.GapS {
		t.Errorf("gaps %.3f s, missing %.3f s: want at least the 2×%v forced down, and missing ≥ gaps", proof.GapS, proof.MissingS, down)
	}
	// The window is accounted for: what played plus what was missing is the item's length
	// (a little more: Icecast's burst on each connect hands over audio already sent).
	if acc := proof.PlayedS + proof.MissingS; acc < dur.Seconds()-1.5 || acc > dur.Seconds()+1.5 {
		t.Errorf("played %.3f s + missing %.3f s = %.3f s, want about the item's %v", proof.PlayedS, proof.MissingS, acc, dur)
	}

	got, _ := readWAV(t, outPath)
	seq := toneSequence(left(got), []float64{440, 660, 880})
	t.Logf("tones heard (Hz, seconds): %v", seq)
	want := []float64{440, 660, 880}
	if len(seq) != len(want) {
		t.Fatalf("heard %v; want 440 Hz, then 660 Hz after the first drop-out, then 880 Hz after the second", seq)
	}
	for i, s := range seq {
		if s.freq != want[i] || s.secs < 0.5 {
			t.Errorf("segment %d: %.0f Hz for %.2f s; want %.0f Hz for at least 0.5 s", i, s.freq, s.secs, want[i])
		}
	}
}

// toneRun is a stretch of output where one tone dominates.
type toneRun struct {
	freq float64
	secs float64
}

func (r toneRun) String() string { return fmt.Sprintf("%.0f:%.2f", r.freq, r.secs) }

// toneSequence splits x into 50 ms windows, names each by the tone of freqs holding most of
// its energy (windows with no clear tone, such as fades and silence, are left out), and
// returns the runs of the same tone in order.
func toneSequence(x []float64, freqs []float64) []toneRun {
	const win = rate / 20
	var runs []toneRun
	for off := 0; off+win <= len(x); off += win {
		w := x[off : off+win]
		var energy float64
		for _, v := range w {
			energy += v * v
		}
		if energy < 1e-6*win {
			continue
		}
		for _, f := range freqs {
			// Goertzel power at f, normalised so a pure tone gives its whole energy.
			k := 2 * math.Cos(2*math.Pi*f/rate)
			var s1, s2 float64
			for _, v := range w {
				s1, s2 = v+k*s1-s2, s1
			}
			pow := (s1*s1 + s2*s2 - k*s1*s2) * 2 / win
			if pow > 0.8*energy {
				if n := len(runs); n > 0 && runs[n-1].freq == f {
					runs[n-1].secs += float64(win) / rate
				} else {
					runs = append(runs, toneRun{f, float64(win) / rate})
				}
				break
			}
		}
	}
	return runs
}

// icecast is a real Icecast server on a loopback port, configured in a temporary directory.
type icecast struct {
	t    *testing.T
	bin  string
	conf string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the running server has exited
	log  *testkit.Buffer
}

const icecastPassword = "hackme-loa"

func newIcecast(t *testing.T) *icecast {
	bin, err := exec.LookPath("icecast2")
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("icecast2 is not installed (scripts/install-deps installs it when run as root)")
		}
		t.Fatal("icecast2 is not installed: run scripts/install-deps")
	}
	dir := t.TempDir()
	port := testkit.FreePort(t)
	// Icecast refuses to run as root; it then needs a user to switch to.
	security := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("icecast2") // made by the Debian package
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatalf("no user for icecast to run as: %v", err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatalf("group of user %s: %v", u.Username, err)
		}
		security = fmt.Sprintf("<security><chroot>0</chroot><changeowner><user>%s</user><group>%s</group></changeowner></security>", u.Username, g.Name)
	}
	// A small burst on connect keeps the relay near live; logs go to stderr ("-").
	conf := fmt.Sprintf(`<icecast>
  <location>loa test</location><admin>test@localhost</admin>
  <limits><clients>20</clients><sources>2</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>4096</burst-size></limits>
  <authentication><source-password>%[1]s</source-password><relay-password>%[1]s</relay-password>
    <admin-user>admin</admin-user><admin-password>%[1]s</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>%[2]d</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths><basedir>%[3]s</basedir><logdir>%[3]s</logdir><webroot>%[3]s</webroot><adminroot>%[3]s</adminroot></paths>
  <logging><accesslog>-</accesslog><errorlog>-</errorlog><loglevel>3</loglevel></logging>
  %[4]s
</icecast>
`, icecastPassword, port, dir, security)
	path := filepath.Join(dir, "icecast.xml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ic := &icecast{t: t, bin: bin, conf: path, port: port, log: &testkit.Buffer{}}
	t.Cleanup(ic.kill)
	return ic
}

func (ic *icecast) url() string { return fmt.Sprintf("http://127.0.0.1:%d/live.mp3", ic.port) }

// start runs the server and waits until it accepts connections.
func (ic *icecast) start() {
	ic.t.Helper()
	cmd := exec.Command(ic.bin, "-c", ic.conf)
	cmd.Stdout, cmd.Stderr = ic.log, ic.log
	if err := cmd.Start(); err != nil {
		ic.t.Fatalf("starting icecast2: %v", err)
	}
	ic.cmd, ic.done = cmd, make(chan struct{})
	var werr error
	go func(done chan struct{}) { werr = cmd.Wait(); close(done) }(ic.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ic.port))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ic.done:
			ic.cmd = nil
			ic.t.Fatalf("icecast2 exited at start (%v):\n%s", werr, ic.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ic.t.Fatalf("icecast2 not listening on port %d after 10 s:\n%s", ic.port, ic.log.String())
		}
	}
}

// kill stops the server at once (SIGKILL): listeners see the connection die.
func (ic *icecast) kill() {
	if ic.cmd == nil {
		return
	}
	ic.cmd.Process.Kill()
	<-ic.done // its sockets are closed: a restart can bind the port
	ic.cmd = nil
}

// source is an ffmpeg process sending a sine tone as 128 kbps MP3 to the server, in real time.
type source struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// feed starts a source and waits until Icecast lists its mount.
func (ic *icecast) feed(freq int) *source {
	ic.t.Helper()
	var errb testkit.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=44100", freq),
		"-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3",
		fmt.Sprintf("icecast://source:%s@127.0.0.1:%d/live.mp3", icecastPassword, ic.port))
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		ic.t.Fatalf("starting ffmpeg: %v", err)
	}
	s := &source{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	ic.t.Cleanup(s.kill)
	deadline := time.Now().Add(10 * time.Second)
	for !ic.mounted() {
		select {
		case <-s.done:
			ic.t.Fatalf("ffmpeg exited before its stream was up:\n%s\nicecast:\n%s", errb.String(), ic.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ic.t.Fatalf("the mount did not come up in 10 s:\n%s", errb.String())
		}
	}
	return s
}

// mounted tells whether the server lists the live mount (its admin page, not a listener).
func (ic *icecast) mounted() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/admin/listmounts", ic.port), nil)
	req.SetBasicAuth("admin", icecastPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`mount="/live.mp3"`))
}

// kill stops the source at once (SIGKILL) and waits for it to exit.
func (s *source) kill() {
	s.cmd.Process.Kill()
	<-s.done
}
