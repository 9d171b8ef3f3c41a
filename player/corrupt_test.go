package player_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/player"
)

// cleanMP3 makes a 3 s 128 kbps MP3 and returns its path, bytes and clean decode.
func cleanMP3(t *testing.T) (string, []byte, player.Proof) {
	t.Helper()
	_, music := media(t)
	p := filepath.Join(t.TempDir(), "clean.mp3")
	run(t, "lame", "--quiet", "-b", "128", music, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := playFile(t, p)
	return p, b, proof
}

func TestCorruptFiles(t *testing.T) {
	_, clean, ref := cleanMP3(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	frame := int64(1152 * rate / 44100)

	t.Run("truncated mid-frame", func(t *testing.T) {
		cut := len(clean)*6/10 + 200
		p := write("truncated.mp3", clean[:cut])
		proof, _ := playFile(t, p)
		if proof.Ended != player.EndCompleted {
			t.Fatalf("a truncated file should play what it has: %s", fmtProof(proof))
		}
		want := ref.Frames * int64(cut) / int64(len(clean))
		if d := proof.Frames - want; d > 2*frame || d < -2*frame {
			t.Errorf("played %d frames, about %d expected for %d of %d bytes", proof.Frames, want, cut, len(clean))
		}
		if proof.SkippedBytes == 0 || proof.SkippedPlaces != 1 {
			t.Errorf("the cut frame should be reported as skipped: %s", fmtProof(proof))
		}
	})

	t.Run("garbage in the middle", func(t *testing.T) {
		// Junk without 0xFF cannot hold a frame sync: all of it must be skipped and only the
		// frame it was put into lost.
		rng := rand.New(rand.NewPCG(1, 2))
		junk := make([]byte, 6000)
		for i := range junk {
			junk[i] = byte(rng.IntN(255))
		}
		at := len(clean) / 2
		b := append(append(append([]byte{}, clean[:at]...), junk...), clean[at:]...)
		proof, _ := playFile(t, write("garbage.mp3", b))
		if proof.Ended != player.EndCompleted {
			t.Fatalf("garbage should be skipped: %s", fmtProof(proof))
		}
		if proof.SkippedBytes < 6000 || proof.SkippedBytes > 6000+2*418 || proof.SkippedPlaces < 1 {
			t.Errorf("skipped %d bytes in %d places, want the 6000 bytes of junk and at most the frames it broke", proof.SkippedBytes, proof.SkippedPlaces)
		}
		if d := ref.Frames - proof.Frames; d < 0 || d > 2*frame {
			t.Errorf("played %d frames, the clean file %d: want at most two frames lost", proof.Frames, ref.Frames)
		}
	})

	t.Run("random garbage", func(t *testing.T) {
		// Random junk may hold false frame syncs, even of another MPEG version and rate
		// (mpg123 calls it a "Frankenstein stream"): libmpg123 then decodes a few false frames.
		// No real audio may be lost beyond the frame the junk broke, the false frames must
		// stay short, and nothing beyond full scale may reach the output.
		rng := rand.New(rand.NewPCG(3, 4))
		junk := make([]byte, 6000)
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		at := len(clean) / 3
		b := append(append(append([]byte{}, clean[:at]...), junk...), clean[at:]...)
		proof, got := playFile(t, write("garbage2.mp3", b))
		if proof.Ended != player.EndCompleted || proof.SkippedBytes == 0 {
			t.Fatalf("want completed with bytes skipped: %s", fmtProof(proof))
		}
		if d := proof.Frames - ref.Frames; d < -2*frame || d > rate/2 {
			t.Errorf("played %d frames, the clean file %d", proof.Frames, ref.Frames)
		}
		for _, v := range got {
			if v > 1 || v < -1 {
				t.Fatalf("sample %v beyond full scale reached the output", v)
			}
		}
	})

	t.Run("zero bytes", func(t *testing.T) {
		p := write("empty.mp3", nil)
		proof, _ := playFile(t, p)
		if proof.Ended != player.EndFailed || !strings.Contains(proof.Error, p) || !strings.Contains(proof.Error, "empty") {
			t.Errorf("want a failure naming the empty file: %s", fmtProof(proof))
		}
	})

	t.Run("text file named .mp3", func(t *testing.T) {
		p := write("notes.mp3", []byte(strings.Repeat("Lịch phát thanh xã Tam Thanh: sáng 6h30, chiều 17h00.\n", 200)))
		proof, _ := playFile(t, p)
		if proof.Ended != player.EndFailed || !strings.Contains(proof.Error, p) || !strings.Contains(proof.Error, "not an MP3") {
			t.Errorf("want a failure naming the file as not audio: %s", fmtProof(proof))
		}
		if proof.Frames != 0 {
			t.Errorf("played %d frames of text", proof.Frames)
		}
	})

	t.Run("ID3 tag larger than the file", func(t *testing.T) {
		// An ID3v2 header whose size field (synchsafe, 50 MB) claims far more than the file.
		hdr := []byte{'I', 'D', '3', 3, 0, 0, 0x18, 0, 0, 0}
		body := append([]byte("TIT2\x00\x00\x00\x05\x00\x00\x00Test"), clean...)
		p := write("bigtag.mp3", append(hdr, body...))
		proof, _ := playFile(t, p)
		switch proof.Ended {
		case player.EndCompleted:
			if d := proof.Frames - ref.Frames; d > 2*frame || d < -2*frame {
				t.Errorf("played %d frames, the clean file %d", proof.Frames, ref.Frames)
			}
		case player.EndFailed:
			if !strings.Contains(proof.Error, p) || !strings.Contains(proof.Error, "ID3") {
				t.Errorf("the error should name the file and its ID3 tag: %s", proof.Error)
			}
		default:
			t.Errorf("unexpected end: %s", fmtProof(proof))
		}
	})

	t.Run("WAV cut short", func(t *testing.T) {
		_, music := media(t)
		b, err := os.ReadFile(music)
		if err != nil {
			t.Fatal(err)
		}
		p := write("cut.wav", b[:len(b)/2+1])
		proof, _ := playFile(t, p)
		if proof.Ended != player.EndCompleted || proof.SkippedPlaces != 1 {
			t.Errorf("a cut WAV should play its half and report the cut: %s", fmtProof(proof))
		}
		if d := proof.Frames - 3*rate/2; d > rate/100 || d < -rate/100 {
			t.Errorf("played %d frames, want about %d", proof.Frames, 3*rate/2)
		}
	})
}
