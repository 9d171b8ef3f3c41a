package link

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/loa-project/loa/protocol"
)

// MaxScreenshotBytes bounds one screenshot upload. A 1080p PNG of a video frame is 1-4 MiB;
// the hub refuses more than this too, so a device never sends what would be thrown away.
const MaxScreenshotBytes = 8 << 20

// pngMagic starts every PNG file.
var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// UploadScreenshot sends the PNG at path to the hub as the image of screenshot command
// commandID: POST <hub>/agent/screenshot?command=ID with the device's credentials, as content
// fetches use. The hub keeps it for staff (loa screenshot). It does not delete path.
func (l *Link) UploadScreenshot(ctx context.Context, commandID, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("screenshot upload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("screenshot upload: %w", err)
	}
	if st.Size() > MaxScreenshotBytes {
		return fmt.Errorf("screenshot %s is %d bytes, over the %d the hub accepts (a smaller screen resolution gives a smaller image)",
			path, st.Size(), MaxScreenshotBytes)
	}
	head := make([]byte, len(pngMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, pngMagic) {
		return fmt.Errorf("screenshot %s is not a PNG file (%d bytes)", path, st.Size())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("screenshot upload: %w", err)
	}
	u := l.hub().url("/agent/screenshot?command=" + url.QueryEscape(commandID))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, f)
	if err != nil {
		return fmt.Errorf("screenshot upload to %s: %w", u, err)
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("Authorization", protocol.FormatDeviceAuth(l.cfg.DeviceID, l.cfg.Secret))
	c := l.d.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("screenshot upload to the hub: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode/100 != 2 {
		// The hub's errors are JSON {"error": "..."} saying what is wrong.
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("the hub refused the screenshot of command %s (HTTP %s): %s", commandID, resp.Status, msg)
	}
	l.log.Info("screenshot uploaded to the hub", "command", commandID, "bytes", st.Size(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
