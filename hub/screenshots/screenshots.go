// Package screenshots keeps the images of devices' screens: a device answering a screenshot
// command uploads the image of its screen (POST /agent/screenshot?command=ID, device
// credentials) before it reports the command executed, and staff fetch it by device or by
// command. The images are plain files, data_dir/screenshots/<device>/<command>.png, next to
// the content dir: no table, since the command row already says who asked, when, and how the
// device answered, and a file per command is what staff fetch.
package screenshots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Commands is what the room reads of the hub's commands.
type Commands interface {
	GetCommand(ctx context.Context, id, scope string) (store.Command, error)
}

// Options configure a Room. Every field is required.
type Options struct {
	Dir      string // data_dir/screenshots
	Commands Commands
	Now      func() time.Time
	Log      *slog.Logger
	Location *time.Location // the zone staff are told times in
	// DeviceAuth checks a device's credentials on r; when it returns false it has answered.
	DeviceAuth func(w http.ResponseWriter, r *http.Request) (store.Device, bool)
	// LookupDevice finds device id in p's scope; when it returns false it has answered.
	LookupDevice func(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id string) (store.Device, bool)
}

// Room serves the screenshot routes (the hub mounts them) and removes old images.
type Room struct{ o Options }

// New returns a room over o.
func New(o Options) *Room { return &Room{o: o} }

// MaxBytes bounds one screenshot (a 1080p PNG of a video frame is 1-4 MiB).
const MaxBytes = 8 << 20

// Grace is how long after its command expired an upload is still taken: the device
// checked the expiry before taking it, and the upload itself may take a minute over 4G.
const Grace = 10 * time.Minute

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// path is where the image of one device for one command lives. Device ids are
// checked slugs joined by '/', so they nest as directories; command ids are the hub's own.
func (rm *Room) path(device, command string) (string, error) {
	if command == "" || strings.ContainsAny(command, `/\`) || strings.HasPrefix(command, ".") {
		return "", fmt.Errorf("command id %q cannot name a screenshot file", command)
	}
	if err := store.ValidateDeviceID(device); err != nil {
		return "", err
	}
	return filepath.Join(rm.o.Dir, filepath.FromSlash(device), command+".png"), nil
}

// Upload is POST /agent/screenshot?command=ID from a device.
func (rm *Room) Upload(w http.ResponseWriter, r *http.Request) {
	dev, ok := rm.o.DeviceAuth(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id := r.URL.Query().Get("command")
	if id == "" {
		staffapi.Error(w, http.StatusBadRequest, "screenshot upload: name the screenshot command it answers with ?command=ID")
		return
	}
	c, err := rm.o.Commands.GetCommand(ctx, id, dev.Area)
	if err == nil && !slices.ContainsFunc(c.Devices, func(d store.CommandDevice) bool { return d.DeviceID == dev.ID }) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		rm.o.Log.Warn("screenshot for a command not issued to the device refused", "device", dev.ID, "command", id)
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("command %s was not issued to device %s: a device uploads a screenshot only for a screenshot command it was given", id, dev.ID))
		return
	}
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if c.Action != protocol.ActionScreenshot {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("command %s is a %s command, not a screenshot: nothing to upload for it", id, c.Action))
		return
	}
	if now := rm.o.Now(); now.After(c.ExpiresAt.Add(Grace)) {
		staffapi.Error(w, http.StatusGone, fmt.Sprintf("screenshot command %s expired at %s; the hub no longer takes its image",
			id, c.ExpiresAt.UTC().Format(time.RFC3339)))
		return
	}
	if r.ContentLength > MaxBytes {
		staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("screenshot of %d bytes: at most %d are accepted", r.ContentLength, MaxBytes))
		return
	}
	dst, err := rm.path(dev.ID, id)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	size, width, height, err := saveScreenshot(http.MaxBytesReader(w, r.Body, MaxBytes), dst)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		staffapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("screenshot over %d bytes refused", MaxBytes))
		return
	case errors.Is(err, errNotPNG):
		staffapi.Error(w, http.StatusUnsupportedMediaType, err.Error())
		return
	case err != nil:
		rm.o.Log.Error("screenshot not stored", "device", dev.ID, "command", id, "err", err)
		staffapi.Error(w, http.StatusInternalServerError, "the hub could not store the screenshot: "+err.Error())
		return
	}
	rm.o.Log.Info("screenshot stored", "device", dev.ID, "command", id, "bytes", size, "width", width, "height", height)
	staffapi.WriteJSON(w, http.StatusCreated, api.ScreenshotJSON{Device: dev.ID, Command: id, Bytes: size, Width: width, Height: height,
		TakenAt: rm.o.Now().UTC()})
}

var errNotPNG = errors.New("not a PNG image")

// saveScreenshot writes body to dst atomically (internal/atomicfile) after checking it is a
// PNG: its signature and a readable header with the image's size.
func saveScreenshot(body io.Reader, dst string) (size int64, width, height int, err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, 0, 0, err
	}
	err = atomicfile.WriteFrom(dst, 0o640, func(w io.Writer) error {
		head := make([]byte, 64<<10)
		n, rerr := io.ReadFull(body, head)
		head = head[:n]
		if rerr != nil && rerr != io.ErrUnexpectedEOF && rerr != io.EOF {
			return rerr
		}
		if !bytes.HasPrefix(head, pngMagic) {
			return fmt.Errorf("screenshot upload: %w (it does not start with the PNG signature; %d bytes)", errNotPNG, n)
		}
		cfg, cerr := png.DecodeConfig(bytes.NewReader(head))
		if cerr != nil || cfg.Width <= 0 || cfg.Height <= 0 {
			return fmt.Errorf("screenshot upload: %w (its header does not read: %v)", errNotPNG, cerr)
		}
		if _, err := w.Write(head); err != nil {
			return err
		}
		rest, err := io.Copy(w, body)
		size, width, height = int64(n)+rest, cfg.Width, cfg.Height
		return err
	})
	if err != nil {
		return 0, 0, 0, err
	}
	return size, width, height, nil
}

// ByDevice is GET /api/screenshots/{device...}[?command=ID]: the device's latest
// screenshot, or the one taken for a command. (Not under /api/devices/{id}: device ids have
// slashes, and the device route takes the whole rest of the path.)
func (rm *Room) ByDevice(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	d, ok := rm.o.LookupDevice(w, r, p, r.PathValue("device"))
	if !ok {
		return
	}
	if id := r.URL.Query().Get("command"); id != "" {
		rm.serveCommand(w, r, p, id, d.ID)
		return
	}
	dir := filepath.Join(rm.o.Dir, filepath.FromSlash(d.ID))
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		staffapi.Fail(w, err)
		return
	}
	// The newest is the one of the highest command seq (ids are cmd-<seq>).
	best, bestSeq := "", int64(-1)
	for _, e := range ents {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".png")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		seq, _ := strconv.ParseInt(strings.TrimPrefix(id, "cmd-"), 10, 64)
		if seq > bestSeq || (seq == bestSeq && id > best) {
			best, bestSeq = id, seq
		}
	}
	if best == "" {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no screenshot of device %s yet: take one with `loa screenshot %s`", d.ID, d.ID))
		return
	}
	rm.serveFile(w, r, d.ID, best)
}

// ByCommand is GET /api/commands/{id}/screenshot[?device=D]: the image a screenshot
// command brought back (device needed when the command went to several).
func (rm *Room) ByCommand(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	device := r.URL.Query().Get("device")
	if device != "" {
		d, ok := rm.o.LookupDevice(w, r, p, device)
		if !ok {
			return
		}
		device = d.ID
	}
	rm.serveCommand(w, r, p, r.PathValue("id"), device)
}

// serveCommand serves command id's image from device (""; the command's only device
// in scope), or says why there is none: not answered yet, failed, another action.
func (rm *Room) serveCommand(w http.ResponseWriter, r *http.Request, p staffapi.Caller, id, device string) {
	c, err := rm.o.Commands.GetCommand(r.Context(), id, p.Scope)
	if errors.Is(err, store.ErrNotFound) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no command %s reaching your scope %s; `loa commands` lists them", id, p.Scope))
		return
	}
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if c.Action != protocol.ActionScreenshot {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("command %s is a %s command, not a screenshot: it has no image", id, c.Action))
		return
	}
	var cd *store.CommandDevice
	for i := range c.Devices {
		if device == "" && len(c.Devices) == 1 || c.Devices[i].DeviceID == device {
			cd = &c.Devices[i]
		}
	}
	if cd == nil {
		if device == "" {
			staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("command %s went to %d devices: name one with ?device=ID", id, len(c.Devices)))
		} else {
			staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("command %s was not issued to device %s", id, device))
		}
		return
	}
	path, err := rm.path(cd.DeviceID, id)
	if err == nil {
		if _, err = os.Stat(path); err == nil {
			rm.serveFile(w, r, cd.DeviceID, id)
			return
		}
	}
	now := rm.o.Now()
	var msg string
	switch {
	case cd.State == store.CommandFailed || cd.State == store.CommandRefused:
		msg = fmt.Sprintf("device %s could not take screenshot %s: %s", cd.DeviceID, id, cd.Reason)
	case cd.State == store.CommandPending && now.Before(c.ExpiresAt):
		msg = fmt.Sprintf("device %s is offline: it takes screenshot %s when it reconnects, until %s; ask again then",
			cd.DeviceID, id, c.ExpiresAt.In(rm.o.Location).Format("15:04:05"))
	case cd.State == store.CommandPending:
		msg = fmt.Sprintf("device %s did not connect before screenshot %s expired at %s: take a new one", cd.DeviceID, id,
			c.ExpiresAt.In(rm.o.Location).Format("15:04:05"))
	case cd.State == store.CommandExecuted:
		msg = fmt.Sprintf("device %s reported screenshot %s taken but the hub has no image of it (it may have been removed)", cd.DeviceID, id)
	default:
		msg = fmt.Sprintf("device %s has not sent screenshot %s yet (state %s); ask again in a few seconds", cd.DeviceID, id, cd.State)
	}
	staffapi.Error(w, http.StatusNotFound, msg)
}

func (rm *Room) serveFile(w http.ResponseWriter, r *http.Request, device, command string) {
	path, err := rm.path(device, command)
	if err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("screenshot %s of device %s is gone", command, device))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set(api.ScreenshotDeviceHeader, device)
	w.Header().Set(api.ScreenshotCommandHeader, command)
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// RemoveOlderThan removes the images last written before now-age and returns how many it
// removed (the hub's daily housekeeping).
func (rm *Room) RemoveOlderThan(now time.Time, age time.Duration) int {
	removed := 0
	filepath.WalkDir(rm.o.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && now.Sub(fi.ModTime()) > age && os.Remove(path) == nil {
			removed++
		}
		return nil
	})
	return removed
}
