#!/usr/bin/env bash
# Makes sure this machine can run the end-to-end test world: a Docker engine,
# debootstrap, kubectl, tmux, the OpenSSH client and jq (a docs example uses
# it). On Debian as root it installs what is missing and starts dockerd;
# elsewhere it says what is missing.
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
