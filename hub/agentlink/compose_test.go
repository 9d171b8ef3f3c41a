package agentlink

import (
	"testing"

	"github.com/loa-project/loa/hub/store"
)

// A push reads each area chain once; the sources it hands to composition must never make a
// device go back to older sources than its latest revision was composed from.
func TestCovers(t *testing.T) {
	a, b, d := store.AreaTarget("qn"), store.AreaTarget("qn/c1"), store.DeviceTarget("c1/x")
	prev := []store.SourceRevision{{Target: a, Revision: 2}, {Target: b, Revision: 1}}
	for _, c := range []struct {
		srcs []store.Schedule
		want bool
	}{
		{[]store.Schedule{{Target: a, Revision: 2}, {Target: b, Revision: 1}}, true},
		{[]store.Schedule{{Target: a, Revision: 3}, {Target: b, Revision: 1}, {Target: d, Revision: 1}}, true},
		{[]store.Schedule{{Target: a, Revision: 1}, {Target: b, Revision: 1}}, false}, // older
		{[]store.Schedule{{Target: a, Revision: 2}}, false},                           // a source missing (moved device)
		{nil, false},
	} {
		if got := covers(c.srcs, prev); got != c.want {
			t.Errorf("covers(%v) = %v, want %v", c.srcs, got, c.want)
		}
	}
	if !covers(nil, nil) {
		t.Error("nothing covers nothing")
	}
}
