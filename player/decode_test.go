package player_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/player"
)

// media makes the test's source material: Vietnamese speech from espeak-ng and a stereo
// two-tone "music" from sox, as WAV.
func media(t *testing.T) (speech, music string) {
	t.Helper()
	dir := t.TempDir()
	speech = filepath.Join(dir, "vi.wav")
	run(t, "espeak-ng", "-v", "vi", "-w", speech, "Thông báo lịch tiêm chủng cho trẻ em dưới năm tuổi tại trạm y tế xã vào sáng thứ bảy")
	music = filepath.Join(dir, "music.wav")
	run(t, "sox", "-D", "-n", "-r", "44100", "-c", "2", "-b", "16", music, "synth", "3", "sine", "300-900", "sine", "500", "tremolo", "3", "60", "vol", "0.6")
	return speech, music
}

// apeTag is a minimal APEv2 tag (header, one item, footer) as found at the end of files.
func apeTag() []byte {
	item := []byte("Title\x00Ban tin sang")
	var body bytes.Buffer
	binary.Write(&body, binary.LittleEndian, uint32(len("Ban tin sang")))
	binary.Write(&body, binary.LittleEndian, uint32(0))
	body.Write(item)
	hf := func(flags uint32) []byte {
		var b bytes.Buffer
		b.WriteString("APETAGEX")
		binary.Write(&b, binary.LittleEndian, uint32(2000))
		binary.Write(&b, binary.LittleEndian, uint32(body.Len()+32))
		binary.Write(&b, binary.LittleEndian, uint32(1))
		binary.Write(&b, binary.LittleEndian, flags)
		b.Write(make([]byte, 8))
		return b.Bytes()
	}
	var tag bytes.Buffer
	tag.Write(hf(0xA0000000))
	tag.Write(body.Bytes())
	tag.Write(hf(0x80000000))
	return tag.Bytes()
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestDecodeMatchesReference plays every kind of file the network uses and compares the
// result with mpg123's own decode (MPEG) or sox's conversion (WAV) to 48 kHz stereo.
func TestDecodeMatchesReference(t *testing.T) {
	speech, music := media(t)
	type tc struct {
		name    string
		make    func(t *testing.T, dir string) string
		srcRate int // for the one-frame tolerance
		frame   int // samples per MPEG frame at srcRate (WAV: 1)
	}
	lame := func(src string, args ...string) func(*testing.T, string) string {
		return func(t *testing.T, dir string) string {
			out := filepath.Join(dir, "x.mp3")
			run(t, "lame", append(append([]string{"--quiet"}, args...), src, out)...)
			return out
		}
	}
	cases := []tc{
		{"mp3 MPEG-1 CBR 128k stereo 44.1k ID3v2", lame(music, "-b", "128", "--add-id3v2", "--tt", "Bản tin sáng", "--ta", "Xã Tam Thanh"), 44100, 1152},
		{"mp3 MPEG-1 VBR stereo 44.1k", lame(music, "-V", "4"), 44100, 1152},
		{"mp3 MPEG-1 CBR 160k 48k", lame(music, "--resample", "48", "-b", "160"), 48000, 1152},
		{"mp3 MPEG-1 32k joint stereo", lame(music, "--resample", "32", "-b", "96"), 32000, 1152},
		{"mp3 MPEG-2 24k 64k", lame(music, "--resample", "24", "-b", "64"), 24000, 576},
		{"mp3 MPEG-2 22.05k mono Vietnamese speech", lame(speech, "-b", "48"), 22050, 576},
		{"mp3 MPEG-2 16k mono VBR speech", lame(speech, "--resample", "16", "-V", "6"), 16000, 576},
		{"mp3 MPEG-2.5 8k mono 16k", lame(speech, "--resample", "8", "-b", "16"), 8000, 576},
		{"mp3 MPEG-2.5 11.025k", lame(music, "--resample", "11.025", "-b", "32"), 11025, 576},
		{"mp3 ID3v1 and APE tags", func(t *testing.T, dir string) string {
			p := lame(music, "-b", "128", "--id3v1-only", "--tt", "Ban tin")(t, dir)
			// APE goes before ID3v1 in real files; put it after the audio and before the 128-byte tag.
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			n := len(b) - 128
			out := append(append(append([]byte{}, b[:n]...), apeTag()...), b[n:]...)
			if err := os.WriteFile(p, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, 44100, 1152},
		{"mp2 stereo 44.1k", func(t *testing.T, dir string) string {
			out := filepath.Join(dir, "x.mp2")
			run(t, "sox", music, "-C", "192", out)
			return out
		}, 44100, 1152},
		{"mp2 mono 48k speech", func(t *testing.T, dir string) string {
			out := filepath.Join(dir, "x.mp2")
			run(t, "sox", speech, "-r", "48000", "-C", "64", out)
			return out
		}, 48000, 1152},
		{"wav PCM 8-bit", sox(music, "-b", "8", "-e", "unsigned-integer"), 44100, 1},
		{"wav PCM 16-bit Vietnamese speech 22.05k mono", func(*testing.T, string) string { return speech }, 22050, 1},
		{"wav PCM 24-bit", sox(music, "-b", "24"), 44100, 1},
		{"wav PCM 32-bit 48k", sox(music, "-b", "32", "-r", "48000"), 48000, 1},
		{"wav float 32-bit", sox(music, "-e", "floating-point", "-b", "32"), 44100, 1},
		{"wav float 64-bit 16k", sox(music, "-e", "floating-point", "-b", "64", "-r", "16000"), 16000, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := c.make(t, dir)
			ref := filepath.Join(dir, "ref.wav")
			if strings.HasSuffix(src, ".wav") {
				run(t, "sox", src, "-r", "48000", "-c", "2", "-e", "floating-point", "-b", "32", ref)
			} else {
				run(t, "mpg123", "-q", "--stereo", "-r", "48000", "-e", "f32", "-w", ref, src)
			}
			proof, got := playFile(t, src)
			want, _ := readWAV(t, ref)
			if proof.Ended != player.EndCompleted || proof.Error != "" {
				t.Fatalf("proof: %s", fmtProof(proof))
			}
			if proof.Frames != int64(len(got)/2) {
				t.Errorf("proof says %d frames, the output holds %d", proof.Frames, len(got)/2)
			}
			tol := int64(c.frame*rate/c.srcRate) + 1
			if c.frame == 1 {
				tol = rate / 1000 // a resampler may round the length by a few samples
			}
			if d := proof.Frames - int64(len(want)/2); d > tol || d < -tol {
				t.Errorf("length %d frames, reference %d: off by %d, more than one frame (%d)", proof.Frames, len(want)/2, d, tol)
			}
			corr, lag := alignedCorrelation(left(want), left(got), 600)
			if corr < 0.99 {
				t.Errorf("correlation with the reference %.4f at lag %d, want > 0.99", corr, lag)
			}
			corrR := correlationAt(rightCh(want), rightCh(got), lag)
			if corrR < 0.99 {
				t.Errorf("right channel correlation %.4f, want > 0.99", corrR)
			}
			if proof.SkippedBytes != 0 {
				t.Errorf("a clean file reported %d bytes skipped", proof.SkippedBytes)
			}
			if proof.PeakDBFS < -20 || proof.PeakDBFS > 0.5 || proof.RMSDBFS >= proof.PeakDBFS {
				t.Errorf("levels look wrong: peak %.2f dBFS, rms %.2f dBFS", proof.PeakDBFS, proof.RMSDBFS)
			}
		})
	}
}

func correlationAt(a, b []float64, lag int) float64 {
	if lag >= 0 {
		return correlation(a, b[lag:])
	}
	return correlation(a[-lag:], b)
}

func rightCh(s []float32) []float64 {
	out := make([]float64, len(s)/2)
	for i := range out {
		out[i] = float64(s[2*i+1])
	}
	return out
}

func sox(src string, args ...string) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		out := filepath.Join(dir, "x.wav")
		run(t, "sox", append(append([]string{src}, args...), out)...)
		return out
	}
}

// TestMP3ResumeAtPosition starts an MP3 one second in (on_interrupt: resume): the output is
// the full decode from that frame on.
func TestMP3ResumeAtPosition(t *testing.T) {
	_, music := media(t)
	mp3 := filepath.Join(t.TempDir(), "m.mp3")
	run(t, "lame", "--quiet", "-b", "128", music, mp3)
	_, full := playFile(t, mp3)
	o := &memOutput{}
	p, err := player.New(player.Config{Output: o})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := p.Play(t.Context(), player.Program{Items: []player.Item{{Path: mp3}}, Gain: 1, Start: player.Position{Frame: rate}})
	if err != nil {
		t.Fatal(err)
	}
	res := pb.Wait()
	got := o.get()
	want := full[2*rate:]
	if d := len(got)/2 - len(want)/2; d > 2 || d < -2 {
		t.Errorf("resumed output has %d frames, the rest of the file %d", len(got)/2, len(want)/2)
	}
	corr, lag := alignedCorrelation(left(want), left(got), 600)
	if corr < 0.99 || lag < -2 || lag > 2 {
		t.Errorf("resumed output correlates %.4f at lag %d with the file from 1 s on", corr, lag)
	}
	if res.Items[0].Frames != int64(len(got)/2) {
		t.Errorf("proof %d frames, output %d", res.Items[0].Frames, len(got)/2)
	}
}

// TestLengthMatchesPlay: Length (headers and frame scan, no decoding) predicts the frames
// a complete play yields.
func TestLengthMatchesPlay(t *testing.T) {
	speech, music := media(t)
	dir := t.TempDir()
	files := map[string][]string{
		"cbr.mp3":   {"lame", "--quiet", "-b", "128", music},
		"vbr.mp3":   {"lame", "--quiet", "-V", "5", music},
		"mono.mp3":  {"lame", "--quiet", "-b", "32", speech},
		"8k.mp3":    {"lame", "--quiet", "--resample", "8", "-b", "16", speech},
		"music.mp2": {"sox", music, "-C", "192"},
	}
	for name, cmd := range files {
		out := filepath.Join(dir, name)
		run(t, cmd[0], append(cmd[1:], out)...)
	}
	for _, p := range []string{speech, music, filepath.Join(dir, "cbr.mp3"), filepath.Join(dir, "vbr.mp3"),
		filepath.Join(dir, "mono.mp3"), filepath.Join(dir, "8k.mp3"), filepath.Join(dir, "music.mp2")} {
		n, err := player.Length(p, rate)
		if err != nil {
			t.Fatal(err)
		}
		proof, _ := playFile(t, p)
		if n != proof.Frames {
			t.Errorf("%s: Length says %d frames, playing gave %d", filepath.Base(p), n, proof.Frames)
		}
	}
	if _, err := player.Length(filepath.Join(dir, "none.mp3"), rate); err == nil {
		t.Error("no error for a missing file")
	}
}
