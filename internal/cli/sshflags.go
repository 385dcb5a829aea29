package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/k3sctl/k3sctl/internal/secret"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// sudoPasswordEnv gives the sudo password without a terminal (CI, scripts).
const sudoPasswordEnv = "K3SCTL_SUDO_PASSWORD"

// sshFlags are the SSH settings every command that reaches hosts accepts.
// Empty values fall back to the ssh config file, as with ssh.
type sshFlags struct {
	user            string
	keys            []string
	port            int
	config          string
	jump            string
	hostKeyChecking string
	connectTimeout  time.Duration
}

func addSSHFlags(fs *pflag.FlagSet, f *sshFlags) {
	fs.StringVarP(&f.user, "user", "u", "", "SSH user (default: User from the ssh config, else your local user name)")
	fs.StringArrayVar(&f.keys, "ssh-key", nil, "private key file to log in with, repeatable (tried after ssh-agent, before the default keys)")
	fs.Var((*portValue)(&f.port), "ssh-port", "SSH port (default: Port from the ssh config, else 22)")
	fs.StringVar(&f.config, "ssh-config", "", "ssh config file (default: ~/.ssh/config if present)")
	fs.StringVar(&f.jump, "ssh-jump", "", "jump host(s) to connect through: user@host:port[,user@host2] (like ssh -J)")
	fs.Var((*hostKeyCheckingValue)(&f.hostKeyChecking), "ssh-host-key-checking", "strict, accept-new or off (default: StrictHostKeyChecking from the ssh config, else accept-new)")
	fs.DurationVar(&f.connectTimeout, "ssh-connect-timeout", 0, "time allowed for one connection attempt (default: ConnectTimeout from the ssh config, else 15s)")
}

// hostKeyCheckingValue rejects a bad mode while the flags are parsed, so
// the mistake is a usage error before anything connects.
type hostKeyCheckingValue string

func (v *hostKeyCheckingValue) String() string { return string(*v) }
func (v *hostKeyCheckingValue) Type() string   { return "mode" }
func (v *hostKeyCheckingValue) Set(s string) error {
	m, err := ssh.ParseHostKeyChecking(s)
	if err != nil {
		return err
	}
	*v = hostKeyCheckingValue(m)
	return nil
}

type portValue int

func (v *portValue) String() string {
	if *v == 0 {
		return ""
	}
	return strconv.Itoa(int(*v))
}
func (v *portValue) Type() string { return "port" }
func (v *portValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("must be a port number between 1 and 65535, not %q", s)
	}
	*v = portValue(n)
	return nil
}

// sshResolver turns a host address into connection options: the flags,
// plus per-host users (join's --server-user), plus what every connection
// of one run shares (one terminal prompter, one sudo password).
type sshResolver struct {
	base  ssh.Options
	users map[string]string
}

// resolver makes the options; warnings go to io's stderr, and prompts to
// the factory's terminal, opened only when a host asks for a secret.
func (f *sshFlags) resolver(fac *Factory) sshResolver {
	o := ssh.Options{
		User:            f.user,
		Port:            f.port,
		KeyFiles:        f.keys,
		ConfigFile:      f.config,
		Jump:            f.jump,
		HostKeyChecking: ssh.HostKeyChecking(f.hostKeyChecking),
		ConnectTimeout:  f.connectTimeout,
		Warnf:           fac.IO.Warnf,
		Jumps:           fac.jumpPool(),
	}
	if pw := os.Getenv(sudoPasswordEnv); pw != "" {
		o.SudoPassword = secret.New(pw)
	}
	if p := fac.prompter(); p != nil {
		o.Prompter = p
	}
	return sshResolver{base: o, users: map[string]string{}}
}

// override sets the SSH user for one address.
func (r *sshResolver) override(addr, user string) { r.users[addr] = user }

// options are the connection options for addr.
func (r sshResolver) options(addr string) ssh.Options {
	o := r.base
	o.Address = addr
	if u := r.users[addr]; u != "" {
		o.User = u
	}
	return o
}
