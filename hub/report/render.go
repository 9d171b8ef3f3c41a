package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"
)

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case "csv":
		return "text/csv; charset=utf-8"
	case "xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case "pdf":
		return "application/pdf"
	case "json":
		return "application/json; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// WriteCSV writes the report as one CSV file: heading lines, the summary, then each table
// after a line with its title and a blank line. Numbers are plain (1234.5), shares in percent.
// A UTF-8 byte order mark first, so that Excel shows the diacritics.
func WriteCSV(w io.Writer, d Doc) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"Báo cáo", d.Title})
	cw.Write([]string{"Đơn vị", d.Unit})
	cw.Write([]string{"Thời gian", d.Period})
	for _, l := range d.Summary {
		cw.Write([]string{l.Label, l.Value.Plain()})
	}
	for _, t := range d.Tables {
		cw.Write(nil)
		cw.Write([]string{t.Title})
		cw.Write(t.Headers)
		for _, r := range t.Rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = c.Plain()
			}
			cw.Write(cells)
		}
		if t.Note != "" {
			cw.Write([]string{t.Note})
		}
	}
	cw.Flush()
	return cw.Error()
}

// SheetName is the XLSX sheet of a table: its title cut to Excel's 31 characters.
func SheetName(title string) string {
	r := []rune(strings.NewReplacer("/", "-", "\\", "-", "?", "", "*", "", "[", "(", "]", ")", ":", "").Replace(title))
	if len(r) > 31 {
		r = r[:31]
	}
	return string(r)
}

// SummarySheet is the first sheet of the workbook.
const SummarySheet = "Tổng hợp"

// WriteXLSX writes the report as a workbook: a summary sheet and one sheet per table, numbers
// as numbers (shares as fractions formatted in percent) so that staff can sum them again.
func WriteXLSX(w io.Writer, d Doc) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", SummarySheet); err != nil {
		return err
	}
	bold, _ := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	pct, _ := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	dec, _ := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("#,##0.0")})
	set := func(sheet string, col, row int, c Cell) error {
		ref, err := excelize.CoordinatesToCellName(col, row)
		if err != nil {
			return err
		}
		if c.Num == nil {
			return f.SetCellStr(sheet, ref, c.Text)
		}
		if err := f.SetCellFloat(sheet, ref, *c.Num, -1, 64); err != nil {
			return err
		}
		switch {
		case c.Share:
			return f.SetCellStyle(sheet, ref, ref, pct)
		case c.Dec > 0:
			return f.SetCellStyle(sheet, ref, ref, dec)
		}
		return nil
	}
	row := 1
	for _, l := range []Line{L("Báo cáo", T(d.Title)), L("Đơn vị", T(d.Unit)), L("Thời gian", T(d.Period))} {
		set(SummarySheet, 1, row, T(l.Label))
		set(SummarySheet, 2, row, l.Value)
		row++
	}
	f.SetCellStyle(SummarySheet, "A1", "B1", bold)
	row++
	for _, l := range d.Summary {
		if err := set(SummarySheet, 1, row, T(l.Label)); err != nil {
			return err
		}
		if err := set(SummarySheet, 2, row, l.Value); err != nil {
			return err
		}
		row++
	}
	f.SetColWidth(SummarySheet, "A", "A", 60)
	f.SetColWidth(SummarySheet, "B", "B", 40)
	for _, t := range d.Tables {
		sheet := SheetName(t.Title)
		if _, err := f.NewSheet(sheet); err != nil {
			return fmt.Errorf("sheet %q: %w", sheet, err)
		}
		for i, h := range t.Headers {
			set(sheet, i+1, 1, T(h))
		}
		last, _ := excelize.CoordinatesToCellName(max(1, len(t.Headers)), 1)
		f.SetCellStyle(sheet, "A1", last, bold)
		for r, cells := range t.Rows {
			for i, c := range cells {
				if err := set(sheet, i+1, r+2, c); err != nil {
					return err
				}
			}
		}
		if t.Note != "" {
			set(sheet, 1, len(t.Rows)+3, T(t.Note))
		}
		f.SetColWidth(sheet, "A", "A", 36)
	}
	return f.Write(w)
}

func ptr[T any](v T) *T { return &v }
