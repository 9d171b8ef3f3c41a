package agentlink

import (
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
)

// Whatever staff send, commandTemplate either refuses it with a message or returns a payload
// the protocol signs (so no accepted request fails later, at signing, with a 500).
func FuzzCommandTemplate(f *testing.F) {
	f.Add("volume", "", "", "", "", "", "", 0.6, true)
	f.Add("play_now", "sha256:"+strings.Repeat("ab", 32), "", "emergency", "Bão số 13", "speakers", "30m", 0.0, false)
	f.Add("play_now", "", "http://radio.example/vov1.mp3", "", "", "", "2h", 0.0, false)
	f.Add("stop", "", "", "", "", "board", "5s", 0.0, false)
	f.Add("reload", "", "", "", "", "", "24h", 0.0, false)
	_, priv, err := protocol.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := protocol.NewSigner("k", priv)
	now := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, action, content, stream, class, title, output, expires string, vol float64, hasVol bool) {
		req := api.CommandRequest{To: "qn", Action: action, Content: content, Stream: stream, Class: class, Title: title,
			Output: output, ExpiresIn: expires}
		if hasVol {
			req.Volume = &vol
		}
		pl, life, err := commandTemplate(req)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			return
		}
		if life < minCommandLife || life > protocol.MaxCommandLifetime {
			t.Fatalf("lifetime %s accepted", life)
		}
		pl.ID, pl.Seq, pl.Devices, pl.IssuedBy, pl.IssuedAt, pl.ExpiresAt = "cmd-1", 1, []string{"tk/cl-01"}, "admin", now, now.Add(life)
		if _, err := signer.SignCommand(pl); err != nil {
			t.Fatalf("accepted %+v, but the protocol refuses its payload: %v", req, err)
		}
	})
}
