package media

import "testing"

func TestSniffFormat(t *testing.T) {
	for _, c := range []struct {
		head, want string
	}{
		{"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"},
		{"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00", "mp3"},
		{"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf1\x50\x40", "aac"},
		{"\xff\xfb\x90\x00", "mp3"},
		{"\x00\x00\x00\x20ftypisom", "mov"},
		{"\x1a\x45\xdf\xa3\x01", "matroska"},
		{"fLaC\x00", "flac"},
		{"OggS\x00", "ogg"},
		{"\x89PNG\r\n\x1a\n", "png_pipe"},
		{"\xff\xd8\xff\xe0", "jpeg_pipe"},
		{"#EXTM3U\n", ""},
		{"ffconcat version 1.0\n", ""},
		{"\xff\xff\xff\xff", ""}, // sync with reserved bitrate/rate values
		{"", ""},
	} {
		f, err := Sniff([]byte(c.head))
		if f.Demuxer != c.want || (c.want == "") != (err != nil) {
			t.Errorf("sniff %q = %q, %v; want %q", c.head, f.Demuxer, err, c.want)
		}
	}
}

// Formats is the allow-list Sniff keeps to: whatever it recognises is one of them.
func TestSniffReturnsOnlyListedFormats(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range Formats() {
		listed[f.Demuxer] = true
	}
	for _, head := range []string{"RIFF\x00\x00\x00\x00WAVEfmt ", "\xff\xfb\x90\x00", "OggS\x00", "\x89PNG\r\n\x1a\n", "#!AMR\n"} {
		f, err := Sniff([]byte(head))
		if err != nil || !listed[f.Demuxer] {
			t.Errorf("sniff %q = %q, %v: not a listed format", head, f.Demuxer, err)
		}
	}
}
