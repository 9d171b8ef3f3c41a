// Command capture is the demo's sound card when the machine has none: it sets up the FIFO
// ALSA configuration in a directory, prints the ALSA_CONFIG_PATH to use, and drains the FIFO
// in real time into a WAV file until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/loa-project/loa/internal/alsafifo"
)

func main() {
	dir := flag.String("dir", ".", "directory for alsa.conf and alsa.fifo")
	wav := flag.String("wav", "speakers.wav", "WAV file receiving what the speakers would play")
	rate := flag.Int("rate", 48000, "sample rate")
	flag.Parse()
	cfg, fifo, err := alsafifo.Setup(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
	fmt.Println(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, done, err := alsafifo.Drain(ctx, fifo, *rate, false, *wav)
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}
