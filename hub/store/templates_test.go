package store

import (
	"context"
	"errors"
	"testing"
)

func TestTemplates(t *testing.T) {
	db, _, _ := openTest(t)
	ctx := context.Background()
	for _, a := range []Area{{ID: "qn", Name: "Quảng Nam"}, {ID: "qn/tk", Name: "Tam Kỳ"}} {
		if _, err := db.AddArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	doc := []byte("version: 1\nid: w\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms: []\n")
	if _, err := db.SaveTemplate(ctx, Template{Area: "qn/tk", Name: "Tuần thường", Document: doc, Author: "an"}); err != nil {
		t.Fatal(err)
	}
	// The same name again replaces it; another area's template is its own.
	if _, err := db.SaveTemplate(ctx, Template{Area: "qn/tk", Name: "Tuần thường", Document: append(doc, '#'), Author: "binh"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveTemplate(ctx, Template{Area: "qn", Name: "Tuần thường", Document: doc, Author: "an"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveTemplate(ctx, Template{Area: "qn/xx", Name: "x", Document: doc, Author: "an"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a template of an area that does not exist: %v", err)
	}
	if _, err := db.SaveTemplate(ctx, Template{Area: "qn", Name: "", Document: doc, Author: "an"}); err == nil {
		t.Error("a template without a name was stored")
	}
	got, err := db.GetTemplate(ctx, "qn/tk", "Tuần thường")
	if err != nil || got.Author != "binh" || string(got.Document) != string(doc)+"#" {
		t.Errorf("the replaced template: %+v, %v", got, err)
	}
	list, err := db.Templates(ctx, []string{"qn/tk"})
	if err != nil || len(list) != 1 || list[0].Area != "qn/tk" {
		t.Errorf("templates of qn/tk: %+v, %v", list, err)
	}
	if _, err := db.GetTemplate(ctx, "qn", "khác"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing template: %v", err)
	}
}
