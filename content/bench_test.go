package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const benchSize = 8 << 20 // a 30-minute 32 kbps programme is about 7 MB

// BenchmarkPut stores 8 MiB: hash, write, fsync, rename, fsync the directory.
func BenchmarkPut(b *testing.B) {
	body := data(benchSize, 1)
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body[0] = byte(i) // a new item each time
		body[1] = byte(i >> 8)
		if _, err := s.Put(bytes.NewReader(body), Ref{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutReference is the least a durable Put can do: hash and write the bytes, fsync.
func BenchmarkPutReference(b *testing.B) {
	body := data(benchSize, 1)
	dir := b.TempDir()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		io.Copy(io.MultiWriter(f, h), bytes.NewReader(body))
		f.Sync()
		f.Close()
	}
}

// BenchmarkOpenMarker opens an 8 MiB item whose marker is valid: a stat and a small read.
func BenchmarkOpenMarker(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ref, _ := s.Put(bytes.NewReader(data(benchSize, 2)), Ref{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Path(ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenHash is what every Open would cost without the marker: a full hash (Verify).
func BenchmarkOpenHash(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ref, _ := s.Put(bytes.NewReader(data(benchSize, 2)), Ref{})
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Verify(ref); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetch downloads 8 MiB over loopback into the store, verified and durable.
func BenchmarkFetch(b *testing.B) {
	body := data(benchSize, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	ref := RefOf(body)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Fetch(context.Background(), srv.URL, ref, benchSize); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkFetchReference is a plain GET written to a file and fsync'd, with no verification.
func BenchmarkFetchReference(b *testing.B) {
	body := data(benchSize, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	dir := b.TempDir()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		f, _ := os.Create(filepath.Join(dir, "f"))
		io.Copy(f, resp.Body)
		resp.Body.Close()
		f.Sync()
		f.Close()
	}
}
