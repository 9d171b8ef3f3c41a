package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/cap"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/scheduler"
)

// Emergencies, priority bulletins and live relays are rows of the store's emergencies table.
// While a row is active (not ended, until ahead) the hub composes it into the effective
// schedule of every device in its area and below as an extra source, placed before the area
// schedules so that the nearest area still decides the time zone and quiet hours. The source
// is named by the row id and never changes, so the composition's "same sources" test notices
// a new, replaced, cancelled or expired broadcast and nothing else.

// emergencyStore is what the emergency code needs beyond Store; *store.DB provides it.
type emergencyStore interface {
	AddEmergencies(ctx context.Context, es []store.Emergency) (added, replaced []store.Emergency, err error)
	GetEmergency(ctx context.Context, id int64) (store.Emergency, error)
	EndEmergencies(ctx context.Context, ids []int64, reason, by string) ([]store.Emergency, error)
	ListEmergencies(ctx context.Context, f store.EmergencyFilter) ([]store.Emergency, error)
}

type activeEmergency struct {
	e   store.Emergency
	src store.Schedule // the source composed into devices' schedules
}

// Zone is the zone broadcasts are written and announced in when the hub is not told.
const Zone = "Asia/Ho_Chi_Minh"

func (rm *Room) emStore() (emergencyStore, error) {
	es, ok := rm.o.Store.(emergencyStore)
	if !ok {
		return nil, errors.New("this hub's store keeps no emergencies")
	}
	return es, nil
}

func (rm *Room) emLocation() *time.Location {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.emLocationLocked()
}

func (rm *Room) emLocationLocked() *time.Location {
	if rm.loc == nil {
		rm.loc = rm.o.Location
	}
	return rm.loc
}

// Changed drops the cached active set and wakes the expiry loop.
func (rm *Room) Changed() {
	rm.mu.Lock()
	rm.loaded = false
	w := rm.wake
	rm.mu.Unlock()
	if w != nil {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// activeEmergencies returns the broadcasts active at the clock's now, by id.
func (rm *Room) activeEmergencies(ctx context.Context) ([]activeEmergency, error) {
	now := rm.o.Now()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if !rm.loaded {
		st, err := rm.emStore()
		if err != nil {
			return nil, nil // a store without emergencies composes none
		}
		es, err := st.ListEmergencies(ctx, store.EmergencyFilter{ActiveAt: now})
		if err != nil {
			return nil, fmt.Errorf("active emergencies: %w", err)
		}
		loc := rm.emLocationLocked()
		act := make([]activeEmergency, 0, len(es))
		for _, e := range es {
			doc, err := emergencyDocument(e, loc, rm.o.StampRelays)
			if err != nil {
				rm.o.Log.Error("emergency cannot be composed; left out", "id", e.ID, "series", e.Series, "err", err)
				continue
			}
			act = append(act, activeEmergency{e: e, src: store.Schedule{Target: emergencyTarget(e), Revision: 1,
				ID: "emergency-" + strconv.FormatInt(e.ID, 10), Document: doc}})
		}
		sort.Slice(act, func(i, j int) bool { return act[i].e.ID < act[j].e.ID })
		rm.active, rm.loaded = act, true
	}
	out := make([]activeEmergency, 0, len(rm.active))
	for _, a := range rm.active {
		if a.e.Until.After(now) {
			out = append(out, a)
		}
	}
	return out, nil
}

// emergencyTarget names a broadcast as a composition source; its id is also the prefix of
// its programme ids on the devices (emergency:12/speakers).
func emergencyTarget(e store.Emergency) store.Target {
	return store.Target{Kind: store.TargetEmergency, ID: e.Kind + ":" + strconv.FormatInt(e.ID, 10)}
}

// WithEmergencies puts the active broadcasts covering a device before its schedule sources.
// It is the hook of the hub's composition (hub/agentlink/compose.go).
func (rm *Room) WithEmergencies(ctx context.Context, deviceID string, srcs []store.Schedule) ([]store.Schedule, error) {
	act, err := rm.activeEmergencies(ctx)
	if err != nil {
		return nil, err
	}
	var pre []store.Schedule
	if len(act) > 0 {
		d, err := rm.o.Store.GetDevice(ctx, deviceID)
		if err != nil {
			return nil, err
		}
		for _, a := range act {
			if a.e.Reaches(d.ID, d.Area) {
				pre = append(pre, a.src)
			}
		}
	}
	if len(pre) == 0 && len(srcs) == 0 {
		// Nothing left to play. A device that played a broadcast and has no schedule must
		// still be told it is over; a document needs a programme, so it gets one that never
		// plays. A device that never had anything keeps getting nothing.
		latest, err := rm.o.Store.LatestEffective(ctx, deviceID)
		if err == nil && latest.Revision > 0 {
			return []store.Schedule{idleSource()}, nil
		}
		return srcs, nil
	}
	if len(pre) == 0 {
		return srcs, nil
	}
	return append(pre, srcs...), nil // a new slice: srcs may be shared between devices
}

// idleSource is a schedule whose one programme lies in the past: what a device with no
// schedule of its own is left with once its last broadcast ended.
func idleSource() store.Schedule {
	doc := `{"version":1,"id":"idle","revision":1,"timezone":"` + Zone + `","programs":[{"id":"idle","at":"2000-01-01T00:00:00+07:00","outputs":["board"],"items":[{"text":"-","duration":"1s"}]}]}`
	return store.Schedule{Target: store.Target{Kind: store.TargetEmergency, ID: "none:0"}, Revision: 1, ID: "idle", Document: []byte(doc)}
}

// EmergenciesFor reads the active broadcasts once and returns a function that puts those
// reaching a device before its sources: the hook of a push composing many devices.
func (rm *Room) EmergenciesFor(ctx context.Context) (func(d store.Device, srcs []store.Schedule) []store.Schedule, error) {
	act, err := rm.activeEmergencies(ctx)
	if err != nil {
		return nil, err
	}
	return func(d store.Device, srcs []store.Schedule) []store.Schedule {
		var pre []store.Schedule
		for _, a := range act {
			if a.e.Reaches(d.ID, d.Area) {
				pre = append(pre, a.src)
			}
		}
		if len(pre) == 0 {
			return srcs
		}
		return append(pre, srcs...)
	}, nil
}

// emergencyDocument is the schedule source of one broadcast: a programme on the speakers (the
// stored items) and, when it has a text, one for boards and screens, both starting at Start and
// repeating every Every while a start is before Until. With stamp, a live relay's stream is
// also offered from the hub's stamped feed.
func emergencyDocument(e store.Emergency, loc *time.Location, stamp bool) ([]byte, error) {
	var items []scheduler.Item
	if err := json.Unmarshal(e.Items, &items); err != nil {
		return nil, fmt.Errorf("emergency %d items: %w", e.ID, err)
	}
	if stamp && e.Kind == store.KindLive {
		for i := range items {
			if items[i].Stream != "" {
				items[i].Stamped = RelayPath(items[i].Stream)
			}
		}
	}
	class, err := scheduler.ParseClass(e.Class)
	if err != nil {
		return nil, err
	}
	vol := e.Volume
	base := scheduler.Program{Title: e.Title, Class: class, At: e.Start.In(loc).Format(scheduler.AtLayout), Volume: &vol}
	// The window of each play reaches the next repeat (or the expiry): a device that gets the
	// broadcast late (a link back up, a reboot) still plays it from its beginning, where its
	// natural length alone would have closed the window seconds after the start.
	window := e.Until.Sub(e.Start)
	if n := repeatCount(e.Start, e.Until, e.Every); n > 0 {
		base.Repeat = &scheduler.Repeat{Count: n, Every: scheduler.Duration(e.Every)}
		window = e.Every
	}
	if window > itemsLength(items) {
		base.MaxDuration = scheduler.Duration(window)
	}
	speakers := base
	speakers.ID, speakers.Outputs, speakers.Items = "speakers", []string{"speakers"}, items
	doc := scheduler.Document{Version: scheduler.SchemaVersion, ID: "emergency-" + strconv.FormatInt(e.ID, 10), Revision: 1,
		Timezone: loc.String(), Programs: []scheduler.Program{speakers}}
	if e.Text != "" && e.Kind != store.KindLive {
		display := base
		display.ID, display.Outputs = "display", []string{"board", "screen"}
		display.Items = []scheduler.Item{{Text: e.Text, Duration: scheduler.Duration(max(itemsLength(items), time.Minute))}}
		doc.Programs = append(doc.Programs, display)
	}
	if doc.Timezone == "" || doc.Timezone == "Local" {
		doc.Timezone = Zone
	}
	b, err := doc.Encode()
	if err != nil {
		return nil, err
	}
	if _, err := scheduler.Parse("emergency "+strconv.FormatInt(e.ID, 10), b); err != nil {
		return nil, err
	}
	return b, nil
}

// RelayPath is where on the hub a device gets the stamped feed of a live relay's upstream.
func RelayPath(upstream string) string {
	return "/agent/relay?url=" + url.QueryEscape(upstream)
}

// Relays says whether upstream is the stream of a live relay on the air now that reaches the
// device: the hub's feed reads only those, never any address a device names.
func (rm *Room) Relays(ctx context.Context, d store.Device, upstream string) (bool, error) {
	act, err := rm.activeEmergencies(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range act {
		if a.e.Kind != store.KindLive || !a.e.Reaches(d.ID, d.Area) {
			continue
		}
		var items []scheduler.Item
		if json.Unmarshal(a.e.Items, &items) != nil {
			continue
		}
		for _, it := range items {
			if it.Stream == upstream {
				return true, nil
			}
		}
	}
	return false, nil
}

// maxRepeats is the scheduler's bound on repeat.count.
const maxRepeats = 1000

// repeatCount is how many more starts every apart fall before until.
func repeatCount(start, until time.Time, every time.Duration) int {
	if every <= 0 || !until.After(start) {
		return 0
	}
	n := int((until.Sub(start) - 1) / every) // starts at start+k*every < until, k >= 1
	return min(n, maxRepeats)
}

func itemsLength(items []scheduler.Item) time.Duration {
	var d time.Duration
	for _, it := range items {
		d += it.Duration.D()
	}
	return d
}

// speechLength is a generous estimate of how long espeak-ng takes to say text: about 0.5 s a
// word (Vietnamese is one syllable a word; espeak-ng's default is 175 words a minute) and 2 s
// of margin. The agent plays the speech to its real end or this cut, whichever is first.
func speechLength(text string) time.Duration {
	words := len(strings.Fields(text))
	return time.Duration(words)*500*time.Millisecond + 2*time.Second
}

// issuedSentence is the spoken intro of an emergency: each repeat states when it was issued
// (the domain rule for re-broadcasts).
func issuedSentence(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	return fmt.Sprintf("Bản tin phát lúc %02d:%02d ngày %02d/%02d/%04d.", t.Hour(), t.Minute(), t.Day(), int(t.Month()), t.Year())
}

// defaultFallback is spoken when an emergency recording is missing on a device and the staff
// gave no text: the warning is never silent.
const defaultFallback = "Có thông báo khẩn cấp. Đề nghị người dân chú ý theo dõi loa truyền thanh và làm theo hướng dẫn của chính quyền."

// broadcast is a validated request to put on the air, before it is stored.
type broadcast struct {
	kind, class, title, text, content, stream, series, source string
	area, device                                              string  // where this one goes: an area's devices, or one device
	to                                                        []place // every target of the request
	start, until                                              time.Time
	every, length                                             time.Duration
	volume                                                    float64
	intro                                                     bool // say the issue time first
}

// items builds the speakers programme of a broadcast.
func (rm *Room) broadcastItems(ctx context.Context, b broadcast, issued time.Time) ([]scheduler.Item, error) {
	var items []scheduler.Item
	if b.intro {
		intro := issuedSentence(issued, rm.emLocation())
		items = append(items, scheduler.Item{Text: intro, Duration: scheduler.Duration(speechLength(intro))})
	}
	switch {
	case b.content != "":
		c, err := rm.o.Store.GetContent(ctx, b.content)
		if err != nil {
			return nil, staffapi.BadRequest("content %s is not in the hub's library: upload the file with `loa content add FILE` (or give FILE to this command) and use the sha256 it prints", b.content)
		}
		fb := b.text
		if fb == "" && b.kind == store.KindEmergency {
			fb = strings.TrimSpace(b.title + ". " + defaultFallback)
			if b.title == "" {
				fb = defaultFallback
			}
		}
		items = append(items, scheduler.Item{Content: c.Ref, Duration: scheduler.Duration(c.Duration), Title: b.title, Fallback: fb})
	case b.stream != "":
		items = append(items, scheduler.Item{Stream: b.stream, Duration: scheduler.Duration(b.length), Title: b.title})
	default:
		items = append(items, scheduler.Item{Text: b.text, Duration: scheduler.Duration(speechLength(b.text)), Title: b.title})
	}
	return items, nil
}

// callerZone is the caller's zone, or the hub's for a caller made without a request (CAP).
func (rm *Room) callerZone(p staffapi.Caller) *time.Location {
	if p.Zone != nil {
		return p.Zone
	}
	return rm.o.Location
}

// parseUntil reads an expiry (api.TimeRule, dates and times in loc).
func parseUntil(v string, now time.Time, loc *time.Location) (time.Time, error) {
	t, _, err := api.ParseTime(v, now, loc)
	if err != nil {
		return time.Time{}, staffapi.BadRequest("--until %v", err)
	}
	return t, nil
}

func positiveDuration(flag, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, staffapi.BadRequest("%s %q: write a positive duration like 20s, 30m or 2h", flag, v)
	}
	return d, nil
}

// place is where one row of a broadcast goes: every device of an area, or one device (then
// area is the device's, for scope).
type place struct{ area, device string }

// name is how staff write the target in --to.
func (t place) name() string {
	if t.device != "" {
		return t.device
	}
	return t.area
}

// broadcastTarget finds an area or a device in the caller's scope (findTarget) to put a
// broadcast on; a revoked device plays nothing, so it is refused.
func (rm *Room) broadcastTarget(ctx context.Context, p staffapi.Caller, to string) (place, error) {
	t, area, err := rm.o.FindTarget(ctx, p, to)
	if err != nil {
		return place{}, err
	}
	if t.Kind != store.TargetDevice {
		return place{area: area}, nil
	}
	if d, err := rm.o.Store.GetDevice(ctx, t.ID); err == nil && d.Revoked {
		return place{}, staffapi.Refuse(http.StatusConflict, fmt.Sprintf("device %s is revoked: it plays nothing the hub sends", t.ID))
	}
	return place{area: area, device: t.ID}, nil
}

// parseBroadcast validates a request into a broadcast (its start still to be decided for a
// next-session bulletin).
func (rm *Room) parseBroadcast(ctx context.Context, p staffapi.Caller, req api.EmergencyRequest, now time.Time) (broadcast, error) {
	b := broadcast{kind: req.Kind, class: req.Class, title: strings.TrimSpace(req.Title), text: strings.TrimSpace(req.Text),
		content: req.Content, stream: req.Stream, series: strings.TrimSpace(req.Series), source: "cli", volume: 1}
	if b.kind == "" {
		b.kind = store.KindEmergency
	}
	to, err := rm.resolveTargets(ctx, p, req.To)
	if err != nil {
		return b, err
	}
	b.area, b.device, b.to = to[0].area, to[0].device, to
	given := 0
	for _, v := range []string{b.content, b.text, b.stream} {
		if v != "" {
			given++
		}
	}
	switch b.kind {
	case store.KindEmergency:
		if b.class == "" {
			b.class = "emergency"
		}
		if b.class != "emergency" && b.class != "priority" {
			return b, staffapi.BadRequest("class %q: an emergency broadcast is emergency or priority", b.class)
		}
		if b.stream != "" || (b.content == "" && b.text == "") {
			return b, staffapi.BadRequest("an emergency needs what to say: give a FILE, --content sha256:… or --text \"…\" (a text is spoken by the devices; with a recording it is spoken if the recording cannot be fetched)")
		}
		b.intro = true
	case store.KindBulletin:
		if b.class != "" && b.class != "priority" {
			return b, staffapi.BadRequest("a bulletin is always class priority; use `loa emergency` for an emergency")
		}
		b.class = "priority"
		if b.content == "" && b.text == "" || b.stream != "" {
			return b, staffapi.BadRequest("a bulletin needs a FILE or --content sha256:… (or --text)")
		}
		if !req.NextSession {
			return b, staffapi.BadRequest("say when the bulletin plays: --next-session (the start of the next session of the area's devices)")
		}
	case store.KindLive:
		if b.class != "" && b.class != "priority" {
			return b, staffapi.BadRequest("a live relay is class priority")
		}
		b.class = "priority"
		if b.stream == "" || given != 1 {
			return b, staffapi.BadRequest("a live relay needs only --url http(s)://… of the stream")
		}
		u, err := url.Parse(b.stream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return b, staffapi.BadRequest("--url %q: give the http:// or https:// address of the stream (an Icecast mount, e.g. http://radio.example/qnr.mp3)", b.stream)
		}
		if b.length, err = positiveDuration("--for", req.For, time.Hour); err != nil {
			return b, err
		}
	default:
		return b, staffapi.BadRequest("kind %q is not emergency, bulletin or live", b.kind)
	}
	if b.kind != store.KindLive && b.content != "" && b.stream != "" {
		return b, staffapi.BadRequest("give a recording or a stream, not both")
	}
	if b.content != "" {
		ref, _, err := store.ParseRef(b.content)
		if err != nil {
			return b, staffapi.BadRequest("--content %q: give the sha256:… reference `loa content add` printed", b.content)
		}
		b.content = ref
	}
	if len(b.text) > 4000 || !utf8.ValidString(b.text) {
		return b, staffapi.BadRequest("--text is longer than 4000 bytes or not UTF-8: keep a spoken warning short")
	}
	if req.Volume != nil {
		if *req.Volume < 0 || *req.Volume > 1 {
			return b, staffapi.BadRequest("--volume %g: give a number from 0 to 1 (1 is full volume)", *req.Volume)
		}
		b.volume = *req.Volume
	}
	if b.every, err = positiveDuration("--repeat-every", req.RepeatEvery, 0); err != nil {
		return b, err
	}
	if b.kind != store.KindEmergency && b.every > 0 {
		return b, staffapi.BadRequest("--repeat-every is for emergencies")
	}
	if req.Until != "" {
		if b.until, err = parseUntil(req.Until, now, rm.callerZone(p)); err != nil {
			return b, err
		}
		if !b.until.After(now) {
			return b, staffapi.BadRequest("--until %s is already past", req.Until)
		}
	}
	if b.series == "" {
		where := to[0].name()
		if len(to) > 1 {
			where += fmt.Sprintf("+%d", len(to)-1)
		}
		b.series = fmt.Sprintf("%s/%s/%s", b.kind, where, now.In(rm.emLocation()).Format("20060102T150405.000"))
	}
	return b, nil
}

// resolveTargets resolves a comma-separated list of areas and devices (broadcastTarget each)
// without repeats: an area below another one named, and a device in an area named, are
// dropped (their devices are reached already). Areas come first, in id order.
func (rm *Room) resolveTargets(ctx context.Context, p staffapi.Caller, to string) ([]place, error) {
	var named []place
	for _, part := range strings.Split(to, ",") {
		part = strings.TrimSpace(part)
		if part == "" && to != "" {
			continue
		}
		t, err := rm.broadcastTarget(ctx, p, part)
		if err != nil {
			return nil, err
		}
		named = append(named, t)
	}
	if len(named) == 0 {
		return nil, staffapi.BadRequest("say where: use --to AREA (e.g. --to %s), or several areas and devices: --to A,B,C", p.Scope)
	}
	var out []place
	for _, t := range reach(asRows(named)) {
		if t.Kind == store.TargetDevice {
			i := slices.IndexFunc(named, func(n place) bool { return n.device == t.ID })
			out = append(out, named[i])
		} else {
			out = append(out, place{area: t.ID})
		}
	}
	return out, nil
}

// asRows gives targets the shape reach reads.
func asRows(ts []place) []store.Emergency {
	rows := make([]store.Emergency, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, store.Emergency{Area: t.area, Device: t.device})
	}
	return rows
}

// covers reports whether the new broadcast b reaches every device the row o reached.
func (b broadcast) covers(o store.Emergency) bool {
	if b.device != "" {
		return o.Device == b.device
	}
	return store.Allowed(b.area, o.Area)
}

// put stores broadcasts of one series (replacing its active rows) and pushes to every area
// they and the rows they replace cover.
//
// A series on the air in areas bs does not cover would end there: unless narrow allows it
// (staff asked with replace_areas; a CAP Update, whose sender decides its areas), that is
// refused with 409 naming those areas, so a warning is never narrowed by accident.
func (rm *Room) put(ctx context.Context, p staffapi.Caller, bs []broadcast, now time.Time, narrow bool) (api.EmergencyResponse, error) {
	var res api.EmergencyResponse
	es, err := rm.emStore()
	if err != nil {
		return res, staffapi.Refuse(http.StatusNotImplemented, err.Error())
	}
	// Replacing a series is acting on its areas: they must be the caller's too.
	old, err := es.ListEmergencies(ctx, store.EmergencyFilter{Series: bs[0].series})
	if err != nil {
		return res, err
	}
	var dropped []string
	for _, o := range old {
		if !o.Active(now) {
			continue
		}
		if !staffapi.MayAct(p, o.Area) {
			// Series names are free text: that one is taken cannot be hidden, where it is on
			// the air can (unless the caller sees it anyway, from an area above).
			where := "outside your scope " + p.Scope
			if visible(p, o) {
				where = "for " + o.Area + ", " + where
			}
			return res, staffapi.Refuse(http.StatusConflict, fmt.Sprintf("series %q has a broadcast %s: choose another --series", bs[0].series, where))
		}
		if !slices.ContainsFunc(bs, func(b broadcast) bool { return b.covers(o) }) {
			dropped = append(dropped, place{o.Area, o.Device}.name())
		}
	}
	if len(dropped) > 0 && !narrow {
		slices.Sort(dropped)
		dropped = slices.Compact(dropped)
		all := slices.Clone(dropped)
		for _, b := range bs {
			all = append(all, place{b.area, b.device}.name())
		}
		return res, staffapi.Refuse(http.StatusConflict, fmt.Sprintf("series %q is also on the air in %s, which this broadcast does not name: it would end there. "+
			"Name every area and device (--to %s), or add --replace-areas to end it there on purpose",
			bs[0].series, strings.Join(dropped, ", "), strings.Join(all, ",")))
	}
	rows := make([]store.Emergency, 0, len(bs))
	for _, b := range bs {
		items, err := rm.broadcastItems(ctx, b, now)
		if err != nil {
			return res, err
		}
		length := itemsLength(items)
		if b.every > 0 && b.every < length {
			return res, staffapi.BadRequest("--repeat-every %s is shorter than the broadcast itself (%s): repeat it less often", b.every, length.Round(time.Second))
		}
		start := b.start
		if start.IsZero() {
			start = now
		}
		until := b.until
		if until.IsZero() {
			switch {
			case b.kind == store.KindLive:
				until = start.Add(b.length)
			case b.kind == store.KindBulletin:
				until = start.Add(length + 30*time.Minute)
			case b.every > 0:
				until = start.Add(12 * time.Hour)
			default:
				until = start.Add(time.Hour)
			}
		}
		if !until.After(start) {
			return res, staffapi.BadRequest("it would expire (%s) before it starts (%s)", until.Format(time.RFC3339), start.Format(time.RFC3339))
		}
		if b.every > 0 && until.Sub(start)/b.every > maxRepeats {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%d repeats is the most a schedule holds: the last starts at %s", maxRepeats,
				start.Add(maxRepeats*b.every).Format(time.RFC3339)))
		}
		ib, _ := json.Marshal(items)
		rows = append(rows, store.Emergency{Series: b.series, Kind: b.kind, Area: b.area, Device: b.device, Class: b.class, Title: b.title,
			Text: b.text, Items: ib, IssuedAt: now, Start: start, Every: b.every, Until: until, Volume: b.volume,
			Source: b.source, CreatedBy: p.User.ID})
	}
	touched := slices.Clone(rows) // what this change reaches: the new rows, the series' old ones
	for _, o := range old {
		if o.EndedAt.IsZero() {
			touched = append(touched, o)
		}
	}
	before := rm.o.Push.HeadsBefore(ctx, reach(touched)...)
	added, replaced, err := es.AddEmergencies(ctx, rows)
	if err != nil {
		return res, err
	}
	rm.Changed()
	for _, e := range added {
		res.Emergencies = append(res.Emergencies, rm.emergencyJSON(e, now))
		if rm.o.Metrics != nil {
			rm.o.Metrics.Issued(e.Kind, e.Source)
		}
	}
	for _, e := range replaced {
		res.Replaced = append(res.Replaced, e.ID)
	}
	action := added[0].Kind + ".create"
	if added[0].Kind == store.KindLive {
		action = "live.start"
	}
	if len(replaced) > 0 {
		action = added[0].Kind + ".replace"
	}
	for _, e := range added {
		rm.o.Audit(ctx, p, action, e.Target().String(), map[string]any{"id": e.ID, "series": e.Series, "class": e.Class,
			"start": e.Start, "until": e.Until, "every": e.Every.String(), "source": e.Source, "replaced": res.Replaced})
	}
	rm.pushReach(ctx, append(added, replaced...), before, &res)
	return res, nil
}

// topAreas is areas without those below another of them (each device is pushed once).
func topAreas(ts []store.Target) []store.Target {
	areas := make([]string, 0, len(ts))
	for _, t := range ts {
		areas = append(areas, t.ID)
	}
	slices.Sort(areas)
	areas = slices.Compact(areas)
	var top []store.Target
	for _, a := range areas {
		if len(top) > 0 && store.Allowed(top[len(top)-1].ID, a) {
			continue // below one already pushed
		}
		top = append(top, store.AreaTarget(a))
	}
	return top
}

// reach is what rows are pushed to: their areas (once for nested ones), then their single
// devices that are not in one of those areas.
func reach(rows []store.Emergency) []store.Target {
	var areas []store.Target
	for _, e := range rows {
		if e.Device == "" {
			areas = append(areas, store.AreaTarget(e.Area))
		}
	}
	out := topAreas(areas)
	top := len(out)
	for _, e := range rows {
		if e.Device == "" || slices.Contains(out, store.DeviceTarget(e.Device)) ||
			slices.ContainsFunc(out[:top], func(t store.Target) bool { return store.IsWithin(e.Area, t.ID) }) {
			continue
		}
		out = append(out, store.DeviceTarget(e.Device))
	}
	return out
}

// pushReach recomposes and pushes the devices the rows reach (each once); devices composed
// since before by another push count as changed (see Heads).
func (rm *Room) pushReach(ctx context.Context, rows []store.Emergency, before map[string]store.EffectiveHead, res *api.EmergencyResponse) {
	for _, t := range reach(rows) {
		r := rm.o.Push.PushSince(ctx, t, before)
		res.Devices += r.Devices
		res.Sent += r.Sent
		res.Failures = append(res.Failures, r.Failures...)
	}
}

func (rm *Room) emergencyJSON(e store.Emergency, now time.Time) api.EmergencyJSON {
	j := api.EmergencyJSON{ID: e.ID, Series: e.Series, Kind: e.Kind, Area: e.Area, Device: e.Device, Class: e.Class, Title: e.Title, Text: e.Text,
		IssuedAt: e.IssuedAt, Start: e.Start, Plays: 1 + repeatCount(e.Start, e.Until, e.Every), Until: e.Until,
		Volume: e.Volume, Source: e.Source, CreatedBy: e.CreatedBy, Active: e.Active(now), EndedAt: staffapi.TimePtr(e.EndedAt),
		EndReason: e.EndReason, ReplacedBy: e.ReplacedBy, Program: emergencyTarget(e).ID + "/speakers",
		ReviewedBy: e.ReviewedBy, ReviewedAt: staffapi.TimePtr(e.ReviewedAt), ReviewNote: e.ReviewNote}
	if e.Every > 0 {
		j.RepeatEvery = e.Every.String()
	}
	var items []scheduler.Item
	json.Unmarshal(e.Items, &items)
	for _, it := range items {
		if it.Content != "" {
			j.Content = it.Content
		}
		if it.Stream != "" {
			j.Stream = it.Stream
		}
	}
	return j
}

// Create is POST /api/emergencies: an emergency warning, a priority bulletin or a live relay.
func (rm *Room) Create(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.EmergencyRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	now := rm.o.Now()
	b, err := rm.parseBroadcast(r.Context(), p, req, now)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	// Operators place bulletins and relays; warnings need the emergency role.
	if b.kind != store.KindBulletin && b.kind != store.KindLive && !store.Can(p.User.Role, store.RoleEmergency) {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("your role %s may not broadcast an emergency warning (it needs emergency or admin); ask an administrator of %s",
			p.User.Role, p.Scope))
		return
	}
	var warnings []string
	if b.kind == store.KindBulletin {
		start, w2, err := rm.nextSession(r.Context(), b.to[0], now)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		b.start, warnings = start, w2
	}
	// One row per target, one series: a typhoon warning for three communes is one broadcast.
	bs := make([]broadcast, 0, len(b.to))
	for i, t := range b.to {
		ba := b
		ba.area, ba.device = t.area, t.device
		if b.kind == store.KindBulletin && i > 0 {
			start, w2, err := rm.nextSession(r.Context(), t, now) // each target's own next session
			if err != nil {
				staffapi.Fail(w, err)
				return
			}
			ba.start, warnings = start, append(warnings, w2...)
		}
		bs = append(bs, ba)
	}
	res, err := rm.put(r.Context(), p, bs, now, req.ReplaceAreas)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	res.Warnings = append(warnings, res.Warnings...)
	rm.o.Log.Info("broadcast created", "kind", b.kind, "series", b.series, "to", req.To, "class", b.class,
		"devices", res.Devices, "sent", res.Sent, "by", p.User.ID)
	staffapi.WriteJSON(w, http.StatusCreated, res)
}

// visible: staff see the broadcasts of their subtree and those above that reach it.
func visible(p staffapi.Caller, e store.Emergency) bool {
	return store.Allowed(p.Scope, e.Area) || store.Allowed(e.Area, p.Scope)
}

// List is GET /api/emergencies: the broadcasts in the caller's scope.
func (rm *Room) List(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	es, err := rm.emStore()
	if err != nil {
		staffapi.Error(w, http.StatusNotImplemented, err.Error())
		return
	}
	q := r.URL.Query()
	now := rm.o.Now()
	f := store.EmergencyFilter{Series: q.Get("series"), Kind: q.Get("kind"), Limit: 1000}
	switch {
	case q.Get("review") != "": // emergency warnings waiting for their review, however old
		f.Unreviewed = true // warnings, and bulletins and relays flagged for review (issue 22)
	case q.Get("all") == "":
		f.ActiveAt = now
	}
	rows, err := es.ListEmergencies(r.Context(), f)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := []api.EmergencyJSON{}
	for _, e := range rows {
		// The review queue holds what the caller may review: their subtree's, not the areas' above.
		if visible(p, e) && (!f.Unreviewed || store.Allowed(p.Scope, e.Area)) {
			out = append(out, rm.emergencyJSON(e, now))
		}
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// Cancel is POST /api/emergencies/{id}/cancel: one broadcast ends now.
func (rm *Room) Cancel(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	es, err := rm.emStore()
	if err != nil {
		staffapi.Error(w, http.StatusNotImplemented, err.Error())
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%q is not an emergency id: `loa emergency list` shows them", r.PathValue("id")))
		return
	}
	e, err := es.GetEmergency(r.Context(), id)
	if err != nil || !visible(p, e) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no emergency %d in your scope %s; `loa emergency list --all` shows them", id, p.Scope))
		return
	}
	res, err := rm.end(r.Context(), p, []store.Emergency{e}, "cancelled")
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, res)
}

// CancelSeries is POST /api/emergencies/cancel: a series, or a live relay, ends now.
func (rm *Room) CancelSeries(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	es, err := rm.emStore()
	if err != nil {
		staffapi.Error(w, http.StatusNotImplemented, err.Error())
		return
	}
	var req api.CancelRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	now := rm.o.Now()
	f := store.EmergencyFilter{ActiveAt: now, Series: req.Series, Kind: req.Kind}
	reason := "cancelled"
	switch {
	case req.Series != "":
	case req.Kind == store.KindLive:
		reason = "stopped"
	default:
		staffapi.Error(w, http.StatusBadRequest, "say what to end: an id (`loa emergency cancel ID`), --series NAME, or `loa live stop --to AREA`")
		return
	}
	var rows []store.Emergency
	if req.Series != "" {
		var err error
		if rows, err = es.ListEmergencies(r.Context(), f); err != nil {
			staffapi.Fail(w, err)
			return
		}
	} else {
		to, err := rm.resolveTargets(r.Context(), p, req.To) // live stop: areas and devices
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		var names []string
		for _, t := range to {
			f.Area = t.area
			rs, err := es.ListEmergencies(r.Context(), f)
			if err != nil {
				staffapi.Fail(w, err)
				return
			}
			// A device's relay ends there; an area's ends wherever it reaches below it.
			rows = append(rows, slices.DeleteFunc(rs, func(e store.Emergency) bool { return t.device != "" && e.Device != t.device })...)
			names = append(names, t.name())
		}
		f.Area = strings.Join(names, ", ")
	}
	if len(rows) == 0 {
		what := "series " + strconv.Quote(req.Series)
		if req.Series == "" {
			what = "live relay in " + f.Area
		}
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no active %s; `loa emergency list` shows what is on the air", what))
		return
	}
	res, err := rm.end(r.Context(), p, rows, reason)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, res)
}

// end ends rows the caller may act on and pushes their areas.
func (rm *Room) end(ctx context.Context, p staffapi.Caller, rows []store.Emergency, reason string) (api.EmergencyResponse, error) {
	var res api.EmergencyResponse
	es, err := rm.emStore()
	if err != nil {
		return res, err
	}
	ids := []int64{}
	for _, e := range rows {
		if !staffapi.MayAct(p, e.Area) {
			if !visible(p, e) { // a series that is also on the air elsewhere: do not say where
				return res, staffapi.Refuse(http.StatusForbidden, fmt.Sprintf("series %q is also on the air outside your scope %s: ask staff of the area above you to end it", e.Series, p.Scope))
			}
			return res, staffapi.Refuse(http.StatusForbidden, fmt.Sprintf("emergency %d is for %s, outside your scope %s: ask staff of that area to cancel it", e.ID, e.Area, p.Scope))
		}
		ids = append(ids, e.ID)
	}
	before := rm.o.Push.HeadsBefore(ctx, reach(rows)...)
	ended, err := es.EndEmergencies(ctx, ids, reason, p.User.ID)
	if err != nil {
		return res, err
	}
	if len(ended) == 0 {
		return res, staffapi.Refuse(http.StatusConflict, fmt.Sprintf("emergency %d has already ended (%s)", rows[0].ID, rows[0].EndReason))
	}
	rm.Changed()
	now := rm.o.Now()
	for _, e := range ended {
		res.Emergencies = append(res.Emergencies, rm.emergencyJSON(e, now))
		action := e.Kind + ".cancel"
		if e.Kind == store.KindLive {
			action = "live.stop"
		}
		rm.o.Audit(ctx, p, action, e.Target().String(), map[string]any{"id": e.ID, "series": e.Series, "reason": reason})
	}
	rm.pushReach(ctx, ended, before, &res)
	rm.o.Log.Info("broadcasts ended", "count", len(ended), "reason", reason, "devices", res.Devices, "sent", res.Sent, "by", p.User.ID)
	return res, nil
}

// nextSession is the start of the next normal programme on the speakers of the target's
// devices (from their effective schedules): the earliest one, with a warning when devices differ.
func (rm *Room) nextSession(ctx context.Context, t place, now time.Time) (time.Time, []string, error) {
	ds, err := rm.o.Store.ListDevices(ctx, t.area)
	if err != nil {
		return time.Time{}, nil, err
	}
	if t.device != "" {
		ds = slices.DeleteFunc(ds, func(d store.Device) bool { return d.ID != t.device })
	}
	area := t.name()
	var starts []time.Time
	var none []string
	for _, d := range ds {
		if d.Revoked {
			continue
		}
		t, ok, err := rm.deviceNextSession(ctx, d.ID, now)
		if err != nil {
			return time.Time{}, nil, err
		}
		if !ok {
			none = append(none, d.ID)
			continue
		}
		starts = append(starts, t)
	}
	if len(starts) == 0 {
		return time.Time{}, nil, staffapi.Refuse(http.StatusConflict, fmt.Sprintf("no device of %s has a normal programme on its speakers in the next 7 days: push a schedule first, or use `loa emergency --class priority`", area))
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var warnings []string
	if later := len(starts) - countEqual(starts, starts[0]); later > 0 {
		warnings = append(warnings, fmt.Sprintf("%d device(s) start their next session later than %s; the bulletin plays at %s on all of them",
			later, starts[0].In(rm.emLocation()).Format("15:04 02/01"), starts[0].In(rm.emLocation()).Format("15:04 02/01")))
	}
	if len(none) > 0 {
		warnings = append(warnings, fmt.Sprintf("%d device(s) have no session in the next 7 days and play it then too: %s", len(none), strings.Join(first(none, 5), ", ")))
	}
	return starts[0], warnings, nil
}

func countEqual(ts []time.Time, t time.Time) int {
	n := 0
	for _, x := range ts {
		if x.Equal(t) {
			n++
		}
	}
	return n
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// deviceNextSession compiles the device's newest effective schedule for the coming week and
// returns the first start of a normal programme that plays on its speakers.
func (rm *Room) deviceNextSession(ctx context.Context, deviceID string, now time.Time) (time.Time, bool, error) {
	e, err := rm.o.Store.LatestEffective(ctx, deviceID)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	var payload struct {
		Document string `json:"document"`
	}
	doc := e.Document
	if json.Unmarshal(e.Document, &payload) == nil && payload.Document != "" {
		doc = []byte(payload.Document) // the signed payload wraps the document
	}
	d, err := scheduler.Parse("effective schedule of "+deviceID, doc)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("device %s: %w", deviceID, err)
	}
	tl, err := scheduler.Compile(d, now, now.Add(7*24*time.Hour), scheduler.CompileOptions{})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("device %s: %w", deviceID, err)
	}
	for _, seg := range tl.Segments {
		if seg.Output == "speakers" && seg.Class == scheduler.Normal && seg.Audible() && seg.Scheduled.After(now) {
			return seg.Scheduled, true, nil
		}
	}
	return time.Time{}, false, nil
}

// Run drops expired broadcasts from the devices' schedules when they expire and
// polls the CAP feed when one is configured, until ctx ends. The agents never play a
// broadcast past its until anyway (its repeats stop before); this keeps what the hub holds
// and what a device reconnecting later receives free of them.
func (rm *Room) Run(ctx context.Context) {
	rm.mu.Lock()
	if rm.wake == nil {
		rm.wake = make(chan struct{}, 1)
	}
	wake := rm.wake
	feed := rm.cap
	rm.mu.Unlock()
	if feed != nil && feed.feedURL != "" {
		var poll sync.WaitGroup
		defer poll.Wait() // the feed is not polled after Run returns
		poll.Go(func() { rm.pollCAPFeed(ctx, feed) })
	}
	var pushed []activeEmergency // as of the last sweep
	for {
		act, err := rm.activeEmergencies(ctx)
		if err != nil {
			rm.o.Log.Error("emergency expiry check", "err", err)
		}
		// What was active at the last sweep and is not now has expired (or ended through the
		// API, which pushed already; pushing again is a no-op).
		var gone []store.Emergency
		for _, p := range pushed {
			if !slices.ContainsFunc(act, func(a activeEmergency) bool { return a.e.ID == p.e.ID }) {
				gone = append(gone, p.e)
			}
		}
		if len(gone) > 0 {
			var res api.EmergencyResponse
			rm.pushReach(ctx, gone, nil, &res)
			rm.o.Log.Info("expired broadcasts dropped from schedules", "areas", len(gone), "devices", res.Devices, "sent", res.Sent)
		}
		pushed = act
		wait := 30 * time.Second
		now := rm.o.Now()
		for _, a := range act {
			if d := a.e.Until.Sub(now) + 10*time.Millisecond; d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// capState is the hub's CAP configuration.
type capState struct {
	mapper       *cap.Mapper
	feedURL      string
	feedInterval time.Duration
	actor        string // the audit actor and created_by of feed alerts
	fetcher      *cap.Fetcher
	audioClient  *http.Client // alert audio: public addresses only unless allowed
	fetchAudio   bool
}
