package hub

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("data_dir: data\nsigning_key_file: hub.key\n"), "/etc/loa")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.DataDir != "/etc/loa/data" || c.SigningKeyFile != "/etc/loa/hub.key" ||
		c.LoudnessLUFS != -16 || c.PublicURL != "http://"+DefaultListen || c.StatusInterval != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []struct{ doc, want string }{
		{"data_dir: d\nsigning_key_file: k\nlisten_addr: x\n", "listen_addr"},
		{"signing_key_file: k\n", "data_dir is required"},
		{"data_dir: d\n", "loa-hub keygen"},
		{"data_dir: d\nsigning_key_file: k\nlisten: 0.0.0.0:8470\n", "insecure_listen"},
		{"data_dir: d\nsigning_key_file: k\nlisten: 8470\n", "host:port"},
		{"data_dir: d\nsigning_key_file: k\ntls_cert: c.pem\n", "together"},
		{"data_dir: d\nsigning_key_file: k\nloudness_lufs: 3\n", "loudness_lufs"},
		{"data_dir: [\n", "config"},
	} {
		if _, err := ParseConfig([]byte(bad.doc), "/x"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want one naming %q", bad.doc, err, bad.want)
		}
	}
	for _, ok := range []string{
		"data_dir: d\nsigning_key_file: k\nlisten: 0.0.0.0:8470\ninsecure_listen: true\n",
		"data_dir: d\nsigning_key_file: k\nlisten: 0.0.0.0:8470\ntls_cert: c\ntls_key: k\n",
		"data_dir: d\nsigning_key_file: k\nlisten: '[::1]:8470'\n",
	} {
		if _, err := ParseConfig([]byte(ok), "/x"); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// One rule for every time flag: dates and clock times in the hub's zone, a duration counted
// from now (signed); a filter that looks back refuses an unsigned one, saying how to write it.
func TestParseTimeParam(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // 17:00 in Vietnam
	vn := zoneOf("Asia/Ho_Chi_Minh")
	for in, want := range map[string]time.Time{
		"2026-11-26T06:00:00+07:00": time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
		"2026-11-20":                time.Date(2026, 11, 19, 17, 0, 0, 0, time.UTC),
		"20/11/2026":                time.Date(2026, 11, 19, 17, 0, 0, 0, time.UTC),
		"2026-11-20 05:30":          time.Date(2026, 11, 19, 22, 30, 0, 0, time.UTC),
		"05:30":                     time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC),
		"-24h":                      now.Add(-24 * time.Hour),
		"-7d":                       now.Add(-7 * 24 * time.Hour),
		"":                          {},
	} {
		got, err := ParseTimeParam("since", in, now, vn)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseTimeParam("since", "24h", now, vn); err == nil || !strings.Contains(err.Error(), "write -24h") {
		t.Errorf("an unsigned duration looking back: %v", err)
	}
	for _, bad := range []string{"yesterday", "2026-13-01", "-0h", "5"} {
		if _, err := ParseTimeParam("since", bad, now, vn); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("data_dir: d\nsigning_key_file: k\nlisten: 0.0.0.0:1\ninsecure_listen: true\n"))
	f.Add([]byte("listen: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, "/x")
		if err == nil && (c.DataDir == "" || c.SigningKeyFile == "" || c.Listen == "") {
			t.Fatalf("accepted a config without required fields: %+v", c)
		}
	})
}

func FuzzParseTimeParam(f *testing.F) {
	for _, s := range []string{"24h", "2026-11-26", "2026-11-26T06:00:00Z", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimeParam("since", s, now, time.UTC)
		if err == nil && s != "" && got.IsZero() && s != "0001-01-01" {
			t.Logf("%q -> zero time", s)
		}
	})
}
