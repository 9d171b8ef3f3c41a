package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// TestPlayLogFiltersInBrowser filters the play log by programme (typed in the form) and by
// content (a row's link), and walks its pages with the cursor: the pages together are every
// play once.
func TestPlayLogFiltersInBrowser(t *testing.T) {
	h := newTestHub(t)
	evening := "sha256:" + strings.Repeat("ef", 32)
	var cs []store.Confirmation
	at := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	for i := range 10 { // beside the hub's 60 morning plays of tt/cl-1
		start := at.Add(time.Duration(i) * time.Minute)
		prog, item := "qn/tk/tt/evening", evening
		if i%2 == 1 {
			prog = "qn/tk/tt/noon"
		}
		cs = append(cs, store.Confirmation{Confirmation: protocol.Confirmation{Seq: uint64(61 + i), Output: "speakers", ScheduleID: "dev-tt/cl-1",
			Revision: 1, Program: prog, Item: item, Scheduled: start, Start: start, End: start.Add(time.Minute),
			Proof: protocol.Proof{PlayedS: 60}, Result: "completed", Clock: "synced"}})
	}
	if _, err := h.db.AddConfirmations(context.Background(), "tt/cl-1", cs); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	signInBrowser(t, ctx, h, "admin", adminPass)
	rows := func() (keys []string, cells []string) {
		t.Helper()
		keys = run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.plays tbody tr")].map(r => r.dataset.key)`))
		cells = run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.plays tbody tr")].map(r => r.cells[2].textContent + " " + r.cells[3].querySelector("a").title)`))
		return keys, cells
	}

	do(t, ctx, chromedp.Navigate(h.url+"/console/confirmations"), chromedp.WaitVisible(chromedp.CSS("table.plays")))
	do(t, ctx, chromedp.SendKeys(chromedp.CSS(`input[name=program]`), "qn/tk/tt/evening"))
	submit(t, ctx, `.filters button`, `location.search.includes("program=")`)
	keys, cells := rows()
	if len(keys) != 5 {
		t.Errorf("evening plays: %v, want 5", keys)
	}
	for _, c := range cells {
		if !strings.HasPrefix(c, "qn/tk/tt/evening ") {
			t.Errorf("a row of another programme under the evening filter: %q", c)
		}
	}
	shot(t, ctx, shots(t), "plays-filtered")

	// A row's content: every play of that content, whatever the programme.
	do(t, ctx, chromedp.Navigate(h.url+"/console/confirmations"), chromedp.WaitVisible(chromedp.CSS("table.plays")))
	submit(t, ctx, `table.plays tbody tr td a[href*="content=sha256"][href*="efefef"]`, `location.search.includes("content=")`)
	keys, cells = rows()
	if len(keys) != 10 {
		t.Errorf("plays of %s: %v, want 10", evening, keys)
	}
	for _, c := range cells {
		if !strings.HasSuffix(c, " "+evening) {
			t.Errorf("a row of other content under the content filter: %q", c)
		}
	}
	if sel := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("select[name=content]").value`)); sel != evening {
		t.Errorf("the content filter shows %q, want the ref filtered by", sel)
	}

	// Every play, 50 a page: the next page starts after the last row shown.
	do(t, ctx, chromedp.Navigate(h.url+"/console/confirmations"), chromedp.WaitVisible(chromedp.CSS("table.plays")))
	seen := map[string]bool{}
	for page := 1; ; page++ {
		keys, _ := rows()
		for _, k := range keys {
			if seen[k] {
				t.Errorf("page %d shows %s again", page, k)
			}
			seen[k] = true
		}
		more := run(t, ctx, chromedp.Evaluate[bool](`document.querySelector("#next") !== null`))
		if !more || page > 3 {
			break
		}
		submit(t, ctx, "#next", fmt.Sprintf(`location.search.includes("page=%d")`, page+1))
	}
	if len(seen) != 70 {
		t.Errorf("the pages showed %d plays, want the 70 stored", len(seen))
	}
}
