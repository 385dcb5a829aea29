package preflight

import (
	"errors"
	"strings"

	"github.com/k3sctl/k3sctl/internal/node"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// sudoPasswordWays is how a run can be given the sudo password today.
const sudoPasswordWays = "set K3SCTL_SUDO_PASSWORD, or run on a terminal to be asked"

// Sudo returns the sudo problem of a host from its facts and the error
// gathering them returned (node.GatherFacts returns both when sudo fails),
// or nil when the run can act as root. It makes a sudo failure a sudo
// problem with its fix instead of an unreachable host.
func Sudo(host string, f *node.Facts, err error) *Problem {
	var se *ssh.Error
	sudoErr := errors.As(err, &se) && se.Op == "sudo"
	if f == nil {
		if sudoErr {
			return &Problem{Host: host, Kind: KindSudo, What: se.Err.Error(), Fix: se.Hint, Err: err}
		}
		return nil
	}
	if f.Sudo == ssh.SudoRoot || (f.Privileged && !sudoErr) {
		return nil
	}
	user := f.User
	if user == "" {
		user = "the SSH user"
	}
	p := &Problem{Host: host, Kind: KindSudo, Err: err}
	switch {
	case f.Sudo == ssh.SudoNone:
		p.What = "user " + user + " is not root and sudo is not installed"
		p.Fix = "log in as root (--user root), or install sudo on the host"
	case f.Sudo == ssh.SudoWithPassword && sudoErr && strings.Contains(se.Err.Error(), "not accepted"):
		p.What = "the sudo password for " + user + " was not accepted"
		p.Fix = "give the right sudo password (" + sudoPasswordWays + "), or add a NOPASSWD rule for " + user + " in /etc/sudoers.d on the host"
	case f.Sudo == ssh.SudoWithPassword:
		p.What = "user " + user + " has no passwordless sudo and no sudo password was given"
		p.Fix = "give the sudo password (" + sudoPasswordWays + "), or add a NOPASSWD rule for " + user + " in /etc/sudoers.d on the host"
	default:
		p.What = "user " + user + " cannot use sudo to act as root"
		if sudoErr {
			p.What += ": " + se.Err.Error()
		}
		p.Fix = "allow " + user + " to use sudo on the host, or log in as a user who can (--user)"
	}
	return p
}
