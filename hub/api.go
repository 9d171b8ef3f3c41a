package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/loa-project/loa/hub/accounts"
	"github.com/loa-project/loa/hub/api"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

type asUserKey struct{}

// ServeAs answers r as the API answers it for user u, who the caller (the console, from a
// session) has already authenticated: the same routes, scope and role checks and audit.
func (s *Server) ServeAs(w http.ResponseWriter, r *http.Request, u store.User) {
	r = r.WithContext(context.WithValue(r.Context(), asUserKey{}, u))
	r.Header.Del("Authorization")
	s.mux.ServeHTTP(staffapi.Compact(w), r)
}

// staff authenticates a bearer token (or takes ServeAs's user), checks the user's role
// allows need, and hands the user and scope to h.
func (s *Server) staff(need store.Role, h func(w http.ResponseWriter, r *http.Request, p staffapi.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := r.Context().Value(asUserKey{}).(store.User); ok {
			s.serveStaff(w, r, u, u.Scope, need, h)
			return
		}
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			staffapi.Error(w, http.StatusUnauthorized, "missing staff token: pass --token or set LOA_TOKEN (a token is made with `loa-hub user add`)")
			return
		}
		if s.authLimit.refuse(w, r, s.clock.Now()) {
			return
		}
		u, scope, err := s.st.Authenticate(r.Context(), accounts.HashToken(strings.TrimSpace(tok)))
		if err != nil {
			s.authLimit.failed(r, s.clock.Now(), "staff token", "err", err)
			staffapi.Error(w, http.StatusUnauthorized, "the staff token is unknown, revoked or expired: ask your administrator for a new one")
			return
		}
		s.serveStaff(w, r, u, scope, need, h)
	})
}

func (s *Server) serveStaff(w http.ResponseWriter, r *http.Request, u store.User, scope string, need store.Role,
	h func(w http.ResponseWriter, r *http.Request, p staffapi.Caller)) {
	if !store.Can(u.Role, need) {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("your role %s may not do this (%s %s needs %s or above); ask an administrator of %s",
			u.Role, r.Method, r.URL.Path, need, scope))
		return
	}
	zone := s.zone(r)
	w.Header().Set(api.ZoneHeader, zone.String())
	h(w, r, staffapi.Caller{User: u, Scope: scope, Zone: zone})
}

func (s *Server) audit(ctx context.Context, p staffapi.Caller, action, target string, detail any) {
	var raw json.RawMessage
	if detail != nil {
		raw, _ = json.Marshal(detail)
	}
	if _, err := s.st.AppendAudit(ctx, store.AuditEntry{Actor: p.User.ID, Action: action, Target: target, Detail: raw}); err != nil {
		s.log.Error("audit log write failed", "action", action, "target", target, "err", err)
	}
}

// idTaken answers an id already used by a device or an area. Ids are one namespace across
// the hub (a device authenticates by its id alone), so that it is taken cannot be hidden; what
// holds it and where is said only when that is in the caller's scope.
func (s *Server) idTaken(ctx context.Context, w http.ResponseWriter, p staffapi.Caller, id string) {
	if d, err := s.st.GetDevice(ctx, id); err == nil && store.Allowed(p.Scope, d.Area) {
		staffapi.Error(w, http.StatusConflict, fmt.Sprintf("%s is already the id of device %s in area %s: pick another id, or revoke that device first", id, d.ID, d.Area))
		return
	}
	if store.Allowed(p.Scope, id) {
		if _, err := s.st.GetArea(ctx, id); err == nil {
			staffapi.Error(w, http.StatusConflict, fmt.Sprintf("%s is already the id of an area: pick another id", id))
			return
		}
	}
	staffapi.Error(w, http.StatusConflict, fmt.Sprintf("the id %s is already in use on this hub (device and area ids are unique across all areas): pick another, e.g. one that starts with your commune's name", id))
}

func (s *Server) apiWhoami(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	staffapi.WriteJSON(w, http.StatusOK, map[string]any{"user": p.User.ID, "name": p.User.Name, "scope": p.Scope,
		"key_id": s.signer.KeyID(), "public_key": protocol.FormatPublicKey(s.signer.PublicKey()), "public_url": s.opts.PublicURL})
}

// publicURLWarning says why devices may not reach the hub at u: a loopback or wildcard host
// is what public_url defaults to when the hub's config leaves it out.
func publicURLWarning(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Sprintf("the hub's public_url %q is not a URL: set public_url in the hub's config to the address devices reach it at", u)
	}
	host := pu.Hostname()
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		return fmt.Sprintf("the hub's URL %s is its own listen address, which devices cannot reach: "+
			"set public_url in the hub's config (e.g. public_url: https://hub.example.vn), restart it, and write that URL in hub.url", u)
	}
	return ""
}

func (s *Server) apiListAreas(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	as, err := s.st.ListSubtree(r.Context(), area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.AreaJSON, 0, len(as))
	for _, a := range as {
		out = append(out, api.AreaJSON{ID: a.ID, Name: a.Name, Parent: a.Parent, Depth: a.Depth})
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) apiAddArea(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.AreaJSON
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if err := store.ValidateAreaID(req.ID); err != nil {
		staffapi.Fail(w, err)
		return
	}
	if req.ID == p.Scope || !store.Allowed(p.Scope, req.ID) {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("you may add areas only below your scope %s: use an id like %s/<name>", p.Scope, p.Scope))
		return
	}
	if req.Name == "" {
		req.Name = req.ID[strings.LastIndex(req.ID, "/")+1:]
	}
	a, err := s.st.AddArea(r.Context(), store.Area{ID: req.ID, Name: req.Name})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("%v: add the parent area %s first", err, store.ParentArea(req.ID)))
			return
		}
		if errors.Is(err, store.ErrExists) {
			s.idTaken(r.Context(), w, p, req.ID)
			return
		}
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "area.add", "area:"+a.ID, map[string]string{"name": a.Name})
	staffapi.WriteJSON(w, http.StatusCreated, api.AreaJSON{ID: a.ID, Name: a.Name, Parent: a.Parent, Depth: a.Depth})
}

func (s *Server) apiEnrolDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.EnrolRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.Area == "" {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("enrolment needs an area: use --area AREA, its full path from the root (e.g. --area %s/…)", p.Scope))
		return
	}
	if err := store.ValidateDeviceID(req.ID); err != nil {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%v (device ids are like tam-thanh/cl-07)", err))
		return
	}
	// An area missing or outside the scope gets one answer (whether another commune's area
	// exists is not the caller's to learn), saying what the scope has and the full path
	// expected: staff who typed a short name or a typo learn what to write.
	if _, err := s.st.GetArea(r.Context(), req.Area); errors.Is(err, store.ErrNotFound) || !store.Allowed(p.Scope, req.Area) {
		staffapi.Error(w, http.StatusNotFound, s.noArea(r.Context(), p, req.Area, "--area"))
		return
	}
	secret, err := protocol.NewDeviceSecret(rand.Reader)
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	h, err := secretHash(secret)
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if req.Name == "" {
		req.Name = req.ID
	}
	kind := store.DeviceKind(req.Kind)
	if kind == "" {
		kind = store.KindCluster
	}
	d, err := s.st.EnrolDevice(r.Context(), store.Device{ID: req.ID, Name: req.Name, Area: req.Area, Kind: kind, Outputs: req.Outputs}, h)
	if errors.Is(err, store.ErrExists) {
		s.idTaken(r.Context(), w, p, req.ID)
		return
	}
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.states.touch(d.ID)
	s.audit(r.Context(), p, "device.enrol", "device:"+d.ID, map[string]string{"area": d.Area})
	staffapi.WriteJSON(w, http.StatusCreated, api.EnrolResponse{ID: d.ID, Area: d.Area, Secret: secret, KeyID: s.signer.KeyID(),
		PublicKey: protocol.FormatPublicKey(s.signer.PublicKey()), Hub: s.opts.PublicURL, Warning: publicURLWarning(s.opts.PublicURL)})
}

// secretHash converts protocol's "sha256:<hex>" form into the store's bytes.
func secretHash(secret string) ([32]byte, error) {
	var out [32]byte
	h, err := protocol.HashDeviceSecret(secret)
	if err != nil {
		return out, err
	}
	_, digest, err := store.ParseRef(h)
	if err != nil {
		return out, fmt.Errorf("device secret hash: %w", err)
	}
	return digest, nil
}

func (s *Server) deviceJSON(ctx context.Context, d store.Device) api.DeviceJSON {
	return s.listedDeviceJSON(ctx, d, nil)
}

// listedDeviceJSON is deviceJSON with the schedule state from heads (DeliveryHeads) when given.
func (s *Server) listedDeviceJSON(ctx context.Context, d store.Device, heads map[string]store.DeliveryHead) api.DeviceJSON {
	j := api.DeviceJSON{ID: d.ID, Name: d.Name, Area: d.Area, Kind: string(d.Kind), Outputs: d.Outputs,
		EnrolledAt: d.EnrolledAt, Revoked: d.Revoked, AckedSeq: d.AckedSeq, NowPlaying: d.Status.NowPlaying,
		Software: d.Status.SoftwareVersion, Link: d.Status.Link, DiskFreeBytes: d.Status.DiskFreeBytes,
		ClockOffsetS: d.Status.ClockOffset.Seconds(), ClockErrorS: d.Status.ClockError.Seconds(), ClockSource: d.Status.ClockSource,
		Arch: d.Arch, Upgrades: d.Upgrades}
	if !d.LastSeen.IsZero() {
		t := d.LastSeen
		j.LastSeen = &t
	}
	if !math.IsNaN(d.Status.TemperatureC) && d.Status.TemperatureC != 0 {
		t := d.Status.TemperatureC
		j.TemperatureC = &t
	}
	if !d.LastSeen.IsZero() && d.Status.Volume > 0 {
		v := d.Status.Volume
		j.Volume = &v
	}
	j.Relay, j.Sign, j.Screen = partJSON(d.Status.Parts.Relay), partJSON(d.Status.Parts.Sign), partJSON(d.Status.Parts.Screen)
	j.Audio = partJSON(d.Status.Parts.Audio)
	j.Faults = d.Status.Parts.Faults()
	j.Online = s.online(d.ID, d.LastSeen)
	if heads != nil { // a list: read for all devices at once
		if h, ok := heads[d.ID]; ok {
			j.Revision, j.Delivery, j.RefusedReason, j.ActiveRevision = h.Revision, string(h.Delivery.State), h.Delivery.RefusedReason, h.ActiveRevision
		}
		return j
	}
	if e, err := s.st.LatestEffective(ctx, d.ID); err == nil {
		j.Revision, j.Delivery, j.RefusedReason = e.Revision, string(e.Delivery.State), e.Delivery.RefusedReason
	}
	if e, err := s.st.LatestActiveEffective(ctx, d.ID); err == nil {
		j.ActiveRevision = e.Revision
	}
	if u, err := s.st.LatestUpgrade(ctx, d.ID); err == nil {
		j.Upgrade = &api.UpgradeJSON{Rollout: u.Rollout, Version: u.Version, State: u.State, Error: u.Error, Since: u.Since}
		j.Rollbacks = u.Rollbacks
	}
	return j
}

// deliveryHeads reads the schedule state of every device of a list in one query, when the
// store can (nil otherwise: deviceJSON then asks per device).
func (s *Server) deliveryHeads(ctx context.Context, area string) map[string]store.DeliveryHead {
	st, ok := s.st.(interface {
		DeliveryHeads(ctx context.Context, area string) (map[string]store.DeliveryHead, error)
	})
	if !ok {
		return nil
	}
	heads, err := st.DeliveryHeads(ctx, area)
	if err != nil {
		s.log.Warn("delivery heads", "area", area, "err", err)
		return nil
	}
	return heads
}

func (s *Server) apiListDevices(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	ds, err := s.st.ListDevices(r.Context(), area)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.DeviceJSON, 0, len(ds))
	heads := s.deliveryHeads(r.Context(), area)
	for _, d := range ds {
		out = append(out, s.listedDeviceJSON(r.Context(), d, heads))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// lookupDevice finds a device the caller may see, suggesting the full id when they typed a
// short one.
func (s *Server) lookupDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id string) (store.Device, bool) {
	d, err := s.st.GetDevice(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		msg := fmt.Sprintf("no device %s in your scope %s", id, p.Scope)
		if hint := s.suggest(r.Context(), p, id); hint != "" {
			msg += "; did you mean " + hint + "?"
		}
		staffapi.Error(w, http.StatusNotFound, msg)
		return d, false
	}
	if err != nil {
		staffapi.Fail(w, err)
		return d, false
	}
	if !store.Allowed(p.Scope, d.Area) {
		// Same answer as for an unknown id, so other areas' devices cannot be probed.
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no device %s in your scope %s", id, p.Scope))
		return d, false
	}
	return d, true
}

// suggest returns device or area ids in scope whose last segment is name's last segment.
func (s *Server) suggest(ctx context.Context, p staffapi.Caller, name string) string {
	last := name[strings.LastIndex(name, "/")+1:]
	var hits []string
	if ds, err := s.st.ListDevices(ctx, p.Scope); err == nil {
		for _, d := range ds {
			if d.ID != name && (d.ID == last || strings.HasSuffix(d.ID, "/"+last)) {
				hits = append(hits, d.ID)
			}
		}
	}
	if as, err := s.st.ListSubtree(ctx, p.Scope); err == nil {
		for _, a := range as {
			if a.ID != name && strings.HasSuffix("/"+a.ID, "/"+last) {
				hits = append(hits, a.ID)
			}
		}
	}
	sort.Strings(hits)
	if len(hits) > 5 {
		hits = hits[:5]
	}
	return strings.Join(hits, " or ")
}

// noArea says that area does not exist, what does, and the full path expected: an area
// named by its last segment gets the full paths ending so; otherwise the areas in the scope
// are listed (the first 12).
func (s *Server) noArea(ctx context.Context, p staffapi.Caller, area, flag string) string {
	msg := fmt.Sprintf("no area %s in your scope %s: areas are named by their full path from %s", area, p.Scope, p.Scope)
	as, err := s.st.ListSubtree(ctx, p.Scope)
	if err != nil {
		return msg + "; `loa area list` shows them"
	}
	last := area[strings.LastIndex(area, "/")+1:]
	var hits, all []string
	for _, a := range as {
		all = append(all, a.ID)
		if strings.HasSuffix("/"+a.ID, "/"+last) {
			hits = append(hits, a.ID)
		}
	}
	sort.Strings(hits)
	if len(hits) > 0 {
		return msg + "; use " + flag + " " + strings.Join(hits, " or "+flag+" ")
	}
	more := ""
	if len(all) > 12 {
		all, more = all[:12], fmt.Sprintf(" and %d more", len(all)-12)
	}
	parent := store.ParentArea(area)
	add := ""
	if store.ValidateAreaID(area) == nil && store.Allowed(p.Scope, area) && area != p.Scope {
		add = fmt.Sprintf("; to make it, `loa area add %s` (its parent %s must exist)", area, parent)
	}
	return fmt.Sprintf("%s; the areas are %s%s (`loa area list`)%s", msg, strings.Join(all, ", "), more, add)
}

func (s *Server) apiShowDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	d, ok := s.lookupDevice(w, r, p, r.PathValue("id"))
	if !ok {
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, s.deviceJSON(r.Context(), d))
}

func (s *Server) apiRevokeDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	d, ok := s.lookupDevice(w, r, p, r.PathValue("id"))
	if !ok {
		return
	}
	if err := s.st.RevokeDevice(r.Context(), d.ID); err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.states.touch(d.ID)
	s.audit(r.Context(), p, "device.revoke", "device:"+d.ID, nil)
	s.dropConn(d.ID) // a revoked device loses its live connection at once, not at its next reconnect
	d, _ = s.st.GetDevice(r.Context(), d.ID)
	staffapi.WriteJSON(w, http.StatusOK, s.deviceJSON(r.Context(), d))
}

// resolveTarget finds the area or device a push or command names (findTarget), answering the
// request itself when there is none.
func (s *Server) resolveTarget(w http.ResponseWriter, r *http.Request, p staffapi.Caller, to string) (store.Target, string, bool) {
	t, area, err := s.findTarget(r.Context(), p, to)
	if err != nil {
		staffapi.Fail(w, err)
		return store.Target{}, "", false
	}
	return t, area, true
}

// findTarget finds the area or device to names, and the area it is or is in, among those in
// the caller's scope only: anything outside it is answered as unknown (404), and a bare id that
// an area and a device share (possible only for ids made before ids were one namespace) is
// resolved to the one the caller may act on.
func (s *Server) findTarget(ctx context.Context, p staffapi.Caller, to string) (store.Target, string, error) {
	id, deviceOnly := strings.CutPrefix(to, "device:")
	id, areaOnly := strings.CutPrefix(id, "area:")
	if id == "" {
		return store.Target{}, "", staffapi.BadRequest("say where: use --to AREA or --to DEVICE (e.g. --to %s)", p.Scope)
	}
	area := false
	if !deviceOnly && store.Allowed(p.Scope, id) {
		_, err := s.st.GetArea(ctx, id)
		area = err == nil
	}
	device := false
	var d store.Device
	if !areaOnly {
		var err error
		d, err = s.st.GetDevice(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Target{}, "", err
		}
		device = err == nil && store.Allowed(p.Scope, d.Area)
	}
	switch {
	case area && device:
		return store.Target{}, "", staffapi.Refuse(http.StatusConflict, fmt.Sprintf("%s is both an area and a device: use --to area:%s or --to device:%s", id, id, id))
	case area:
		return store.AreaTarget(id), id, nil
	case device:
		return store.DeviceTarget(id), d.Area, nil
	}
	what := "area or device"
	switch {
	case areaOnly:
		what = "area"
	case deviceOnly:
		what = "device"
	}
	return store.Target{}, "", s.unknownTarget(ctx, p, id, what)
}

// unknownTarget is the 404 for an id that is not a what ("area", "device", "area or device")
// in the caller's scope, whether it exists elsewhere or not, with a guess at what was meant.
func (s *Server) unknownTarget(ctx context.Context, p staffapi.Caller, id, what string) error {
	msg := fmt.Sprintf("no %s %s", what, id)
	if hint := s.suggest(ctx, p, id); hint != "" {
		msg += fmt.Sprintf(" in your scope %s; use --to %s", p.Scope, hint)
	} else {
		msg += fmt.Sprintf(" in your scope %s; `loa device list` and `loa area list` show the ids", p.Scope)
	}
	return staffapi.Refuse(http.StatusNotFound, msg)
}

func (s *Server) notFoundTarget(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id, what string) {
	staffapi.Fail(w, s.unknownTarget(r.Context(), p, id, what))
}

func (s *Server) apiPushSchedule(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.PushRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	if req.To == "" {
		staffapi.Error(w, http.StatusBadRequest, "a push needs a target: use --to AREA or --to DEVICE")
		return
	}
	name := req.Name
	if name == "" {
		name = "pushed document"
	}
	doc, err := scheduler.Parse(name, []byte(req.Document))
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	target, area, ok := s.resolveTarget(w, r, p, req.To)
	if !ok {
		return
	}
	if err := s.checkContent(r.Context(), doc); err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.link.Playable(r.Context(), doc); err != nil {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%s would be refused by every device, which compiles it before playing: %v", name, err))
		return
	}
	if req.DryRun {
		res, err := s.dryRun(r.Context(), target, area, doc)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		if err := s.dryRunApproval(r.Context(), p, area, req.Submit, doc, &res); err != nil {
			staffapi.Fail(w, err)
			return
		}
		staffapi.WriteJSON(w, http.StatusOK, res)
		return
	}
	// The same schedule again (a revision bump aside) makes no new revision: devices would
	// get a new signed document that plays exactly as the one they have.
	if latest, err := s.st.LatestSchedule(r.Context(), target); err == nil && sameSchedule(latest, doc) {
		staffapi.WriteJSON(w, http.StatusOK, api.PushResponse{Target: target.String(), Revision: latest.Revision, Unchanged: true})
		return
	}
	// Where the area requires approval the push waits for an approver (issue 22).
	rule, err := s.pushRuleFor(r.Context(), p, area, req.Submit)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if !rule.atOnce {
		s.submitSchedule(w, r, p, target, area, doc, req.Document, rule.approvers)
		return
	}
	// What goes on air plays approved content only; a submission may wait for its items.
	if items := s.unapprovedContent(r.Context(), doc); len(items) > 0 {
		staffapi.Fail(w, errUnapproved(items))
		return
	}
	before := s.link.HeadsBefore(r.Context(), target)
	sc := store.Schedule{Target: target, ID: doc.ID, Document: []byte(req.Document), Author: p.User.ID}
	if rule.selfApproved {
		sc.ApprovedBy, sc.ApprovedAt = p.User.ID, s.clock.Now()
	}
	sch, err := s.st.PutSchedule(r.Context(), sc)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "schedule.push", target.String(), map[string]any{"schedule_id": doc.ID, "revision": sch.Revision, "programs": len(doc.Programs)})
	res := s.link.PushSince(r.Context(), target, before)
	res.Target, res.Revision = target.String(), sch.Revision
	staffapi.WriteJSON(w, http.StatusOK, res)
}

// checkContent refuses a document naming library content the hub does not have: agents would
// wait for it for ever.
func (s *Server) checkContent(ctx context.Context, doc *scheduler.Document) error {
	for _, pr := range doc.Programs {
		for i, it := range pr.Items {
			if it.Content == "" {
				continue
			}
			if _, err := s.st.GetContent(ctx, it.Content); err != nil {
				return fmt.Errorf("program %s item %d: content %s is not in the hub's library: upload it with `loa content add FILE` and use the sha256 it prints", pr.ID, i, it.Content)
			}
		}
	}
	return nil
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.apiListDevices(w, r, p)
}

func finitePtr(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func confirmationJSON(c store.Confirmation) api.ConfirmationJSON {
	return api.ConfirmationJSON{Device: c.Device, Seq: int64(c.Seq), Area: c.Area, Output: c.Output, ScheduleID: c.ScheduleID,
		Revision: int64(c.Revision), Program: c.Program, ItemIndex: c.ItemIndex, Item: c.Item,
		Scheduled: staffapi.TimePtr(c.Scheduled), Start: staffapi.TimePtr(c.Start), End: staffapi.TimePtr(c.End), Proof: c.Proof.Finite(),
		Result: string(c.Result), Error: c.Error, Clock: string(c.Clock), ReceivedAt: c.ReceivedAt,
		CommandID: c.CommandID, Volume: positivePtr(c.Volume), Amplifier: c.Amplifier}
}

// zoneOf loads the config's zone (checked by Config.Check; nil falls back to the default).
func zoneOf(name string) *time.Location {
	loc, _ := api.LoadZone(name)
	return loc
}

// zone is the zone a staff request's dates and times are in: the user's, when the CLI names
// one (api.ZoneHeader), else the hub's.
func (s *Server) zone(r *http.Request) *time.Location {
	if name := r.Header.Get(api.ZoneHeader); name != "" {
		if loc, err := api.LoadZone(name); err == nil {
			return loc
		}
	}
	return s.opts.Location
}

func (s *Server) apiConfirmations(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	f := store.ConfirmationFilter{Result: q.Get("result"), Program: q.Get("program"), Item: q.Get("content")}
	area, ok := staffapi.AreaParam(w, r, p)
	if !ok {
		return
	}
	f.Area = area
	if after := q.Get("after"); after != "" {
		// The last row of the page before; its device must be one the caller sees.
		key, err := parsePlayCursor(after)
		if err != nil {
			staffapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		d, ok := s.lookupDevice(w, r, p, key.Device)
		if !ok {
			return
		}
		key.Device = d.ID
		f.After = &key
	}
	if id := q.Get("device"); id != "" {
		d, ok := s.lookupDevice(w, r, p, id)
		if !ok {
			return
		}
		// The area filter is where the play was heard; a device's own plays are filtered by
		// the caller's scope only through its current area.
		f.DeviceID, f.Area = d.ID, ""
		if q.Get("area") != "" {
			f.Area = area
		}
	}
	var err error
	if f.Since, f.Until, ok = staffapi.TimeRange(w, q, s.clock.Now(), p); !ok {
		return
	}
	if l := q.Get("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 0 {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("limit %q: write a non-negative whole number", l))
			return
		}
	}
	// A limit keeps the newest plays (what staff look for), newest first.
	f.Newest = f.Limit > 0
	cs, err := s.st.ListConfirmations(r.Context(), f)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if f.DeviceID != "" && q.Get("area") == "" {
		// Keep only plays heard inside the caller's scope (a device may have moved in).
		kept := cs[:0]
		for _, c := range cs {
			if store.Allowed(p.Scope, c.Area) {
				kept = append(kept, c)
			}
		}
		cs = kept
	}
	out := make([]api.ConfirmationJSON, 0, len(cs))
	titles := newTitler(r.Context(), s)
	for _, c := range cs {
		j := confirmationJSON(c)
		j.Title, j.ItemTitle, j.ApprovedBy = titles.program(c), titles.item(c.Item), titles.approver(c)
		out = append(out, j)
	}
	if q.Get("format") == "csv" || strings.Contains(r.Header.Get("Accept"), "text/csv") {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		api.WriteConfirmationsCSV(w, out)
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// parsePlayCursor reads the play log's cursor, DEVICE:SEQ (device ids hold no ':' but may
// hold '/').
func parsePlayCursor(after string) (store.ConfirmationKey, error) {
	i := strings.LastIndex(after, ":")
	seq, err := strconv.ParseInt(after[i+1:], 10, 64)
	if i <= 0 || err != nil || seq <= 0 {
		return store.ConfirmationKey{}, fmt.Errorf("after %q: write the device and sequence number of the last play seen, DEVICE:SEQ", after)
	}
	return store.ConfirmationKey{Device: after[:i], Seq: seq}, nil
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	q := r.URL.Query()
	es, err := s.st.ListAudit(r.Context(), store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Limit: 1000})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := []api.AuditJSON{}
	for _, e := range es {
		if !s.auditVisible(r.Context(), p, e.Target) {
			continue
		}
		out = append(out, api.AuditJSON{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// auditVisible shows staff the entries about their own subtree.
func (s *Server) auditVisible(ctx context.Context, p staffapi.Caller, target string) bool {
	if id, ok := strings.CutPrefix(target, "area:"); ok {
		return store.Allowed(p.Scope, id)
	}
	if id, ok := strings.CutPrefix(target, "device:"); ok {
		d, err := s.st.GetDevice(ctx, id)
		return err == nil && store.Allowed(p.Scope, d.Area)
	}
	if id, ok := strings.CutPrefix(target, "user:"); ok {
		if cs, ok := s.st.(credentialStore); ok {
			u, err := cs.GetUser(ctx, id)
			return err == nil && store.Allowed(p.Scope, u.Scope)
		}
	}
	return strings.Count(p.Scope, "/") == 0 // library-wide entries: province staff
}

func partJSON(p *store.Part) *api.PartJSON {
	if p == nil {
		return nil
	}
	j := &api.PartJSON{State: p.State, Error: p.Error}
	if !p.Since.IsZero() {
		t := p.Since
		j.Since = &t
	}
	return j
}
