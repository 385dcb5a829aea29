package ssh

import (
	"fmt"
	"time"

	"github.com/k3sctl/k3sctl/internal/secret"
)

// HostKeyChecking is how an unknown or changed host key is treated.
type HostKeyChecking string

// Host key checking modes, as OpenSSH's StrictHostKeyChecking.
const (
	// HostKeyStrict refuses hosts that are not already in known_hosts.
	HostKeyStrict HostKeyChecking = "strict"
	// HostKeyAcceptNew records unknown hosts and refuses changed keys.
	HostKeyAcceptNew HostKeyChecking = "accept-new"
	// HostKeyOff accepts any key and warns on every connection.
	HostKeyOff HostKeyChecking = "off"
)

// ParseHostKeyChecking accepts k3sctl's names and OpenSSH's
// StrictHostKeyChecking values.
func ParseHostKeyChecking(s string) (HostKeyChecking, error) {
	switch s {
	case "strict", "yes":
		return HostKeyStrict, nil
	case "accept-new", "ask":
		// There is no yes/no question to ask mid-run; accepting new keys
		// and refusing changed ones is the safe part of "ask".
		return HostKeyAcceptNew, nil
	case "off", "no", "none":
		return HostKeyOff, nil
	}
	return "", fmt.Errorf("host key checking must be strict, accept-new or off, not %q", s)
}

// Options says how to reach one host. Empty fields fall back to the ssh
// config file, then to OpenSSH's defaults; set fields win over the file, as
// flags do with ssh.
type Options struct {
	Address    string // IP, name, or a Host alias from the ssh config
	Port       int    // 0: ssh config or 22
	User       string // "": ssh config or the current user
	KeyFiles   []string
	ConfigFile string // "": ~/.ssh/config if present
	Jump       string // "user@host:port[,user@host2]"; "none" disables a ProxyJump from the config
	// Jumps, when set, shares the jump host connections among every
	// host dialled with the same pool (JumpPool); nil: each host has
	// its own.
	Jumps           *JumpPool
	HostKeyChecking HostKeyChecking
	KnownHostsFile  string // "": ssh config UserKnownHostsFile or ~/.ssh/known_hosts
	ConnectTimeout  time.Duration
	// ConnectRetry is how long refused or timed-out connections are retried
	// (a host still booting). 0: one minute; negative: no retry.
	ConnectRetry time.Duration
	SudoPassword secret.Value
	Prompter     Prompter // nil: no terminal; asking for a secret fails with a clear message
	Warnf        func(format string, a ...any)
}

const (
	defaultConnectTimeout  = 15 * time.Second
	defaultConnectRetry    = time.Minute
	defaultKeepAlive       = 15 * time.Second
	defaultKeepAliveMax    = 3
	maxConnectRetryBackoff = 8 * time.Second
)

func (o *Options) warnf(format string, a ...any) {
	if o.Warnf != nil {
		o.Warnf(format, a...)
	}
}
