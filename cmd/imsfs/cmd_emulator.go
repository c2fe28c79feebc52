package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/test/emulator"
)

func newEmulatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "emulator",
		Usage: "run the local stand-in for IMS and OSS in the foreground",
		Description: "Serves the IMS RPC API (CreateUploadMedia, RefreshUploadMedia, GetMediaInfo) at POST / and\n" +
			"the OSS object API path-style at /BUCKET/KEY, on one address. IMS requests must be signed\n" +
			"(ACS3-HMAC-SHA256) with the emulator's key pair; OSS requests with the STS credentials that\n" +
			"CreateUploadMedia hands out. GET /_emulator/media lists every asset as JSON.\n\n" +
			"Point a mount at it:\n" +
			"  ALIBABA_CLOUD_ACCESS_KEY_ID=emulator ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret \\\n" +
			"    imsfs mount --endpoint http://ADDR MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9000", Usage: "`ADDR` to listen on"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "`DIR` that keeps assets and objects"},
			&cli.StringFlag{Name: "access-key-id", Value: "emulator", Usage: "the AccessKeyId IMS accepts"},
			&cli.StringFlag{Name: "access-key-secret", Value: "emulator-secret", Usage: "the AccessKeySecret IMS accepts"},
			&cli.DurationFlag{Name: "sts-ttl", Value: 3000e9, Usage: "how long upload credentials stay valid"},
			&cli.DurationFlag{Name: "ready-delay", Usage: "time from a complete object to the asset's Normal status"},
			&cli.BoolFlag{Name: "debug", Usage: "log every refused request"},
		},
		Action: func(c *cli.Context) error {
			log := newLogger(c.Bool("debug"))
			if err := os.MkdirAll(c.String("data"), 0o755); err != nil {
				return err
			}
			emu, err := emulator.New(emulator.Options{
				AccessKeyID:     c.String("access-key-id"),
				AccessKeySecret: c.String("access-key-secret"),
				DataDir:         c.String("data"),
				STSTTL:          c.Duration("sts-ttl"),
				ReadyDelay:      c.Duration("ready-delay"),
				Log:             log,
			})
			if err != nil {
				return err
			}
			if err := emu.Start(c.String("listen")); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "emulator: IMS and OSS at %s (data in %s)\n", emu.URL(), c.String("data"))
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			<-sig
			return emu.Close()
		},
	}
}
