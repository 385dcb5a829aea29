#!/bin/sh
# Managed by k3sctl. Local edits are replaced by the next `k3sctl apply`.
# Stops K3s and everything it started on this node. Each step is best
# effort and checks for its tools first: minimal systems lack ip or
# iptables, and a half-removed node must still be cleanable.

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo "$0" "$@"
	fi
	echo "$0: must run as root, and sudo is not installed" >&2
	exit 1
fi

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH

data_dir=/var/lib/rancher/k3s

for unit in /etc/systemd/system/k3s*.service; do
	[ -s "$unit" ] || continue
	if command -v systemctl >/dev/null 2>&1; then
		systemctl stop "${unit##*/}" || true
	fi
done
for script in /etc/init.d/k3s*; do
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

unmount_and_remove /run/k3s /var/lib/kubelet/pods /var/lib/kubelet/plugins /run/netns'/cni-*'
remove_unless_mounted /run/k3s /run/netns/cni-* || true

if command -v ip >/dev/null 2>&1; then
	for iface in cni0 flannel.1 flannel-v6.1 kube-ipvs0 flannel-wg flannel-wg-v6; do
		if ip link show "$iface" >/dev/null 2>&1; then
			ip link delete "$iface" || true
		fi
	done
fi
rm -rf /var/lib/cni

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
