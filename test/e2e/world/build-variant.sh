#!/usr/bin/env bash
# Builds a test host image variant on top of the base host image: the base
# root file system with Debian packages added from the machine's apt mirror.
# Usage: build-variant.sh BASE_TAG TAG VARIANT
#   postgres  PostgreSQL listening on every address, password logins allowed
#   proxy     tinyproxy, a forward HTTP proxy (CONNECT to any port) on 8888
set -euo pipefail
base=$1 tag=$2 variant=$3

case "$variant" in
  postgres) pkgs="postgresql" ;;
  proxy) pkgs="tinyproxy" ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac

mirror=${K3SCTL_TESTWORLD_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in apt sources; set K3SCTL_TESTWORLD_MIRROR" >&2; exit 1; }

root=$(mktemp -d /var/tmp/k3sctl-testvariant.XXXXXX)
chmod 0755 "$root" # the root directory of the host's file system
cid=
cleanup() {
  umount -l "$root/proc" 2>/dev/null || true
  [ -z "$cid" ] || docker rm -f "$cid" >/dev/null 2>&1 || true
  # Nothing of the machine is mounted below $root any more.
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

cid=$(docker create --label k3sctl-testworld=1 --label k3sctl-testworld.pid=$$ "$base" /bin/true)
docker export "$cid" | tar -C "$root" -x
docker rm -f "$cid" >/dev/null
cid=

for d in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
  IFS=: read -r name major minor <<<"$d"
  [ -c "$root/dev/$name" ] || { rm -f "$root/dev/$name"; mknod -m 0666 "$root/dev/$name" c "$major" "$minor"; }
done
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf 'deb %s bookworm main\n' "$mirror" >"$root/etc/apt/sources.list"
# Services are not started inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
log=$root.log
{ in_root apt-get update -qq && in_root apt-get install -y -qq --no-install-recommends $pkgs; } >"$log" 2>&1 ||
  { tail -n 30 "$log" >&2; rm -f "$log"; exit 1; }
rm -f "$log"

case "$variant" in
  postgres)
    conf=$(ls -d "$root"/etc/postgresql/*/main 2>/dev/null | head -n1)
    [ -n "$conf" ] || { echo "postgresql installed no cluster" >&2; exit 1; }
    printf "listen_addresses = '*'\n" >"$conf/conf.d/testworld.conf"
    printf 'host all all 0.0.0.0/0 scram-sha-256\n' >>"$conf/pg_hba.conf"
    ;;
  proxy)
    cat >"$root/etc/tinyproxy/tinyproxy.conf" <<'CONF'
User tinyproxy
Group tinyproxy
Port 8888
Timeout 600
LogFile "/var/log/tinyproxy/tinyproxy.log"
LogLevel Connect
MaxClients 100
DisableViaHeader Yes
CONF
    # No Allow and no ConnectPort lines: every client, CONNECT to every port.
    install -d "$root/etc/systemd/system/tinyproxy.service.d"
    printf '[Service]\nPrivateDevices=no\n' >"$root/etc/systemd/system/tinyproxy.service.d/testworld.conf"
    ;;
esac

rm -f "$root/usr/sbin/policy-rc.d"
: >"$root/etc/resolv.conf"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/*
umount "$root/proc"

tar -C "$root" -c . | docker import --platform linux/amd64 \
  --change 'CMD ["/lib/systemd/system/systemd"]' \
  - "$tag" >/dev/null
echo "built $tag"
