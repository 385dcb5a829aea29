// Command k3sctl provisions K3s clusters over SSH.
package main

import (
	"os"

	"github.com/k3sctl/k3sctl/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
