package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// neighbours: off unless listen is set; read when it is; a bad listen, advertise or a missing
// hub is refused naming the key.
func TestNeighboursConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(extra string) (*Config, error) {
		path := filepath.Join(dir, "agent.yaml")
		doc := "device_id: a\ndata_dir: d\naudio: {output: 'null'}\n" + extra
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return LoadConfig(path)
	}
	hub := "insecure_hub: true\nhub: {url: 'http://127.0.0.1:1', secret: s, trusted_keys: {k: 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='}}\n"
	c, err := load(hub)
	if err != nil {
		t.Fatal(err)
	}
	if c.Neighbours.Listen != "" {
		t.Fatalf("neighbours on by default: %+v", c.Neighbours)
	}
	c, err = load(hub + "neighbours: {listen: ':7081', advertise: '192.168.1.23:7081', wait: 3s}\n")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Neighbours; n.Listen != ":7081" || n.Advertise != "192.168.1.23:7081" || n.Wait.D() != 3*time.Second {
		t.Fatalf("read %+v", n)
	}
	for extra, key := range map[string]string{
		hub + "neighbours: {listen: '7081'}":                          "neighbours.listen",
		"neighbours: {listen: ':7081'}":                               "hub.url",
		hub + "neighbours: {listen: ':7081', advertise: 'pi-7:7081'}": "neighbours.advertise",
		hub + "neighbours: {listen: ':7081', stall: -1s}":             "neighbours:",
	} {
		if _, err := load(extra); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %v; want one naming %s", extra, err, key)
		}
	}
}
