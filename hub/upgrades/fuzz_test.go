package upgrades

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/loa-project/loa/protocol"
)

// ParseStatement reads what staff upload beside a package: whatever it is given, it returns a
// statement whose fields pass CheckRelease and carry no URL, or an error, never a panic.
func FuzzParseStatement(f *testing.F) {
	good := protocol.ReleasePackage{Name: protocol.ReleaseName, Version: "1.4.0~rc1", Arch: "arm64", Size: 123,
		SHA256: strings.Repeat("ab", 32), KeyID: "rel-1", Signature: strings.Repeat("cd", 64)}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"name":"loa-agent","version":"1:2.0-3","arch":"armhf","size":1,"sha256":"","key_id":"k","signature":"00"}`))
	f.Add([]byte(`{"name":"loa-agent","url":"/x"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"size":-1,"colour":"red"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseStatement(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if p.URL != "" {
			t.Fatalf("a statement with a url was taken: %+v", p)
		}
		if err := protocol.CheckRelease(&p); err != nil {
			t.Fatalf("a statement that does not check was taken: %v", err)
		}
	})
}

func TestParseStatement(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"name":"loa-agent"} {}`, "more than one JSON value"},
		{`{"name":"loa-agent","url":"/x"}`, "names a url"},
		{`{"name":"other","version":"1","arch":"arm64","size":1,"sha256":"` + strings.Repeat("a", 64) + `","key_id":"k","signature":"00"}`, "name: \"other\""},
		{strings.Repeat(" ", MaxStatementBytes+1), "at most"},
		{`[1]`, "not the JSON"},
	} {
		_, err := ParseStatement([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: %v, want an error saying %q", c.in, err, c.want)
		}
	}
}

func TestCanaryCount(t *testing.T) {
	for _, c := range []struct{ percent, n, want int }{{10, 10, 1}, {20, 10, 2}, {10, 11, 2}, {0, 5, 1}, {100, 5, 5}, {50, 0, 0}, {1, 1000, 10}} {
		if got := CanaryCount(c.percent, c.n); got != c.want {
			t.Errorf("CanaryCount(%d%%, %d) = %d, want %d", c.percent, c.n, got, c.want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	for in, want := range map[string]string{"loa-agent/1.2.3": "1.2.3", "loa-agent 1.4.0~rc1": "1.4.0~rc1", "fake-agent 0": "0", "dev": "", "": "", "loa-agent/v1": ""} {
		if got := versionOf(in); got != want {
			t.Errorf("versionOf(%q) = %q, want %q", in, got, want)
		}
	}
}
