package console

import (
	"strings"

	"github.com/loa-project/loa/hub/api"
)

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
		"reports.over.month":       "tháng",
		"reports.over.week":        "tuần",
		"reports.products":         "sản phẩm",
		"reports.chart.target":     "Tỷ lệ sản phẩm tiếng dân tộc, tiếng nước ngoài, trên nền tảng số theo từng %s",
		"reports.chart.language":   "Sản phẩm theo ngôn ngữ, từng %s",
		"reports.chart.theme":      "Sản phẩm theo chủ đề, từng %s",
		"reports.chart.note":       "Mỗi cột là toàn bộ sản phẩm đã phát trong kỳ (100%), chia theo tỷ lệ số sản phẩm.",
		"reports.chart.band":       "Chỉ tiêu 15–20%",
		"reports.chart.table":      "Số liệu của biểu đồ (bảng)",
		"reports.chart.cell":       "Mỗi ô: số sản phẩm (tỷ lệ) · số lượt phát.",
		"reports.band.below":       "Chưa đạt",
		"reports.band.within":      "Đạt",
		"reports.band.above":       "Vượt chỉ tiêu",
		"reports.period":           "Kỳ",
		"reports.col.products":     "Số sản phẩm",
		"reports.col.tagged":       "Sản phẩm có phân loại",
		"reports.col.target":       "Sản phẩm tính vào chỉ tiêu",
		"reports.col.share":        "Tỷ lệ (chỉ tiêu 15–20%)",
		"reports.col.foreign":      "Tỷ lệ tiếng dân tộc, tiếng nước ngoài",
		"reports.col.digital":      "Tỷ lệ trên nền tảng số",
		"reports.col.broadcasts":   "Số lượt phát",
		"reports.col.hours":        "Số giờ phát",
		"reports.tree":             "Độ phủ và chỉ tiêu theo địa bàn",
		"reports.tree.note":        "Độ phủ: bình quân mỗi sản phẩm phát ở địa bàn được nghe tại bao nhiêu phần trăm số cụm loa, bảng tin của địa bàn. Chọn tên địa bàn để xem báo cáo của địa bàn đó.",
		"reports.tree.area":        "Địa bàn",
		"reports.tree.devices":     "Số cụm loa, bảng tin",
		"reports.tree.coverage":    "Độ phủ",
		"reports.tree.result":      "Đánh giá",
		"reports.tree.below":       "Địa bàn chưa đạt chỉ tiêu: %s.",
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
		"reports.over.month":       "month",
		"reports.over.week":        "week",
		"reports.products":         "products",
		"reports.chart.target":     "Share of products in ethnic-minority or foreign languages or digital, per %s",
		"reports.chart.language":   "Products by language, per %s",
		"reports.chart.theme":      "Products by theme, per %s",
		"reports.chart.note":       "Each bar is all products heard in the period (100%), split by their number.",
		"reports.chart.band":       "Target 15–20%",
		"reports.chart.table":      "The chart's figures (table)",
		"reports.chart.cell":       "Each cell: products (share) · broadcasts.",
		"reports.band.below":       "Below target",
		"reports.band.within":      "On target",
		"reports.band.above":       "Above target",
		"reports.period":           "Period",
		"reports.col.products":     "Products",
		"reports.col.tagged":       "Classified products",
		"reports.col.target":       "Target products",
		"reports.col.share":        "Share (target 15–20%)",
		"reports.col.foreign":      "Ethnic-minority or foreign language share",
		"reports.col.digital":      "Digital share",
		"reports.col.broadcasts":   "Broadcasts",
		"reports.col.hours":        "Hours aired",
		"reports.tree":             "Coverage and target by area",
		"reports.tree.note":        "Coverage: on average, the share of the area's clusters and boards that heard each product heard there. Choose an area's name for its report.",
		"reports.tree.area":        "Area",
		"reports.tree.devices":     "Clusters and boards",
		"reports.tree.coverage":    "Coverage",
		"reports.tree.result":      "Result",
		"reports.tree.below":       "Areas below target: %s.",
	})
	funcs["share"] = func(v float64) string { return api.Number(v*100, 1) + "%" }
	funcs["repNum"] = func(n int64) string { return api.Number(float64(n), 0) }
	funcs["repHours"] = func(h float64) string { return api.Number(h, 1) }
	funcs["repJoin"] = strings.Join
	funcs["repStacked"] = func(v view, id, title string, c stackChart, head []string, rows [][]string) any {
		labels := append([]string{v.T("reports.period"), v.T("reports.col.products")}, head...)
		return struct {
			View         view
			ID, Title    string
			Chart        stackChart
			Head, Labels []string
			Rows         [][]string
		}{v, id, title, c, head, labels, rows}
	}
	funcs["dateField"] = func(v view, id, value, label string) any {
		return struct {
			View             view
			ID, Value, Label string
		}{v, id, value, label}
	}
}
