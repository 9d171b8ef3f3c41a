package console

import "github.com/loa-project/loa/hub/api"

// The report pages' strings and template helpers (reports.go).
func init() {
	addStrings(map[string]string{
		"nav.reports":              "Báo cáo",
		"reports.title":            "Báo cáo",
		"reports.kind":             "Loại báo cáo",
		"reports.kind.plan":        "Báo cáo kết quả thực hiện kế hoạch năm",
		"reports.kind.plays":       "Nhật ký phát (theo lịch và đã nghe)",
		"reports.kind.devices":     "Hoạt động thiết bị",
		"reports.myscope":          "Toàn địa bàn của tôi",
		"reports.from":             "Từ ngày",
		"reports.to":               "Đến ngày",
		"reports.calendar":         "Chọn ngày trên lịch",
		"reports.playsonly":        "chỉ cho nhật ký phát",
		"reports.program":          "Chương trình",
		"reports.show":             "Xem báo cáo",
		"reports.download":         "Tải về",
		"reports.csv":              "CSV",
		"reports.xlsx":             "Excel (XLSX)",
		"reports.pdf":              "PDF",
		"reports.empty":            "Không có số liệu.",
		"reports.settings":         "Cách tính chỉ tiêu của báo cáo năm",
		"reports.settings.note":    "Sản phẩm bằng ngôn ngữ khác tiếng Việt (tiếng dân tộc thiểu số, tiếng nước ngoài) hoặc có thể loại là sản phẩm trên nền tảng số được tính vào chỉ tiêu 15–20%. Thay đổi được ghi vào nhật ký thao tác.",
		"reports.settings.updated": "Cập nhật lần cuối: %s.",
		"reports.home":             "Ngôn ngữ tiếng Việt (không tính vào chỉ tiêu)",
		"reports.digital":          "Thể loại sản phẩm trên nền tảng số (tính vào chỉ tiêu)",
		"reports.codes":            "Mã, cách nhau bằng dấu phẩy",
		"reports.save":             "Lưu cách tính",
		"reports.saved":            "Đã lưu cách tính chỉ tiêu; các báo cáo năm làm từ nay dùng cách tính mới.",
	}, map[string]string{
		"nav.reports":              "Reports",
		"reports.title":            "Reports",
		"reports.kind":             "Report",
		"reports.kind.plan":        "Yearly plan report",
		"reports.kind.plays":       "Proof of play (scheduled and heard)",
		"reports.kind.devices":     "Device availability",
		"reports.myscope":          "All of my area",
		"reports.from":             "From",
		"reports.to":               "To",
		"reports.calendar":         "Pick the day on a calendar",
		"reports.playsonly":        "proof of play only",
		"reports.program":          "Programme",
		"reports.show":             "Show report",
		"reports.download":         "Download",
		"reports.csv":              "CSV",
		"reports.xlsx":             "Excel (XLSX)",
		"reports.pdf":              "PDF",
		"reports.empty":            "No figures.",
		"reports.settings":         "What the yearly report counts towards its target",
		"reports.settings.note":    "Products in a language other than Vietnamese (ethnic-minority or foreign) or of a digital format count towards the 15–20% target. Changes are written to the audit log.",
		"reports.settings.updated": "Last changed: %s.",
		"reports.home":             "Vietnamese language codes (not counted towards the target)",
		"reports.digital":          "Formats of digital products (counted towards the target)",
		"reports.codes":            "Codes, separated by commas",
		"reports.save":             "Save",
		"reports.saved":            "Saved; yearly reports made from now on count this way.",
	})
	funcs["share"] = func(v float64) string { return api.Number(v*100, 1) + "%" }
	funcs["dateField"] = func(v view, id, value, label string) any {
		return struct {
			View             view
			ID, Value, Label string
		}{v, id, value, label}
	}
}
