package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// endpoint is one host to log in to, with everything the ssh config and the
// flags said about it.
type endpoint struct {
	alias           string // as the user wrote it; what Host patterns match
	hostName        string
	port            int
	user            string
	identityFiles   []string // flags first, then IdentityFile, expanded
	explicitKeys    int      // how many of identityFiles came from flags
	identitiesOnly  bool
	knownHosts      []string // user files; the first one receives new keys
	hashKnownHosts  bool
	hostKeyChecking HostKeyChecking
	connectTimeout  time.Duration
	aliveInterval   time.Duration
	aliveCountMax   int
}

func (e *endpoint) addr() string { return net.JoinHostPort(e.hostName, strconv.Itoa(e.port)) }

// route is the chain of hosts to go through: jump hosts in order, then the
// target.
type route struct {
	jumps  []*endpoint
	target *endpoint
}

// sshConfig is the parsed config file, or nothing when there is none.
type sshConfig struct {
	file string
	cfg  *ssh_config.Config
}

func loadSSHConfig(explicit string, warnf func(string, ...any)) (*sshConfig, error) {
	file := explicit
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return &sshConfig{}, nil
		}
		file = filepath.Join(home, ".ssh", "config")
	}
	parsed, err := parseSSHConfig(file)
	if err != nil {
		if explicit == "" && errors.Is(err, os.ErrNotExist) {
			return &sshConfig{}, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	cfg, err := parsed.cfg, parsed.err
	if err != nil {
		if explicit != "" {
			return nil, fmt.Errorf("ssh config %s: %w", file, err)
		}
		// A config that ssh reads but this parser does not (Match exec, for
		// one) must not make every host unreachable.
		warnf("ignoring %s: %v", file, err)
		return &sshConfig{}, nil
	}
	return &sshConfig{file: file, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) string {
	if c == nil || c.cfg == nil {
		return ""
	}
	v, _ := c.cfg.Get(alias, key)
	return strings.TrimSpace(v)
}

func (c *sshConfig) getAll(alias, key string) []string {
	if c == nil || c.cfg == nil {
		return nil
	}
	v, _ := c.cfg.GetAll(alias, key)
	return v
}

// resolve applies the ssh config and the flags to o, the way ssh does.
func resolve(o *Options) (*route, error) {
	if strings.TrimSpace(o.Address) == "" {
		return nil, errors.New("no address given")
	}
	cfg, err := loadSSHConfig(o.ConfigFile, o.warnf)
	if err != nil {
		return nil, err
	}
	target, err := resolveEndpoint(cfg, o, o.Address, o.User, o.Port)
	if err != nil {
		return nil, err
	}
	r := &route{target: target}

	jump := o.Jump
	if jump == "" {
		jump = cfg.get(o.Address, "ProxyJump")
	}
	if jump != "" && !strings.EqualFold(jump, "none") {
		for _, spec := range strings.Split(jump, ",") {
			u, host, port, err := parseJumpSpec(strings.TrimSpace(spec))
			if err != nil {
				return nil, err
			}
			hop, err := resolveEndpoint(cfg, o, host, u, port)
			if err != nil {
				return nil, err
			}
			r.jumps = append(r.jumps, hop)
		}
	}
	return r, nil
}

// parseJumpSpec reads [user@]host[:port], with [v6]:port for IPv6.
func parseJumpSpec(s string) (user, host string, port int, err error) {
	if s == "" {
		return "", "", 0, errors.New("empty jump host")
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	host = s
	if h, p, splitErr := net.SplitHostPort(s); splitErr == nil {
		host = h
		port, err = strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("jump host %q: bad port %q", s, p)
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("jump host %q: no host", s)
	}
	return user, host, port, nil
}

// resolveEndpoint looks alias up in the config. Values given as arguments
// (from flags or the jump spec) win. Key files, known_hosts and host key
// checking from flags apply to every hop, as they do with ssh -J.
func resolveEndpoint(cfg *sshConfig, o *Options, alias, userName string, port int) (*endpoint, error) {
	e := &endpoint{alias: alias, user: userName, port: port}

	e.hostName = alias
	if hn := cfg.get(alias, "HostName"); hn != "" {
		e.hostName = expandTokens(hn, map[byte]string{'h': alias})
	}
	if e.port == 0 {
		if p := cfg.get(alias, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("ssh config: Host %s: bad Port %q", alias, p)
			}
			e.port = n
		} else {
			e.port = 22
		}
	}
	if e.user == "" {
		e.user = cfg.get(alias, "User")
	}
	if e.user == "" {
		e.user = localUser()
	}

	home, _ := os.UserHomeDir()
	tokens := map[byte]string{'h': e.hostName, 'p': strconv.Itoa(e.port), 'r': e.user, 'u': localUser(), 'd': home, 'n': alias}

	for _, f := range o.KeyFiles {
		e.identityFiles = append(e.identityFiles, expandPath(f, tokens))
	}
	e.explicitKeys = len(e.identityFiles)
	for _, f := range cfg.getAll(alias, "IdentityFile") {
		for _, word := range strings.Fields(f) {
			e.identityFiles = append(e.identityFiles, expandPath(word, tokens))
		}
	}
	e.identitiesOnly = strings.EqualFold(cfg.get(alias, "IdentitiesOnly"), "yes")

	if o.KnownHostsFile != "" {
		e.knownHosts = []string{expandPath(o.KnownHostsFile, tokens)}
	} else if v := cfg.get(alias, "UserKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			e.knownHosts = append(e.knownHosts, expandPath(f, tokens))
		}
	} else if home != "" {
		e.knownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	e.hashKnownHosts = strings.EqualFold(cfg.get(alias, "HashKnownHosts"), "yes")

	e.hostKeyChecking = o.HostKeyChecking
	if e.hostKeyChecking == "" {
		if v := cfg.get(alias, "StrictHostKeyChecking"); v != "" {
			hkc, err := ParseHostKeyChecking(strings.ToLower(v))
			if err != nil {
				return nil, fmt.Errorf("ssh config: Host %s: StrictHostKeyChecking: %w", alias, err)
			}
			e.hostKeyChecking = hkc
		} else {
			e.hostKeyChecking = HostKeyAcceptNew
		}
	}
	if _, err := ParseHostKeyChecking(string(e.hostKeyChecking)); err != nil {
		return nil, err
	}

	e.connectTimeout = o.ConnectTimeout
	if e.connectTimeout == 0 {
		if v := cfg.get(alias, "ConnectTimeout"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("ssh config: Host %s: bad ConnectTimeout %q", alias, v)
			}
			e.connectTimeout = time.Duration(n) * time.Second
		}
	}
	if e.connectTimeout <= 0 {
		e.connectTimeout = defaultConnectTimeout
	}

	e.aliveInterval = defaultKeepAlive
	if v := cfg.get(alias, "ServerAliveInterval"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("ssh config: Host %s: bad ServerAliveInterval %q", alias, v)
		}
		// 0 means off in ssh; keepalives are how a dead host is noticed
		// during a long step, so 0 keeps k3sctl's default instead.
		if n > 0 {
			e.aliveInterval = time.Duration(n) * time.Second
		}
	}
	e.aliveCountMax = defaultKeepAliveMax
	if v := cfg.get(alias, "ServerAliveCountMax"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			e.aliveCountMax = n
		}
	}
	return e, nil
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// expandPath expands a leading ~ and ssh's % tokens.
func expandPath(p string, tokens map[byte]string) string {
	p = expandTokens(p, tokens)
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	return p
}

func expandTokens(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Destination is where o's address leads once the ssh config is applied:
// the host name that is dialled, and whether the way goes through a jump
// host (which then resolves the name, not this machine).
func Destination(o Options) (hostName string, viaJump bool, err error) {
	r, err := resolve(&o)
	if err != nil {
		return "", false, err
	}
	return r.target.hostName, len(r.jumps) > 0, nil
}
