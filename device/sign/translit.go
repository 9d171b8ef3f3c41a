package sign

import (
	"strings"
	"unicode/utf8"
)

// vietnamese lists, per ASCII letter, every precomposed Vietnamese letter
// (all tones, breve, circumflex, horn, stroke) that folds to it. Written by
// hand so the module needs no golang.org/x/text; decomposed input (NFD) is
// handled by dropping combining marks, which gives the same result.
var vietnamese = [...]struct {
	to    byte
	froms string
}{
	{'a', "àáảãạăằắẳẵặâầấẩẫậ"},
	{'A', "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"},
	{'e', "èéẻẽẹêềếểễệ"},
	{'E', "ÈÉẺẼẸÊỀẾỂỄỆ"},
	{'i', "ìíỉĩị"},
	{'I', "ÌÍỈĨỊ"},
	{'o', "òóỏõọôồốổỗộơờớởỡợ"},
	{'O', "ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"},
	{'u', "ùúủũụưừứửữự"},
	{'U', "ÙÚỦŨỤƯỪỨỬỮỰ"},
	{'y', "ỳýỷỹỵ"},
	{'Y', "ỲÝỶỸỴ"},
	{'d', "đ"},
	{'D', "ĐÐ"}, // Đ (U+0110) and the look-alike Ð (U+00D0)
	// Other Latin letters staff may paste (names, French/English words).
	{'c', "ç"},
	{'C', "Ç"},
	{'n', "ñ"},
	{'N', "Ñ"},
	{'a', "äåā"},
	{'o', "öøō"},
	{'u', "üū"},
	{'e', "ëē"},
	{'i', "ïî"},
	{'A', "ÄÅ"},
	{'O', "ÖØ"},
	{'U', "Ü"},
}

// punctuation folds typographic characters to their ASCII look-alikes.
func punctuation(r rune) (string, bool) {
	switch r {
	case '\u2018', '\u2019', '\u201A', '\u2032':
		return "'", true
	case '\u201C', '\u201D', '\u201E', '\u2033', '«', '»':
		return "\"", true
	case '\u2013', '\u2014', '\u2212', '\u2010', '\u2011':
		return "-", true
	case '\u2026':
		return "...", true
	case '\u00A0', '\u2007', '\u202F', '\u2009', '\u200A', '\u3000':
		return " ", true
	case '\u00B0':
		return "o", true // 30°C -> 30oC: keeps the number readable
	case '\u200B', '\u200C', '\u200D', '\uFEFF':
		return "", true // zero-width: invisible, drop
	}
	return "", false
}

// combining reports whether r is a combining mark (what NFD splits off).
func combining(r rune) bool {
	return (r >= 0x0300 && r <= 0x036F) || (r >= 0x1AB0 && r <= 0x1AFF) ||
		(r >= 0x1DC0 && r <= 0x1DFF) || (r >= 0x20D0 && r <= 0x20FF) ||
		(r >= 0xFE20 && r <= 0xFE2F)
}

// Unknown replaces a character the sign cannot show and we cannot fold.
const Unknown = '?'

// Sanitize turns UTF-8 text into what an ASCII-only sign can show: printable
// ASCII (0x20–0x7E) only, so no byte of the result can end or corrupt a
// protocol frame.
//
//   - Vietnamese letters lose their marks: "Thông báo" -> "Thong bao",
//     đ/Đ -> d/D; text already decomposed (NFD) gives the same result.
//   - Typographic quotes, dashes, ellipsis, non-breaking spaces fold to ASCII.
//   - Tab, CR, LF and other line breaks become one space each; every other
//     control character (C0, DEL, C1) is removed.
//   - Anything else (other scripts, emoji, invalid UTF-8) becomes '?'.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteByte(Unknown)
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == '\u2028' || r == '\u2029' || r == '\u0085':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0):
			// control character: dropped so it cannot act as SOH/STX/ETX/EOT/ESC
		case r < 0x7F:
			b.WriteByte(byte(r))
		case combining(r):
			// mark of a decomposed letter: the base letter was already written
		default:
			if p, ok := punctuation(r); ok {
				b.WriteString(p)
				continue
			}
			if c, ok := fold(r); ok {
				b.WriteByte(c)
				continue
			}
			b.WriteByte(Unknown)
		}
	}
	return b.String()
}

func fold(r rune) (byte, bool) {
	for _, v := range vietnamese {
		if strings.ContainsRune(v.froms, r) {
			return v.to, true
		}
	}
	return 0, false
}
