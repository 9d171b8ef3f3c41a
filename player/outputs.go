package player

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/loa-project/loa/player/alsa"
)

// OpenOutput opens an output from its description, as given on the command line or in
// the agent's config: "alsa" or "alsa:DEVICE", "wav:PATH", "null". buffer is the ALSA
// buffer length (0: 100 ms). Only one ALSA output can be opened per process.
func OpenOutput(ctx context.Context, spec string, rate int, buffer time.Duration, log *slog.Logger) (Output, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "alsa":
		return alsa.Open(ctx, alsa.Config{Device: arg, Rate: rate, Buffer: buffer, Log: log})
	case "wav":
		if arg == "" {
			return nil, fmt.Errorf("output %q: wav needs a path, as in wav:/tmp/out.wav", spec)
		}
		return NewWAVOutput(arg, rate)
	case "null":
		return NewNullOutput(rate), nil
	}
	return nil, fmt.Errorf("output %q: unknown kind %q (want alsa[:DEVICE], wav:PATH or null)", spec, kind)
}
