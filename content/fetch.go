package content

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// HTTPError: the server answered a fetch with a status the store cannot use.
type HTTPError struct {
	URL    string
	Status string
	Code   int
	Body   string // the first bytes of the answer, to show what the server said
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("fetch %s: server answered %s", e.URL, e.Status)
	if e.Body != "" {
		msg += fmt.Sprintf(": %q", e.Body)
	}
	return msg
}

// fatalError marks an attempt whose failure an immediate retry would only repeat.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func fatal(format string, a ...any) error { return fatalError{fmt.Errorf(format, a...)} }

// inflight is a Fetch under way: closed done when it ends, and the size it expects.
type inflight struct {
	done chan struct{}
	size int64
}

// Fetching reports whether a Fetch of ref is under way, with the bytes it holds so far and
// the item's size: a neighbour asking for the item can wait for it rather than go to the hub.
func (s *Store) Fetching(ref Ref) (have, size int64, ok bool) {
	s.mu.Lock()
	in, ok := s.fetches[ref]
	s.mu.Unlock()
	if !ok {
		return 0, 0, false
	}
	if fi, err := os.Stat(s.partialPath(ref)); err == nil {
		have = fi.Size()
	}
	return have, in.size, true
}

// Fetch downloads url into the store and checks it is size bytes hashing to ref. A partial
// download is kept in partial/ (fsync'd after each attempt) and resumed with an HTTP Range
// request, by this call after a dropped connection or by a later call, also after a restart.
// Fetch retries at once while attempts make progress, up to Options.FetchAttempts requests;
// otherwise it returns the last error, which says what failed: the HTTP status and the start
// of the body, a body shorter or longer than size, or a *MismatchError (the partial file is
// then removed so the next call starts over). An item already stored returns nil at once.
func (s *Store) Fetch(ctx context.Context, url string, ref Ref, size int64) error {
	if size < 0 {
		return fmt.Errorf("fetch %s: negative size %d", url, size)
	}
	for {
		if s.Has(ref) {
			f, err := s.open(ref, false)
			if err == nil {
				f.Close()
				return nil
			}
			var ce *CorruptError
			if !errors.As(err, &ce) && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		s.mu.Lock()
		in, busy := s.fetches[ref]
		if !busy {
			if err := s.makeRoomLocked(size); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("fetch %s: %w", url, err)
			}
			s.reserve += size
			s.fetches[ref] = &inflight{done: make(chan struct{}), size: size}
		}
		s.mu.Unlock()
		if !busy {
			break
		}
		// Another call is fetching the same item: wait for it, then look again.
		select {
		case <-in.done:
		case <-ctx.Done():
			return fmt.Errorf("fetch %s: %w", url, ctx.Err())
		}
	}
	reserved := size
	defer func() {
		s.mu.Lock()
		s.reserve -= reserved
		close(s.fetches[ref].done)
		delete(s.fetches, ref)
		s.mu.Unlock()
	}()

	part := s.partialPath(ref)
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt == s.opts.FetchAttempts {
			return fmt.Errorf("fetch %s: gave up after %d requests: %w", url, attempt, lastErr)
		}
		progress, err := s.fetchAttempt(ctx, url, part, size)
		if err == nil {
			break
		}
		lastErr = err
		if errors.As(err, new(fatalError)) || ctx.Err() != nil || progress == 0 {
			return err
		}
		s.log.Info("download interrupted; resuming", "url", url, "ref", ref.String(), "err", err)
	}

	f, err := s.fs.OpenFile(part, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("fetch %s: reading %s: %w", url, part, err)
	}
	var got Ref
	h.Sum(got[:0])
	if got != ref {
		s.fs.Remove(part)
		return &MismatchError{Source: url, Want: ref, Got: got, Size: n}
	}
	r := reserved
	reserved = 0 // commit takes the reservation over
	if err := s.commit(part, ref, n, r); err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return nil
}

// fetchAttempt makes one request and appends what arrives to the partial file. It returns the
// bytes gained (any change of the partial file counts as progress).
func (s *Store) fetchAttempt(ctx context.Context, url, part string, size int64) (int64, error) {
	f, err := s.fs.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fatal("fetch %s: %w", url, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fatal("fetch %s: %w", url, err)
	}
	have := fi.Size()
	if have > size { // not ours, or the size changed: start over
		if err := f.Truncate(0); err != nil {
			return 0, fatal("fetch %s: %w", url, err)
		}
		have = 0
	}
	if have == size {
		return 0, nil
	}

	// A stalled link (4G that hangs without closing) is cut after FetchStall with no byte.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	watchdog := time.AfterFunc(s.opts.FetchStall, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fatal("fetch %s: %w", url, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	start := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return 0, fatal("fetch %s: server offers %d bytes, expected %d", url, resp.ContentLength, size)
		}
	case http.StatusPartialContent:
		st, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return 0, fatal("fetch %s: %v", url, err)
		}
		if total >= 0 && total != size {
			return 0, fatal("fetch %s: server offers %d bytes, expected %d", url, total, size)
		}
		if st != have {
			return 0, fatal("fetch %s: asked for bytes from %d, server sent from %d", url, have, st)
		}
		start = have
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file does not fit what the server has: start over on the next attempt.
		if err := f.Truncate(0); err != nil {
			return 0, fatal("fetch %s: %w", url, err)
		}
		return have, fmt.Errorf("fetch %s: server refused to resume at byte %d; starting over", url, have)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, &HTTPError{URL: url, Status: resp.Status, Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	if start == 0 && have > 0 {
		if err := f.Truncate(0); err != nil {
			return 0, fatal("fetch %s: %w", url, err)
		}
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, fatal("fetch %s: %w", url, err)
	}
	want := size - start
	buf := make([]byte, 64<<10)
	var got int64
	var rerr error
	for got <= want {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			watchdog.Reset(s.opts.FetchStall)
			if got+int64(k) > want {
				f.Truncate(0)
				return 0, fatal("fetch %s: server sent more than the expected %d bytes; discarded", url, size)
			}
			if _, werr := f.Write(buf[:k]); werr != nil {
				f.Sync()
				what := "writing the download"
				if errors.Is(werr, syscall.ENOSPC) {
					what = "disk full"
				}
				return got, fatal("fetch %s: %s at byte %d: %w", url, what, start+got, werr)
			}
			got += int64(k)
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	if err := f.Sync(); err != nil {
		return got, fatal("fetch %s: fsync of %s: %w", url, part, err)
	}
	if stalled.Load() {
		rerr = fmt.Errorf("no data for %s", s.opts.FetchStall)
	}
	if rerr != nil {
		return got, fmt.Errorf("fetch %s: connection lost after %d of %d bytes (kept for resume): %w", url, start+got, size, rerr)
	}
	if got < want {
		return got, fmt.Errorf("fetch %s: body ended after %d of %d bytes (kept for resume)", url, start+got, size)
	}
	return got, nil
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": returned as -1).
func parseContentRange(v string) (start, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	start, err = strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, bad
	}
	if tot == "*" {
		return start, -1, nil
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	if err != nil || total < 0 {
		return 0, 0, bad
	}
	return start, total, nil
}
