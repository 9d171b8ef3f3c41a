package agent

import (
	"strings"
	"testing"
	"time"
)

// audio.sync: off unless asked, with a second's start delay and rate correction by default; a
// delay out of range is refused naming the key.
func TestSyncConfig(t *testing.T) {
	load := func(audio string) (*Config, error) {
		return loadConfigText(t, "device_id: a\ndata_dir: d\naudio: "+audio+"\n")
	}
	c, err := load("{output: 'null'}")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Audio.Sync; s.InStep == nil || !*s.InStep || s.StartDelay.D() != time.Second || s.CorrectRate == nil || !*s.CorrectRate {
		t.Errorf("defaults %+v: want in_step on, start_delay 1s, correct_rate on", s)
	}
	c, err = load("{output: 'null', sync: {in_step: false, correct_rate: false, output_delay: 40ms}}")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Audio.Sync; *s.InStep || *s.CorrectRate || s.OutputDelay.D() != 40*time.Millisecond {
		t.Errorf("read %+v: want in_step off, correct_rate off, output_delay 40ms", s)
	}
	for audio, key := range map[string]string{
		"{sync: {start_delay: 1m}}":                           "audio.sync.start_delay",
		"{sync: {output_delay: -1s}}":                         "audio.sync.output_delay",
		"{dead_air: {fallback_file: /nonexistent/ident.mp3}}": "audio.dead_air.fallback_file",
		"{dead_air: {after: 100ms}}":                          "audio.dead_air.after",
	} {
		if _, err := load(audio); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("audio %s: error %v; want one naming %s", audio, err, key)
		}
	}
}
