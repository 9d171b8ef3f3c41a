package player

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

func TestICYReaderStripsMetadata(t *testing.T) {
	// metaint 4: "abcd" [1 block "StreamTitle=..."] "efgh" [0] "ij"
	meta := append([]byte("StreamTitle='x'"), 0)
	in := append(append([]byte("abcd\x01"), meta...), "efgh\x00ij"...)
	got, err := io.ReadAll(newICYReader(bufio.NewReader(bytes.NewReader(in)), 4))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abcdefghij" {
		t.Errorf("got %q, want %q", got, "abcdefghij")
	}
}

// FuzzICYReader: any server bytes give at most as many audio bytes, and no panic.
func FuzzICYReader(f *testing.F) {
	f.Add([]byte("abcd\x01StreamTitle='x'\x00efgh\x00ij"), 4)
	f.Add([]byte("\xff\xfb\x90\x00"), 0)
	f.Add([]byte("ab\xff"), 1)
	f.Fuzz(func(t *testing.T, b []byte, metaint int) {
		if metaint < 0 || metaint > 1<<20 {
			return // rejected by the header check before the reader is made
		}
		got, _ := io.ReadAll(newICYReader(bufio.NewReader(bytes.NewReader(b)), metaint))
		if len(got) > len(b) {
			t.Fatalf("%d audio bytes out of %d in", len(got), len(b))
		}
		if metaint == 0 && !bytes.Equal(got, b) {
			t.Fatal("without metaint the bytes must pass unchanged")
		}
	})
}
