package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const docPath = "../docs/protocol.md"

var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)```")

// TestDocExamples keeps docs/protocol.md honest: every message example in it decodes, covers
// every type, and its signed examples verify with the documented example key.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("the protocol reference is missing: %v", err)
	}
	if !strings.Contains(string(doc), FormatPublicKey(exampleKeys()["hub-2026"])) {
		t.Error("docs/protocol.md does not give the example public key")
	}
	seen := map[Type]bool{}
	for _, m := range jsonBlock.FindAllSubmatch(doc, -1) {
		block := m[1]
		if !bytes.Contains(block, []byte(`"v": 1`)) {
			continue // a payload or a fragment, not a whole message
		}
		msg, err := Decode(block)
		if err != nil {
			t.Errorf("example does not decode: %v\n%s", err, block)
			continue
		}
		seen[msg.Type()] = true
		var signed *Signed
		switch x := msg.(type) {
		case *Schedule:
			signed = x.Signed
		case *Command:
			signed = x.Signed
		}
		if signed != nil {
			if _, err := verifier(t, "cl-07", t0).Verify(signed); err != nil {
				t.Errorf("signed example does not verify: %v", err)
			}
		}
	}
	for _, ty := range Types() {
		if !seen[ty] {
			t.Errorf("docs/protocol.md has no example of a %s message", ty)
		}
	}
}

// TestPrintDocExamples prints the examples for docs/protocol.md:
// LOA_PRINT_EXAMPLES=1 go test -run TestPrintDocExamples -v ./protocol
func TestPrintDocExamples(t *testing.T) {
	if os.Getenv("LOA_PRINT_EXAMPLES") == "" {
		t.Skip("set LOA_PRINT_EXAMPLES=1 to print")
	}
	fmt.Println("public key:", FormatPublicKey(exampleKeys()["hub-2026"]))
	for _, m := range samples(t) {
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		json.Indent(&out, b, "", "  ")
		fmt.Printf("### %s\n```json\n%s\n```\n", m.Type(), out.String())
		for _, s := range []*Signed{signedOf(m)} {
			if s != nil {
				out.Reset()
				json.Indent(&out, s.Payload, "", "  ")
				fmt.Printf("payload:\n```json\n%s\n```\n", out.String())
			}
		}
	}
}

func signedOf(m Message) *Signed {
	switch x := m.(type) {
	case *Schedule:
		return x.Signed
	case *Command:
		return x.Signed
	}
	return nil
}
