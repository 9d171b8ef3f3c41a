package content

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	good := RefOf([]byte("hello")).String()
	r, err := ParseRef(good)
	if err != nil {
		t.Fatalf("ParseRef(%q): %v", good, err)
	}
	if r != RefOf([]byte("hello")) || r.String() != good {
		t.Fatalf("round trip: got %s want %s", r, good)
	}
	bad := []struct{ in, want string }{
		{"", `must start with "sha256:"`},
		{"sha1:" + strings.Repeat("a", 64), `must start with "sha256:"`},
		{"SHA256:" + strings.Repeat("a", 64), `must start with "sha256:"`},
		{"sha256:" + strings.Repeat("a", 63), "got 63 characters"},
		{"sha256:" + strings.Repeat("a", 65), "got 65 characters"},
		{"sha256:" + strings.Repeat("A", 64), "'A' at position 7"},
		{"sha256:" + strings.Repeat("a", 10) + "g" + strings.Repeat("a", 53), "'g' at position 17"},
		{"sha256:" + strings.Repeat("a", 63) + " ", "' ' at position 70"},
	}
	for _, c := range bad {
		_, err := ParseRef(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRef(%q) = %v, want error containing %q", c.in, err, c.want)
		}
	}
}

func TestRefJSON(t *testing.T) {
	type doc struct {
		Ref Ref `json:"ref"`
	}
	in := doc{RefOf([]byte("x"))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"sha256:`) {
		t.Fatalf("JSON %s does not hold the sha256: form", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip: %v %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"ref":"sha256:zz"}`), &out); err == nil {
		t.Fatal("bad ref in JSON accepted")
	}
}

func FuzzParseRef(f *testing.F) {
	f.Add(RefOf(nil).String())
	f.Add("sha256:")
	f.Add("sha256:" + strings.Repeat("F", 64))
	f.Add(strings.Repeat("x", 200))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "content ref ") {
				t.Fatalf("error does not say what: %v", err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("accepted %q but prints %q: parser is not strict", s, r.String())
		}
	})
}

func FuzzContentRange(f *testing.F) {
	f.Add("bytes 0-99/100")
	f.Add("bytes 100-199/*")
	f.Add("bytes -1-2/3")
	f.Add("bytes 5-/")
	f.Fuzz(func(t *testing.T, v string) {
		start, total, err := parseContentRange(v)
		if err != nil {
			if !strings.Contains(err.Error(), "Content-Range") {
				t.Fatalf("error does not say what: %v", err)
			}
			return
		}
		if start < 0 || total < -1 {
			t.Fatalf("%q parsed to start %d total %d", v, start, total)
		}
	})
}
