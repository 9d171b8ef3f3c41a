package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/scheduler"
)

// speech turns a text item into audio with espeak-ng, so that a bulletin given only as text
// (an emergency whose recording could not be fetched, a CAP alert) is still heard. Results
// are cached by voice and text in the data directory; the files are written atomically.
type speech struct {
	dir   string
	voice string // espeak-ng voice, "vi" by default
	bin   string
}

func newSpeech(dataDir, voice string) *speech {
	if voice == "" {
		voice = "vi"
	}
	return &speech{dir: filepath.Join(dataDir, "speech"), voice: voice, bin: "espeak-ng"}
}

// cached returns the WAV file speaking text if it was made before.
func (s *speech) cached(text string) (string, bool) {
	sum := sha256.Sum256([]byte(s.voice + "\x00" + text))
	out := filepath.Join(s.dir, hex.EncodeToString(sum[:16])+".wav")
	fi, err := os.Stat(out)
	return out, err == nil && fi.Size() > 44
}

// path returns a WAV file speaking text, making it if needed.
func (s *speech) path(ctx context.Context, text string) (string, error) {
	out, ok := s.cached(text)
	if ok {
		return out, nil
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bin, "-v", s.voice, "-s", "145", "--stdout", "--", text)
	cmd.Stderr = &stderr
	wav, err := cmd.Output()
	if err != nil || len(wav) <= 44 {
		return "", fmt.Errorf("text to speech with %s (voice %s) failed: %v %s; install espeak-ng", s.bin, s.voice, err, stderr.String())
	}
	return out, atomicfile.Write(out, wav, 0o600)
}

// prepareFallbacks speaks, in the background, the fallback texts of a schedule that are not
// made yet, so that an item found dead (or missing) can be replaced at once when it plays.
func (a *Agent) prepareFallbacks(doc *scheduler.Document) {
	if a.speech == nil {
		return
	}
	var todo []string
	seen := map[string]bool{}
	for _, p := range doc.Programs {
		for _, it := range p.Items {
			if t := it.Fallback; t != "" && !seen[t] {
				seen[t] = true
				if _, ok := a.speech.cached(t); !ok {
					todo = append(todo, t)
				}
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	a.tasks.Go(func() {
		for _, t := range todo {
			if _, err := a.speech.path(context.Background(), t); err != nil {
				a.log.Warn("cannot speak a fallback text ahead of its plays; an item found dead or missing will be replaced by the next item instead", "err", err)
				return
			}
		}
	})
}
