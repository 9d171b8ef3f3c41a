package console_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	_ "modernc.org/sqlite"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// The console's performance (issue 14): a hub of LOA_CONSOLE_BENCH_DEVICES devices (10,000)
// in 2,000 areas with LOA_CONSOLE_BENCH_ROWS confirmations (10 million), generated straight
// into SQLite; server time of the overview, device list, device page and play log beside the
// JSON API's time for the same data; first-load bytes in Chromium; the overview under slow
// 3G. Run by scripts/bench-console (LOA_CONSOLE_BENCH=1), never by make test.
func TestConsoleBench(t *testing.T) {
	if os.Getenv("LOA_CONSOLE_BENCH") == "" {
		t.Skip("LOA_CONSOLE_BENCH=1 runs it (scripts/bench-console)")
	}
	devices, rows := envInt(t, "LOA_CONSOLE_BENCH_DEVICES", 10000), envInt(t, "LOA_CONSOLE_BENCH_ROWS", 10_000_000)
	dir := os.Getenv("LOA_CONSOLE_BENCH_DIR") // a kept store: generated once, reused
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("console-%d-%d.db", devices, rows))
	if _, err := os.Stat(path); err != nil {
		start := time.Now()
		generate(t, path, devices, rows)
		st, _ := os.Stat(path)
		t.Logf("generated %d devices, %d confirmations in %v (%d MB)", devices, rows, time.Since(start).Round(time.Second), st.Size()>>20)
	}
	h := openHub(t, path)
	ctx := context.Background()
	var err error
	user := fmt.Sprint("admin-", time.Now().UnixNano()) // a kept store has the earlier runs'
	if h.admin, err = hub.AddUser(ctx, h.db, user, "Quản trị", "qn", ""); err != nil {
		t.Fatal(err)
	}
	h.password(user, adminPass)
	c := h.client()
	if code, _ := c.signIn(user, adminPass); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	dev := "qn/d17/c0777/cl-3" // device 3*1980+777: commune 777, in district 777 % 19
	pages := []struct{ name, page, api string }{
		{"overview", "/console/", "/api/areas /api/overview?limit=50 /api/emergencies"},
		{"device list", "/console/devices", "/api/areas /api/device-list?per_page=100"},
		{"device page", "/console/devices/" + dev, "/api/devices/" + dev + " /api/confirmations?device=" + dev + "&limit=10"},
		{"play log", "/console/confirmations", "/api/confirmations?limit=51 /api/content"},
	}
	if rows > 10_000 { // page 200: after the cursor of row 9,950, as the page's next link gives it
		var deep []api.ConfirmationJSON
		h.api(h.admin, "GET", "/api/confirmations?limit=9950", nil, &deep, http.StatusOK)
		after := url.QueryEscape(fmt.Sprintf("%s:%d", deep[len(deep)-1].Device, deep[len(deep)-1].Seq))
		pages = append(pages, struct{ name, page, api string }{"play log p200", "/console/confirmations?page=200&after=" + after,
			"/api/confirmations?limit=51&after=" + after + " /api/content"})
	}
	const n = 30
	fmt.Printf("console pages, %d devices, %d confirmations, %d requests each, p50 / p95 (loopback, one at a time):\n", devices, rows, n)
	for _, p := range pages {
		page := timeIt(t, n, func() (int, int) { code, body, _ := c.do("GET", p.page, nil); return code, len(body) })
		apiT := timeIt(t, n, func() (int, int) {
			size := 0
			for _, u := range strings.Fields(p.api) {
				size += len(h.api(h.admin, "GET", u, nil, nil, http.StatusOK))
			}
			return http.StatusOK, size
		})
		fmt.Printf("%-12s console %7.1f / %7.1f ms  (%7d B HTML)   JSON API %7.1f / %7.1f ms  (%8d B JSON)\n", p.name,
			ms(page.p50), ms(page.p95), page.size, ms(apiT.p50), ms(apiT.p95), apiT.size)
	}
	if rows > 10_000 { // page 200 as the console asked before the cursor: the newest 10,001 rows
		ref := timeIt(t, n, func() (int, int) {
			return http.StatusOK, len(h.api(h.admin, "GET", "/api/confirmations?limit=10001", nil, nil, http.StatusOK))
		})
		fmt.Printf("play log p200 without the cursor (/api/confirmations?limit=10001): JSON API %7.1f / %7.1f ms  (%8d B JSON)\n",
			ms(ref.p50), ms(ref.p95), ref.size)
	}
	browse(t, h, user, pages[:4])
}

func envInt(t *testing.T, k string, def int) int {
	if v := os.Getenv(k); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", k, v, err)
		}
		return n
	}
	return def
}

type timing struct {
	p50, p95 time.Duration
	size     int
}

func timeIt(t *testing.T, n int, f func() (int, int)) timing {
	f() // warm: the page cache, the statements
	var ds []time.Duration
	var size int
	for range n {
		start := time.Now()
		code, sz := f()
		ds = append(ds, time.Since(start))
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		size = sz
	}
	slices.Sort(ds)
	return timing{ds[n/2], ds[(n*95+99)/100-1], size}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// generate writes the bench's hub: a province, 19 districts, 1,980 communes, devices spread
// over the communes (a tenth boards; 3 % unseen for days), and rows confirmations, each
// device's at 40-minute steps back from now, inserted by one prepared statement in
// transactions of 200,000 rows.
func generate(t *testing.T, path string, devices, rows int) {
	ctx := context.Background()
	db, err := store.Open(ctx, path, clock{}, nil)
	must(t, err)
	must(t, db.Close())
	raw, err := sql.Open("sqlite", path)
	must(t, err)
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	for _, p := range []string{"PRAGMA journal_mode=WAL", "PRAGMA synchronous=OFF", "PRAGMA cache_size=-262144"} {
		_, err := raw.Exec(p)
		must(t, err)
	}
	now := time.Now()
	tx, err := raw.Begin()
	must(t, err)
	var areas []string
	exec := func(q string, args ...any) {
		if _, err := tx.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("INSERT INTO areas(id, name, parent_id, depth, created_at) VALUES ('qn', 'Tỉnh Quảng Nam', NULL, 1, ?)", now.UnixNano())
	for d := range 19 {
		did := fmt.Sprintf("qn/d%02d", d)
		exec("INSERT INTO areas(id, name, parent_id, depth, created_at) VALUES (?, ?, 'qn', 2, ?)", did, fmt.Sprintf("Huyện %02d", d), now.UnixNano())
	}
	for c := range 1980 {
		did := fmt.Sprintf("qn/d%02d", c%19)
		cid := fmt.Sprintf("%s/c%04d", did, c)
		exec("INSERT INTO areas(id, name, parent_id, depth, created_at) VALUES (?, ?, ?, 3, ?)", cid, fmt.Sprintf("Xã %04d", c), did, now.UnixNano())
		areas = append(areas, cid)
	}
	ids := make([]string, devices)
	dareas := make([]string, devices)
	for i := range devices {
		a := areas[i%len(areas)]
		ids[i], dareas[i] = fmt.Sprintf("%s/cl-%d", a, i/len(areas)), a
		kind := "cluster"
		if i%10 == 9 {
			kind = "board"
		}
		seen := now.Add(-time.Duration(i%600) * time.Second)
		if i%33 == 0 {
			seen = now.Add(-72 * time.Hour) // offline for days: an alarm
		}
		h := sha256.Sum256([]byte(ids[i]))
		exec(`INSERT INTO devices(id, name, area_id, kind, outputs, secret_hash, enrolled_at, last_seen, status_at, volume, disk_free_bytes,
			temperature_c, software_version) VALUES (?, ?, ?, ?, '["speakers"]', ?, ?, ?, ?, 0.8, 3221225472, 45, ?)`,
			ids[i], fmt.Sprintf("Cụm loa %d", i), a, kind, h[:], now.Add(-90*24*time.Hour).UnixNano(), seen.UnixNano(), seen.UnixNano(),
			fmt.Sprintf("loa-agent 0.9.%d", i%4))
	}
	must(t, tx.Commit())
	const ins = `INSERT INTO confirmations(device_id, seq, area_id, at, output, schedule_id, revision, program, item_index, item_ref,
		scheduled_at, started_at, ended_at, played_s, silence_s, gaps, underruns, result, error, clock_state, received_at, amplifier)
		VALUES (?, ?, ?, ?, 'speakers', 's', 1, ?, 0, ?, ?, ?, ?, ?, 0, 0, 0, ?, '', 'synced', ?, 'on')`
	results := []string{"completed", "completed", "completed", "completed", "completed", "completed", "completed", "preempted", "interrupted", "missed"}
	per := max(1, rows/devices)
	var mu sync.Mutex // one writer: the statement and the transaction are renewed together
	mu.Lock()
	defer mu.Unlock()
	tx, err = raw.Begin()
	must(t, err)
	stmt, err := tx.Prepare(ins)
	must(t, err)
	n := 0
	for i := 0; i < devices && n < rows; i++ {
		for k := per; k >= 1 && n < rows; k-- {
			at := now.Add(-time.Duration(k) * 40 * time.Minute).UnixNano()
			res := results[(i+k)%len(results)]
			played := 300.0
			if res != "completed" {
				played = 40
			}
			if _, err := stmt.Exec(ids[i], per-k+1, dareas[i], at, fmt.Sprintf("%s/p%d", dareas[i], k%20), fmt.Sprintf("sha256:%064x", k%40),
				at, at, at+int64(played*1e9), played, res, at); err != nil {
				t.Fatal(err)
			}
			if n++; n%200_000 == 0 {
				must(t, stmt.Close())
				must(t, tx.Commit())
				tx, err = raw.Begin()
				must(t, err)
				stmt, err = tx.Prepare(ins)
				must(t, err)
			}
		}
	}
	must(t, stmt.Close())
	must(t, tx.Commit())
	_, err = raw.Exec("ANALYZE")
	must(t, err)
}

// browse loads each page in Chromium with its cache off: bytes transferred (what the network
// carried, compressed) and that no request left the hub; then the overview under slow 3G.
func browse(t *testing.T, h *testHub, user string, pages []struct{ name, page, api string }) {
	ctx := browser(t)
	signInBrowser(t, ctx, h, user, adminPass)
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	}))
	fmt.Println("first load in Chromium, cache off (bytes on the wire, gzip):")
	for _, p := range pages {
		total, urls := load(t, ctx, h.url+p.page, `document.querySelector("main") !== null`)
		for _, u := range urls {
			if !strings.HasPrefix(u, h.url+"/") && !strings.HasPrefix(u, "data:") {
				t.Errorf("%s: a request left the hub: %s", p.name, u)
			}
		}
		fmt.Printf("%-12s %7.1f kB in %d requests\n", p.name, total/1000, len(urls))
		if total > 150_000 {
			t.Errorf("%s: first load %.0f bytes, over 150 kB", p.name, total)
		}
	}
	// Chrome DevTools' "Slow 3G": 2 s from request to response headers, 50 kB/s each way.
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Latency: 2000, DownloadThroughput: 50_000, UploadThroughput: 50_000}}})
		return err
	}))
	load(t, ctx, h.url+"/console/", `document.querySelector("table.tree") !== null`)
	fcp := run(t, ctx, chromedp.Evaluate[float64](`performance.getEntriesByName("first-contentful-paint")[0].startTime`))
	dcl := run(t, ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd`))
	fmt.Printf("overview under slow 3G (2 s latency, 50 kB/s): first contentful paint %.2f s, DOM ready %.2f s\n", fcp/1000, dcl/1000)
	if fcp > 3000 {
		t.Errorf("the overview is readable after %.2f s under slow 3G, not under 3 s", fcp/1000)
	}
}

// load navigates and sums the bytes of every request the page made.
func load(t *testing.T, ctx context.Context, u, ready string) (float64, []string) {
	var mu sync.Mutex
	var total float64
	var urls []string
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	do(t, ctx, chromedp.Func(func(_ context.Context, tg *chromedp.Target) error {
		reqs, fins := cdp.Events(lctx, tg, network.RequestWillBeSent), cdp.Events(lctx, tg, network.LoadingFinished)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for e, err := range reqs {
				if err != nil {
					return
				}
				mu.Lock()
				urls = append(urls, e.Request.URL)
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for e, err := range fins {
				if err != nil {
					return
				}
				mu.Lock()
				total += e.EncodedDataLength
				mu.Unlock()
			}
		}()
		return nil
	}), chromedp.Navigate(u))
	loaded(t, ctx, ready)
	time.Sleep(time.Second) // late requests (the event stream's) are counted too
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return total, urls
}
