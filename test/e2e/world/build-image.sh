#!/usr/bin/env bash
# Builds the test host image: Debian bookworm with systemd, OpenSSH and sudo,
# users pi (passwordless sudo) and ops (sudo asks for a password).
# Usage: build-image.sh TAG OPS_PASSWORD [ARCH]
set -euo pipefail
tag=$1 ops_password=$2 arch=${3:-amd64}

# The Debian mirror is whatever apt on this machine uses.
mirror=${K3SCTL_TESTWORLD_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in apt sources; set K3SCTL_TESTWORLD_MIRROR" >&2; exit 1; }

root=$(mktemp -d /var/tmp/k3sctl-testhost.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --arch="$arch" --variant=minbase \
  --include=openssh-server,sudo,systemd,systemd-sysv,dbus,iproute2,procps,ca-certificates,iptables,kmod \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root useradd -m -s /bin/bash pi
in_root useradd -m -s /bin/bash ops
echo "ops:$ops_password" | in_root chpasswd
# pi may also log in with a password-less account lock lifted for key auth.
in_root usermod -p '*' pi
printf 'pi ALL=(ALL) NOPASSWD:ALL\n' >"$root/etc/sudoers.d/pi"
printf 'ops ALL=(ALL) ALL\n' >"$root/etc/sudoers.d/ops"
chmod 0440 "$root/etc/sudoers.d/pi" "$root/etc/sudoers.d/ops"
for u in pi ops; do
  install -d -m 0700 "$root/home/$u/.ssh"
  in_root chown "$u:$u" "/home/$u/.ssh"
done

# Every container makes its own host keys at first boot.
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/ssh-hostkeys.service "$root/etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service"
ln -sf /lib/systemd/system/ssh.service "$root/etc/systemd/system/multi-user.target.wants/ssh.service"
printf 'UseDNS no\nMaxStartups 100:30:200\nMaxSessions 100\n' >"$root/etc/ssh/sshd_config.d/testworld.conf"
# Units that only slow a container's boot.
for u in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
         systemd-logind.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
: >"$root/etc/machine-id"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/*

platform=linux/$arch
tar -C "$root" -c . | docker import --platform "$platform" \
  --change 'CMD ["/lib/systemd/system/systemd"]' \
  - "$tag" >/dev/null
echo "built $tag"
