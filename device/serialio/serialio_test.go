package serialio

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

// port answers each call from a script: bytes taken and the error.
type port struct {
	writes []struct {
		n   int
		err error
	}
	drains []error
	got    []byte
}

func (p *port) Write(b []byte) (int, error) {
	w := p.writes[0]
	p.writes = p.writes[1:]
	n := min(w.n, len(b))
	p.got = append(p.got, b[:n]...)
	return n, w.err
}

func (p *port) Drain() error {
	err := p.drains[0]
	p.drains = p.drains[1:]
	return err
}

func TestWriteAllGoesOnAfterEINTRAndShortWrites(t *testing.T) {
	p := &port{writes: []struct {
		n   int
		err error
	}{{1, nil}, {0, syscall.EINTR}, {2, syscall.EINTR}, {5, nil}}}
	if err := WriteAll(p, []byte{0xA0, 0x01, 0x01, 0xA2}); err != nil {
		t.Fatal(err)
	}
	if string(p.got) != string([]byte{0xA0, 0x01, 0x01, 0xA2}) {
		t.Fatalf("wrote % X", p.got)
	}
}

func TestWriteAllReportsRealErrors(t *testing.T) {
	eio := errors.New("input/output error")
	p := &port{writes: []struct {
		n   int
		err error
	}{{0, eio}}}
	if err := WriteAll(p, []byte("x")); !errors.Is(err, eio) {
		t.Fatalf("error %v, want the port's", err)
	}
	p = &port{writes: []struct {
		n   int
		err error
	}{{0, nil}}}
	if err := WriteAll(p, []byte("x")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("a write taking nothing: %v, want io.ErrShortWrite", err)
	}
}

func TestDrainRetriesEINTR(t *testing.T) {
	p := &port{drains: []error{syscall.EINTR, syscall.EINTR, nil}}
	if err := Drain(p); err != nil || len(p.drains) != 0 {
		t.Fatalf("drain: %v, %d calls left", err, len(p.drains))
	}
	eio := errors.New("gone")
	p = &port{drains: []error{eio}}
	if err := Drain(p); !errors.Is(err, eio) {
		t.Fatalf("drain: %v, want the port's error", err)
	}
}
