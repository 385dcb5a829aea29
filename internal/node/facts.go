package node

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/k3sctl/k3sctl/internal/k3s"
	"github.com/k3sctl/k3sctl/internal/ssh"
)

// Facts is what a host is now, gathered read-only.
type Facts struct {
	Host              string              `json:"host"`
	Hostname          string              `json:"hostname"`
	MachineID         string              `json:"machineId,omitempty"` // /etc/machine-id; "" when absent
	OS                OSRelease           `json:"os"`
	Machine           string              `json:"machine"`             // uname -m
	Arch              k3s.Arch            `json:"arch"`                // "" when K3s has no release for Machine
	ArchError         string              `json:"archError,omitempty"` // why Arch is ""
	Kernel            string              `json:"kernel"`
	InitSystem        string              `json:"initSystem"` // "systemd", "openrc" or ""
	Sudo              ssh.SudoMode        `json:"sudo"`
	User              string              `json:"user"`
	K3sVersion        string              `json:"k3sVersion"` // "" when /usr/local/bin/k3s is absent
	K3sBinarySHA256   string              `json:"k3sBinarySha256"`
	Services          Services            `json:"services"`
	ServerTokenExists bool                `json:"serverTokenExists"`
	KubeconfigExists  bool                `json:"kubeconfigExists"`
	FileHashes        map[string]string   `json:"fileHashes,omitempty"` // path → sha256, "" when missing
	FileStats         map[string]FileStat `json:"fileStats,omitempty"`  // of the hashed files that exist
	// FileContents are the ReadFiles that exist, by path.
	FileContents map[string]string `json:"-"`
	// Stale are temporary files an interrupted run left in
	// FactsOptions.StaleDirs.
	Stale         []string `json:"stale,omitempty"`
	MemTotalBytes int64    `json:"memTotalBytes"`
	DiskFreeBytes int64    `json:"diskFreeBytes"`
	DiskFreePath  string   `json:"diskFreePath"` // /var/lib/rancher or its nearest existing parent
	MemoryCgroup  bool     `json:"memoryCgroup"`
	// BootCmdline is the Raspberry Pi boot command line file
	// (/boot/firmware/cmdline.txt, or /boot/cmdline.txt on older images);
	// "" when the host has neither.
	BootCmdline string `json:"bootCmdline,omitempty"`
	PrimaryIP   string `json:"primaryIp"`
	// Interfaces are the network interfaces with a global address, in the
	// host's order; DefaultInterface is the one of the default route,
	// which K3s advertises when nothing else is chosen.
	Interfaces       []Interface `json:"interfaces"`
	DefaultInterface string      `json:"defaultInterface"`
	// SSHServerAddress and SSHServerPort are where the host's sshd got
	// this connection ($SSH_CONNECTION): behind a port-forwarding proxy
	// or a jump host, the host's own address and port on its network.
	SSHServerAddress string `json:"sshServerAddress,omitempty"`
	SSHServerPort    int    `json:"sshServerPort,omitempty"`
	// SSHClient: OpenSSH's ssh client is installed.
	SSHClient bool `json:"sshClient"`
	// Privileged is false when the root-only facts (token, kubeconfig,
	// hashes) could not be read: no sudo, or no sudo password.
	Privileged bool `json:"privileged"`
	// Certs are the certificates found in FactsOptions.CertDirs.
	Certs []Cert `json:"certs,omitempty"`
}

// OSRelease is the part of /etc/os-release k3sctl uses.
type OSRelease struct {
	ID         string `json:"id"`
	VersionID  string `json:"versionId"`
	PrettyName string `json:"prettyName"`
}

// Interface is one network interface and its global addresses, in CIDR
// form (10.0.0.5/24).
type Interface struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// Services is the state of the K3s services.
type Services struct {
	K3s      ServiceState `json:"k3s"`
	K3sAgent ServiceState `json:"k3sAgent"`
}

// ServiceState is one service's state.
type ServiceState struct {
	Installed bool `json:"installed"`
	Active    bool `json:"active"`
	// State is systemd's ActiveState (active, inactive, failed,
	// activating, …); under OpenRC active or inactive.
	State string `json:"state,omitempty"`
}

// FileStat is a remote file's size and permission bits.
type FileStat struct {
	Size int64       `json:"size"`
	Mode os.FileMode `json:"mode"`
}

// FactsOptions asks for more than the fixed facts.
type FactsOptions struct {
	HashFiles []string // sha256, size and mode of these paths; "" for a missing file
	// ReadFiles are small root-only text files whose content is read
	// (k3sctl's own records; never secrets).
	ReadFiles []string
	// CertDirs are directories whose *.crt files are read (as root) and
	// parsed here into Facts.Certs: only the certificates, never a key.
	CertDirs []string
	// StaleDirs are directories (not below) where temporary files of an
	// interrupted run are looked for (ssh.StalePatterns): Facts.Stale.
	StaleDirs []string
}

// MemoryCgroupHint is the fix for the most common K3s failure on a
// Raspberry Pi.
const MemoryCgroupHint = "the memory cgroup is disabled, and K3s will not start without it: " +
	"on a Raspberry Pi add `cgroup_memory=1 cgroup_enable=memory` to the single line in " +
	"/boot/firmware/cmdline.txt (/boot/cmdline.txt on older systems) and reboot"

// Hints are problems visible in the facts, with their fix.
func (f *Facts) Hints() []string {
	var h []string
	if f.ArchError != "" {
		h = append(h, f.ArchError)
	}
	if !f.MemoryCgroup {
		h = append(h, MemoryCgroupHint)
	}
	if f.InitSystem == "" {
		h = append(h, "no systemd or openrc found: k3sctl can only install K3s as a systemd or OpenRC service")
	}
	if f.Sudo == ssh.SudoNone {
		h = append(h, "user "+f.User+" is not root and has no sudo: log in as root or install sudo")
	}
	return h
}

// GatherFacts reads a host's facts in one round trip. With a
// password-sudo user whose password is not known yet, a second one follows
// (the client asks for the password then).
func GatherFacts(ctx context.Context, c FactsConn, o FactsOptions) (*Facts, error) {
	args := []string{"sh", "-c", factsScript(o), "sh"}
	pw := c.SudoPasswordKnown()
	if pw {
		args = append(args, "pw")
	}
	res, err := c.Run(ctx, Command(args...), ssh.RunOptions{PasswordFirst: pw})
	if err != nil {
		return nil, err
	}
	f, kv := parseFacts(string(res.Stdout), o)
	f.Host = c.Host()
	c.NoteSudo(f.Sudo, kv["privileged"] == "done")

	switch kv["privileged"] {
	case "done":
	case "needs-password", "failed":
		// Asks (or fails clearly), then reads the root-only part alone.
		pres, err := c.Run(ctx, factsPrivilegedScript(o), ssh.RunOptions{Sudo: true})
		if err != nil {
			return f, err
		}
		p, pkv := parseFacts(string(pres.Stdout), o)
		mergePrivileged(f, p, pkv)
	default:
		return f, &ssh.Error{Host: c.Host(), Op: "facts", Err: fmt.Errorf("incomplete answer from the facts script: %s", lastLine(string(res.Stderr)))}
	}
	return f, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func mergePrivileged(f, p *Facts, kv map[string]string) {
	f.K3sBinarySHA256 = p.K3sBinarySHA256
	f.ServerTokenExists = p.ServerTokenExists
	f.KubeconfigExists = p.KubeconfigExists
	f.Services = p.Services
	f.FileHashes = p.FileHashes
	f.FileStats = p.FileStats
	f.FileContents = p.FileContents
	f.Certs = p.Certs
	f.Stale = p.Stale
	f.Privileged = kv["privileged"] == "done"
}

// factsScript runs as the login user. It prints "key<TAB>value" lines; the
// root-only part goes through sudo within the same command, with the
// password (when "pw" is the first argument) read by sudo from stdin.
func factsScript(o FactsOptions) string {
	return `export LC_ALL=C
p() { printf '%s\t%s\n' "$1" "$2"; }
p user "$(id -un)"
p hostname "$(uname -n)"
[ -r /etc/machine-id ] && p machineid "$(head -c 64 /etc/machine-id)"
p machine "$(uname -m)"
p kernel "$(uname -r)"
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then while IFS= read -r l; do p os "$l"; done < "$f"; break; fi
done
if [ -x /sbin/openrc-run ]; then p init openrc
elif command -v systemctl >/dev/null 2>&1; then p init systemd
else p init ""; fi
if [ -x /usr/local/bin/k3s ]; then p k3sversion "$(/usr/local/bin/k3s --version 2>/dev/null | head -n 1)"; fi
while read -r k v _; do [ "$k" = MemTotal: ] && p memtotal "$v"; done < /proc/meminfo
d=/var/lib/rancher
while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
p diskpath "$d"
df -Pk -- "$d" 2>/dev/null | { read -r _; read -r _ _ _ a _; p diskfree "$a"; }
if [ -r /proc/cgroups ]; then
  while read -r n _ _ e; do [ "$n" = memory ] && p cgroupmem "$e"; done < /proc/cgroups
fi
if [ -r /sys/fs/cgroup/cgroup.controllers ]; then p cgroup2 "$(cat /sys/fs/cgroup/cgroup.controllers)"; fi
if [ -r /proc/cmdline ]; then p cmdline "$(cat /proc/cmdline)"; fi
for b in /boot/firmware/cmdline.txt /boot/cmdline.txt; do if [ -f "$b" ]; then p bootcmdline "$b"; break; fi; done
if command -v ip >/dev/null 2>&1; then
  p route "$(ip -o route get 1.1.1.1 2>/dev/null | head -n 1)"
  p addr "$(ip -o -4 addr show scope global 2>/dev/null | head -n 1)"
  ip -o addr show scope global 2>/dev/null | while IFS= read -r l; do p ifaddr "$l"; done
fi
p sshconn "${SSH_CONNECTION:-}"
command -v ssh >/dev/null 2>&1 && p sshclient 1
P=` + Quote(factsPrivilegedScript(o)) + `
if [ "$(id -u)" = 0 ]; then p sudo root; sh -c "$P"
elif ! command -v sudo >/dev/null 2>&1; then
  p sudo none; sh -c "$P" | grep -v '^privileged'; p privileged unprivileged
elif [ "$1" = pw ]; then
  if sudo -n true >/dev/null 2>&1; then p sudo nopasswd; sudo -n -- sh -c "$P" || p privileged failed
  else p sudo password; sudo -S -k -p '' -- sh -c "$P" || p privileged failed; fi
elif o=$(sudo -n -- sh -c "$P" 2>/dev/null); then p sudo nopasswd; printf '%s\n' "$o"
elif [ -n "$o" ]; then p sudo nopasswd; printf '%s\n' "$o"; p privileged failed
else p sudo password; p privileged needs-password
fi
`
}

// factsPrivilegedScript is the root-only part.
func factsPrivilegedScript(o FactsOptions) string {
	var b strings.Builder
	b.WriteString(`export LC_ALL=C
p() { printf '%s\t%s\n' "$1" "$2"; }
h() { if [ -f "$2" ]; then s=$(sha256sum < "$2") && p "$1" "${s%% *}" && p "$1.stat" "$(stat -c '%s %a' -- "$2")"; fi; }
r() { if [ -f "$2" ]; then while IFS= read -r l || [ -n "$l" ]; do p "$1" "$l"; done < "$2"; fi; }
c() { for f in "$1"/*.crt; do [ -f "$f" ] && r "cert:$f" "$f"; done; }
` + binaryHashScript("k3ssha", k3s.BinaryPath, BinaryStampPath) + `[ -e /var/lib/rancher/k3s/server/token ] && p token 1
[ -e /etc/rancher/k3s/k3s.yaml ] && p kubeconfig 1
if [ -x /sbin/openrc-run ]; then
  for s in k3s k3s-agent; do
    [ -f /etc/init.d/$s ] && p svc.$s.installed 1
    rc-service $s status >/dev/null 2>&1 && p svc.$s.active 1
  done
elif command -v systemctl >/dev/null 2>&1; then
  systemctl show -p Id -p LoadState -p ActiveState k3s.service k3s-agent.service 2>/dev/null | while IFS= read -r l; do p systemd "$l"; done
fi
`)
	// One sha256sum and one stat for every file (a process each costs
	// more than hashing these small files); a path those would print
	// escaped is hashed alone.
	var batch []string
	for i, f := range o.HashFiles {
		if strings.ContainsAny(f, "\\\n\r") {
			b.WriteString(Command("h", "hash."+strconv.Itoa(i), f) + "\n")
			continue
		}
		batch = append(batch, f)
	}
	if len(batch) > 0 {
		b.WriteString("set --\nfor f in " + Command(batch...) + `; do [ -f "$f" ] && set -- "$@" "$f"; done
if [ $# -gt 0 ]; then
  sha256sum -- "$@" | while IFS= read -r l; do p hsum "$l"; done
  stat -c '%s %a %n' -- "$@" | while IFS= read -r l; do p hstat "$l"; done
fi
`)
	}
	for i, f := range o.ReadFiles {
		b.WriteString(Command("r", "read."+strconv.Itoa(i), f) + "\n")
	}
	for _, d := range o.CertDirs {
		b.WriteString(Command("c", strings.TrimSuffix(d, "/")) + "\n")
	}
	if len(o.StaleDirs) > 0 {
		b.WriteString("for d in " + Command(o.StaleDirs...) + "; do\n  [ -d \"$d\" ] || continue\n  for f in")
		for _, pat := range ssh.StalePatterns {
			b.WriteString(` "$d"/` + pat)
		}
		b.WriteString(`; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then p stale "$f"; fi
  done
done
`)
	}
	b.WriteString("p privileged done\n")
	return b.String()
}

// parseFacts reads the key<TAB>value lines.
func parseFacts(out string, o FactsOptions) (*Facts, map[string]string) {
	f := &Facts{}
	kv := map[string]string{}
	read := map[string][]string{}  // read.N → lines
	certs := map[string][]string{} // path → PEM lines
	var certOrder []string
	var unit string
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		switch k {
		case "os":
			key, val, _ := strings.Cut(v, "=")
			val = unquoteOSRelease(val)
			switch key {
			case "ID":
				f.OS.ID = val
			case "VERSION_ID":
				f.OS.VersionID = val
			case "PRETTY_NAME":
				f.OS.PrettyName = val
			}
		case "ifaddr":
			f.addInterfaceAddr(v)
		case "stale":
			f.Stale = append(f.Stale, v)
		case "hsum":
			// "<sha256>  <path>", as sha256sum prints it.
			if sum, path, ok := strings.Cut(v, "  "); ok {
				if i := slices.Index(o.HashFiles, path); i >= 0 {
					kv["hash."+strconv.Itoa(i)] = sum
				}
			}
		case "hstat":
			// "<size> <mode> <path>"
			if w := strings.SplitN(v, " ", 3); len(w) == 3 {
				if i := slices.Index(o.HashFiles, w[2]); i >= 0 {
					kv["hash."+strconv.Itoa(i)+".stat"] = w[0] + " " + w[1]
				}
			}
		case "systemd":
			// Blocks of Id=, LoadState=, ActiveState= per unit.
			key, val, _ := strings.Cut(v, "=")
			switch key {
			case "Id":
				unit = val
			case "LoadState":
				if s := f.Services.unit(unit); s != nil {
					s.Installed = val == "loaded"
				}
			case "ActiveState":
				if s := f.Services.unit(unit); s != nil {
					s.Active = val == "active" || val == "activating" || val == "reloading"
					s.State = val
				}
			}
		default:
			if strings.HasPrefix(k, "read.") {
				read[k] = append(read[k], v)
				continue
			}
			if path, ok := strings.CutPrefix(k, "cert:"); ok {
				if _, seen := certs[path]; !seen {
					certOrder = append(certOrder, path)
				}
				certs[path] = append(certs[path], v)
				continue
			}
			kv[k] = v
		}
	}
	f.User = kv["user"]
	f.Hostname = kv["hostname"]
	f.MachineID = strings.TrimSpace(kv["machineid"])
	f.Machine = kv["machine"]
	f.Kernel = kv["kernel"]
	f.InitSystem = kv["init"]
	f.Sudo = ssh.SudoMode(kv["sudo"])
	if w := strings.Fields(kv["k3sversion"]); len(w) >= 3 {
		f.K3sVersion = w[2]
	}
	f.K3sBinarySHA256 = kv["k3ssha"]
	f.ServerTokenExists = kv["token"] == "1"
	f.KubeconfigExists = kv["kubeconfig"] == "1"
	for _, s := range []string{"k3s", "k3s-agent"} {
		if st := f.Services.unit(s + ".service"); st != nil {
			if kv["svc."+s+".installed"] == "1" {
				st.Installed = true
			}
			if kv["svc."+s+".active"] == "1" {
				st.Active = true
			}
			if kv["svc."+s+".installed"] == "1" {
				st.State = "inactive"
				if st.Active {
					st.State = "active"
				}
			}
		}
	}
	if n, err := strconv.ParseInt(kv["memtotal"], 10, 64); err == nil {
		f.MemTotalBytes = n * 1024
	}
	if n, err := strconv.ParseInt(kv["diskfree"], 10, 64); err == nil {
		f.DiskFreeBytes = n * 1024
	}
	f.DiskFreePath = kv["diskpath"]
	f.MemoryCgroup = memoryCgroup(kv)
	f.BootCmdline = kv["bootcmdline"]
	f.PrimaryIP = primaryIP(kv["route"], kv["addr"])
	f.DefaultInterface = routeDev(kv["route"])
	f.SSHServerAddress, f.SSHServerPort = sshServer(kv["sshconn"])
	f.SSHClient = kv["sshclient"] == "1"
	if f.Machine != "" {
		if a, err := k3s.ArchFromUname(f.Machine); err != nil {
			f.ArchError = err.Error()
		} else {
			f.Arch = a
		}
	}
	if len(o.HashFiles) > 0 {
		f.FileHashes = make(map[string]string, len(o.HashFiles))
		f.FileStats = map[string]FileStat{}
		for i, p := range o.HashFiles {
			f.FileHashes[p] = kv[fmt.Sprintf("hash.%d", i)]
			if st, ok := parseStat(kv[fmt.Sprintf("hash.%d.stat", i)]); ok {
				f.FileStats[p] = st
			}
		}
	}
	for i, p := range o.ReadFiles {
		if lines, ok := read[fmt.Sprintf("read.%d", i)]; ok {
			if f.FileContents == nil {
				f.FileContents = map[string]string{}
			}
			f.FileContents[p] = strings.Join(lines, "\n") + "\n"
		}
	}
	for _, path := range certOrder {
		f.Certs = append(f.Certs, ParseCert(path, []byte(strings.Join(certs[path], "\n")+"\n")))
	}
	f.Privileged = kv["privileged"] == "done"
	return f, kv
}

// parseStat reads "<size> <octal mode>".
func parseStat(s string) (FileStat, bool) {
	size, mode, ok := strings.Cut(s, " ")
	if !ok {
		return FileStat{}, false
	}
	n, err1 := strconv.ParseInt(size, 10, 64)
	m, err2 := strconv.ParseUint(mode, 8, 32)
	if err1 != nil || err2 != nil {
		return FileStat{}, false
	}
	return FileStat{Size: n, Mode: os.FileMode(m)}, true
}

func (s *Services) unit(name string) *ServiceState {
	switch name {
	case "k3s.service":
		return &s.K3s
	case "k3s-agent.service":
		return &s.K3sAgent
	}
	return nil
}

// memoryCgroup tells from the facts whether the memory cgroup is on: the
// cgroup v1 "enabled" column, else the v2 controllers, and the kernel
// command line, since a kernel booted with the controller off (Raspberry
// Pi firmware adds cgroup_disable=memory) has it off whatever a mounted
// hierarchy lists.
func memoryCgroup(kv map[string]string) bool {
	v1, v2 := kv["cgroupmem"], kv["cgroup2"]
	on := v1 == "1" || (v1 == "" && containsWord(v2, "memory"))
	return on && KernelMemoryCgroup(kv["cmdline"])
}

// KernelMemoryCgroup reads a kernel command line (/proc/cmdline) the way
// the kernel does: cgroup_disable=memory turns the memory controller off,
// and on Raspberry Pi kernels a later cgroup_enable=memory turns it back on.
func KernelMemoryCgroup(cmdline string) bool {
	on := true
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !slices.Contains(strings.Split(v, ","), "memory") {
			continue
		}
		switch k {
		case "cgroup_disable":
			on = false
		case "cgroup_enable":
			on = true
		}
	}
	return on
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// primaryIP is the source address of the default route, else the first
// global IPv4 address.
func primaryIP(route, addr string) string {
	w := strings.Fields(route)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == "src" {
			return w[i+1]
		}
	}
	// "2: eth0    inet 10.0.0.5/24 brd ..."
	w = strings.Fields(addr)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == "inet" {
			ip, _, _ := strings.Cut(w[i+1], "/")
			return ip
		}
	}
	return ""
}

// addInterfaceAddr reads one line of `ip -o addr show`:
// "3: eth1    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth1\ ...".
func (f *Facts) addInterfaceAddr(line string) {
	w := strings.Fields(line)
	if len(w) < 4 || (w[2] != "inet" && w[2] != "inet6") {
		return
	}
	name, _, _ := strings.Cut(w[1], "@")
	for i := range f.Interfaces {
		if f.Interfaces[i].Name == name {
			f.Interfaces[i].Addresses = append(f.Interfaces[i].Addresses, w[3])
			return
		}
	}
	f.Interfaces = append(f.Interfaces, Interface{Name: name, Addresses: []string{w[3]}})
}

// sshServer reads $SSH_CONNECTION: "client-ip client-port server-ip
// server-port".
func sshServer(conn string) (string, int) {
	w := strings.Fields(conn)
	if len(w) != 4 {
		return "", 0
	}
	port, err := strconv.Atoi(w[3])
	if err != nil {
		return "", 0
	}
	return w[2], port
}

// routeDev is the interface of `ip -o route get`'s answer.
func routeDev(route string) string {
	w := strings.Fields(route)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == "dev" {
			return w[i+1]
		}
	}
	return ""
}

func unquoteOSRelease(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		inner := v[1 : len(v)-1]
		if v[0] == '"' {
			var b strings.Builder
			for i := 0; i < len(inner); i++ {
				if inner[i] == '\\' && i+1 < len(inner) {
					i++
				}
				b.WriteByte(inner[i])
			}
			return b.String()
		}
		return inner
	}
	return v
}
