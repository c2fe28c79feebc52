package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/test/emulator"
)

func newEmulatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "emulator",
		Usage: "run the local stand-in for IMS and OSS in the foreground",
		Description: "Serves, on one address:\n" +
			"  IMS   POST / — CreateUploadMedia, RefreshUploadMedia, GetMediaInfo, BatchGetMediaInfos,\n" +
			"        UpdateMediaInfo, DeleteMediaInfos, ListMediaBasicInfos; signed ACS3-HMAC-SHA256 or legacy HMAC-SHA1\n" +
			"        with the key pair below, or with a temporary key from POST /_emulator/sts.\n" +
			"  OSS   /BUCKET/KEY path-style — Put, Get (Range), Head, Delete, multipart (Initiate,\n" +
			"        UploadPart, Complete, Abort, ListParts, ListMultipartUploads); V1 or V4 signed,\n" +
			"        normally with the upload credentials CreateUploadMedia hands out, which may\n" +
			"        only write their one object and expire after --sts-ttl.\n" +
			"  GET /_emulator/media   every asset as JSON\n" +
			"  GET /_emulator/stats   requests per action, faults injected, bytes stored\n" +
			"  GET|PUT|DELETE /_emulator/faults   the fault spec in force (PUT a SPEC; ?seed=N)\n" +
			"  POST /_emulator/sts[?ttl=1h]       a temporary key for the account (STS-style)\n\n" +
			"Assets, objects, unfinished multipart uploads and temporary keys are kept in --data and\n" +
			"survive a restart.\n\n" +
			"Point a mount at it:\n" +
			"  ALIBABA_CLOUD_ACCESS_KEY_ID=emulator ALIBABA_CLOUD_ACCESS_KEY_SECRET=emulator-secret \\\n" +
			"    imsfs mount --endpoint http://ADDR MOUNTPOINT\n\n" + emulator.FaultSyntax,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9000", Usage: "`ADDR` to listen on (port 0 picks a free one)"},
			&cli.StringFlag{Name: "data", Required: true, Usage: "`DIR` that keeps assets, objects, multipart uploads and keys"},
			&cli.StringFlag{Name: "access-key-id", Value: "emulator", Usage: "the AccessKeyId of the account"},
			&cli.StringFlag{Name: "access-key-secret", Value: "emulator-secret", Usage: "the AccessKeySecret of the account"},
			&cli.StringFlag{Name: "region", Value: "cn-shanghai", Usage: "region named in upload credentials and checked in OSS V4 signatures"},
			&cli.DurationFlag{Name: "sts-ttl", Value: 3000e9, Usage: "how long upload credentials stay valid (IMS documents 3000 s)"},
			&cli.DurationFlag{Name: "ready-delay", Value: time.Second, Usage: "time from a complete object to the asset's Normal status (IMS takes a while; 0 is never the service's)"},
			&cli.IntFlag{Name: "max-parts", Value: 10000, Usage: "parts one multipart upload may have (OSS: 10,000; lower it to test large files small)"},
			&cli.StringFlag{Name: "faults", Usage: "fault `SPEC` to inject (the syntax is above)"},
			&cli.StringFlag{Name: "qps", Usage: "`ACTION=N[,ACTION=N…]`: calls a second an IMS action takes; past that it answers Throttling.Api, as the service's flow control does (e.g. CreateUploadMedia=5)"},
			&cli.Uint64Flag{Name: "fault-seed", Usage: "`SEED` for the fault draws, for repeatable runs"},
			&cli.BoolFlag{Name: "debug", Usage: "log every refused request and injected fault"},
		},
		Action: func(c *cli.Context) error {
			log := newLogger(c.Bool("debug"))
			if err := os.MkdirAll(c.String("data"), 0o755); err != nil {
				return err
			}
			qps, err := emulator.ParseQPS(c.String("qps"))
			if err != nil {
				return usagef("imsfs emulator --qps: %v", err)
			}
			emu, err := emulator.New(emulator.Options{
				QPS:             qps,
				AccessKeyID:     c.String("access-key-id"),
				AccessKeySecret: c.String("access-key-secret"),
				DataDir:         c.String("data"),
				Region:          c.String("region"),
				STSTTL:          c.Duration("sts-ttl"),
				ReadyDelay:      c.Duration("ready-delay"),
				MaxParts:        c.Int("max-parts"),
				Faults:          c.String("faults"),
				FaultSeed:       c.Uint64("fault-seed"),
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
