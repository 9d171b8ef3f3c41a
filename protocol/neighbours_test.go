package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNeighboursRefusesBadFields(t *testing.T) {
	key := FormatNeighbourKey(bytes.Repeat([]byte{7}, NeighbourKeyBytes))
	for _, c := range []struct{ json, field string }{
		{`{"v":1,"type":"neighbours","id":"h","peers":[]}`, "key"},
		{`{"v":1,"type":"neighbours","id":"h","key":"abc","peers":[]}`, "key"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `=","peers":[]}`, "key"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"lan-host:7081"}]}`, "peers[0].addr"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"10.0.0.2"}]}`, "peers[0].addr"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"10.0.0.2:0"}]}`, "peers[0].addr"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"0.0.0.0:7081"}]}`, "peers[0].addr"},
		{`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"10.0.0.2:7081"},{"addr":"10.0.0.3:7081"}]}`, "peers[1].device_id"},
		{`{"v":1,"type":"status","id":"s","at":"2026-11-26T06:39:58Z","uptime_s":1,"content_addr":"[::1]:99999"}`, "content_addr"},
	} {
		_, err := Decode([]byte(c.json))
		var me *MessageError
		if !errors.As(err, &me) || me.Field != c.field {
			t.Errorf("%s: error %v, want one naming %s", c.json, err, c.field)
		}
	}
	many := `{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[` +
		strings.Repeat(`{"device_id":"a","addr":"10.0.0.2:7081"},`, MaxNeighbours) + `{"device_id":"a","addr":"10.0.0.2:7081"}]}`
	if _, err := Decode([]byte(many)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d peers: %v", MaxNeighbours+1, err)
	}
	m, err := Decode([]byte(`{"v":1,"type":"neighbours","id":"h","key":"` + key + `","peers":[{"device_id":"a","addr":"[fe80::1]:7081"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := m.(*Neighbours).KeyBytes(); err != nil || !bytes.Equal(k, bytes.Repeat([]byte{7}, NeighbourKeyBytes)) {
		t.Fatalf("KeyBytes = %x, %v", k, err)
	}
}

// TestNeighbourKeyPerArea: the key is the same for one area whenever derived, differs between
// areas and between hubs.
func TestNeighbourKeyPerArea(t *testing.T) {
	s := exampleSigner(t)
	a, a2, b := s.NeighbourKey("qn/tk/tt"), s.NeighbourKey("qn/tk/tt"), s.NeighbourKey("qn/tk/tp")
	if len(a) != NeighbourKeyBytes || !bytes.Equal(a, a2) || bytes.Equal(a, b) {
		t.Fatalf("keys: %x %x %x", a, a2, b)
	}
	_, priv, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSigner("other", priv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.NeighbourKey("qn/tk/tt"), a) {
		t.Fatal("two hubs derive the same key for one area")
	}
}
