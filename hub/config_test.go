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
		{"data_dir: d\nsigning_key_file: k\ndatabase: mysql://u:pw-xyzzy@h/db\n", "neither a PostgreSQL URL nor sqlite:PATH"},
	} {
		if _, err := ParseConfig([]byte(bad.doc), "/x"); err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "pw-xyzzy") {
			t.Errorf("%q: error %v, want one naming %q (and no password)", bad.doc, err, bad.want)
		}
	}
	// Where the store is: data_dir/hub.db by default, else the database setting (a relative
	// sqlite: path is read from the config file's directory, as other paths are).
	for doc, want := range map[string]string{
		"data_dir: d\nsigning_key_file: k\n":                                          "/x/d/hub.db",
		"data_dir: d\nsigning_key_file: k\ndatabase: postgres://loa@db.example/loa\n": "postgres://loa@db.example/loa",
		"data_dir: d\nsigning_key_file: k\ndatabase: sqlite:store/hub.db\n":           "sqlite:/x/store/hub.db",
	} {
		if c, err := ParseConfig([]byte(doc), "/x"); err != nil || c.StoreSource() != want {
			t.Errorf("%q: store %q (%v), want %q", doc, c.StoreSource(), err, want)
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
