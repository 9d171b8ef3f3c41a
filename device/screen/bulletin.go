package screen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Text bulletins and tickers are written as ASS subtitles and drawn by mpv's libass over a
// plain colour background (a lavfi colour source) or over a video. libass shapes with HarfBuzz
// and finds fonts through fontconfig, so Vietnamese tone marks stack right whether the text is
// precomposed (NFC) or typed with combining marks (NFD), and a letter missing from the font
// falls back to another installed font instead of a box.

// layout is what a bulletin is drawn with.
type layout struct {
	W, H        int     // PlayRes: the canvas the ASS coordinates refer to
	Font        string  // fontconfig family name
	Text        string  // the bulletin ("" for a ticker alone, e.g. over a video)
	Ticker      string  // the scrolling line ("" for none)
	Foreground  rgb     // bulletin text
	TickerBand  rgb     // the ticker's band
	TickerText  rgb     // the ticker's letters
	TickerSpeed float64 // pixels of the canvas per second
	Duration    time.Duration
}

type rgb struct{ R, G, B uint8 }

// parseColour reads "#RRGGBB" (the # is optional).
func parseColour(s string) (rgb, error) {
	h := strings.TrimPrefix(strings.TrimSpace(s), "#")
	if len(h) != 6 {
		return rgb{}, fmt.Errorf("colour %q: want #RRGGBB", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return rgb{}, fmt.Errorf("colour %q: want #RRGGBB", s)
	}
	return rgb{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

// ass is the colour in ASS's &HAABBGGR order, opaque.
func (c rgb) ass() string { return fmt.Sprintf("&H00%02X%02X%02X", c.B, c.G, c.R) }

// lavfi is the colour as FFmpeg's colour syntax.
func (c rgb) lavfi() string { return fmt.Sprintf("0x%02X%02X%02X", c.R, c.G, c.B) }

// escapeASS makes s literal text in an ASS event: braces would open override blocks and
// backslash sequences (\N, \n, \h) would break lines. Line breaks become ASS line breaks,
// other control characters are dropped, tabs become spaces.
func escapeASS(s string) string {
	var b strings.Builder
	s = strings.ReplaceAll(s, "\r\n", "\n")
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteRune('?')
		case r == '\\':
			// A word joiner after the backslash keeps libass from reading an escape; it is
			// invisible (default-ignorable) in the rendering.
			b.WriteString("\\\u2060")
		case r == '{':
			b.WriteString(`\{`)
		case r == '}':
			b.WriteString(`\}`)
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			b.WriteString(`\N`)
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// assTime formats d as ASS's H:MM:SS.cc.
func assTime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	cs := int64(d / (10 * time.Millisecond))
	return fmt.Sprintf("%d:%02d:%02d.%02d", cs/360000, cs/6000%60, cs/100%60, cs%100)
}

// bodySize picks a font size so that n characters fill the area without running off it:
// a bold DejaVu letter is about 0.62 em wide on average and a line 1.2 em high.
func bodySize(n, w, h int) int {
	if n < 1 {
		n = 1
	}
	fs := math.Sqrt(float64(w)*float64(h)/(float64(n)*0.62*1.2)) * 0.85
	lo, hi := float64(h)/24, float64(h)/8
	fs = math.Max(lo, math.Min(hi, fs))
	return int(fs)
}

// tickerBand is the height of the ticker band on a canvas of height h.
func tickerBand(h int) int { return h / 9 }

// buildASS writes the ASS script for l.
func buildASS(l layout) string {
	var b strings.Builder
	end := assTime(l.Duration)
	margin := l.W / 24
	band := 0
	if l.Ticker != "" {
		band = tickerBand(l.H)
	}
	bodyFS := bodySize(utf8.RuneCountInString(l.Text), l.W-2*margin, l.H-band-2*margin)
	tickFS := band * 62 / 100

	fmt.Fprintf(&b, "[Script Info]\nScriptType: v4.00+\nPlayResX: %d\nPlayResY: %d\nWrapStyle: 0\nScaledBorderAndShadow: yes\n\n", l.W, l.H)
	b.WriteString("[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n")
	fmt.Fprintf(&b, "Style: Body,%s,%d,%s,%s,&H00000000,&H00000000,-1,0,0,0,100,100,0,0,1,0,0,5,%d,%d,%d,1\n",
		l.Font, bodyFS, l.Foreground.ass(), l.Foreground.ass(), margin, margin, margin)
	fmt.Fprintf(&b, "Style: Ticker,%s,%d,%s,%s,&H00000000,&H00000000,-1,0,0,0,100,100,0,0,1,0,0,4,0,0,0,1\n",
		l.Font, max(tickFS, 1), l.TickerText.ass(), l.TickerText.ass())
	fmt.Fprintf(&b, "Style: Band,%s,10,%s,%s,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,0,0,7,0,0,0,1\n",
		l.Font, l.TickerBand.ass(), l.TickerBand.ass())
	b.WriteString("\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")
	if l.Text != "" {
		fmt.Fprintf(&b, "Dialogue: 0,0:00:00.00,%s,Body,,0,0,0,,{\\an5\\pos(%d,%d)}%s\n",
			end, l.W/2, (l.H-band)/2, escapeASS(l.Text))
	}
	if l.Ticker != "" {
		top := l.H - band
		fmt.Fprintf(&b, "Dialogue: 0,0:00:00.00,%s,Band,,0,0,0,,{\\an7\\pos(0,%d)\\p1}m 0 0 l %d 0 %d %d 0 %d{\\p0}\n",
			end, top, l.W, l.W, band, band)
		// libass measures the text only when drawing, so the width is estimated from the
		// letters (generously: too wide only lengthens the blank between passes).
		line := strings.Join(strings.Fields(l.Ticker), " ")
		width := float64(utf8.RuneCountInString(line)) * float64(tickFS) * 0.68
		speed := l.TickerSpeed
		if speed <= 0 {
			speed = float64(l.W) / 12
		}
		pass := time.Duration((float64(l.W) + width) / speed * float64(time.Second))
		every := time.Duration((width + float64(l.W)/4) / speed * float64(time.Second))
		every = max(every, time.Second)
		y := top + band/2
		text := escapeASS(line)
		for start := time.Duration(0); start < l.Duration; start += every {
			stop := min(start+pass, l.Duration)
			fmt.Fprintf(&b, "Dialogue: 1,%s,%s,Ticker,,0,0,0,,{\\an4\\q2\\move(%d,%d,%d,%d,0,%d)}%s\n",
				assTime(start), assTime(stop), l.W, y, -int(width), y, pass.Milliseconds(), text)
		}
	}
	return b.String()
}
