package hub

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
)

// TestOverviewAndDeviceList: the counts, the on-air list and the device list's filters and
// pages over a real hub with a connected agent, and a commune's staff seeing only their commune.
func TestOverviewAndDeviceList(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	secret := h.enrol("c1/cl-01", "qn/tk/c1")
	h.enrol("c1/cl-02", "qn/tk/c1")
	h.mustCall(h.admin, "POST", "/api/devices", api.EnrolRequest{ID: "c1/board", Area: "qn/tk/c1", Kind: "board", Name: "Bảng chợ"}, nil, http.StatusCreated)
	h.enrol("c2/cl-01", "qn/tk/c2")
	a, _ := h.connect("c1/cl-01", secret, protocol.Hello{SoftwareVersion: "loa-agent 1.4"})
	a.send(&protocol.Status{At: time.Now(), UptimeS: 12, NowPlaying: []protocol.NowPlaying{{Output: "speakers", Program: "qn/morning"}}})
	for deadline := time.Now().Add(10 * time.Second); ; {
		var d api.DeviceJSON
		h.mustCall(h.admin, "GET", "/api/devices/c1/cl-01", nil, &d, http.StatusOK)
		if d.NowPlaying != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's status did not reach the store within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	var ov api.OverviewJSON
	h.mustCall(h.admin, "GET", "/api/overview", nil, &ov, http.StatusOK)
	want := []api.AreaCountJSON{
		{Area: "qn/tk/c1", Kind: "board", Offline: 1},
		{Area: "qn/tk/c1", Kind: "cluster", Online: 1, Offline: 1, Playing: 1},
		{Area: "qn/tk/c2", Kind: "cluster", Offline: 1},
	}
	if !slices.Equal(ov.Counts, want) {
		t.Errorf("admin's counts %+v, want %+v", ov.Counts, want)
	}
	if len(ov.OnAir) != 1 || ov.OnAir[0].ID != "c1/cl-01" || !ov.OnAir[0].Online || ov.OnAir[0].Software != "loa-agent 1.4" {
		t.Errorf("on the air: %+v", ov.OnAir)
	}
	c2 := h.userToken("c2-staff", "qn/tk/c2")
	h.mustCall(c2, "GET", "/api/overview", nil, &ov, http.StatusOK)
	if !slices.Equal(ov.Counts, want[2:]) || len(ov.OnAir) != 0 {
		t.Errorf("c2 staff's overview %+v, want only their commune's counts", ov)
	}
	for _, path := range []string{"/api/overview?area=qn/tk/c1", "/api/device-list?area=qn/tk/c1"} {
		var e api.Error
		if code := h.call(c2, "GET", path, nil, &e); code != http.StatusNotFound {
			t.Errorf("c2 staff %s: %d %q, want 404", path, code, e.Error)
		}
	}

	list := func(tok string, q url.Values) (ids []string, total int, versions []string) {
		t.Helper()
		var l api.DeviceListJSON
		h.mustCall(tok, "GET", "/api/device-list?"+q.Encode(), nil, &l, http.StatusOK)
		for _, d := range l.Devices {
			ids = append(ids, d.ID)
		}
		return ids, l.Total, l.Versions
	}
	for _, c := range []struct {
		q     url.Values
		want  []string
		total int
	}{
		{url.Values{}, []string{"c1/board", "c1/cl-01", "c1/cl-02", "c2/cl-01"}, 4},
		{url.Values{"state": {"online"}}, []string{"c1/cl-01"}, 1},
		{url.Values{"state": {"playing"}}, []string{"c1/cl-01"}, 1},
		{url.Values{"state": {"offline"}, "area": {"qn/tk/c1"}}, []string{"c1/board", "c1/cl-02"}, 2},
		{url.Values{"kind": {"board"}}, []string{"c1/board"}, 1},
		{url.Values{"software": {"loa-agent 1.4"}}, []string{"c1/cl-01"}, 1},
		{url.Values{"q": {"BẢNG"}}, []string{"c1/board"}, 1},
		{url.Values{"per_page": {"3"}, "page": {"2"}}, []string{"c2/cl-01"}, 4},
		{url.Values{"per_page": {"3"}, "page": {"9"}}, nil, 4},
	} {
		ids, total, versions := list(h.admin, c.q)
		if !slices.Equal(ids, c.want) || total != c.total {
			t.Errorf("%v: %v of %d, want %v of %d", c.q, ids, total, c.want, c.total)
		}
		if !slices.Equal(versions, []string{"loa-agent 1.4"}) {
			t.Errorf("%v: versions %v", c.q, versions)
		}
	}
	if ids, total, versions := list(c2, url.Values{}); !slices.Equal(ids, []string{"c2/cl-01"}) || total != 1 || len(versions) != 0 {
		t.Errorf("c2 staff's list: %v of %d, versions %v", ids, total, versions)
	}
	// What changes after the first view shows at the next: a status (the hub keeps the states
	// in memory and re-reads the devices it changed), a revocation.
	a.send(&protocol.Status{At: time.Now(), UptimeS: 13})
	h.mustCall(h.admin, "DELETE", "/api/devices/c1/cl-02", nil, nil, http.StatusOK)
	want[1] = api.AreaCountJSON{Area: "qn/tk/c1", Kind: "cluster", Online: 1}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h.mustCall(h.admin, "GET", "/api/overview", nil, &ov, http.StatusOK)
		if slices.Equal(ov.Counts, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a status and a revocation: %+v, want %+v", ov.Counts, want)
		}
	}
	for _, q := range []string{"state=asleep", "page=0", "per_page=x"} {
		var e api.Error
		if code := h.call(h.admin, "GET", "/api/device-list?"+q, nil, &e); code != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400", q, code, e.Error)
		} else {
			t.Logf("%s: %s", q, e.Error)
		}
	}
}

// TestPlayLogFiltersAndCursor: the play log by programme and content, paged with the cursor,
// and a cursor naming another commune's play answered as unknown.
func TestPlayLogFiltersAndCursor(t *testing.T) {
	h := newTestHub(t)
	for _, a := range []string{"qn/tk", "qn/tk/c1", "qn/tk/c2"} {
		h.addArea(a)
	}
	secrets := map[string]string{"c1/cl-01": h.enrol("c1/cl-01", "qn/tk/c1"), "c2/cl-01": h.enrol("c2/cl-01", "qn/tk/c2")}
	other := "sha256:" + fmt.Sprintf("%064x", 7)
	for id, secret := range secrets {
		a, _ := h.connect(id, secret, protocol.Hello{})
		var recs []protocol.Confirmation
		for seq := uint64(1); seq <= 12; seq++ {
			c := confirmation(id, seq)
			if seq%3 == 0 {
				c.Program, c.Item = "qn/evening", other
			}
			recs = append(recs, c)
		}
		a.send(&protocol.Confirmations{Records: recs})
		if ack := a.next().(*protocol.Ack); ack.Seq != 12 {
			t.Fatalf("%s: ack %d", id, ack.Seq)
		}
	}
	plays := func(tok string, q url.Values) (out []string) {
		t.Helper()
		var cs []api.ConfirmationJSON
		h.mustCall(tok, "GET", "/api/confirmations?"+q.Encode(), nil, &cs, http.StatusOK)
		for _, c := range cs {
			if q.Get("program") != "" && c.Program != q.Get("program") || q.Get("content") != "" && c.Item != q.Get("content") {
				t.Errorf("%v: got %s:%d of %s, %s", q, c.Device, c.Seq, c.Program, c.Item)
			}
			out = append(out, fmt.Sprintf("%s:%d", c.Device, c.Seq))
		}
		return out
	}
	whole := plays(h.admin, url.Values{"program": {"qn/evening"}, "limit": {"100"}})
	if len(whole) != 8 {
		t.Fatalf("evening plays %v, want 8", whole)
	}
	var paged []string
	q := url.Values{"content": {other}, "limit": {"3"}}
	for len(paged) < 20 {
		page := plays(h.admin, q)
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		q.Set("after", page[len(page)-1])
	}
	if !slices.Equal(paged, whole) {
		t.Errorf("content's plays paged by 3: %v, want %v", paged, whole)
	}
	c1 := h.userToken("c1-staff", "qn/tk/c1")
	if got := plays(c1, url.Values{"program": {"qn/evening"}, "limit": {"100"}}); len(got) != 4 {
		t.Errorf("c1 staff's evening plays %v, want their 4", got)
	}
	for after, want := range map[string]int{"c2/cl-01:3": http.StatusNotFound, "c1/cl-01": http.StatusBadRequest, "c1/cl-01:0": http.StatusBadRequest} {
		var e api.Error
		if code := h.call(c1, "GET", "/api/confirmations?limit=3&after="+url.QueryEscape(after), nil, &e); code != want {
			t.Errorf("after %s: %d %q, want %d", after, code, e.Error, want)
		}
	}
}
