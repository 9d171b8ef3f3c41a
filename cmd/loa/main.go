// Command loa is the staff command line of a Loa hub. See package hub/cli.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/loa-project/loa/hub/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	home, _ := os.UserHomeDir()
	code := cli.Run(ctx, os.Args[1:], cli.Env{Getenv: os.Getenv, Home: home, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
