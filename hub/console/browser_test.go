package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// browser starts Debian's chromium, headless, for one test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run scripts/install-deps (Debian package chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// shots is where screenshots go: LOA_CONSOLE_SCREENSHOTS (docs/console when making the
// README's), else the test's temporary directory.
func shots(t *testing.T) string {
	if d := os.Getenv("LOA_CONSOLE_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// A district administrator signs in, sees the overview with its tree, counts and alarms
// and the live badge, opens a device, sets its volume, reads the play log and downloads it
// as CSV — the API's own CSV, byte for byte — switches to English and signs out.
func TestConsoleInBrowser(t *testing.T) {
	h := newTestHub(t)
	ctx := browser(t)
	dir := shots(t)
	upgradeRolledBack(t, h.db, "tt/cl-1")

	// A storm warning on the air in Tam Thanh, as district staff send it with `loa emergency`.
	h.api(h.admin, "POST", "/api/emergencies", api.EmergencyRequest{To: "qn/tk/tt", Title: "Cảnh báo bão số 9",
		Text: "Cảnh báo bão số 9. Đề nghị bà con không ra biển.", For: "2h"}, nil, http.StatusCreated)
	do(t, ctx, chromedp.Navigate(h.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#user")))
	if loc := run(t, ctx, chromedp.Location()); !strings.HasPrefix(loc, h.url+"/console/login") {
		t.Fatalf("not signed in, the console sent the browser to %s", loc)
	}
	shot(t, ctx, dir, "login")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#user"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("table.tree")))
	main := run(t, ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Tổng quan", "Xã Tam Thanh", "Cụm loa thôn Hoà Bình", "Bản tin sáng <i>thời sự</i>", "Tin khẩn cấp: Cảnh báo bão số 9",
		"Rơ-le nguồn âm ly lỗi từ", "rơ-le không trả lời qua /dev/ttyUSB0"} {
		if !strings.Contains(main, want) {
			t.Errorf("overview lacks %q:\n%s", want, main)
		}
	}
	// Tam Thanh's row: 1 online, 1 offline, 1 playing, 1 with an alarm.
	row := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("table.tree tr")].find(r => r.textContent.includes("qn/tk/tt")).innerText`))
	if f := strings.Fields(row); len(f) < 4 || strings.Join(f[len(f)-4:], " ") != "1 1 1 1" {
		t.Errorf("Tam Thanh's counts: %q", row)
	}
	run(t, ctx, chromedp.Poll[bool](`document.querySelector(".live").textContent === "Tự động cập nhật"`))
	shot(t, ctx, dir, "overview")

	do(t, ctx, chromedp.Navigate(h.url+"/console/devices"), chromedp.WaitVisible(chromedp.CSS("table")))
	if ran := run(t, ctx, chromedp.Evaluate[bool](`window.__xss === 1`)); ran {
		t.Fatal("a device name ran as script")
	}
	if txt := run(t, ctx, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(txt, xssName[:32]) {
		t.Errorf("the device name is not shown as text:\n%s", txt)
	}
	shot(t, ctx, dir, "devices")
	// Live: what the device reports next reaches the open page without a reload.
	must(t, h.db.UpdateStatus(context.Background(), "tt/cl-1", store.Status{NowPlaying: "Tiếp sóng VOV1", Volume: 0.8,
		DiskFreeBytes: 3 << 30, TemperatureC: 46, SoftwareVersion: "loa-agent 0.9", Link: "4g -87dBm",
		Parts: store.Parts{Relay: &store.Part{State: "on"}}}))
	run(t, ctx, chromedp.Poll[bool](`document.querySelector('tr[data-device="tt/cl-1"] .np').textContent === "Tiếp sóng VOV1"`,
		chromedp.WithPollingTimeout(time.Minute)))
	if st := run(t, ctx, chromedp.Text(chromedp.CSS(`tr[data-device="tt/cl-1"] .st`))); st != "Trực tuyến" {
		t.Errorf("state after a live update: %q", st)
	}

	do(t, ctx, chromedp.Click(chromedp.CSS(`a[href="/console/devices/tt/cl-1"]`)), chromedp.WaitVisible(chromedp.CSS("#vol")))
	txt := run(t, ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Cụm loa thôn Hoà Bình", "Tiếp sóng VOV1", "80 %", "46 °C", "loa-agent 0.9 (arm64)", "Trực tuyến", "qn/tk/tt/morning",
		"Phiên bản phần mềm", "Cập nhật", "1.1.0: đã quay về bản cũ", "kiểm tra sức khoẻ không đạt", "Số lần quay về bản cũ"} {
		if !strings.Contains(txt, want) {
			t.Errorf("device page lacks %q:\n%s", want, txt)
		}
	}
	shot(t, ctx, dir, "device")
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#vol"), "50"), chromedp.Click(chromedp.CSS(`#vol ~ button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if n := run(t, ctx, chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(n, "Đã gửi lệnh Đặt âm lượng tới 1 thiết bị (1 đang trực tuyến") {
		t.Errorf("after the volume command: %q", n)
	}
	var cmds []struct {
		Action string   `json:"action"`
		Volume *float64 `json:"volume"`
		By     string   `json:"issued_by"`
	}
	h.api(h.admin, "GET", "/api/commands?device=tt/cl-1", nil, &cmds, http.StatusOK)
	if len(cmds) != 1 || cmds[0].Action != "volume" || cmds[0].Volume == nil || *cmds[0].Volume != 0.5 {
		t.Errorf("commands the hub holds: %+v", cmds)
	}

	do(t, ctx, chromedp.Navigate(h.url+"/console/audit"), chromedp.WaitVisible(chromedp.CSS("table")))
	if txt := run(t, ctx, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(txt, "command.volume") || !strings.Contains(txt, "session.start") {
		t.Errorf("the audit page lacks the sign-in or the command:\n%s", txt)
	}
	shot(t, ctx, dir, "audit")
	// The rollouts page: the rollout with its groups, then its devices.
	do(t, ctx, chromedp.Navigate(h.url+"/console/upgrades"), chromedp.WaitVisible(chromedp.CSS("section.rollout")))
	txt = run(t, ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Cập nhật phần mềm", "Phiên bản 1.1.0 cho qn/tk", "đang cập nhật nhóm trước", "Nhóm cập nhật trước", "1 đã quay về bản cũ",
		"Các thiết bị còn lại", "1 chưa gửi", "Không cập nhật", "1 không cập nhật được", "hoạt động tốt 1 phút rồi mới cập nhật tiếp", "mỗi thiết bị có 10 phút"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the rollouts page lacks %q:\n%s", want, txt)
		}
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(`a[href="/console/upgrades?rollout=ro-1"]`)), chromedp.WaitVisible(chromedp.CSS("section.rollout table")))
	txt = run(t, ctx, chromedp.Text(chromedp.CSS("section.rollout table")))
	for _, want := range []string{"tt/cl-1", "đã quay về bản cũ", "kiểm tra sức khoẻ không đạt", "tt/cl-2", "chưa gửi", "tp/cl-1", "its agent does not install upgrades"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the rollout's devices lack %q:\n%s", want, txt)
		}
	}
	shot(t, ctx, dir, "upgrades")
	do(t, ctx, chromedp.Navigate(h.url+"/console/users"), chromedp.WaitVisible(chromedp.CSS(`form[action="/console/users/add"]`)))
	shot(t, ctx, dir, "users")

	do(t, ctx, chromedp.Navigate(h.url+"/console/confirmations?device=tt/cl-1"), chromedp.WaitVisible(chromedp.CSS("table.plays")))
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.plays tbody tr").length`)); n != 50 {
		t.Errorf("first page of the play log: %d rows, want 50", n)
	}
	shot(t, ctx, dir, "plays")
	csv := run(t, ctx, chromedp.Evaluate[string](`fetch(document.getElementById("csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	want := string(h.api(h.admin, "GET", "/api/confirmations?device=tt/cl-1&format=csv", nil, nil, http.StatusOK))
	if csv != want || strings.Count(csv, "\n") != 61 {
		t.Errorf("the console's CSV (%d lines) is not the API's (%d lines):\n%s\n---\n%s", strings.Count(csv, "\n"), strings.Count(want, "\n"), csv, want)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(`.pages a`)))
	loaded(t, ctx, `location.search.includes("page=2")`)
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.plays tbody tr").length`)); n != 10 {
		t.Errorf("second page of the play log: %d rows, want 10", n)
	}

	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/console/lang"] button`)))
	loaded(t, ctx, `document.documentElement.lang === "en"`)
	if h1 := run(t, ctx, chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(h1, "Play log") {
		t.Errorf("in English the heading is %q", h1)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/console/lang"] button`)))
	loaded(t, ctx, `document.documentElement.lang === "vi"`)
	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action="/console/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#user")))
	do(t, ctx, chromedp.Navigate(h.url+"/console/devices"), chromedp.WaitVisible(chromedp.CSS("#user")))
	var audit []api.AuditJSON
	h.api(h.admin, "GET", "/api/audit?actor=admin", nil, &audit, http.StatusOK)
	seen := map[string]bool{}
	for _, a := range audit {
		seen[a.Action] = true
	}
	for _, a := range []string{"session.start", "command.volume", "session.end"} {
		if !seen[a] {
			t.Errorf("audit lacks %s: %+v", a, audit)
		}
	}
}

// upgradeRolledBack records a rollout of 1.1.0 in which device rolled back (docs/upgrades.md),
// as the hub's rollout engine and the device's status would.
func upgradeRolledBack(t *testing.T, db *store.DB, device string) {
	t.Helper()
	ctx := context.Background()
	must(t, db.SetAgent(ctx, device, "loa-agent 0.9", "arm64", true))
	_, _, err := db.AddRelease(ctx, store.Release{ReleasePackage: protocol.ReleasePackage{Name: protocol.ReleaseName, Version: "1.1.0", Arch: "arm64",
		Size: 10, SHA256: strings.Repeat("a", 64), KeyID: "rel", Signature: strings.Repeat("ab", 64)}, UploadedBy: "admin"})
	must(t, err)
	_, err = db.AddRollout(ctx, store.Rollout{ID: "ro-1", Area: "qn/tk", Version: "1.1.0", CanaryPercent: 10, HealthyFor: time.Minute,
		HealthyWithinS: 600, MaxFailurePercent: 20, CreatedBy: "admin"},
		[]store.RolloutDevice{{Device: device, Stage: store.DeviceCanary, Arch: "arm64", From: "0.9", State: store.UpgradeSent},
			{Device: "tt/cl-2", Stage: store.DeviceRest, Arch: "arm64", From: "0.9", State: store.UpgradePending},
			{Device: "tp/cl-1", Stage: store.DeviceNone, State: store.UpgradeCannot, Error: "its agent does not install upgrades"}})
	must(t, err)
	_, err = db.ReportUpgrade(ctx, device, protocol.UpgradeStatus{Rollout: "ro-1", Version: "1.1.0", State: protocol.UpgradeRolledBack,
		Error: "kiểm tra sức khoẻ không đạt sau 600 giây: âm ly không tiêu thụ âm thanh"})
	must(t, err)
}

// shot saves the page as it is at 360 px and 1280 px wide, as name-360.png and name-1280.png:
// the whole page, or for a long one (a device, the play log) what the screen shows.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, w := range []int64{360, 1280} {
		do(t, ctx, chromedp.EmulateViewport(w, 740))
		a := chromedp.FullScreenshot(100)
		if name == "plays" || name == "device" {
			a = chromedp.CaptureScreenshot()
		}
		png := run(t, ctx, a)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 900))
}

// loaded waits until cond holds on a fully loaded page: after a click that navigates to a
// page like the one before, waiting for an element would find the old page's.
func loaded(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	// Evaluated again until true: a navigation under way destroys the page's context, an error
	// that only means "not yet".
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && `+cond)); err == nil && ok {
			return
		}
	}
	t.Fatalf("the page did not reach %s within a minute (last error %v)", cond, err)
}
