package hub

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// The overview's counts and the device list's pages (issue 14) at 10,000 devices: the store
// gives each device's few columns and the alarm conditions it can judge (DeviceStates, one
// narrow scan), this file adds whether the device is connected (the hub's own connections)
// and reads whole rows only for the devices shown.

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

func (s *Server) alarmRules() store.AlarmRules {
	return store.AlarmRules{StaleBefore: s.clock.Now().Add(-api.AlarmOfflineAfter), LowDisk: api.AlarmLowDisk, ClockSkew: api.AlarmClockSkew}
}

// deviceNow is a device's state with its connection.
type deviceNow struct {
	store.DeviceState
	Online bool
}

// alarmed says whether a device has an alarm: the rules of the console's alarm list.
func (d deviceNow) alarmed() bool {
	return d.Faulty || !d.Online && !d.Revoked && d.Stale || d.Online && d.Skewed
}

// devicesNow reads the states of q's devices and adds whether each is connected.
func (s *Server) devicesNow(ctx context.Context, q store.DeviceQuery) ([]deviceNow, error) {
	ds, err := s.stateStore()
	if err != nil {
		return nil, err
	}
	q.Rules = s.alarmRules()
	states, err := ds.DeviceStates(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]deviceNow, len(states))
	s.mu.Lock()
	for i, st := range states {
		_, on := s.conns[st.ID]
		out[i] = deviceNow{DeviceState: st, Online: on}
	}
	s.mu.Unlock()
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
