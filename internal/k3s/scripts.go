package k3s

import (
	"bytes"
	"strings"
	"text/template"
)

// scriptLayout is where the node scripts act. The scripts on a node always
// use nodeLayout; tests point it at a scratch directory instead, so that
// running the real scripts cannot touch the test machine.
type scriptLayout struct {
	BinDir, DataDir, ConfigDir, UnitDir, InitDir string
	KubeletDir, RunDir, FlannelRunDir, CNIDir    string
	NetnsDir, NodeDir                            string
	// SbinPath is added to PATH: ip and iptables live in sbin, which a
	// non-login root shell may lack.
	SbinPath string

	// Filled in by render.
	Role          Role
	Service       string
	Binary        string
	Killall       string
	Uninstall     string
	Unit, EnvFile string
	InitScript    string
	Links         []string
	LinkTargets   []string
	Interfaces    []string
	Header        string
}

func nodeLayout() scriptLayout {
	return scriptLayout{
		BinDir:        BinDir,
		DataDir:       DataDir,
		ConfigDir:     ConfigDir,
		UnitDir:       SystemdUnitDir,
		InitDir:       OpenRCInitDir,
		KubeletDir:    KubeletDir,
		RunDir:        RunDir,
		FlannelRunDir: FlannelRunDir,
		CNIDir:        CNIDir,
		NetnsDir:      "/run/netns",
		NodeDir:       NodeDir,
		SbinPath:      "/usr/local/sbin:/usr/sbin:/sbin",
	}
}

// KillallScript is k3s-killall.sh: it stops K3s and everything K3s started
// on the node (services, containers, mounts, interfaces, firewall rules)
// and can be run any number of times. Upgrades and uninstalls use it, and
// so can people on the node.
func KillallScript() []byte { return nodeLayout().render(killallTemplate, Server) }

// UninstallScript is k3s-uninstall.sh or k3s-agent-uninstall.sh: it stops
// K3s and removes what the install left, except /etc/rancher/node, and
// except what another K3s service on the same node still needs.
func UninstallScript(r Role) []byte { return nodeLayout().render(uninstallTemplate, r) }

func (l scriptLayout) render(t *template.Template, r Role) []byte {
	r = roleOrServer(r)
	svc := ServiceName(r)
	l.Role = r
	l.Service = svc
	l.Binary = l.BinDir + "/k3s"
	l.Killall = l.BinDir + "/k3s-killall.sh"
	l.Uninstall = l.BinDir + "/" + strings.TrimPrefix(UninstallPath(r), BinDir+"/")
	l.Unit = l.UnitDir + "/" + svc + ".service"
	l.EnvFile = l.Unit + ".env"
	l.InitScript = l.InitDir + "/" + svc
	l.Links = nil
	for _, p := range Links() {
		l.Links = append(l.Links, l.BinDir+strings.TrimPrefix(p, BinDir))
	}
	l.LinkTargets = []string{LinkTarget, l.Binary}
	l.Interfaces = []string{"cni0", "flannel.1", "flannel-v6.1", "kube-ipvs0", "flannel-wg", "flannel-wg-v6"}
	l.Header = strings.TrimSuffix(managedHeader, "\n")
	var b bytes.Buffer
	if err := t.Execute(&b, l); err != nil {
		// The templates are fixed and the data is ours: a failure is a bug.
		panic(err)
	}
	return b.Bytes()
}

var scriptFuncs = template.FuncMap{
	"q": shellQuote,
	"words": func(ws []string) string {
		q := make([]string, len(ws))
		for i, w := range ws {
			q[i] = shellQuote(w)
		}
		return strings.Join(q, " ")
	},
}

// The part both scripts start with: become root, and find the tools that
// live in sbin even when the caller's PATH lacks it.
const scriptPrologue = `#!/bin/sh
{{.Header}}
{{- define "become-root"}}
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo "$0" "$@"
	fi
	echo "$0: must run as root, and sudo is not installed" >&2
	exit 1
fi

{{- if .SbinPath}}

PATH="$PATH:{{.SbinPath}}"
export PATH
{{- end}}
{{- end}}
{{- define "remove-unless-mounted"}}

# Removes each path unless something is still mounted at or below it:
# removing that would delete the contents of the mounted file system.
remove_unless_mounted() {
	rc=0
	for path in "$@"; do
		busy=""
		while read -r _ target _; do
			case $target in
			"$path" | "$path"/*)
				busy=$target
				break
				;;
			esac
		done </proc/self/mounts
		if [ -n "$busy" ]; then
			echo "$0: not removing $path: $busy is still mounted" >&2
			rc=1
			continue
		fi
		rm -rf "$path" || rc=1
	done
	return "$rc"
}
{{- end}}`

var killallTemplate = template.Must(template.New("killall").Funcs(scriptFuncs).Parse(scriptPrologue + `
# Stops K3s and everything it started on this node. Each step is best
# effort and checks for its tools first: minimal systems lack ip or
# iptables, and a half-removed node must still be cleanable.
{{template "become-root" .}}

data_dir={{q .DataDir}}

for unit in {{q .UnitDir}}/k3s*.service; do
	[ -s "$unit" ] || continue
	if command -v systemctl >/dev/null 2>&1; then
		systemctl stop "${unit##*/}" || true
	fi
done
for script in {{q .InitDir}}/k3s*; do
	[ -x "$script" ] || continue
	"$script" stop || true
done

# "pid ppid" of every process, read from /proc so that ps is not needed.
process_table() {
	for stat in /proc/[0-9]*/stat; do
		{ read -r line <"$stat"; } 2>/dev/null || continue
		# The command name is in parentheses and may hold spaces; the
		# parent pid is the second field after it.
		# shellcheck disable=SC2086 # split into fields, all numbers or letters
		set -- ${line##*) }
		echo "${line%% *} $2"
	done
}

# The container shims K3s started, found by the binary they run from. One
# ls reads every process's binary: a readlink per process is slow on a
# busy node.
shim_pids() {
	# shellcheck disable=SC2012 # the names are /proc paths; the link targets are the point
	ls -l /proc/[0-9]*/exe 2>/dev/null | while read -r line; do
		case $line in
		*" -> $data_dir"/data/*/bin/containerd-shim*)
			pid=${line#*/proc/}
			echo "${pid%%/exe*}"
			;;
		esac
	done
}

# Kills the given processes and all their descendants: the containers run
# as children of the shims and would otherwise be left behind.
kill_tree() {
	[ $# -gt 0 ] || return 0
	table=$(process_table)
	victims=""
	todo="$*"
	while [ -n "$todo" ]; do
		next=""
		for parent in $todo; do
			victims="$victims $parent"
			children=$(printf '%s\n' "$table" | while read -r pid ppid; do
				if [ "$ppid" = "$parent" ]; then echo "$pid"; fi
			done)
			next="$next $children"
		done
		# shellcheck disable=SC2086 # one word per pid
		set -- $next
		todo="$*"
	done
	# shellcheck disable=SC2086 # one argument per pid
	kill -9 $victims 2>/dev/null || true
}

# shellcheck disable=SC2046 # one argument per pid
kill_tree $(shim_pids)

# Unmounts everything at or below the given paths (shell patterns), deepest
# first, and removes each mount point once it is unmounted. Mount points
# that stay mounted are left alone: removing them would delete the
# contents of the mounted file system.
unmount_and_remove() {
	mounts=$(while read -r _ target _; do
		for pattern in "$@"; do
			# shellcheck disable=SC2254 # the pattern is meant to match
			case $target in
			$pattern | $pattern/*)
				echo "$target"
				break
				;;
			esac
		done
	done </proc/self/mounts | sort -r)
	for m in $mounts; do
		if umount -f "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; then
			rm -rf "$m"
		fi
	done
}

{{- template "remove-unless-mounted"}}

unmount_and_remove {{q .RunDir}} {{q .KubeletDir}}/pods {{q .KubeletDir}}/plugins {{q .NetnsDir}}'/cni-*'
remove_unless_mounted {{q .RunDir}} {{q .NetnsDir}}/cni-* || true

if command -v ip >/dev/null 2>&1; then
	for iface in {{words .Interfaces}}; do
		if ip link show "$iface" >/dev/null 2>&1; then
			ip link delete "$iface" || true
		fi
	done
fi
rm -rf {{q .CNIDir}}

# Drop the rules kube-proxy, the CNI plugins and flannel added; keep the
# rest.
for tool in iptables ip6tables; do
	command -v "$tool-save" >/dev/null 2>&1 || continue
	command -v "$tool-restore" >/dev/null 2>&1 || continue
	rules=$("$tool-save" 2>/dev/null) || continue
	[ -n "$rules" ] || continue
	printf '%s\n' "$rules" | grep -v -e KUBE- -e CNI- | grep -iv flannel | "$tool-restore" || true
done

exit 0
`))

var uninstallTemplate = template.Must(template.New("uninstall").Funcs(scriptFuncs).Parse(scriptPrologue + `
# Removes the K3s {{.Role}} from this node. {{.NodeDir}} (the node password)
# stays: the servers remember it, and a node that comes back with another
# password under the same name is refused.
{{template "become-root" .}}
{{- template "remove-unless-mounted"}}

status=0

if [ -x {{q .Killall}} ]; then
	{{q .Killall}} || status=1
fi

if command -v systemctl >/dev/null 2>&1; then
	systemctl disable {{q .Service}} 2>/dev/null || true
fi
if command -v rc-update >/dev/null 2>&1; then
	rc-update delete {{q .Service}} default 2>/dev/null || true
fi
rm -f {{q .Unit}} {{q .EnvFile}} {{q .InitScript}} {{q .Uninstall}} || status=1
if command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl reset-failed {{q .Service}} 2>/dev/null || true
fi

# A server and an agent may share a node (rare, but the installer allows
# it); the other one still needs the binary and the data.
for other in {{q .UnitDir}}/k3s*.service {{q .InitDir}}/k3s*; do
	if [ -e "$other" ]; then
		echo "Additional k3s services installed, skipping uninstall of k3s"
		exit "$status"
	fi
done

# Only links to K3s go; a kubectl the user installed stays.
for link in {{words .Links}}; do
	[ -L "$link" ] || continue
	case $(readlink "$link") in
	{{range $i, $t := .LinkTargets}}{{if $i}} | {{end}}{{q $t}}{{end}})
		rm -f "$link" || status=1
		;;
	esac
done

remove_unless_mounted {{q .ConfigDir}} {{q .RunDir}} {{q .FlannelRunDir}} {{q .DataDir}} {{q .KubeletDir}} || status=1
rm -f {{q .Binary}} {{q .Killall}} || status=1

exit "$status"
`))
