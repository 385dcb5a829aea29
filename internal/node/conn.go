package node

import (
	"context"

	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Conn is what the node layer needs of a connection; *ssh.Client is one.
type Conn interface {
	Host() string
	Run(ctx context.Context, cmd string, o ssh.RunOptions) (ssh.Result, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// FactsConn is a Conn that can also share what the facts script learnt
// about sudo; *ssh.Client is one.
type FactsConn interface {
	Conn
	SudoPasswordKnown() bool
	NoteSudo(mode ssh.SudoMode, passwordAccepted bool)
}

var (
	_ Conn      = (*ssh.Client)(nil)
	_ FactsConn = (*ssh.Client)(nil)
)
