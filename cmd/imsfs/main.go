// Command imsfs mounts a folder whose saved files become assets in the Intelligent Media
// Services (IMS) media library, and runs a local emulator of IMS and OSS.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "imsfs",
		Usage: "a folder whose files become Alibaba Cloud IMS media assets",
		Description: "Files saved under the mount's type folders (video/, image/cover/, …) are uploaded to the IMS\n" +
			"media library when closed. Each file shows its upload status, MediaId and URLs as extended\n" +
			"attributes: getfattr -d -m user.ims FILE.",
		Commands:        []*cli.Command{newMountCommand(), newStatusCommand(), newWaitCommand(), newRetryCommand(), newURLCommand(), newEmulatorCommand()},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "imsfs:", err)
		os.Exit(1)
	}
}

// newLogger returns the logger every command writes to: text lines on stderr.
func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
