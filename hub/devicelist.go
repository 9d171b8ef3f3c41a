package hub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// The overview's counts and the device list's pages (issue 14) at 10,000 devices: the hub
// keeps every device's state as the store judges it (DeviceStates: a few columns and the
// alarm conditions) in memory, read whole at the first view and every stateRefresh, and
// re-read by id for the devices it has changed since (touch: a status, a delivery, a new
// schedule revision, enrolment, revocation). A view then counts and filters in memory, adds
// whether each device is connected and whether it has been offline for a day (which becomes
// true with time), and reads whole rows only for the devices it shows.

// stateRefresh bounds how long a change the hub did not make itself (another hub on the same
// PostgreSQL database, a device moved by hand in the store) takes to show.
const stateRefresh = time.Minute

// deviceCache is the devices' states the overview and the device list count.
type deviceCache struct {
	mu     sync.Mutex // held by a view while it reads and counts
	byID   map[string]store.DeviceState
	order  []string  // ids in byte order; nil when a device came
	loaded time.Time // of the last whole read; zero: never

	// dirty, under its own lock so a status is never kept waiting by a view's read.
	dirty touchedSet
}

// touch marks a device's state as changed in the store.
func (c *deviceCache) touch(id string) { c.dirty.add(id) }

// takeDirty returns the devices touched since the last call and forgets them: taken before
// a read, so a device touched during it is read again at the next view.
func (c *deviceCache) takeDirty() []string { return c.dirty.take() }

// fresh brings the cache up to date; c.mu is held.
func (c *deviceCache) fresh(ctx context.Context, ds deviceStateStore, now time.Time) error {
	rules := store.AlarmRules{LowDisk: api.AlarmLowDisk, ClockSkew: api.AlarmClockSkew}
	ids := c.takeDirty()
	if c.byID == nil || now.Sub(c.loaded) > stateRefresh || now.Before(c.loaded) {
		all, err := ds.DeviceStates(ctx, store.DeviceQuery{Rules: rules})
		if err != nil {
			return err
		}
		c.byID, c.order, c.loaded, ids = make(map[string]store.DeviceState, len(all)), nil, now, nil
		for _, d := range all {
			c.byID[d.ID] = d
		}
	}
	for len(ids) > 0 { // in batches: a statement's placeholders are bounded
		n := min(len(ids), 500)
		got, err := ds.DeviceStates(ctx, store.DeviceQuery{IDs: ids[:n], Rules: rules})
		if err != nil {
			for _, id := range ids { // read again at the next view
				c.touch(id)
			}
			return err
		}
		for _, d := range got {
			if _, ok := c.byID[d.ID]; !ok {
				c.order = nil
			}
			c.byID[d.ID] = d
		}
		ids = ids[n:]
	}
	if c.order == nil {
		c.order = make([]string, 0, len(c.byID))
		for id := range c.byID {
			c.order = append(c.order, id)
		}
		slices.Sort(c.order)
	}
	return nil
}

// deviceStateStore is what the overview and the device list read of the store.
type deviceStateStore interface {
	DeviceStates(ctx context.Context, q store.DeviceQuery) ([]store.DeviceState, error)
	SoftwareVersions(ctx context.Context, area string) ([]string, error)
	DevicesByID(ctx context.Context, ids []string) ([]store.Device, error)
}

var errNoDeviceStates = staffapi.Refuse(http.StatusNotImplemented, "this hub's store cannot count devices by state")

func (s *Server) stateStore() (deviceStateStore, error) {
	ds, ok := s.st.(deviceStateStore)
	if !ok {
		return nil, errNoDeviceStates
	}
	return ds, nil
}

// deviceNow is a device's state with its connection.
type deviceNow struct {
	store.DeviceState
	Online, Stale bool // Stale: offline for AlarmOfflineAfter (or never seen that long after enrolment)
}

// alarmed says whether a device has an alarm: the rules of the console's alarm list.
func (d deviceNow) alarmed() bool {
	return d.Faulty || !d.Online && !d.Revoked && d.Stale || d.Online && d.Skewed
}

// devicesNow gives the states of q's devices (area, kind, software) in id order, with
// whether each is connected.
func (s *Server) devicesNow(ctx context.Context, q store.DeviceQuery) ([]deviceNow, error) {
	ds, err := s.stateStore()
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	staleBefore := now.Add(-api.AlarmOfflineAfter)
	c := &s.states
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fresh(ctx, ds, now); err != nil {
		return nil, err
	}
	var out []deviceNow
	for _, id := range c.order {
		d := c.byID[id]
		if q.Area != "" && !store.Allowed(q.Area, d.Area) || q.Kind != "" && d.Kind != q.Kind || q.Software != "" && d.Software != q.Software {
			continue
		}
		out = append(out, deviceNow{DeviceState: d, Online: s.online(id, d.LastSeen), Stale: d.Stale(staleBefore)})
	}
	return out, nil
}

// devicesJSON reads the named devices whole, in id order.
func (s *Server) devicesJSON(ctx context.Context, ids []string) ([]api.DeviceJSON, error) {
	ds, err := s.stateStore()
	if err != nil {
		return nil, err
	}
	devs, err := ds.DevicesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]api.DeviceJSON, 0, len(devs))
	for _, d := range devs {
		out = append(out, s.listedDeviceJSON(ctx, d, nil))
	}
	return out, nil
}

// intParam reads a whole-number parameter between lo and hi, def when absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, staffapi.Refuse(http.StatusBadRequest, fmt.Sprintf("%s %q: write a whole number from %d to %d", name, v, lo, hi))
	}
	return n, nil
}

// apiOverview counts the scope's devices per area and kind, and lists the first `limit`
// (50) on the air and with alarms.
func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	limit, err := intParam(r, "limit", 50, 0, 500)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	devs, err := s.devicesNow(r.Context(), store.DeviceQuery{Area: area})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	counts := map[[2]string]*api.AreaCountJSON{}
	var onAir, alarmed []string
	for _, d := range devs {
		if d.Revoked {
			continue
		}
		c := counts[[2]string{d.Area, d.Kind}]
		if c == nil {
			c = &api.AreaCountJSON{Area: d.Area, Kind: d.Kind}
			counts[[2]string{d.Area, d.Kind}] = c
		}
		if d.Online {
			c.Online++
		} else {
			c.Offline++
		}
		if d.Online && d.Playing {
			c.Playing++
			onAir = append(onAir, d.ID)
		}
		if d.alarmed() {
			c.Alarms++
			alarmed = append(alarmed, d.ID)
		}
	}
	out := api.OverviewJSON{Counts: make([]api.AreaCountJSON, 0, len(counts))}
	for _, c := range counts {
		out.Counts = append(out.Counts, *c)
	}
	sort.Slice(out.Counts, func(i, j int) bool {
		a, b := out.Counts[i], out.Counts[j]
		return a.Area < b.Area || a.Area == b.Area && a.Kind < b.Kind
	})
	if len(onAir) > limit {
		onAir, out.MoreOnAir = onAir[:limit], len(onAir)-limit
	}
	if len(alarmed) > limit {
		alarmed, out.MoreAlarmed = alarmed[:limit], len(alarmed)-limit
	}
	if out.OnAir, err = s.devicesJSON(r.Context(), onAir); err == nil {
		out.Alarmed, err = s.devicesJSON(r.Context(), alarmed)
	}
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// deviceStates are the device list's state filter's values.
var deviceStates = []string{"online", "offline", "playing", "alarm"}

// apiDeviceList is one page of the scope's devices in id order, filtered by area, state,
// kind, software version and a piece of id or name (q).
func (s *Server) apiDeviceList(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !slices.Contains(deviceStates, state) {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("state %q: write one of %s", state, strings.Join(deviceStates, ", ")))
		return
	}
	page, err := intParam(r, "page", 1, 1, 1_000_000)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	perPage, err := intParam(r, "per_page", 100, 1, 500)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	devs, err := s.devicesNow(r.Context(), store.DeviceQuery{Area: area, Kind: q.Get("kind"), Software: q.Get("software")})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	text := strings.ToLower(strings.TrimSpace(q.Get("q")))
	var ids []string
	for _, d := range devs {
		switch {
		case state == "online" && !d.Online,
			state == "offline" && d.Online,
			state == "playing" && !(d.Online && d.Playing),
			state == "alarm" && !d.alarmed(),
			text != "" && !strings.Contains(strings.ToLower(d.ID+" "+d.Name), text):
			continue
		}
		ids = append(ids, d.ID)
	}
	out := api.DeviceListJSON{Total: len(ids), Page: page, PerPage: perPage}
	from := min(len(ids), (page-1)*perPage)
	if out.Devices, err = s.devicesJSON(r.Context(), ids[from:min(len(ids), from+perPage)]); err != nil {
		staffapi.Fail(w, err)
		return
	}
	ds, _ := s.stateStore() // devicesNow has found it
	if out.Versions, err = ds.SoftwareVersions(r.Context(), area); err != nil {
		staffapi.Fail(w, err)
		return
	}
	if out.Versions == nil {
		out.Versions = []string{}
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}
