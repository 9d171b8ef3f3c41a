// Package mpg123 is a small cgo binding to libmpg123 (MPEG 1/2/2.5 layer I/II/III decoding)
// and to libsyn123's resampler, the two libraries behind the mpg123 command. It decodes to
// interleaved float32 stereo at the stream's own rate; Resampler converts to the output rate
// exactly as `mpg123 -r RATE` does (syn123's "fine" mode), so our CPU cost tracks mpg123's.
package mpg123

/*
#cgo pkg-config: libmpg123 libsyn123
#include <stdio.h>
#include <stdlib.h>
#include <mpg123.h>
#include <syn123.h>

// loa_setup restricts the output to float32 stereo at every rate the library knows, so that
// libmpg123 never resamples by itself (its NtoM mode is drop-sample) and mono is duplicated.
static int loa_setup(mpg123_handle *mh) {
	int err;
	const long *rates; size_t n, i;
	if ((err = mpg123_param(mh, MPG123_ADD_FLAGS, MPG123_QUIET|MPG123_GAPLESS|MPG123_FORCE_STEREO, 0.)) != MPG123_OK) return err;
	if ((err = mpg123_param(mh, MPG123_REMOVE_FLAGS, MPG123_AUTO_RESAMPLE, 0.)) != MPG123_OK) return err;
	// Resync over any amount of junk, as the mpg123 command does with its defaults for files.
	if ((err = mpg123_param(mh, MPG123_RESYNC_LIMIT, -1, 0.)) != MPG123_OK) return err;
	if ((err = mpg123_format_none(mh)) != MPG123_OK) return err;
	mpg123_rates(&rates, &n);
	for (i = 0; i < n; i++) {
		if ((err = mpg123_format(mh, rates[i], MPG123_STEREO, MPG123_ENC_FLOAT_32)) != MPG123_OK) return err;
	}
	return MPG123_OK;
}

// loa_frame decodes one MPEG frame and reports where it sat in the input and how long it was,
// in one cgo call. *pos is -1 when the library cannot tell.
static int loa_frame(mpg123_handle *mh, unsigned char **audio, size_t *bytes, long long *pos, long long *size, long *rate) {
	off_t num;
	int channels, enc;
	int ret = mpg123_decode_frame(mh, &num, audio, bytes);
	if (ret == MPG123_OK || ret == MPG123_NEW_FORMAT) {
		struct mpg123_frameinfo fi;
		*pos = (long long)mpg123_framepos(mh);
		*size = -1;
		if (mpg123_info(mh, &fi) == MPG123_OK) *size = (long long)fi.framesize;
	}
	if (ret == MPG123_NEW_FORMAT || *rate == 0) mpg123_getformat(mh, rate, &channels, &enc);
	return ret;
}

static off_t loa_seek(mpg123_handle *mh, long long sample) { return mpg123_seek(mh, (off_t)sample, SEEK_SET); }
static long long loa_length(mpg123_handle *mh) { return (long long)mpg123_length(mh); }
static long long loa_scan_length(mpg123_handle *mh, long *rate) {
	int ch, enc;
	if (mpg123_scan(mh) != MPG123_OK) return -1;
	if (mpg123_getformat(mh, rate, &ch, &enc) != MPG123_OK) return -1;
	return (long long)mpg123_length(mh);
}
static long long loa_resample_total(long in, long out, long long ins) { return (long long)syn123_resample_total(in, out, (off_t)ins); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Errors returned by Decoder.Frame besides decoding errors.
var (
	// ErrNeedMore: a feed decoder has used all input fed to it.
	ErrNeedMore = errors.New("mpg123: need more input")
	// ErrDone: the file has no more frames.
	ErrDone = errors.New("mpg123: end of stream")
)

// Decoder decodes one file or one fed stream. Not safe for concurrent use.
type Decoder struct {
	h    *C.mpg123_handle
	rate C.long
	feed bool

	frames     int64 // frames decoded
	nextPos    int64 // input byte offset just past the previous frame, -1 before the first
	skipped    int64 // bytes jumped over between frames (corrupt or foreign data)
	skips      int64 // how many such jumps
	firstPos   int64
	lastEndPos int64
}

func newHandle() (*C.mpg123_handle, error) {
	var cerr C.int
	h := C.mpg123_new(nil, &cerr)
	if h == nil {
		return nil, fmt.Errorf("mpg123: cannot create a decoder: %s", C.GoString(C.mpg123_plain_strerror(cerr)))
	}
	if e := C.loa_setup(h); e != C.MPG123_OK {
		C.mpg123_delete(h)
		return nil, fmt.Errorf("mpg123: cannot configure the decoder: %s", C.GoString(C.mpg123_plain_strerror(e)))
	}
	return h, nil
}

// Open opens an MPEG audio file for decoding.
func Open(path string) (*Decoder, error) {
	h, err := newHandle()
	if err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.mpg123_open(h, cpath) != C.MPG123_OK {
		msg := C.GoString(C.mpg123_strerror(h))
		C.mpg123_delete(h)
		return nil, fmt.Errorf("%s: %s", path, msg)
	}
	return &Decoder{h: h, nextPos: -1, firstPos: -1}, nil
}

// NewFeed makes a decoder that is given its input with Feed (for network streams).
func NewFeed() (*Decoder, error) {
	h, err := newHandle()
	if err != nil {
		return nil, err
	}
	if C.mpg123_open_feed(h) != C.MPG123_OK {
		msg := C.GoString(C.mpg123_strerror(h))
		C.mpg123_delete(h)
		return nil, fmt.Errorf("mpg123: open feed: %s", msg)
	}
	return &Decoder{h: h, feed: true, nextPos: -1, firstPos: -1}, nil
}

// Reset forgets buffered input of a feed decoder (after a reconnect the new data does not
// continue the old frame). Counters are kept.
func (d *Decoder) Reset() error {
	C.mpg123_close(d.h)
	if C.mpg123_open_feed(d.h) != C.MPG123_OK {
		return fmt.Errorf("mpg123: reopen feed: %s", C.GoString(C.mpg123_strerror(d.h)))
	}
	d.nextPos = -1
	return nil
}

// Feed hands more input to a feed decoder.
func (d *Decoder) Feed(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if e := C.mpg123_feed(d.h, (*C.uchar)(unsafe.Pointer(&b[0])), C.size_t(len(b))); e != C.MPG123_OK {
		return fmt.Errorf("mpg123: feed: %s", C.GoString(C.mpg123_strerror(d.h)))
	}
	return nil
}

// Frame decodes the next MPEG frame. The returned samples are interleaved stereo float32 at
// Rate(), and stay valid only until the next call. A frame may yield no samples (gapless
// trimming, or a frame that could not be decoded); that is not an error.
func (d *Decoder) Frame() ([]float32, error) {
	var audio *C.uchar
	var n C.size_t
	var pos, size C.longlong = -1, -1
	ret := C.loa_frame(d.h, &audio, &n, &pos, &size, &d.rate)
	switch ret {
	case C.MPG123_OK, C.MPG123_NEW_FORMAT:
	case C.MPG123_NEED_MORE:
		return nil, ErrNeedMore
	case C.MPG123_DONE:
		return nil, ErrDone
	default:
		return nil, fmt.Errorf("mpg123: %s", C.GoString(C.mpg123_strerror(d.h)))
	}
	if pos >= 0 && size > 0 {
		p := int64(pos)
		if d.firstPos < 0 {
			d.firstPos = p
		}
		if d.nextPos >= 0 && p > d.nextPos {
			d.skipped += p - d.nextPos
			d.skips++
		}
		d.nextPos = p + int64(size)
		d.lastEndPos = d.nextPos
	}
	d.frames++
	if n == 0 || audio == nil {
		return nil, nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(audio)), int(n)/4), nil
}

// Rate is the sample rate of the decoded audio (0 before the first frame).
func (d *Decoder) Rate() int { return int(d.rate) }

// Frames is how many MPEG frames were decoded so far.
func (d *Decoder) Frames() int64 { return d.frames }

// Skipped reports input bytes jumped over between decoded frames and in how many places.
func (d *Decoder) Skipped() (bytes, places int64) { return d.skipped, d.skips }

// FirstFramePos and LastFrameEnd are input byte offsets of the first decoded frame and of the
// end of the last one (-1/0 when none); the caller compares them with the file size to find
// junk at the ends.
func (d *Decoder) FirstFramePos() int64 { return d.firstPos }

// LastFrameEnd: see FirstFramePos.
func (d *Decoder) LastFrameEnd() int64 { return d.lastEndPos }

// SeekSample positions a file decoder at a sample (per channel) offset at the stream's rate.
func (d *Decoder) SeekSample(sample int64) error {
	if r := C.loa_seek(d.h, C.longlong(sample)); r < 0 {
		return fmt.Errorf("mpg123: seek to sample %d: %s", sample, C.GoString(C.mpg123_strerror(d.h)))
	}
	d.nextPos = -1
	return nil
}

// Length is the stream length in samples per channel, -1 if unknown.
func (d *Decoder) Length() int64 { return int64(C.loa_length(d.h)) }

// ScanLength reads the whole file's frame headers (no decoding) and returns its exact length
// in samples per channel, after gapless trimming, and its sample rate.
func (d *Decoder) ScanLength() (samples int64, rate int, err error) {
	var r C.long
	n := int64(C.loa_scan_length(d.h, &r))
	if n < 0 {
		return 0, 0, fmt.Errorf("mpg123: scan: %s", C.GoString(C.mpg123_strerror(d.h)))
	}
	return n, int(r), nil
}

// ResampledLength is how many frames the resampler yields for in frames at inRate.
func ResampledLength(inRate, outRate int, in int64) int64 {
	if inRate == outRate {
		return in
	}
	return int64(C.loa_resample_total(C.long(inRate), C.long(outRate), C.longlong(in)))
}

// Close frees the decoder.
func (d *Decoder) Close() {
	if d.h != nil {
		C.mpg123_close(d.h)
		C.mpg123_delete(d.h)
		d.h = nil
	}
}

// Resampler converts interleaved float32 audio from one rate to another with syn123's
// normal ("fine") mode: at least 108 dB dynamic range, a few samples of delay.
type Resampler struct {
	h       *C.syn123_handle
	in, out int
	ch      int
	maxIn   int
	smooth  C.int
}

// NewResampler prepares conversion of channels-channel audio from inRate to outRate.
func NewResampler(inRate, outRate, channels int) (*Resampler, error) {
	return newResampler(inRate, outRate, channels, 0)
}

// NewTrim prepares a resampler whose ratio is changed while it runs (Retune): syn123's
// smoothing of such changes is on, and its history is kept across them.
func NewTrim(inRate, outRate, channels int) (*Resampler, error) {
	return newResampler(inRate, outRate, channels, 1)
}

func newResampler(inRate, outRate, channels int, smooth C.int) (*Resampler, error) {
	var cerr C.int
	h := C.syn123_new(C.long(outRate), C.int(channels), C.MPG123_ENC_FLOAT_32, 0, &cerr)
	if h == nil {
		return nil, fmt.Errorf("syn123: cannot create a resampler: %s", C.GoString(C.syn123_strerror(cerr)))
	}
	if e := C.syn123_setup_resample(h, C.long(inRate), C.long(outRate), C.int(channels), 0, smooth); e != 0 {
		C.syn123_del(h)
		return nil, fmt.Errorf("syn123: cannot resample %d Hz to %d Hz: %s", inRate, outRate, C.GoString(C.syn123_strerror(e)))
	}
	maxIn := 1 << 16
	if m := uint64(C.syn123_resample_maxincount(C.long(inRate), C.long(outRate))); m < uint64(maxIn) {
		maxIn = int(m)
	}
	if maxIn < 1 {
		C.syn123_del(h)
		return nil, fmt.Errorf("syn123: cannot resample %d Hz to %d Hz", inRate, outRate)
	}
	return &Resampler{h: h, in: inRate, out: outRate, ch: channels, maxIn: maxIn, smooth: smooth}, nil
}

// Retune changes the ratio to inRate:outRate and keeps the resampler's history (syn123
// keeps it when only the rates change), so that the sound goes on without a click.
func (r *Resampler) Retune(inRate, outRate int) error {
	if e := C.syn123_setup_resample(r.h, C.long(inRate), C.long(outRate), C.int(r.ch), 0, r.smooth); e != 0 {
		return fmt.Errorf("syn123: cannot resample %d Hz to %d Hz: %s", inRate, outRate, C.GoString(C.syn123_strerror(e)))
	}
	m := uint64(C.syn123_resample_maxincount(C.long(inRate), C.long(outRate)))
	r.in, r.out, r.maxIn = inRate, outRate, int(min(m, 1<<16))
	return nil
}

// InRate is the rate the resampler converts from.
func (r *Resampler) InRate() int { return r.in }

// Process resamples src (interleaved frames) and appends the result to dst.
func (r *Resampler) Process(dst, src []float32) []float32 {
	for len(src) > 0 {
		frames := len(src) / r.ch
		if frames == 0 {
			break
		}
		if frames > r.maxIn {
			frames = r.maxIn
		}
		need := int(C.syn123_resample_count(C.long(r.in), C.long(r.out), C.size_t(frames))) * r.ch
		start := len(dst)
		if cap(dst)-start < need {
			nd := make([]float32, start, start+need+start/2)
			copy(nd, dst)
			dst = nd
		}
		buf := dst[start : start+need]
		got := C.syn123_resample(r.h, (*C.float)(unsafe.Pointer(&buf[0])), (*C.float)(unsafe.Pointer(&src[0])), C.size_t(frames))
		dst = dst[:start+int(got)*r.ch]
		src = src[frames*r.ch:]
	}
	return dst
}

// Close frees the resampler.
func (r *Resampler) Close() {
	if r.h != nil {
		C.syn123_del(r.h)
		r.h = nil
	}
}
