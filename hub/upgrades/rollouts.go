package upgrades

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Defaults of a rollout request's absent fields.
const (
	DefaultCanaryPercent     = 10
	DefaultHealthyFor        = 30 * time.Minute
	DefaultHealthyWithin     = 10 * time.Minute
	DefaultMaxFailurePercent = 20
)

// plan is a checked rollout request.
type plan struct {
	store.Rollout
}

// checkRequest validates every field of a request at once, each problem naming its field.
func checkRequest(q api.RolloutRequest, area string) (plan, error) {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	r := store.Rollout{Area: area, Version: q.Version, CanaryPercent: DefaultCanaryPercent, HealthyFor: DefaultHealthyFor,
		HealthyWithinS: int(DefaultHealthyWithin / time.Second), MaxFailurePercent: DefaultMaxFailurePercent}
	if q.Area == "" {
		add("area is missing: name the area to upgrade, e.g. quang-nam/tam-ky")
	}
	if err := protocol.CheckVersion(q.Version); err != nil {
		add("version: %v", err)
	}
	percent := func(name string, v *int, dst *int) {
		if v == nil {
			return
		}
		if *v < 0 || *v > 100 {
			add("%s %d is not 0..100", name, *v)
			return
		}
		*dst = *v
	}
	percent("canary_percent", q.CanaryPercent, &r.CanaryPercent)
	percent("max_failure_percent", q.MaxFailurePercent, &r.MaxFailurePercent)
	if w, err := protocol.ParseWindow(q.Window); err != nil {
		add("window: %v", err)
	} else {
		r.Window = w.String()
	}
	if v := q.HealthyForS; v != nil {
		if *v < 1 || *v > 7*86400 {
			add("healthy_for_s %d is not 1..604800 seconds (a week)", *v)
		} else {
			r.HealthyFor = time.Duration(*v) * time.Second
		}
	}
	if v := q.HealthyWithinS; v != nil {
		if *v < 1 || *v > 86400 {
			add("healthy_within_s %d is not 1..86400 seconds (a day)", *v)
		} else {
			r.HealthyWithinS = *v
		}
	}
	if len(errs) > 0 {
		return plan{}, errors.New("the rollout is not valid: " + strings.Join(errs, "; "))
	}
	return plan{r}, nil
}

// versionOf is the version in an agent's software_version ("loa-agent/1.2.3" -> "1.2.3"); ""
// when it names none.
func versionOf(software string) string {
	v := software
	if i := strings.LastIndexAny(v, "/ "); i >= 0 {
		v = v[i+1:]
	}
	if protocol.CheckVersion(v) != nil {
		return ""
	}
	return v
}

// Create is POST /api/rollouts.
func (rm *Room) Create(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var q api.RolloutRequest
	if !staffapi.ReadJSON(w, r, &q) {
		return
	}
	if q.Area != "" && !staffapi.InScope(w, p, q.Area) {
		return
	}
	pl, err := checkRequest(q, q.Area)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	if _, err := rm.o.Store.GetArea(ctx, q.Area); err != nil {
		staffapi.Fail(w, err)
		return
	}
	rels, err := rm.o.Store.ListReleases(ctx)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	arches := map[string]bool{}
	for _, x := range rels {
		if x.Version == q.Version {
			arches[x.Arch] = true
		}
	}
	if len(arches) == 0 {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("the hub holds no release of version %s: upload it first with `loa release upload`", q.Version))
		return
	}
	devs, err := rm.o.Store.ListDevices(ctx, q.Area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	pl.ID = newRolloutID()
	pl.CreatedBy = p.User.ID
	rows, eligible := rm.assign(pl.Rollout, devs, arches)
	if eligible == 0 {
		staffapi.Error(w, http.StatusUnprocessableEntity, fmt.Sprintf("no device of %s can take version %s: %s", q.Area, q.Version, summarise(rows)))
		return
	}
	ro, err := rm.o.Store.AddRollout(ctx, pl.Rollout, rows)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(ctx, p, "rollout.start", "area:"+ro.Area, map[string]any{"rollout": ro.ID, "version": ro.Version,
		"canary_percent": ro.CanaryPercent, "window": ro.Window, "healthy_for_s": int(ro.HealthyFor / time.Second),
		"healthy_within_s": ro.HealthyWithinS, "max_failure_percent": ro.MaxFailurePercent, "eligible": eligible})
	rm.o.Log.Info("rollout started", "rollout", ro.ID, "area", ro.Area, "version", ro.Version, "eligible", eligible, "by", p.User.ID)
	rm.poke()
	rm.changed(ctx, ro.ID)
	rm.writeRollout(w, r, ro, http.StatusCreated)
}

// assign gives each device of the area its stage and first state: the canaries (the
// canary share of the eligible devices, at least one, online ones first, then by a hash of
// the rollout and device ids so the choice is the same on every replica and varies between
// rollouts), the rest, and those that cannot take the version or already run it.
func (rm *Room) assign(r store.Rollout, devs []store.Device, arches map[string]bool) ([]store.RolloutDevice, int) {
	type cand struct {
		row    store.RolloutDevice
		online bool
		hash   string
	}
	var rows []store.RolloutDevice
	var cands []cand
	for _, d := range devs {
		if d.Revoked {
			continue
		}
		row := store.RolloutDevice{Device: d.ID, Stage: store.DeviceNone, Arch: d.Arch, From: versionOf(d.Status.SoftwareVersion)}
		switch {
		case !d.Upgrades:
			row.State, row.Error = store.UpgradeCannot, "its agent does not install upgrades (an agent older than upgrades, or no upgrade.release_keys in its config)"
		case row.From == r.Version:
			row.State = store.UpgradeCurrent
		case !arches[d.Arch]:
			row.State, row.Error = store.UpgradeCannot, fmt.Sprintf("the hub holds no release of %s for %s: upload one with `loa release upload`", r.Version, d.Arch)
		default:
			h := sha256.Sum256([]byte(r.ID + "\x00" + d.ID))
			row.Stage, row.State = store.DeviceRest, store.UpgradePending
			cands = append(cands, cand{row: row, online: rm.o.Online(d.ID, d.LastSeen), hash: hex.EncodeToString(h[:])})
			continue
		}
		rows = append(rows, row)
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.online != b.online {
			if a.online {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.hash, b.hash)
	})
	n := CanaryCount(r.CanaryPercent, len(cands))
	for i := range cands {
		if i < n {
			cands[i].row.Stage = store.DeviceCanary
		}
		rows = append(rows, cands[i].row)
	}
	slices.SortFunc(rows, func(a, b store.RolloutDevice) int { return cmp.Compare(a.Device, b.Device) })
	return rows, len(cands)
}

// CanaryCount is how many of n eligible devices are canaries at percent: the share rounded
// up, at least one.
func CanaryCount(percent, n int) int {
	if n == 0 {
		return 0
	}
	return min(n, max(1, int(math.Ceil(float64(percent)*float64(n)/100))))
}

// summarise counts devices that cannot take a rollout, by why.
func summarise(rows []store.RolloutDevice) string {
	if len(rows) == 0 {
		return "the area has no devices"
	}
	n := map[string]int{}
	var order []string
	for _, x := range rows {
		k := x.State
		if x.Error != "" {
			k = x.Error
		}
		if k == store.UpgradeCurrent {
			k = "already run it"
		}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%d: %s", n[k], k))
	}
	return strings.Join(out, "; ")
}

func newRolloutID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "ro-" + hex.EncodeToString(b)
}

// ListRollouts is GET /api/rollouts: the rollouts in the caller's scope (?area= narrows), newest first.
func (rm *Room) ListRollouts(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	ros, err := rm.o.Store.ListRollouts(r.Context(), area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.RolloutJSON, 0, len(ros))
	for _, ro := range ros {
		j, err := rm.rolloutJSON(r.Context(), ro, false)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		out = append(out, j)
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// Show is GET /api/rollouts/{id}: the rollout with each device.
func (rm *Room) Show(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ro, ok := rm.lookup(w, r, p)
	if !ok {
		return
	}
	rm.writeRollout(w, r, ro, http.StatusOK)
}

// Stop is POST /api/rollouts/{id}/stop: no device is sent the upgrade any more, and those
// sent it that have not begun installing are told to drop it.
func (rm *Room) Stop(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var q api.RolloutStopRequest
	if !staffapi.ReadJSON(w, r, &q) {
		return
	}
	q.Reason = strings.TrimSpace(q.Reason)
	if q.Reason == "" {
		staffapi.Error(w, http.StatusBadRequest, "reason is missing: say why the rollout is stopped (--reason)")
		return
	}
	ro, ok := rm.lookup(w, r, p)
	if !ok {
		return
	}
	ctx := r.Context()
	if ro.Stage != store.RolloutCanary && ro.Stage != store.RolloutRest {
		staffapi.Error(w, http.StatusConflict, fmt.Sprintf("rollout %s is already %s%s", ro.ID, ro.Stage, reasonSuffix(ro.Reason)))
		return
	}
	stopped, err := rm.stop(ctx, ro, "stopped by "+p.User.ID+": "+q.Reason)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if !stopped {
		ro, _ = rm.o.Store.GetRollout(ctx, ro.ID)
		staffapi.Error(w, http.StatusConflict, fmt.Sprintf("rollout %s is already %s%s", ro.ID, ro.Stage, reasonSuffix(ro.Reason)))
		return
	}
	rm.o.Audit(ctx, p, "rollout.stop", "area:"+ro.Area, map[string]any{"rollout": ro.ID, "reason": q.Reason})
	ro, err = rm.o.Store.GetRollout(ctx, ro.ID)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.writeRollout(w, r, ro, http.StatusOK)
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// lookup reads the rollout named in the path, answering 404 for one out of the caller's scope.
func (rm *Room) lookup(w http.ResponseWriter, r *http.Request, p staffapi.Caller) (store.Rollout, bool) {
	id := r.PathValue("id")
	ro, err := rm.o.Store.GetRollout(r.Context(), id)
	if err == nil && !store.Allowed(p.Scope, ro.Area) {
		err = fmt.Errorf("%w: no rollout %s in your area %s", store.ErrNotFound, id, p.Scope)
	}
	if err != nil {
		staffapi.Fail(w, err)
		return store.Rollout{}, false
	}
	return ro, true
}

func (rm *Room) writeRollout(w http.ResponseWriter, r *http.Request, ro store.Rollout, code int) {
	j, err := rm.rolloutJSON(r.Context(), ro, true)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	staffapi.WriteJSON(w, code, j)
}

func (rm *Room) rolloutJSON(ctx context.Context, ro store.Rollout, withDevices bool) (api.RolloutJSON, error) {
	j := api.RolloutJSON{ID: ro.ID, Area: ro.Area, Version: ro.Version, CanaryPercent: ro.CanaryPercent, Window: ro.Window,
		HealthyForS: int(ro.HealthyFor / time.Second), HealthyWithinS: ro.HealthyWithinS, MaxFailurePercent: ro.MaxFailurePercent,
		Stage: ro.Stage, Reason: ro.Reason, CreatedBy: ro.CreatedBy, CreatedAt: ro.CreatedAt, StageAt: ro.StageAt,
		Counts: map[string]map[string]int{}}
	rows, err := rm.o.Store.RolloutDevices(ctx, ro.ID)
	if err != nil {
		return j, err
	}
	var online map[string]bool
	if withDevices {
		online = rm.onlineUnder(ctx, ro.Area)
	}
	for _, x := range rows {
		if j.Counts[x.Stage] == nil {
			j.Counts[x.Stage] = map[string]int{}
		}
		j.Counts[x.Stage][x.State]++
		if withDevices {
			j.Devices = append(j.Devices, api.RolloutDeviceJSON{Device: x.Device, Stage: x.Stage, Arch: x.Arch, From: x.From,
				State: x.State, Error: x.Error, Since: x.Since, Online: online[x.Device]})
		}
	}
	return j, nil
}

// onlineUnder says which devices under area are connected.
func (rm *Room) onlineUnder(ctx context.Context, area string) map[string]bool {
	devs, err := rm.o.Store.ListDevices(ctx, area)
	if err != nil {
		rm.o.Log.Warn("devices of a rollout not read", "area", area, "err", err)
		return nil
	}
	out := make(map[string]bool, len(devs))
	for _, d := range devs {
		out[d.ID] = rm.o.Online(d.ID, d.LastSeen)
	}
	return out
}
