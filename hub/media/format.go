package media

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Format is an upload's container as the hub recognised it from its first bytes. ffprobe
// and ffmpeg are told to read it as that demuxer and nothing else: with every demuxer enabled,
// a file that is really an HLS playlist or a concat list names other files (file:///…, http://…)
// and ffmpeg would read them into the library.
type Format struct {
	Name    string   // what staff are told, e.g. "MP3"
	Demuxer string   // ffmpeg's -f
	Kind    string   // "audio", "image", or "media" (audio or video: the probe tells)
	Options []string // demuxer options, before -i
}

var (
	fmtMP3      = Format{Name: "MP3", Demuxer: "mp3", Kind: "audio"}
	fmtAAC      = Format{Name: "AAC (ADTS)", Demuxer: "aac", Kind: "audio"}
	fmtWAV      = Format{Name: "WAV", Demuxer: "wav", Kind: "audio"}
	fmtFLAC     = Format{Name: "FLAC", Demuxer: "flac", Kind: "audio"}
	fmtAMR      = Format{Name: "AMR", Demuxer: "amr", Kind: "audio"}
	fmtOgg      = Format{Name: "Ogg", Demuxer: "ogg", Kind: "media"}
	fmtMatroska = Format{Name: "Matroska/WebM", Demuxer: "matroska", Kind: "media"}
	// External data references (drefs) would let an MP4 name other files: kept off explicitly.
	fmtMP4  = Format{Name: "MP4/M4A/MOV", Demuxer: "mov", Kind: "media", Options: []string{"-enable_drefs", "0"}}
	fmtPNG  = Format{Name: "PNG", Demuxer: "png_pipe", Kind: "image"}
	fmtJPEG = Format{Name: "JPEG", Demuxer: "jpeg_pipe", Kind: "image"}
)

// Formats are the containers the hub takes: all Sniff ever returns.
func Formats() []Format {
	return []Format{fmtMP3, fmtAAC, fmtWAV, fmtFLAC, fmtAMR, fmtOgg, fmtMatroska, fmtMP4, fmtPNG, fmtJPEG}
}

// SniffHead is how many bytes of a file Sniff looks at.
const SniffHead = 4096

// refusedMagic names formats people upload by mistake, so the answer can say what to do.
var refusedMagic = []struct{ magic, what string }{
	{"#EXTM3U", "an M3U/HLS playlist: upload the media file itself, not a list naming it"},
	{"ffconcat", "an ffmpeg concat list: upload the media file itself"},
	{"[playlist]", "a PLS playlist: upload the media file itself"},
	{"BM", "a BMP picture; for screens upload PNG or JPEG"},
	{"GIF8", "a GIF picture; for screens upload PNG or JPEG"},
	{"II*\x00", "a TIFF picture; for screens upload PNG or JPEG"},
	{"MM\x00*", "a TIFF picture; for screens upload PNG or JPEG"},
	{"%PDF", "a PDF document; upload audio, a video, or a PNG or JPEG still"},
	{"PK\x03\x04", "a ZIP archive (or a Word/Excel file); upload audio, a video, or a PNG or JPEG still"},
	{"\x30\x26\xb2\x75", "WMA/ASF, which the hub does not take; convert it to MP3"},
}

// Sniff recognises an allowed container from a file's first bytes. Anything it does not
// recognise is refused: ffmpeg's own probing would also accept playlists and lists of files.
func Sniff(head []byte) (Format, error) {
	for depth := 0; ; depth++ {
		// An ID3v2 tag may precede MP3 or ADTS AAC: look behind it when it fits in head.
		if len(head) < 10 || string(head[:3]) != "ID3" || depth > 2 {
			break
		}
		size := 10 + (int(head[6]&0x7f)<<21 | int(head[7]&0x7f)<<14 | int(head[8]&0x7f)<<7 | int(head[9]&0x7f))
		if head[5]&0x10 != 0 {
			size += 10 // footer
		}
		if size+4 > len(head) {
			return fmtMP3, nil // a long tag (cover art): MP3 is by far the likeliest
		}
		head = head[size:]
	}
	has := func(p string) bool { return bytes.HasPrefix(head, []byte(p)) }
	switch {
	case len(head) >= 12 && (has("RIFF") || has("RF64") || has("BW64")) && string(head[8:12]) == "WAVE":
		return fmtWAV, nil
	case len(head) >= 12 && has("RIFF") && string(head[8:12]) == "WEBP":
		return Format{}, fmt.Errorf("%w: a WebP picture; for screens upload PNG or JPEG", ErrNotAudio)
	case has("fLaC"):
		return fmtFLAC, nil
	case has("OggS"):
		return fmtOgg, nil
	case has("#!AMR\n"):
		return fmtAMR, nil
	case has("\x1a\x45\xdf\xa3"):
		return fmtMatroska, nil
	case has("\x89PNG\r\n\x1a\n"):
		return fmtPNG, nil
	case has("\xff\xd8\xff"):
		return fmtJPEG, nil
	case len(head) >= 8 && isMP4Box(string(head[4:8])):
		return fmtMP4, nil
	case len(head) >= 4 && head[0] == 0xff && head[1]&0xe0 == 0xe0:
		// MPEG audio frame sync. Layer bits 00 is ADTS (AAC); otherwise MPEG-1/2 layer I-III,
		// with a version, bitrate and sample rate that are not the reserved values.
		if head[1]&0x06 == 0 {
			if head[1]&0xf0 == 0xf0 {
				return fmtAAC, nil
			}
		} else if head[1]&0x18 != 0x08 && head[2]&0xf0 != 0xf0 && head[2]&0x0c != 0x0c {
			return fmtMP3, nil
		}
	}
	for _, r := range refusedMagic {
		if has(r.magic) {
			return Format{}, fmt.Errorf("%w: it is %s", ErrNotAudio, r.what)
		}
	}
	return Format{}, fmt.Errorf("%w: the hub does not recognise its format", ErrNotAudio)
}

// isMP4Box is true for the top-level boxes an ISO media or QuickTime file starts with.
func isMP4Box(t string) bool {
	switch t {
	case "ftyp", "moov", "mdat", "wide", "free", "skip":
		return true
	}
	return false
}

// sniffFile reads the head of path and recognises its format.
func sniffFile(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return Format{}, err
	}
	defer f.Close()
	head := make([]byte, SniffHead)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Format{}, err
	}
	return Sniff(head[:n])
}

// InputArgs are ffmpeg's and ffprobe's arguments for reading path as f: that demuxer only
// (also for anything it would open nested), the file protocol only, and a "file:" prefix so
// no path is ever taken for a URL.
func (f Format) InputArgs(path string) []string {
	args := []string{"-protocol_whitelist", "file", "-format_whitelist", f.Demuxer, "-f", f.Demuxer}
	args = append(args, f.Options...)
	return append(args, "-i", "file:"+path)
}
