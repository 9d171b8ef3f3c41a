package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hub.urls lists several hubs; hub.url is a list of one; both is an error. Each URL is checked
// as hub.url is, and every fault is reported at once, naming the field and its index.
func TestHubURLsConfig(t *testing.T) {
	load := func(hub string) (*Config, error) {
		return loadConfigText(t, "device_id: a\ndata_dir: d\nhub: {secret: s, trusted_keys: {k: 'ed25519:x'}, "+hub+"}\n")
	}
	for hub, want := range map[string][]string{
		"url: https://hub.example":                                 {"https://hub.example"},
		"urls: [https://hub-a.example, 'wss://hub-b.example/loa']": {"https://hub-a.example", "wss://hub-b.example/loa"},
		"urls: ['http://127.0.0.1:8470', 'http://localhost:8471']": {"http://127.0.0.1:8470", "http://localhost:8471"},
		"urls: []":                      nil,
		"urls: [https://hub-a.example]": {"https://hub-a.example"},
	} {
		c, err := load(hub)
		if err != nil {
			t.Errorf("hub {%s}: %v", hub, err)
			continue
		}
		if got := c.HubURLs(); !slices.Equal(got, want) {
			t.Errorf("hub {%s}: HubURLs() = %q, want %q", hub, got, want)
		}
	}
	for hub, wants := range map[string][]string{
		"url: https://a.example, urls: [https://b.example]": {"hub.url and hub.urls are both set", "hub.urls: ["},
		"urls: [https://a.example, hub-b.example, 'http://10.0.0.5:8470']": {
			`hub.urls[1] "hub-b.example": give the hub's base URL, e.g. https://hub.example`,
			`hub.urls[2]: "http://10.0.0.5:8470" is plaintext`, "insecure_hub"},
		"urls: [https://a.example, 'https://a.example/']": {`hub.urls[1] "https://a.example/" is hub.urls[0] again`},
		"urls: ['https://']":                              {"hub.urls[0]: ", "not an absolute URL"},
		"url: 'http://hub.example'":                       {`hub.url: "http://hub.example" is plaintext`},
	} {
		_, err := load(hub)
		if err == nil {
			t.Errorf("hub {%s} was accepted", hub)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("hub {%s}: error %q does not say %q", hub, err, w)
			}
		}
	}
	// Every fault at once: the missing secret is reported beside the bad URL.
	_, err := loadConfigText(t, "device_id: a\ndata_dir: d\nhub: {urls: [https://a.example, ftp://b]}\n")
	for _, w := range []string{"hub.secret", "hub.trusted_keys", "hub.urls[1]"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("a hub section with several faults: error %v does not name %s", err, w)
		}
	}
}

// loadConfigText loads src as an agent.yaml in a new directory.
func loadConfigText(t *testing.T, src string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return LoadConfig(path)
}
