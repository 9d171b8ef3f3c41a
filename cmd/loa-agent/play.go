package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// playCmd is replaced by the audio player issue's command.
func playCmd(ctx context.Context, args []string, log *slog.Logger) int {
	fmt.Fprintln(os.Stderr, "loa-agent play: the audio player is not built yet")
	return 2
}
