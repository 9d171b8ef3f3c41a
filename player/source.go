package player

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/loa-project/loa/player/mpg123"
	"github.com/loa-project/loa/player/wav"
)

// source yields interleaved float32 stereo at the output rate.
type source interface {
	// Read fills dst and returns frames; io.EOF at the end; errDropout when a stream drops.
	Read(ctx context.Context, dst []float32) (int, error)
	// Skipped reports input bytes skipped as corrupt and in how many places.
	Skipped() (bytes, places int64)
	Close()
}

// errDropout is returned once by a stream source when its connection drops.
var errDropout = errors.New("stream dropped")

// rateConverter turns decoded audio at any rate into the output rate.
type rateConverter struct {
	out int
	rs  *mpg123.Resampler
}

func (c *rateConverter) convert(dst, src []float32, inRate int) ([]float32, error) {
	if inRate == c.out {
		return append(dst, src...), nil
	}
	if c.rs == nil || c.rs.InRate() != inRate {
		if c.rs != nil {
			c.rs.Close()
		}
		rs, err := mpg123.NewResampler(inRate, c.out, 2)
		if err != nil {
			return dst, err
		}
		c.rs = rs
	}
	return c.rs.Process(dst, src), nil
}

func (c *rateConverter) close() {
	if c.rs != nil {
		c.rs.Close()
		c.rs = nil
	}
}

// openFile opens a local file, choosing the decoder from its content, not its name.
// skip is a number of output frames to leave out at the start (resuming at a position).
func openFile(path string, outRate int, skip int64) (source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not an audio file", path)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: empty file (0 bytes), not audio", path)
	}
	var head [12]byte
	n, _ := io.ReadFull(f, head[:])
	var src source
	if n == 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		src, err = newWAVSource(f, path, outRate)
	} else {
		f.Close()
		src, err = newMPEGSource(path, st.Size(), outRate)
	}
	if err != nil {
		return nil, err
	}
	if skip > 0 {
		if err := skipFrames(src, skip); err != nil {
			src.Close()
			return nil, err
		}
	}
	return src, nil
}

func skipFrames(src source, n int64) error {
	if s, ok := src.(*mpegSource); ok {
		return s.seek(n)
	}
	buf := make([]float32, 2*4096)
	for n > 0 {
		k := int64(len(buf) / 2)
		if k > n {
			k = n
		}
		got, err := src.Read(context.Background(), buf[:2*k])
		n -= int64(got)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pending is decoded, converted audio not yet handed out.
type pending struct {
	buf []float32
	off int
}

func (p *pending) take(dst []float32) int {
	n := copy(dst, p.buf[p.off:])
	n -= n % 2
	p.off += n
	if p.off == len(p.buf) {
		p.buf, p.off = p.buf[:0], 0
	}
	return n / 2
}

func (p *pending) empty() bool { return p.off >= len(p.buf) }

type wavSource struct {
	f    *os.File
	r    *wav.Reader
	conv rateConverter
	raw  []float32
	pend pending
}

func newWAVSource(f *os.File, name string, outRate int) (*wavSource, error) {
	r, err := wav.NewReader(f, name)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &wavSource{f: f, r: r, conv: rateConverter{out: outRate}, raw: make([]float32, 2*4096)}, nil
}

func (s *wavSource) Read(ctx context.Context, dst []float32) (int, error) {
	for s.pend.empty() {
		n, err := s.r.Read(s.raw)
		if n > 0 {
			s.pend.buf, err = s.conv.convert(s.pend.buf[:0], s.raw[:2*n], s.r.Format().Rate)
			s.pend.off = 0
			if err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
	}
	return s.pend.take(dst), nil
}

func (s *wavSource) Skipped() (int64, int64) {
	if s.r.Truncated() {
		return 0, 1
	}
	return 0, 0
}

func (s *wavSource) Close() {
	s.conv.close()
	s.f.Close()
}

type mpegSource struct {
	path    string
	size    int64
	dec     *mpg123.Decoder
	conv    rateConverter
	pend    pending
	started bool
	tail    int64 // junk after the last frame (a frame cut short), computed at the end
}

func newMPEGSource(path string, size int64, outRate int) (source, error) {
	dec, err := mpg123.Open(path)
	if err != nil {
		return nil, err
	}
	s := &mpegSource{path: path, size: size, dec: dec, conv: rateConverter{out: outRate}}
	// Decode up to the first audio now so that a file that is not audio fails at open.
	if err := s.fill(); err != nil && err != io.EOF {
		s.Close()
		return nil, err
	}
	if s.pend.empty() {
		s.Close()
		if claimed, ok := id3v2Size(path); ok && claimed+10 >= size {
			// The ID3v2 header claims more than the file holds, so libmpg123 skipped all of
			// it. Look for the audio right after the header instead.
			fs, err := newFeedFileSource(path, 10, outRate)
			if err != nil {
				return nil, fmt.Errorf("%s: its ID3v2 tag claims %d bytes, more than the file's %d, and no audio follows the tag header: %w", path, claimed, size, err)
			}
			return fs, nil
		}
		return nil, fmt.Errorf("%s: not an MP3/MP2 or WAV file: no audio frame found in its %d bytes", path, size)
	}
	return s, nil
}

// id3v2Size reads the size an ID3v2 header at the start of the file claims.
func id3v2Size(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var h [10]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:3]) != "ID3" {
		return 0, false
	}
	return int64(h[6]&0x7f)<<21 | int64(h[7]&0x7f)<<14 | int64(h[8]&0x7f)<<7 | int64(h[9]&0x7f), true
}

// feedFileSource decodes a file from an offset through a feed decoder, for files whose
// header misleads libmpg123's own reader.
type feedFileSource struct {
	f    *os.File
	dec  *mpg123.Decoder
	conv rateConverter
	pend pending
	buf  []byte
	eof  bool
	skip int64
}

func newFeedFileSource(path string, offset int64, outRate int) (*feedFileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	dec, err := mpg123.NewFeed()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &feedFileSource{f: f, dec: dec, conv: rateConverter{out: outRate}, buf: make([]byte, 16<<10)}
	if err := s.fill(); err != nil {
		s.Close()
		return nil, err
	}
	if s.pend.empty() {
		s.Close()
		return nil, errors.New("no audio frame found")
	}
	// What came before the first frame was the tag's (or junk): count it as skipped.
	s.skip = s.dec.FirstFramePos()
	return s, nil
}

func (s *feedFileSource) fill() error {
	for s.pend.empty() {
		samples, err := s.dec.Frame()
		switch {
		case err == nil:
			if len(samples) > 0 {
				s.pend.buf, err = s.conv.convert(s.pend.buf[:0], samples, s.dec.Rate())
				s.pend.off = 0
				if err != nil {
					return err
				}
			}
			continue
		case err == mpg123.ErrNeedMore:
		case err == mpg123.ErrDone:
			return io.EOF
		default:
			if s.dec.Frames() > 0 {
				return io.EOF
			}
			return err
		}
		if s.eof {
			return io.EOF
		}
		n, rerr := s.f.Read(s.buf)
		if n > 0 {
			if err := s.dec.Feed(s.buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			s.eof = true
		} else if rerr != nil {
			return rerr
		}
	}
	return nil
}

func (s *feedFileSource) Read(ctx context.Context, dst []float32) (int, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	return s.pend.take(dst), nil
}

func (s *feedFileSource) Skipped() (int64, int64) {
	b, p := s.dec.Skipped()
	if s.skip > 0 {
		b += s.skip
		p++
	}
	return b, p
}

func (s *feedFileSource) Close() {
	s.conv.close()
	s.dec.Close()
	s.f.Close()
}

// fill decodes frames until some audio is pending or the file ends.
func (s *mpegSource) fill() error {
	for s.pend.empty() {
		samples, err := s.dec.Frame()
		if err == mpg123.ErrDone {
			s.finish()
			return io.EOF
		}
		if err != nil {
			if s.dec.Frames() > 0 {
				// Past audio already played: treat an unrecoverable error as the end.
				s.finish()
				return io.EOF
			}
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if len(samples) == 0 {
			continue
		}
		s.pend.buf, err = s.conv.convert(s.pend.buf[:0], samples, s.dec.Rate())
		s.pend.off = 0
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
	}
	return nil
}

// finish counts junk after the last good frame that is not a tag (ID3v1, APE): a truncated
// last frame or trailing garbage.
func (s *mpegSource) finish() {
	end := s.dec.LastFrameEnd()
	if end <= 0 || end >= s.size {
		return
	}
	f, err := os.Open(s.path)
	if err != nil {
		return
	}
	defer f.Close()
	tail := make([]byte, min(s.size-end, 1<<20))
	if _, err := f.ReadAt(tail, s.size-int64(len(tail))); err != nil {
		return
	}
	rest := int64(len(tail))
	if rest >= 128 && bytes.Equal(tail[rest-128:rest-125], []byte("TAG")) {
		rest -= 128
	}
	if rest >= 32 && bytes.Equal(tail[rest-32:rest-24], []byte("APETAGEX")) {
		sz := int64(tail[rest-20]) | int64(tail[rest-19])<<8 | int64(tail[rest-18])<<16 | int64(tail[rest-17])<<24
		if sz <= rest {
			rest -= sz
			if rest >= 32 && bytes.Equal(tail[rest-32:rest-24], []byte("APETAGEX")) {
				rest -= 32 // header
			}
		}
	}
	if rest > 0 {
		s.tail = rest
	}
}

func (s *mpegSource) seek(outFrames int64) error {
	rate := s.dec.Rate()
	if rate == 0 {
		return fmt.Errorf("%s: cannot seek before the first frame", s.path)
	}
	sample := outFrames * int64(rate) / int64(s.conv.out)
	if err := s.dec.SeekSample(sample); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.pend.buf, s.pend.off = s.pend.buf[:0], 0
	return nil
}

func (s *mpegSource) Read(ctx context.Context, dst []float32) (int, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	return s.pend.take(dst), nil
}

func (s *mpegSource) Skipped() (int64, int64) {
	b, p := s.dec.Skipped()
	if s.tail > 0 {
		b += s.tail
		p++
	}
	return b, p
}

func (s *mpegSource) Close() {
	s.conv.close()
	s.dec.Close()
}
