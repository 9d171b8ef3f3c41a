package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/loa-project/loa/player"
)

// playCmd plays one file or stream and prints its proof of output as one JSON line.
func playCmd(fs *pflag.FlagSet) runFunc {
	out := fs.String("out", "alsa", "output: alsa, alsa:DEVICE, wav:PATH (written as fast as decoding goes) or null")
	dur := fs.Duration("duration", 0, "how long to play (required for a stream URL; cuts a file)")
	vol := fs.Float64("volume", 1, "gain from 0 to 1")
	rate := fs.Int("rate", 48000, "output sample rate in Hz")
	buf := fs.Duration("buffer", 100*time.Millisecond, "ALSA buffer length")
	return func(ctx context.Context, pos []string, log *slog.Logger) int {
		item := player.Item{Path: pos[0], Duration: *dur}
		if strings.HasPrefix(pos[0], "http://") || strings.HasPrefix(pos[0], "https://") {
			item = player.Item{URL: pos[0], Duration: *dur}
		}
		o, err := player.OpenOutput(ctx, *out, *rate, *buf, log.With("component", "output"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent play:", err)
			return 1
		}
		defer o.Close()
		p, err := player.New(player.Config{Output: o, Log: log.With("component", "player")})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent play:", err)
			return 1
		}
		// Ctrl-C or SIGTERM stops with the usual fade (the proof then says "stopped").
		pb, err := p.Play(context.WithoutCancel(ctx), player.Program{Items: []player.Item{item}, Gain: *vol})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-agent play:", err)
			return 2
		}
		var res player.Result
		select {
		case <-pb.Done():
			res = pb.Wait()
		case <-ctx.Done():
			res = pb.Stop()
		}
		return printProof("play", res.Items[0], res.Items[0].Ended == player.EndFailed)
	}
}

// printProof prints one item's proof as a JSON line; the exit code says whether it failed.
func printProof(cmd string, proof any, failed bool) int {
	line, err := json.Marshal(proof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-agent "+cmd+":", err)
		return 1
	}
	fmt.Println(string(line))
	if failed {
		return 1
	}
	return 0
}
