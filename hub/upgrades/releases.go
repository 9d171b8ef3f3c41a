// Package upgrades is the hub's staged upgrades of its agents: releases (loa-agent packages
// signed offline with a release key, uploaded by staff, served to devices) and rollouts of a
// release to an area's devices, the canaries first and the rest once the canaries are
// healthy, stopped when too many fail (docs/upgrades.md).
package upgrades

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// Store is what upgrades need of the hub's storage; *store.DB provides it.
type Store interface {
	AddRelease(ctx context.Context, r store.Release) (store.Release, bool, error)
	GetRelease(ctx context.Context, version, arch string) (store.Release, error)
	ListReleases(ctx context.Context) ([]store.Release, error)
	GetArea(ctx context.Context, id string) (store.Area, error)
	ListDevices(ctx context.Context, area string) ([]store.Device, error)
	AddRollout(ctx context.Context, r store.Rollout, devs []store.RolloutDevice) (store.Rollout, error)
	GetRollout(ctx context.Context, id string) (store.Rollout, error)
	ListRollouts(ctx context.Context, area string) ([]store.Rollout, error)
	OpenRollouts(ctx context.Context) ([]store.Rollout, error)
	RolloutDevices(ctx context.Context, id string) ([]store.RolloutDevice, error)
	AdvanceRollout(ctx context.Context, id, from, to, reason string) (bool, error)
	SetRolloutDevice(ctx context.Context, rollout, device string, from []string, state, errText string) (bool, error)
	ReportUpgrade(ctx context.Context, device string, u protocol.UpgradeStatus) (bool, error)
}

// Link is what rollouts need of the agent link (hub/agentlink): the live connection of a
// device here, and a write to it.
type Link interface {
	Conn(device string) (uint64, bool)
	SendOn(device string, conn uint64, m protocol.Message) error
}

// Options configure a Room. Every field is required but Keys (none: uploads are refused,
// saying how to configure release_keys) and Tick.
type Options struct {
	Store Store
	Link  Link
	// Keys are the release keys the hub accepts packages signed with (its release_keys).
	Keys protocol.TrustedKeys
	Dir  string // the content dir: packages are kept there by their sha256, as content is
	// StoreFile moves a finished file into Dir under its sha256, atomically (the library's).
	StoreFile func(path string) (ref string, size int64, err error)
	Log       *slog.Logger
	Now       func() time.Time
	// Audit records a staff action in the hub's audit log.
	Audit func(ctx context.Context, p staffapi.Caller, action, target string, detail any)
	// DeviceAuth checks a device's credentials on r; when it returns false it has answered.
	DeviceAuth func(w http.ResponseWriter, r *http.Request) (store.Device, bool)
	// Online says whether a device is connected (to this hub or, on PostgreSQL, another).
	Online func(id string, lastSeen time.Time) bool
	// Tick is how often the rollout engine looks at running rollouts besides the statuses
	// and connections that wake it (default 10 s).
	Tick time.Duration
	// Metrics, when set, is told how many devices of the running rollouts are in each state
	// after each step of the engine.
	Metrics Metrics
	// Announce, when set, tells the other hubs sharing the store that a rollout changed
	// (the agent link's AnnounceRollout); nil when this hub is alone.
	Announce func(ctx context.Context, rollout string)
}

// Metrics is what the engine tells the hub's metrics (hub/metrics).
type Metrics interface {
	Upgrades(counts map[string]int)
}

// Room serves the releases' and rollouts' routes and runs the rollouts (Run).
type Room struct {
	o    Options
	wake chan struct{}
	sent sentMarks
}

// New returns a room over o.
func New(o Options) *Room {
	if o.Tick <= 0 {
		o.Tick = 10 * time.Second
	}
	return &Room{o: o, wake: make(chan struct{}, 1), sent: sentMarks{m: map[string]sentMark{}}}
}

// PackagePath is where devices and staff download a release.
func PackagePath(version, arch string) string {
	return "/api/releases/" + url.PathEscape(version) + "/" + url.PathEscape(arch) + "/package"
}

func releaseJSON(r store.Release) api.ReleaseJSON {
	return api.ReleaseJSON{Name: r.Name, Version: r.Version, Arch: r.Arch, Size: r.Size, SHA256: r.SHA256, KeyID: r.KeyID,
		UploadedBy: r.UploadedBy, UploadedAt: r.UploadedAt, URL: PackagePath(r.Version, r.Arch)}
}

// MaxStatementBytes bounds a release statement (a few hundred bytes in practice).
const MaxStatementBytes = 16 << 10

// ParseStatement reads the release statement `loa release sign` writes beside a package:
// one JSON object, no unknown fields, no URL (the hub sets where it serves the package), its
// fields checked. It does not check the signature (VerifyRelease does, with the keys).
func ParseStatement(b []byte) (protocol.ReleasePackage, error) {
	var p protocol.ReleasePackage
	if len(b) > MaxStatementBytes {
		return p, fmt.Errorf("the statement is %d bytes, at most %d: it is not a release statement", len(b), MaxStatementBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return protocol.ReleasePackage{}, fmt.Errorf("the statement is not the JSON `loa release sign` writes: %v", err)
	}
	if dec.More() {
		return protocol.ReleasePackage{}, errors.New("the statement has more than one JSON value")
	}
	if p.URL != "" {
		return protocol.ReleasePackage{}, errors.New("the statement names a url: a signed statement has none (the hub says where it serves the package)")
	}
	if err := protocol.CheckRelease(&p); err != nil {
		return protocol.ReleasePackage{}, fmt.Errorf("the statement: %v", err)
	}
	return p, nil
}

// Upload is POST /api/releases: multipart/form-data with a "package" part (the .deb) and a
// "statement" part (its signed statement). Refused: a statement that does not parse or is
// unsigned (400), signed by a key not in release_keys or not matching (403), bytes whose size
// or sha256 differ from the statement (422), a version and arch held with other bytes (409).
func (rm *Room) Upload(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	if len(rm.o.Keys) == 0 {
		staffapi.Error(w, http.StatusConflict, "this hub trusts no release key: add the public key of `loa release keygen` to release_keys in the hub's config and restart it")
		return
	}
	tmp, err := os.CreateTemp(rm.o.Dir, ".release-*")
	if err != nil {
		rm.failed(w, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, sum, stmt, filename, err := readRelease(r, tmp)
	if err != nil {
		if store.IsFull(err) {
			rm.failed(w, err)
			return
		}
		if staffapi.TooLarge(err) {
			staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the upload is larger than a release may be (%d MiB)", protocol.MaxReleaseBytes>>20))
			return
		}
		staffapi.Error(w, http.StatusBadRequest, "bad release upload: "+err.Error())
		return
	}
	pkg, err := ParseStatement(stmt)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", filename, err))
		return
	}
	if err := protocol.VerifyRelease(&pkg, rm.o.Keys); err != nil {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("%s: %v", filename, err))
		return
	}
	if size != pkg.Size || sum != pkg.SHA256 {
		staffapi.Error(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s is not the package its statement signs: the statement says %d bytes with sha256 %s, the upload is %d bytes with sha256 %s; the package was changed after signing (or the wrong statement was sent): sign it again with `loa release sign`",
			filename, pkg.Size, pkg.SHA256, size, sum))
		return
	}
	if err := tmp.Sync(); err != nil {
		rm.failed(w, err)
		return
	}
	if _, _, err := rm.o.StoreFile(tmp.Name()); err != nil {
		rm.failed(w, err)
		return
	}
	rel, created, err := rm.o.Store.AddRelease(r.Context(), store.Release{ReleasePackage: pkg, UploadedBy: p.User.ID})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "release.add", "release:"+rel.Version+"/"+rel.Arch,
		map[string]any{"sha256": rel.SHA256, "size": rel.Size, "key_id": rel.KeyID, "created": created})
	j := releaseJSON(rel)
	j.Created = created
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	staffapi.WriteJSON(w, code, j)
}

// readRelease copies the "package" part into out (hashing it) and returns the "statement"
// part and the package's file name. r.Body is already bounded (staffapi.LimitBody).
func readRelease(r *http.Request, out io.Writer) (size int64, sum string, stmt []byte, filename string, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return 0, "", nil, "", errors.New("send multipart/form-data with a \"package\" part (the .deb) and a \"statement\" part (PACKAGE.deb.release.json), as `loa release upload` does")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return 0, "", nil, "", err
	}
	gotPkg := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, "", nil, "", err
		}
		switch part.FormName() {
		case "package":
			if gotPkg {
				return 0, "", nil, "", errors.New("two \"package\" parts: upload one package at a time")
			}
			gotPkg = true
			filename = part.FileName()
			h := sha256.New()
			size, err = io.Copy(io.MultiWriter(out, h), io.LimitReader(part, protocol.MaxReleaseBytes+1))
			if err != nil {
				return 0, "", nil, "", err
			}
			if size > protocol.MaxReleaseBytes {
				return 0, "", nil, "", fmt.Errorf("the package is over %d MiB: it is not a loa-agent release", protocol.MaxReleaseBytes>>20)
			}
			sum = hex.EncodeToString(h.Sum(nil))
		case "statement":
			if stmt != nil {
				return 0, "", nil, "", errors.New("two \"statement\" parts: send the one beside the package")
			}
			if stmt, err = io.ReadAll(io.LimitReader(part, MaxStatementBytes+1)); err != nil {
				return 0, "", nil, "", err
			}
		default:
			return 0, "", nil, "", fmt.Errorf("unknown part %q: send \"package\" and \"statement\"", part.FormName())
		}
	}
	if !gotPkg {
		return 0, "", nil, "", errors.New("no \"package\" part (the .deb)")
	}
	if stmt == nil {
		return 0, "", nil, "", errors.New("no \"statement\" part: a release is uploaded with its signed statement (PACKAGE.deb.release.json, from `loa release sign`); an unsigned package is refused")
	}
	if filename == "" {
		filename = "the package"
	}
	return size, sum, stmt, filename, nil
}

// failed answers an upload the hub could not keep.
func (rm *Room) failed(w http.ResponseWriter, err error) {
	staffapi.StoreFailed(w, rm.o.Log, "release", rm.o.Dir, err)
}

// ListReleases is GET /api/releases.
func (rm *Room) ListReleases(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	rs, err := rm.o.Store.ListReleases(r.Context())
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.ReleaseJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, releaseJSON(x))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// DeviceDownload is GET /api/releases/{version}/{arch}/package for a device, with its usual
// credentials (as it fetches content).
func (rm *Room) DeviceDownload(w http.ResponseWriter, r *http.Request) {
	if _, ok := rm.o.DeviceAuth(w, r); !ok {
		return
	}
	rm.serve(w, r)
}

// StaffDownload is the same route for staff.
func (rm *Room) StaffDownload(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	rm.serve(w, r)
}

// serve answers with the package's bytes, Range requests included (a device resuming).
func (rm *Room) serve(w http.ResponseWriter, r *http.Request) {
	rel, err := rm.o.Store.GetRelease(r.Context(), r.PathValue("version"), r.PathValue("arch"))
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	f, err := os.Open(filepath.Join(rm.o.Dir, rel.SHA256))
	if err != nil {
		rm.o.Log.Error("release file missing: upload the release again", "version", rel.Version, "arch", rel.Arch, "err", err)
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("release %s (%s) is recorded but its file is missing on the hub: upload it again", rel.Version, rel.Arch))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/vnd.debian.binary-package")
	w.Header().Set("ETag", `"sha256:`+rel.SHA256+`"`)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.Join([]string{rel.Name, rel.Version, rel.Arch}, "_")+".deb"))
	http.ServeContent(w, r, "", rel.UploadedAt, f)
}
