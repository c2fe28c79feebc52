package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/imsfs/imsfs/cmd/imsfs/config"
)

// newConfigCommand is `imsfs config`: an example file, and a check of one.
func newConfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "print an example configuration file, or check one",
		Subcommands: []*cli.Command{
			{
				Name:  "example",
				Usage: "print a commented configuration file (every setting, with its default)",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprint(c.App.Writer, config.Example)
					return err
				},
			},
			{
				Name:      "check",
				Usage:     "check a configuration file as a mount would read it: every problem with its line",
				ArgsUsage: "[FILE]",
				Action: func(c *cli.Context) error {
					p := c.Args().First()
					if p == "" {
						p = config.DefaultPath()
					}
					cfg, err := config.Load(p)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: ok: %d settings, %d folders\n", p, len(cfg.Settings), len(cfg.Folders))
					for _, f := range cfg.Folders {
						fmt.Fprintf(c.App.Writer, "  %s/ → type %s, business type %s\n", f.Path, f.Rule.Type, f.Rule.BusinessType)
					}
					return nil
				},
			},
		},
	}
}
