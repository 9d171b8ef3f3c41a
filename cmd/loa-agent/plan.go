package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// planCmd and validateCmd are filled in with the schedule engine.
func planCmd(ctx context.Context, args []string, log *slog.Logger) int {
	fmt.Fprintln(os.Stderr, "loa-agent plan: the schedule engine is not built yet")
	return 2
}

func validateCmd(ctx context.Context, args []string, log *slog.Logger) int {
	fmt.Fprintln(os.Stderr, "loa-agent validate: the schedule engine is not built yet")
	return 2
}
