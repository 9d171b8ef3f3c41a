package sign

import (
	"testing"
	"unicode/utf8"
)

func TestSanitizeVietnamese(t *testing.T) {
	cases := map[string]string{
		"Thông báo lịch tiêm chủng":                 "Thong bao lich tiem chung",
		"ĐÀ NẴNG: Bão số 13 đổ bộ":                  "DA NANG: Bao so 13 do bo",
		"Quảng Nam – Tam Thanh “khẩn cấp”…":         "Quang Nam - Tam Thanh \"khan cap\"...",
		"Thu\u031B\u0323c hie\u0302\u0323n":         "Thuc hien", // NFD input: same as NFC
		"Thực hiện":                                 "Thuc hien",
		"Giẻ Triêng, Xơ Đăng, Cơ Tu":                "Gie Trieng, Xo Dang, Co Tu",
		"line1\nline2\tx\r":                         "line1 line2 x ",
		"a\x01\x02\x03\x04\x1bb\x7fc\u0085d\u009be": "abc de",
		"30°C, 100\u00a0mm":                         "30oC, 100 mm",
		"漢字 🌀":                                      "?? ?",
		"bad\xffutf8":                               "bad?utf8",
		"ỲỴỶỸÝ ỳỵỷỹý ỮỰỪỨỬ ữựừứử":                   "YYYYY yyyyy UUUUU uuuuu",
	}
	for in, want := range cases {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every precomposed Vietnamese letter folds to the letter its NFD base is.
func TestSanitizeTableComplete(t *testing.T) {
	vowels := []struct {
		base   rune
		shapes []rune // base plus breve/circumflex/horn variants' marks
	}{
		{'a', []rune{0, 0x0306, 0x0302}}, {'e', []rune{0, 0x0302}}, {'i', []rune{0}},
		{'o', []rune{0, 0x0302, 0x031B}}, {'u', []rune{0, 0x031B}}, {'y', []rune{0}},
	}
	tones := []rune{0, 0x0300, 0x0301, 0x0309, 0x0303, 0x0323}
	n := 0
	for _, v := range vowels {
		for _, s := range v.shapes {
			for _, tone := range tones {
				for _, base := range []rune{v.base, v.base - 'a' + 'A'} {
					in := string(base)
					if s != 0 {
						in += string(s)
					}
					if tone != 0 {
						in += string(tone)
					}
					if got := Sanitize(in); got != string(base) {
						t.Errorf("Sanitize(%q) = %q", in, got)
					}
					n++
				}
			}
		}
	}
	if n != 12*6*2 {
		t.Fatalf("checked %d letters, want 144", n)
	}
	// And the precomposed table itself: each entry is a single rune that
	// folds to its ASCII letter.
	for _, v := range vietnamese {
		for _, r := range v.froms {
			if got := Sanitize(string(r)); got != string(v.to) {
				t.Errorf("Sanitize(%q) = %q want %q", r, got, v.to)
			}
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"Thông báo lịch tiêm chủng", "a\x04b", "\xff", "đĐ", "…"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] > 0x7E {
				t.Fatalf("Sanitize(%q) has byte 0x%02X at %d", s, out[i], i)
			}
		}
		if Sanitize(out) != out {
			t.Fatalf("not idempotent: %q -> %q", s, out)
		}
		if utf8.RuneCountInString(s) == 0 && out != "" {
			t.Fatalf("empty in, %q out", out)
		}
		if _, err := WriteText('A', Text{Message: out}); err != nil {
			t.Fatalf("sanitised text rejected: %v", err)
		}
	})
}
