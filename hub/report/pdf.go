package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"codeberg.org/go-pdf/fpdf"
)

// FontDirs are where the PDF's fonts are looked for: Debian's fonts-dejavu-core first.
var FontDirs = []string{"/usr/share/fonts/truetype/dejavu", "/usr/local/share/fonts/dejavu", "/usr/share/fonts/dejavu"}

// The serif face: Vietnamese administrative documents are set in a serif (Times New Roman by
// Nghị định 30/2020); DejaVu Serif has every Vietnamese letter and is in fonts-dejavu-core.
const (
	fontRegular = "DejaVuSerif.ttf"
	fontBold    = "DejaVuSerif-Bold.ttf"
	face        = "serif"
)

// ErrNoFont says the PDF cannot be made on this machine and what to install.
var ErrNoFont = errors.New("the PDF report needs the DejaVu fonts (" + fontRegular + ", " + fontBold +
	"), not found in " + strings.Join(FontDirs, ", ") + ": install them with `apt-get install fonts-dejavu-core`, or ask for --format xlsx or csv")

func findFonts(dirs []string) (regular, bold []byte, err error) {
	for _, d := range dirs {
		r, err1 := os.ReadFile(filepath.Join(d, fontRegular))
		b, err2 := os.ReadFile(filepath.Join(d, fontBold))
		if err1 == nil && err2 == nil {
			return r, b, nil
		}
	}
	return nil, nil, ErrNoFont
}

// WritePDF writes the report as an A4 administrative report: the issuing unit and the national
// heading side by side, the title, the period, the summary, a bar chart of shares per chart,
// the tables, and the signature blocks. Fonts are embedded (subset to the letters used).
func WritePDF(w io.Writer, d Doc) error {
	reg, bold, err := findFonts(FontDirs)
	if err != nil {
		return err
	}
	wide := false // tables with many columns are set on landscape pages
	for _, t := range d.Tables {
		wide = wide || len(t.Headers) > 9
	}
	orient := "P"
	if wide {
		orient = "L"
	}
	pdf := fpdf.New(orient, "mm", "A4", "")
	pdf.AddUTF8FontFromBytes(face, "", reg)
	pdf.AddUTF8FontFromBytes(face, "B", bold)
	pdf.SetTitle(d.Title, true)
	pdf.SetCreationDate(d.Made)
	pdf.SetModificationDate(d.Made)
	pdf.SetMargins(20, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont(face, "", 8)
		pdf.CellFormat(0, 5, fmt.Sprintf("Trang %d", pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	pw, _ := pdf.GetPageSize()
	left, _, right, _ := pdf.GetMargins()
	body := pw - left - right

	// Heading: the unit on the left, the national heading on the right (Nghị định 30/2020).
	colL, colR := body*0.42, body*0.58
	y := pdf.GetY()
	pdf.SetFont(face, "B", 11)
	pdf.SetXY(left, y)
	pdf.MultiCell(colL, 5.5, strings.ToUpper(d.Unit), "", "C", false)
	yl := pdf.GetY()
	pdf.Line(left+colL*0.3, yl+1, left+colL*0.7, yl+1)
	pdf.SetXY(left+colL, y)
	pdf.SetFont(face, "B", 10.5)
	pdf.CellFormat(colR, 5.5, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "", 2, "C", false, 0, "")
	pdf.SetFont(face, "B", 11.5)
	pdf.CellFormat(colR, 5.5, "Độc lập - Tự do - Hạnh phúc", "", 2, "C", false, 0, "")
	sw := pdf.GetStringWidth("Độc lập - Tự do - Hạnh phúc")
	mid := left + colL + colR/2
	pdf.Line(mid-sw/2, pdf.GetY()+0.5, mid+sw/2, pdf.GetY()+0.5)
	pdf.SetFont(face, "", 10.5)
	pdf.SetX(left + colL)
	pdf.CellFormat(colR, 7, fmt.Sprintf("ngày %02d tháng %02d năm %d", d.Made.Day(), d.Made.Month(), d.Made.Year()), "", 2, "C", false, 0, "")
	pdf.SetY(max(pdf.GetY(), yl) + 8)

	pdf.SetFont(face, "B", 14)
	pdf.MultiCell(body, 7, d.Title, "", "C", false)
	pdf.SetFont(face, "", 11)
	pdf.CellFormat(body, 6, d.Period, "", 1, "C", false, 0, "")
	pdf.Ln(4)

	if len(d.Summary) > 0 {
		heading(pdf, body, "I. SỐ LIỆU CHUNG")
		pdf.SetFont(face, "", 10.5)
		for _, l := range d.Summary {
			pdf.CellFormat(body*0.72, 6, "- "+l.Label+":", "", 0, "L", false, 0, "")
			pdf.SetFont(face, "B", 10.5)
			pdf.CellFormat(body*0.28, 6, l.Value.String(), "", 1, "R", false, 0, "")
			pdf.SetFont(face, "", 10.5)
		}
		pdf.Ln(3)
	}
	n := 2
	if len(d.Charts) > 0 {
		heading(pdf, body, roman(n)+". BIỂU ĐỒ TỶ LỆ")
		n++
		for _, c := range d.Charts {
			chart(pdf, left, body, c)
		}
	}
	heading(pdf, body, roman(n)+". CHI TIẾT")
	for i, t := range d.Tables {
		table(pdf, left, body, fmt.Sprintf("%d. %s", i+1, t.Title), t)
	}

	// Signatures: who made it and the head of the unit.
	pdf.Ln(6)
	_, ph := pdf.GetPageSize()
	if pdf.GetY() > ph-50 {
		pdf.AddPage()
	}
	y = pdf.GetY()
	pdf.SetFont(face, "B", 11)
	pdf.SetXY(left, y)
	pdf.CellFormat(body/2, 6, "NGƯỜI LẬP BÁO CÁO", "", 0, "C", false, 0, "")
	pdf.CellFormat(body/2, 6, "THỦ TRƯỞNG ĐƠN VỊ", "", 1, "C", false, 0, "")
	pdf.SetFont(face, "", 9)
	pdf.CellFormat(body/2, 5, "(Ký, ghi rõ họ tên)", "", 0, "C", false, 0, "")
	pdf.CellFormat(body/2, 5, "(Ký tên, đóng dấu)", "", 1, "C", false, 0, "")
	return pdf.Output(w)
}

func roman(n int) string { return []string{"", "I", "II", "III", "IV", "V", "VI"}[min(n, 6)] }

func heading(pdf *fpdf.Fpdf, body float64, s string) {
	pdf.SetFont(face, "B", 11.5)
	pdf.CellFormat(body, 7, s, "", 1, "L", false, 0, "")
}

// chart draws horizontal bars, one per share, labelled with the name and the percentage.
func chart(pdf *fpdf.Fpdf, left, body float64, c Chart) {
	const barH, gap = 5.0, 1.5
	_, ph := pdf.GetPageSize()
	if pdf.GetY()+8+float64(len(c.Bars))*(barH+gap) > ph-20 {
		pdf.AddPage()
	}
	pdf.SetFont(face, "B", 10)
	pdf.CellFormat(body, 6, c.Title, "", 1, "L", false, 0, "")
	pdf.SetFont(face, "", 9)
	labelW := 0.0
	for _, b := range c.Bars {
		labelW = max(labelW, pdf.GetStringWidth(b.Label)+3)
	}
	labelW = min(labelW, body*0.35)
	barMax := body - labelW - 18
	for _, b := range c.Bars {
		y := pdf.GetY()
		pdf.SetXY(left, y)
		pdf.CellFormat(labelW, barH, fit(pdf, b.Label, labelW-1), "", 0, "R", false, 0, "")
		pdf.SetFillColor(38, 84, 140)
		if w := barMax * min(max(b.Share, 0), 1); w > 0.2 {
			pdf.Rect(left+labelW, y+0.6, w, barH-1.2, "F")
		}
		pdf.SetXY(left+labelW+barMax*min(max(b.Share, 0), 1)+1, y)
		pdf.CellFormat(17, barH, Number(b.Share*100, 1)+"%", "", 0, "L", false, 0, "")
		pdf.SetY(y + barH + gap)
	}
	pdf.Ln(3)
}

// fit cuts s with "…" to width w in the current font.
func fit(pdf *fpdf.Fpdf, s string, w float64) string {
	if pdf.GetStringWidth(s) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && pdf.GetStringWidth(string(r)+"…") > w {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// table draws a bordered table; column widths follow their content, scaled to the page, the
// font made smaller when the columns would not otherwise fit. Headers wrap.
func table(pdf *fpdf.Fpdf, left, body float64, title string, t Table) {
	_, ph := pdf.GetPageSize()
	if pdf.GetY() > ph-45 {
		pdf.AddPage()
	}
	pdf.SetFont(face, "B", 10.5)
	pdf.CellFormat(body, 7, title, "", 1, "L", false, 0, "")
	if len(t.Rows) == 0 {
		pdf.SetFont(face, "", 9.5)
		pdf.CellFormat(body, 6, "(không có)", "", 1, "L", false, 0, "")
		pdf.Ln(2)
		return
	}
	size := 9.0
	var widths []float64
	for ; ; size -= 0.5 {
		pdf.SetFont(face, "", size)
		widths = make([]float64, len(t.Headers))
		for _, r := range t.Rows {
			for i, c := range r {
				if i < len(widths) {
					widths[i] = max(widths[i], pdf.GetStringWidth(c.String())+3)
				}
			}
		}
		pdf.SetFont(face, "B", size)  // headers are bold, wider
		for i, h := range t.Headers { // a header may wrap onto two lines
			longest := 0.0
			for _, word := range strings.Fields(h) {
				longest = max(longest, pdf.GetStringWidth(word)+3)
			}
			widths[i] = max(widths[i], longest+1, pdf.GetStringWidth(h)/2+4)
		}
		total := 0.0
		for _, w := range widths {
			total += w
		}
		if total <= body || size <= 6 {
			if total > body { // still too wide: the first (text) column gives way
				widths[0] = max(15, widths[0]-(total-body))
			} else {
				for i := range widths { // full width, as a table on a form is
					widths[i] *= body / total
				}
			}
			break
		}
	}
	lineH := size * 0.5
	// Header: each cell wrapped, all as high as the highest.
	pdf.SetFont(face, "B", size)
	lines := 1
	for i, h := range t.Headers {
		lines = max(lines, len(pdf.SplitText(h, widths[i]-2)))
	}
	y := pdf.GetY()
	x := left
	pdf.SetFillColor(225, 230, 240)
	for i, h := range t.Headers {
		pdf.Rect(x, y, widths[i], float64(lines)*lineH+2, "FD")
		pdf.SetXY(x+1, y+1)
		pdf.MultiCell(widths[i]-2, lineH, h, "", "C", false)
		x += widths[i]
	}
	pdf.SetXY(left, y+float64(lines)*lineH+2)
	pdf.SetFont(face, "", size)
	for _, r := range t.Rows {
		if pdf.GetY()+lineH+2 > ph-15 {
			pdf.AddPage()
		}
		pdf.SetX(left)
		for i, c := range r {
			if i >= len(widths) {
				break
			}
			align := "L"
			if c.Num != nil {
				align = "R"
			}
			pdf.CellFormat(widths[i], lineH+2, fit(pdf, c.String(), widths[i]-2), "1", 0, align, false, 0, "")
		}
		pdf.Ln(lineH + 2)
	}
	if t.Note != "" {
		pdf.SetFont(face, "", 9.5)
		pdf.MultiCell(body, 5, t.Note, "", "L", false)
	}
	pdf.Ln(3)
}
