package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/loa-project/loa/hub/api"
)

// maxScreenshot bounds what is read of an image (the hub stores at most 8 MiB).
const maxScreenshot = 8<<20 + 1

// Screenshot is an image of a device's screen that the hub holds.
type Screenshot struct {
	Device  string
	Command string    // the screenshot command it answered
	TakenAt time.Time // when the hub stored it
	PNG     []byte
}

// DeviceScreenshot returns the device's screenshot for command, or its latest when command is
// "". The hub's error says why there is none (offline, failed, not answered yet).
func (c *Client) DeviceScreenshot(ctx context.Context, device, command string) (Screenshot, error) {
	path := "/api/screenshots/" + escapePath(device)
	if command != "" {
		path += "?" + url.Values{"command": {command}}.Encode()
	}
	resp, err := c.request(ctx, "GET", path, nil, "")
	if err != nil {
		return Screenshot{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxScreenshot))
	if err != nil {
		return Screenshot{}, fmt.Errorf("reading the screenshot of %s from the hub: %w", device, err)
	}
	if len(b) >= maxScreenshot {
		return Screenshot{}, fmt.Errorf("the hub sent a screenshot of %s over %d bytes", device, maxScreenshot-1)
	}
	s := Screenshot{Device: resp.Header.Get(api.ScreenshotDeviceHeader), Command: resp.Header.Get(api.ScreenshotCommandHeader), PNG: b}
	if s.Device == "" {
		s.Device = device
	}
	s.TakenAt, _ = http.ParseTime(resp.Header.Get("Last-Modified"))
	return s, nil
}
