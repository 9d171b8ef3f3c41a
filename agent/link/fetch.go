package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/protocol"
)

// Neighbours are the agents of the commune that share content on the LAN;
// *neighbours.Neighbours is one.
type Neighbours interface {
	// Fetch gets ref into the store from a neighbour (size 0: not known), or returns an
	// error: then the link fetches it from the hub.
	Fetch(ctx context.Context, ref content.Ref, size int64) error
	// Hint takes the hub's neighbours message.
	Hint(m *protocol.Neighbours)
}

// fetchJob is a pending schedule revision and the items it lacks (nil: ask Advance).
type fetchJob struct {
	ref     protocol.ScheduleRef
	missing []content.Ref
}

// fetchFor hands the fetcher a revision to complete, replacing any older job: only the
// newest pushed revision is worth fetching for.
func (l *Link) fetchFor(ref protocol.ScheduleRef, missing []content.Ref) {
	job := fetchJob{ref: ref, missing: missing}
	for {
		select {
		case l.fetchWant <- job:
			return
		default:
		}
		select {
		case <-l.fetchWant:
		default:
		}
	}
}

// fetcher completes pending revisions: it fetches their missing items from the hub, retrying
// with backoff, then asks the daemon to advance them and reports how far they got.
func (l *Link) fetcher(ctx context.Context) {
	var job *fetchJob
	attempt := 0
	warned := false
	for {
		if job == nil {
			select {
			case <-ctx.Done():
				return
			case j := <-l.fetchWant:
				job, attempt, warned = &j, 0, false
			}
		}
		if p := l.d.Schedules.Pending(); p == nil || *p != job.ref {
			job = nil // activated meanwhile, or replaced by a newer revision
			continue
		}
		err := l.fetchAll(ctx, job.missing)
		if err == nil {
			var prog Progress
			prog, err = l.d.Schedules.Advance(ctx, job.ref)
			if err == nil {
				for _, st := range progressStates(prog.State) {
					l.ReportSchedule(job.ref, st, "")
				}
				if len(prog.Missing) == 0 {
					if prog.State != protocol.DeliveryReceived {
						l.log.Info("pending schedule complete", "schedule", job.ref.ID, "revision", job.ref.Revision, "state", prog.State)
					}
					job = nil
					continue
				}
				if !sameRefs(prog.Missing, job.missing) {
					job.missing = prog.Missing // newly named items: fetch them now
					continue
				}
				err = fmt.Errorf("%d items are still missing after fetching them", len(prog.Missing))
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !warned {
				l.log.Warn("cannot complete the pending schedule yet; the current one keeps playing", "schedule", job.ref.ID, "revision", job.ref.Revision, "err", err)
				warned = true
			} else {
				l.log.Debug("pending schedule still incomplete", "schedule", job.ref.ID, "revision", job.ref.Revision, "attempt", attempt, "err", err)
			}
		}
		wait := l.delay(l.cfg.FetchBackoff, attempt)
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case j := <-l.fetchWant:
			t.Stop()
			job, attempt, warned = &j, 0, false
		case <-t.C:
		}
	}
}

// fetchAll fetches the items the store lacks, one at a time (a small uplink is better used
// by one download than shared by many).
func (l *Link) fetchAll(ctx context.Context, refs []content.Ref) error {
	for _, ref := range refs {
		if err := l.Fetch(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// Fetch makes sure the store holds ref, fetching it from a neighbour (Deps.Neighbours) or the
// hub: it asks the hub for the item's size (HEAD), lets the neighbours try, then lets the
// store download it from the hub with Range resume and verify it. The
// daemon may call it itself, e.g. for the content of a play_now command.
func (l *Link) Fetch(ctx context.Context, ref content.Ref) error {
	if l.d.Store.Has(ref) {
		return nil
	}
	u := l.ContentURL(ref)
	size, err := l.contentSize(ctx, u)
	if l.d.Neighbours != nil {
		// Neighbours first, also when the hub cannot be asked: the store verifies their bytes.
		nerr := l.d.Neighbours.Fetch(ctx, ref, max(size, 0))
		if nerr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.log.Debug("item not fetched from neighbours; asking the hub", "ref", ref.String(), "why", nerr)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	if err := l.d.Store.Fetch(ctx, u, ref, size); err != nil {
		var he *content.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusUnauthorized {
			return fmt.Errorf("%w (the content store's HTTP client does not send the device's credentials: give it link.DeviceTransport)", err)
		}
		return err
	}
	l.log.Info("content fetched from the hub", "ref", ref.String(), "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Link) contentSize(ctx context.Context, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, fmt.Errorf("asking the hub for %s: %w", u, err)
	}
	req.Header.Set("Authorization", protocol.FormatDeviceAuth(l.cfg.DeviceID, l.cfg.Secret))
	c := l.d.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("asking the hub for the size of %s: %w", u, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return 0, fmt.Errorf("the hub does not have %s (HTTP 404): upload it to the content library", u)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("asking the hub for %s: HTTP %s", u, resp.Status)
	case resp.ContentLength < 0:
		return 0, fmt.Errorf("the hub did not say the size of %s (no Content-Length)", u)
	}
	return resp.ContentLength, nil
}

// DeviceTransport wraps next (nil: http.DefaultTransport) so that requests to the hub carry
// the device's Authorization header. Open the content store with
// &http.Client{Transport: DeviceTransport(...)} so its Fetch can download from the hub.
// Requests to any other host (a stream relay, a mirror) never see the secret.
func DeviceTransport(hubURL, deviceID, secret string, next http.RoundTripper) (http.RoundTripper, error) {
	base, err := hubBase(hubURL)
	if err != nil {
		return nil, err
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &deviceTransport{scheme: base.Scheme, host: base.Host, auth: protocol.FormatDeviceAuth(deviceID, secret), next: next}, nil
}

type deviceTransport struct {
	scheme, host, auth string
	next               http.RoundTripper
}

func (t *deviceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == t.scheme && strings.EqualFold(req.URL.Host, t.host) && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", t.auth)
	}
	return t.next.RoundTrip(req)
}

// freeBytes is the space left for the store (0 when unknown).
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if dir == "" || syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func sameRefs(a, b []content.Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
