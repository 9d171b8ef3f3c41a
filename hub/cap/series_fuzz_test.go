package cap

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzSeriesMatching builds a storm's series as a sender may: each Update or Cancel names some
// of the earlier messages (maybe only the latest), in any order, mixed with messages the hub
// never saw; every message goes through the parser and the mapper and is matched as the hub
// does (ResolveSeries over the messages it applied). Every message of the chain must land in
// the first message's series, and a message that also names a second chain must report it.
func FuzzSeriesMatching(f *testing.F) {
	f.Add([]byte{3, 0x01, 0x02, 0x04})    // each names only the previous one
	f.Add([]byte{4, 0xff, 0x03, 0x05, 0}) // names everything, in reverse sent order
	f.Add([]byte{2, 0x81, 0x41})
	m, err := NewMapper(Config{}, loadAreas(f))
	if err != nil {
		f.Fatal(err)
	}
	const sender = "canhbao@vndma.example.vn"
	base := time.Date(2026, 11, 26, 8, 0, 0, 0, hcm)
	f.Fuzz(func(t *testing.T, plan []byte) {
		if len(plan) < 2 {
			return
		}
		n := 2 + int(plan[0])%8
		known := map[string]string{sender + ",m0": sender + ",m0"} // message -> series, as applied
		other := sender + ",other-0"
		known[other] = other // a second series the hub also holds
		for i := 1; i < n; i++ {
			bits := byte(1 << ((i - 1) % 8)) // the previous message, by default
			if i < len(plan) {
				bits = plan[i]
			}
			var refs []string
			for j := i - 1; j >= 0; j-- { // newest first: the mapper must not care about order
				if j < 8 && bits&(1<<j) != 0 || j == i-1 && bits&0x7f == 0 {
					refs = append(refs, fmt.Sprintf("%s,m%d,%s", sender, j, base.Add(time.Duration(j)*time.Hour).Format(time.RFC3339)))
				}
			}
			if len(refs) == 0 {
				refs = append(refs, fmt.Sprintf("%s,m%d,%s", sender, i-1, base.Add(time.Duration(i-1)*time.Hour).Format(time.RFC3339)))
			}
			refs = append(refs, "someone@else.example,x"+fmt.Sprint(i)+","+base.Format(time.RFC3339)) // never seen
			joins := bits&0x80 != 0
			if joins {
				refs = append(refs, other+","+base.Add(-time.Hour).Format(time.RFC3339))
			}
			doc := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>m%d</identifier><sender>%s</sender><sent>%s</sent>
<status>Actual</status><msgType>Cancel</msgType><scope>Public</scope><references>%s</references></alert>`,
				i, sender, base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), strings.Join(refs, " "))
			a, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("message %d: %v\n%s", i, err, doc)
			}
			d, err := m.Map(a, base)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if i%2 == 0 {
				d.Action = Replace // an Update is matched the same way
			}
			series, others := d.ResolveSeries(func(msg string) (string, bool) { s, ok := known[msg]; return s, ok })
			want := sender + ",m0"
			if joins {
				// The other series began an hour before m0: it is the earliest and so named first.
				want, other = other, want
			}
			if series != want {
				t.Fatalf("message %d (refs %v): series %q, want %q", i, d.References, series, want)
			}
			if joins != (len(others) == 1 && others[0] == other) {
				t.Fatalf("message %d joins=%v: others %v", i, joins, others)
			}
			if joins {
				want, other = other, want
			}
			known[d.MessageID] = sender + ",m0"
		}
	})
}
