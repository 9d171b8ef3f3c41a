package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig: whatever a technician writes in agent.yaml, loading it gives a config or an
// error, never a panic.
func FuzzLoadConfig(f *testing.F) {
	f.Add("device_id: a\ndata_dir: d\n")
	f.Add("device_id: a\ndata_dir: d\nvolume: 2\nvolume_schedule: [{from: '25:00', to: '06:00', volume: 0.5}]\n")
	f.Add("device_id: a\ndata_dir: d\namplifier: {driver: lcus, port: /dev/x, warm_up: 2}\n")
	f.Add("device_id: a\ndata_dir: d\naudio: {output: 'wav:', buffer: -1s}\nhub: {url: 'ws://[::1'}\n")
	f.Add("device_id: a\ndata_dir: d\naudio: {sync: {in_step: true, start_delay: 11s, correct_rate: no, output_delay: -5ms}}\n")
	f.Add("device_id: a\ndata_dir: d\nhub: {url: 'https://a', urls: ['https://a/', 'ws://[::1]:1', ''], secret: s}\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		path := filepath.Join(dir, "agent.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err == nil && (c.DeviceID == "" || c.DataDir == "") {
			t.Fatalf("accepted a config without device_id or data_dir: %q", src)
		}
	})
}
