#!/usr/bin/env bash
# Makes sure this machine can run the end-to-end test world: a Docker engine,
# debootstrap, kubectl, tmux, the OpenSSH client, jq (a docs example uses
# it) and qemu-user-static with binfmt-support (the emulated arm64 host). On
# Debian as root it installs what is missing, registers the arm64 emulator
# and starts dockerd; elsewhere it says what is missing.
set -uo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need docker docker.io
need dockerd docker.io
need debootstrap debootstrap
need kubectl kubernetes-client
need tmux tmux
need scp openssh-client
need jq jq
need qemu-aarch64-static qemu-user-static
need update-binfmts binfmt-support
# The simulator's PostgreSQL datastore test starts a throwaway server.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "testworld: installing $pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq $pkgs >/dev/null || {
      echo "testworld: apt-get install $pkgs failed" >&2; exit 1; }
  else
    echo "testworld: missing packages: $pkgs" >&2
    echo "testworld: install them (Debian: sudo apt-get install -y $pkgs) or run this script as root" >&2
    exit 1
  fi
fi

# Every host runs systemd, which takes several inotify instances; the
# default of 128 per user runs out at about two dozen hosts.
if [ "$(id -u)" = 0 ]; then
  [ "$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)" -ge 8192 ] ||
    sysctl -q -w fs.inotify.max_user_instances=8192 >/dev/null 2>&1 || true
  [ "$(sysctl -n fs.inotify.max_user_watches 2>/dev/null || echo 0)" -ge 524288 ] ||
    sysctl -q -w fs.inotify.max_user_watches=524288 >/dev/null 2>&1 || true
fi

# The arm64 host runs under qemu-user. sudo (setuid) only works there when
# the binfmt entry has the credentials flag C, and containers only find the
# emulator when it is loaded at registration (flag F). Debian registers
# qemu-aarch64 with other flags, so it is registered again with POCF.
binfmt=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ "$(id -u)" = 0 ] && [ -f "$conf" ]; then
  [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
  if [ -e "$binfmt/register" ] && ! grep -qx 'flags: POCF' "$binfmt/qemu-aarch64" 2>/dev/null; then
    [ -e "$binfmt/qemu-aarch64" ] && echo -1 >"$binfmt/qemu-aarch64"
    line=$(grep -m1 '^:qemu-aarch64:' "$conf")
    printf '%s\n' "${line%:*}:POCF" >"$binfmt/register" ||
      echo "testworld: could not register qemu-aarch64 with flags POCF; the arm64 host will not work" >&2
  fi
  [ -e "$binfmt/qemu-aarch64" ] || echo "testworld: binfmt_misc has no qemu-aarch64 entry; the arm64 host will not work" >&2
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "testworld: the Docker engine is not running and this user cannot start it" >&2
    exit 1
  fi
  echo "testworld: starting dockerd" >&2
  setsid dockerd >/var/log/k3sctl-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "testworld: dockerd did not start; see /var/log/k3sctl-dockerd.log" >&2; tail -n 20 /var/log/k3sctl-dockerd.log >&2; exit 1; }
fi
echo "testworld: ready (docker $(docker info --format '{{.ServerVersion}}'))" >&2
