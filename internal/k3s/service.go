package k3s

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// managedHeader starts every file k3sctl writes on a node, so that whoever
// edits one by hand learns that the next apply replaces it.
const managedHeader = "# Managed by k3sctl. Local edits are replaced by the next `k3sctl apply`.\n"

// SystemdUnit is the systemd unit of the role.
//
// The command line carries nothing but the role: settings live in
// config.yaml and secrets in config.yaml or the env file, both mode 0600,
// because a unit file is world-readable and a command line shows in ps.
// With TimeoutStartSec=0 `systemctl start` waits forever for a node that
// cannot join, so callers start it with --no-block and watch readiness
// themselves.
func SystemdUnit(r Role) []byte {
	var b bytes.Buffer
	b.WriteString(managedHeader)
	fmt.Fprintf(&b, `[Unit]
Description=Lightweight Kubernetes (%[1]s)
Documentation=https://docs.k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-%[2]s
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=%[3]s %[1]s
`, roleOrServer(r), EnvPath(r), BinaryPath)
	return b.Bytes()
}

func roleOrServer(r Role) Role {
	if r == Agent {
		return Agent
	}
	return Server
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvFile renders the environment file of the role's service (EnvPath for
// systemd, OpenRCEnvPath for OpenRC); it is written with mode 0600 because
// proxy URLs and K3S_ variables may hold credentials.
//
// Values are single-quoted where needed, a form systemd's EnvironmentFile=
// and the OpenRC script's `. file` read alike. Single quotes inside values
// are refused: the two parsers do not agree on every way to escape them.
func EnvFile(r Role, env map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(env))
	for k, v := range env {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q: use letters, digits and _", k)
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("environment variable %s: value spans several lines", k)
		}
		if strings.Contains(v, "'") {
			return nil, fmt.Errorf("environment variable %s: value holds a single quote, which env files cannot carry safely", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(managedHeader)
	fmt.Fprintf(&b, "# Environment of the %s service.\n", ServiceName(r))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(env[k]))
	}
	return b.Bytes(), nil
}

// shellQuote quotes s for POSIX sh so that it stays one word, whatever it
// holds.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// OpenRCScript is the init script of the role on OpenRC systems (Alpine).
// supervise-daemon restarts K3s like Restart=always does under systemd.
func OpenRCScript(r Role) []byte {
	var b bytes.Buffer
	b.WriteString("#!/sbin/openrc-run\n")
	b.WriteString(managedHeader)
	fmt.Fprintf(&b, `
name=%[1]s
description="Lightweight Kubernetes (%[2]s)"
supervisor=supervise-daemon
command=%[3]s
command_args=%[2]s
output_log=%[4]s
error_log=%[4]s
pidfile=/var/run/%[1]s.pid
respawn_delay=5
respawn_max=0

depend() {
	after network-online
	want cgroups
}

start_pre() {
	modprobe br_netfilter 2>/dev/null || true
	modprobe overlay 2>/dev/null || true
}

# Proxy settings and K3S_ variables, as EnvironmentFile= gives them under
# systemd.
set -a
if [ -f /etc/environment ]; then . /etc/environment; fi
if [ -f %[5]s ]; then . %[5]s; fi
set +a
`, ServiceName(r), roleOrServer(r), BinaryPath, OpenRCLogPath(r), OpenRCEnvPath)
	return b.Bytes()
}
