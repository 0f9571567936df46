package main

import "fmt"

func cmdLab(args []string) error {
	return fmt.Errorf("lab: not built yet")
}
