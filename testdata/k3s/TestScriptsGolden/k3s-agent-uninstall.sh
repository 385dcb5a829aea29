#!/bin/sh
# Managed by k3sctl. Local edits are replaced by the next `k3sctl apply`.
# Removes the K3s agent from this node. /etc/rancher/node (the node password)
# stays: the servers remember it, and a node that comes back with another
# password under the same name is refused.

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo "$0" "$@"
	fi
	echo "$0: must run as root, and sudo is not installed" >&2
	exit 1
fi

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH

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

status=0

if [ -x /usr/local/bin/k3s-killall.sh ]; then
	/usr/local/bin/k3s-killall.sh || status=1
fi

if command -v systemctl >/dev/null 2>&1; then
	systemctl disable k3s-agent 2>/dev/null || true
fi
if command -v rc-update >/dev/null 2>&1; then
	rc-update delete k3s-agent default 2>/dev/null || true
fi
rm -f /etc/systemd/system/k3s-agent.service /etc/systemd/system/k3s-agent.service.env /etc/init.d/k3s-agent /usr/local/bin/k3s-agent-uninstall.sh || status=1
if command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl reset-failed k3s-agent 2>/dev/null || true
fi

# A server and an agent may share a node (rare, but the installer allows
# it); the other one still needs the binary and the data.
for other in /etc/systemd/system/k3s*.service /etc/init.d/k3s*; do
	if [ -e "$other" ]; then
		echo "Additional k3s services installed, skipping uninstall of k3s"
		exit "$status"
	fi
done

# Only links to K3s go; a kubectl the user installed stays.
for link in /usr/local/bin/kubectl /usr/local/bin/crictl /usr/local/bin/ctr; do
	[ -L "$link" ] || continue
	case $(readlink "$link") in
	k3s | /usr/local/bin/k3s)
		rm -f "$link" || status=1
		;;
	esac
done

remove_unless_mounted /etc/rancher/k3s /run/k3s /run/flannel /var/lib/rancher/k3s /var/lib/kubelet || status=1
rm -f /usr/local/bin/k3s /usr/local/bin/k3s-killall.sh || status=1

exit "$status"
