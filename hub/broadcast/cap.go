package broadcast

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/cap"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// CAPConfig is the `cap:` block of the hub config: where CAP alerts' areas go, how alerts
// become bulletins, and an optional feed the hub polls.
type CAPConfig struct {
	// AreaMap is the YAML file mapping CAP geocodes and polygons to hub areas (docs/cap.md).
	AreaMap string `yaml:"area_map"`
	// FeedURL is an Atom/RSS feed of CAP alerts, or a URL serving the current alert; empty:
	// no polling (alerts still arrive by POST /api/cap).
	FeedURL string `yaml:"feed_url"`
	// FeedInterval is how often the feed is fetched (default 60s).
	FeedInterval time.Duration `yaml:"feed_interval"`
	// Mapping tunes the alert-to-bulletin rules (cap.Config; defaults in docs/cap.md).
	Mapping cap.Config `yaml:"mapping"`
	// FetchAudio fetches an alert's audio resource into the library and plays it, with the
	// alert's text as its spoken fallback (default true).
	FetchAudio *bool `yaml:"fetch_audio"`
	// AudioFromPrivate lets an alert's audio come from loopback, private and link-local
	// addresses (an authority's server on the hub's own network). Off by default: the URL is
	// written by whoever sends the alert, and the hub would otherwise fetch from its own
	// network for them.
	AudioFromPrivate bool `yaml:"audio_from_private"`
}

// capFeedActor is who feed alerts are attributed to in the audit log and the emergencies.
const capFeedActor = "cap-feed"

// ConfigureCAP reads the area map and turns CAP handling on. Call it before serving.
func (rm *Room) ConfigureCAP(c CAPConfig) error {
	if c.AreaMap == "" {
		return errors.New("cap: area_map is required (the YAML file mapping CAP areas to hub areas, see docs/cap.md)")
	}
	b, err := os.ReadFile(c.AreaMap)
	if err != nil {
		return fmt.Errorf("cap: area map: %w", err)
	}
	am, err := cap.ParseAreaMap(b)
	if err != nil {
		return fmt.Errorf("cap: area map %s: %w", c.AreaMap, err)
	}
	cfg := c.Mapping
	if cfg.Location == nil {
		cfg.Location = rm.emLocation()
	}
	m, err := cap.NewMapper(cfg, am)
	if err != nil {
		return fmt.Errorf("cap: mapping: %w", err)
	}
	if c.FeedInterval == 0 {
		c.FeedInterval = time.Minute
	}
	if c.FeedInterval < time.Second {
		return fmt.Errorf("cap: feed_interval %s is under a second", c.FeedInterval)
	}
	cs := &capState{mapper: m, feedURL: c.FeedURL, feedInterval: c.FeedInterval, actor: capFeedActor,
		fetcher: &cap.Fetcher{UserAgent: "loa-hub"}, fetchAudio: c.FetchAudio == nil || *c.FetchAudio,
		audioClient: audioClient(c.AudioFromPrivate)}
	rm.mu.Lock()
	rm.cap = cs
	rm.mu.Unlock()
	return nil
}

func (rm *Room) capConfig() *capState {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.cap
}

// CAP is POST /api/cap: one CAP alert, applied as broadcasts over the areas it maps to.
func (rm *Room) CAP(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	cs := rm.capConfig()
	if cs == nil {
		staffapi.Error(w, http.StatusServiceUnavailable, "this hub takes no CAP alerts: set cap.area_map in the hub config (see docs/cap.md)")
		return
	}
	a, err := cap.Read(r.Body)
	if err != nil {
		rm.o.Log.Warn("CAP alert refused", "by", p.User.ID, "err", err)
		rm.o.Audit(r.Context(), p, "cap.refused", "area:"+p.Scope, map[string]string{"error": err.Error()})
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := rm.applyCAP(r.Context(), p, cs, a)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, res)
}

// applyCAP maps one validated alert and carries out the decision.
func (rm *Room) applyCAP(ctx context.Context, p staffapi.Caller, cs *capState, a *cap.Alert) (api.CAPResponse, error) {
	var out api.CAPResponse
	now := rm.o.Now()
	target := "area:" + p.Scope
	if p.Scope == "" {
		target = "cap:" + a.Key()
	}
	d, err := cs.mapper.Map(a, now)
	if err != nil {
		rm.o.Audit(ctx, p, "cap.refused", target, map[string]string{"message": a.Key(), "error": err.Error()})
		code := http.StatusInternalServerError
		if errors.Is(err, cap.ErrUnmapped) {
			code = http.StatusUnprocessableEntity
		}
		return out, staffapi.Refuse(code, err.Error())
	}
	out.Decision, _ = json.Marshal(d)
	detail := map[string]any{"message": d.MessageID, "action": d.Action, "series": d.SeriesID, "areas": d.Areas,
		"class": d.Class.String(), "status": d.Status, "reason": d.Reason}
	es, err := rm.emStore()
	if err != nil {
		return out, staffapi.Refuse(http.StatusNotImplemented, err.Error())
	}
	if d.Action != cap.Ignore {
		// A feed lists an alert many times, and senders retry: apply each message once.
		done, err := es.ListEmergencies(ctx, store.EmergencyFilter{Source: "cap:" + d.MessageID, Limit: 1})
		if err != nil {
			return out, err
		}
		if len(done) > 0 {
			out.Note = fmt.Sprintf("message %s was already applied (emergency %d)", d.MessageID, done[0].ID)
			return out, nil
		}
	}
	for _, area := range d.Areas {
		if !staffapi.MayAct(p, area) {
			// Not named: an alert's areas are the sender's to choose, and naming the hub areas
			// they map to would let a commune probe the area map outside its scope.
			return out, staffapi.Refuse(http.StatusForbidden, fmt.Sprintf("the alert reaches areas outside your scope %s: send it with a token of a wider scope", p.Scope))
		}
	}
	// The series is matched through every message it holds that the hub applied (each row
	// keeps its message as source), not only the first one.
	seriesID, others, err := capSeries(ctx, es, d)
	if err != nil {
		return out, err
	}
	detail["series"] = seriesID
	series := "cap:" + seriesID
	// Rows of the other series the message reaches end with it (an update joining them).
	activeOf := func(ids []string) ([]store.Emergency, error) {
		var rows []store.Emergency
		for _, ser := range ids {
			r, err := es.ListEmergencies(ctx, store.EmergencyFilter{Series: "cap:" + ser, ActiveAt: now})
			if err != nil {
				return nil, err
			}
			rows = append(rows, r...)
		}
		return rows, nil
	}
	switch d.Action {
	case cap.Ignore:
		out.Note = d.Reason
		rm.o.Audit(ctx, p, "cap.ignore", target, detail)
		rm.o.Log.Info("CAP alert ignored", "message", d.MessageID, "reason", d.Reason)
		return out, nil
	case cap.Cancel:
		ids := append([]string{seriesID}, others...)
		ids = append(ids, d.SeriesID)
		ids = append(ids, d.References...) // a referenced message that began a series of its own
		slices.Sort(ids)
		rows, err := activeOf(slices.Compact(ids))
		if err != nil {
			return out, err
		}
		rm.o.Audit(ctx, p, "cap.cancel", target, detail)
		if len(rows) == 0 {
			out.Note = "nothing of series " + seriesID + " is on the air"
			return out, nil
		}
		out.Result, err = rm.end(ctx, p, rows, "cancelled")
		out.Applied = err == nil
		return out, err
	}
	bs, warnings := rm.capBroadcasts(ctx, p, cs, d, series, now)
	stray, err := activeOf(others)
	if err != nil {
		return out, err
	}
	rm.o.Audit(ctx, p, "cap."+string(d.Action), target, detail)
	out.Result, err = rm.put(ctx, p, bs, now, true) // the sender decides an update's areas
	if err != nil {
		return out, err
	}
	if len(stray) > 0 {
		ended, err := rm.end(ctx, p, stray, "replaced")
		if err != nil {
			return out, err
		}
		for _, e := range ended.Emergencies {
			out.Result.Replaced = append(out.Result.Replaced, e.ID)
		}
	}
	out.Applied = true
	out.Result.Warnings = append(append(warnings, d.Warnings...), out.Result.Warnings...)
	rm.o.Log.Info("CAP alert applied", "message", d.MessageID, "action", d.Action, "series", d.SeriesID, "areas", d.Areas,
		"class", d.Class, "devices", out.Result.Devices, "sent", out.Result.Sent)
	return out, nil
}

// capSeries is the series an alert continues, matched through every message of it the hub
// applied (each row keeps its message as source), not only the first one; others are the
// other series the message reaches.
func capSeries(ctx context.Context, es emergencyStore, d cap.Decision) (string, []string, error) {
	var knownErr error
	seriesID, others := d.ResolveSeries(func(msg string) (string, bool) {
		rows, err := es.ListEmergencies(ctx, store.EmergencyFilter{Source: "cap:" + msg, Limit: 1})
		if err != nil {
			knownErr = err
		}
		if err != nil || len(rows) == 0 || !strings.HasPrefix(rows[0].Series, "cap:") {
			return "", false
		}
		return strings.TrimPrefix(rows[0].Series, "cap:"), true
	})
	return seriesID, others, knownErr
}

// capBroadcasts are an alert's create or replace: one broadcast per area, in one series, with
// the alert's audio when it is fetched (warnings say when it is not).
func (rm *Room) capBroadcasts(ctx context.Context, p staffapi.Caller, cs *capState, d cap.Decision, series string, now time.Time) ([]broadcast, []string) {
	b := broadcast{kind: store.KindEmergency, class: d.Class.String(), title: d.Title, text: d.Text, series: series,
		source: "cap:" + d.MessageID, start: d.Start, until: d.Expires, every: d.Repeat, volume: 1}
	var warnings []string
	if d.AudioURL != "" && cs.fetchAudio {
		ref, err := rm.fetchCAPAudio(ctx, p, cs, d)
		if err != nil {
			warnings = append(warnings, "the alert's audio is not used, its text is spoken instead: "+err.Error())
			rm.o.Log.Warn("CAP audio not fetched; speaking the text", "message", d.MessageID, "url", d.AudioURL, "err", err)
		} else {
			b.content = ref
		}
	}
	if b.start.IsZero() || b.start.Before(now) {
		b.start = now
	}
	bs := make([]broadcast, 0, len(d.Areas))
	for _, area := range d.Areas {
		b.area = area
		b.to = append(b.to, place{area: area})
		bs = append(bs, b)
	}
	return bs, warnings
}

// maxCAPAudio bounds an alert's audio resource: a spoken warning is well under a minute.
const maxCAPAudio = 20 << 20

// fetchCAPAudio downloads the alert's audio into the library (transcoded like an upload).
func (rm *Room) fetchCAPAudio(ctx context.Context, p staffapi.Caller, cs *capState, d cap.Decision) (string, error) {
	if rm.o.Transcoder == nil {
		return "", errors.New("this hub has no transcoder")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.AudioURL, nil)
	if err != nil {
		return "", err
	}
	client := cs.audioClient
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", d.AudioURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: HTTP %s", d.AudioURL, resp.Status)
	}
	if rm.o.Transcoder.TempDir != "" {
		os.MkdirAll(rm.o.Transcoder.TempDir, 0o750)
	}
	in, err := os.CreateTemp(rm.o.Transcoder.TempDir, "cap-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(in.Name())
	defer in.Close()
	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(in, h), io.LimitReader(resp.Body, maxCAPAudio+1))
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", d.AudioURL, err)
	}
	if n > maxCAPAudio {
		return "", fmt.Errorf("%s is larger than %d MiB", d.AudioURL, maxCAPAudio>>20)
	}
	if d.AudioDigest != "" {
		// CAP 1.2 digest: SHA-1, written as hex (most senders) or base64.
		sum := h.Sum(nil)
		want := strings.TrimSpace(d.AudioDigest)
		if !strings.EqualFold(want, fmt.Sprintf("%x", sum)) && want != base64.StdEncoding.EncodeToString(sum) {
			return "", fmt.Errorf("%s does not match the alert's digest %s", d.AudioURL, want)
		}
	}
	out := in.Name() + ".mp3"
	defer os.Remove(out)
	dur, err := rm.o.Transcoder.Transcode(ctx, in.Name(), out)
	if err != nil {
		return "", err
	}
	ref, size, err := rm.o.Library.StoreFile(out)
	if err != nil {
		return "", err
	}
	actor := p.User.ID
	if actor == "" {
		actor = cs.actor
	}
	c, _, err := rm.o.Store.AddContent(ctx, store.Content{Ref: ref, Size: size, Duration: dur, MIME: "audio/mpeg", Title: d.Title,
		Language: slug(d.Language), Theme: "emergency", Format: "cap", ProducingUnit: slug(strings.SplitN(d.MessageID, ",", 2)[0]), UploadedBy: actor})
	if err != nil {
		return "", err
	}
	return c.Ref, nil
}

// audioClient fetches alert audio: the address is checked after name resolution, on every
// connection (redirects too), so a name that resolves to the hub's own network is refused as
// well; no proxy (it would be such an address).
func audioClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !publicIP(ip) {
				return fmt.Errorf("%s is not a public address: alert audio is fetched only from the Internet (cap.audio_from_private allows the hub's own network)", host)
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

var cgnat = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

func publicIP(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || cgnat.Contains(ip))
}

// pollCAPFeed fetches the feed every interval and applies each alert not applied yet.
func (rm *Room) pollCAPFeed(ctx context.Context, cs *capState) {
	p := staffapi.Caller{User: store.User{ID: cs.actor}}
	seen := map[string]bool{} // feed entries fetched and handled, so unchanged entries are not refetched
	for {
		rm.pollCAPOnce(ctx, cs, p, seen)
		t := time.NewTimer(cs.feedInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pollCAPOnce is one fetch of the feed.
func (rm *Room) pollCAPOnce(ctx context.Context, cs *capState, p staffapi.Caller, seen map[string]bool) {
	entries, warnings, err := cs.fetcher.Feed(ctx, cs.feedURL)
	if err != nil {
		rm.o.Log.Warn("CAP feed not read", "url", cs.feedURL, "err", err)
		return
	}
	for _, w := range warnings {
		rm.o.Log.Warn("CAP feed", "url", cs.feedURL, "warning", w)
	}
	for _, e := range entries {
		key := e.ID + "@" + e.Updated.String()
		if seen[key] {
			continue
		}
		a, err := cs.fetcher.Alert(ctx, e)
		if err != nil {
			rm.o.Log.Warn("CAP feed entry refused", "entry", e.ID, "err", err)
			rm.o.Audit(ctx, p, "cap.refused", "cap:"+e.ID, map[string]string{"entry": e.ID, "error": err.Error()})
			seen[key] = true // a malformed entry is not refetched until it changes
			continue
		}
		res, err := rm.applyCAP(ctx, p, cs, a)
		if err != nil {
			var he *staffapi.Refusal
			if errors.As(err, &he) && he.Code < 500 {
				seen[key] = true // refused for what it says: retrying will not help
			}
			rm.o.Log.Warn("CAP feed alert not applied", "message", a.Key(), "err", err)
			continue
		}
		seen[key] = true
		if res.Applied {
			rm.o.Log.Info("CAP feed alert applied", "message", a.Key(), "devices", res.Result.Devices)
		}
	}
}

// slug makes a CAP value (vi-VN, an e-mail sender) fit the library's taxonomy values.
func slug(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-_.")
}
