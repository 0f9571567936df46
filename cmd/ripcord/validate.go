package main

import (
	"context"
	"fmt"
)

func cmdValidate(args []string) error {
	fs := newFlags("validate", "-c FILE", "Check a config file: syntax, keys, values, secret files, checker names and each checker's settings.")
	cfgPath := fs.String("c", defaultConfig, "config file")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	cfg, host, err := load(context.Background(), *cfgPath, oneShotLogger)
	if err != nil {
		return err
	}
	host.Close()
	n := len(cfg.AllChecks())
	fmt.Printf("%s: ok (%d services, %d checks)\n", *cfgPath, len(cfg.Services), n)
	for _, w := range cfg.Warnings() {
		fmt.Printf("warning: %s\n", w)
	}
	return nil
}
