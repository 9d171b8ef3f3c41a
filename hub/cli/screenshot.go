package cli

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/client"
	"github.com/loa-project/loa/internal/clicmd"
)

// screenshotCommand is `loa screenshot DEVICE …`: it issues a screenshot command to the
// device, waits for the device to upload the image to the hub, and saves it.
func (t *tree) screenshotCommand(root *cobra.Command) {
	t.add(root, "screenshot DEVICE [-o FILE.png] [--wait 20s] [--expires 10m] | DEVICE (--command ID | --latest) [-o FILE.png]",
		"what the device's screen shows now, or one taken earlier", func(c *command) action {
			outFile := c.fs.StringP("out", "o", "", "file to save the PNG to (default screenshot-DEVICE-COMMAND.png)")
			wait := c.fs.Duration("wait", 20*time.Second, "how long to wait for the device's image")
			expires := c.fs.String("expires", "", "how long a device that is offline may still take it (default 10m)")
			command := c.fs.String("command", "", "fetch the image of this earlier screenshot command instead of taking a new one")
			latest := c.fs.Bool("latest", false, "fetch the device's newest screenshot instead of taking a new one")
			return func(ctx context.Context, pos []string) error {
				if err := wantArgs("screenshot", pos, 1, "one DEVICE (its id, e.g. tam-thanh/board-01)"); err != nil {
					return err
				}
				if *command != "" && *latest {
					return clicmd.Usagef("give --command ID or --latest, not both")
				}
				device := pos[0]
				cl, err := c.client()
				if err != nil {
					return err
				}
				if *command != "" || *latest {
					shot, err := cl.DeviceScreenshot(ctx, device, *command)
					if err != nil {
						return err
					}
					return saveShot(c.env, shot, *outFile, cl.Location())
				}

				cmd, err := cl.IssueCommand(ctx, api.CommandRequest{To: device, Action: "screenshot", ExpiresIn: *expires})
				if err != nil {
					return err
				}
				if len(cmd.Outcomes) != 1 {
					return fmt.Errorf("screenshot command %s went to %d devices; name one device", cmd.ID, len(cmd.Outcomes))
				}
				o := cmd.Outcomes[0]
				device = o.Device
				later := fmt.Sprintf("`loa screenshot %s --command %s`", device, cmd.ID)
				deadline := time.Now().Add(*wait)
				for o.State == "pending" || o.State == "sent" {
					if !time.Now().Before(deadline) {
						break
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(250 * time.Millisecond):
					}
					if c2, err := cl.GetCommand(ctx, cmd.ID); err == nil && len(c2.Outcomes) == 1 {
						cmd, o = c2, c2.Outcomes[0]
					}
				}
				until := cmd.ExpiresAt.In(cl.Location()).Format("15:04:05")
				switch o.State {
				case "executed", "received":
					shot, err := cl.DeviceScreenshot(ctx, device, cmd.ID)
					if err != nil {
						return err
					}
					return saveShot(c.env, shot, *outFile, cl.Location())
				case "failed", "refused":
					return fmt.Errorf("device %s could not take a screenshot (command %s %s): %s", device, cmd.ID, o.State, o.Reason)
				case "pending":
					return fmt.Errorf("device %s is offline: it takes the screenshot when it reconnects, until %s (command %s); fetch it then with %s",
						device, until, cmd.ID, later)
				case "expired", "unanswered":
					return fmt.Errorf("device %s did not answer screenshot command %s before it expired; try again when it is online (`loa status`)", device, cmd.ID)
				default: // sent, no answer yet
					return fmt.Errorf("device %s got screenshot command %s but sent no image within %s (a slow uplink?); fetch it later with %s",
						device, cmd.ID, *wait, later)
				}
			}
		})
}

// saveShot writes a screenshot to file (default screenshot-<device>-<command>.png, with the
// device's '/' as '-') and says what it saved.
func saveShot(env Env, shot client.Screenshot, file string, loc *time.Location) error {
	if file == "" {
		file = fmt.Sprintf("screenshot-%s-%s.png", strings.ReplaceAll(shot.Device, "/", "-"), shot.Command)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot.PNG))
	if err != nil {
		return fmt.Errorf("the hub's screenshot of %s (command %s) is not a readable PNG: %w", shot.Device, shot.Command, err)
	}
	if err := os.WriteFile(file, shot.PNG, 0o644); err != nil {
		return fmt.Errorf("saving the screenshot: %w", err)
	}
	abs, _ := filepath.Abs(file)
	taken := ""
	if !shot.TakenAt.IsZero() {
		taken = ", taken " + shot.TakenAt.In(loc).Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(env.Stdout, "screenshot of %s (command %s%s): %d×%d, %d bytes, saved to %s\n",
		shot.Device, shot.Command, taken, cfg.Width, cfg.Height, len(shot.PNG), abs)
	return nil
}
