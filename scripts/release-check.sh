#!/usr/bin/env bash
# Checks .goreleaser.yaml and builds every release target as a snapshot, the
# way a tagged release would, without publishing anything. goreleaser is
# installed from the Go module proxy at a pinned version (once per machine).
set -euo pipefail
cd "$(dirname "$0")/.."

# A release that `go list -m -versions github.com/goreleaser/goreleaser/v2`
# lists, whose go.mod accepts the Go of this module's go.mod (v2.18 needs Go
# 1.27) and whose dependencies the module proxy serves (v2.17 needs
# go.digitalxero.dev/go-msix, which it answers with 403).
GORELEASER_VERSION=${GORELEASER_VERSION:-v2.16.0}
GO=${GO:-go}

bindir=$($GO env GOBIN)
[ -n "$bindir" ] || bindir="$($GO env GOPATH)/bin"
goreleaser="$bindir/goreleaser"

installed_version() {
  # The module version go install recorded in the binary; empty if none.
  [ -x "$goreleaser" ] || return 0
  $GO version -m "$goreleaser" 2>/dev/null |
    awk '$1 == "mod" && $2 == "github.com/goreleaser/goreleaser/v2" { print $3 }'
}

seconds() { date +%s; }

if [ "$(installed_version)" = "$GORELEASER_VERSION" ]; then
  echo "release-check: goreleaser $GORELEASER_VERSION already in $bindir" >&2
else
  echo "release-check: installing goreleaser $GORELEASER_VERSION into $bindir" >&2
  t0=$(seconds)
  $GO install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
  echo "release-check: install took $(( $(seconds) - t0 ))s" >&2
  got=$(installed_version)
  if [ "$got" != "$GORELEASER_VERSION" ]; then
    echo "release-check: $goreleaser reports ${got:-no version}, want $GORELEASER_VERSION" >&2
    exit 1
  fi
fi

"$goreleaser" check

t0=$(seconds)
"$goreleaser" build --snapshot --clean
echo "release-check: snapshot build took $(( $(seconds) - t0 ))s" >&2

# Every platform k3sctl is released for; a target dropped from the config by
# mistake fails here, not on release day.
targets=(
  linux_amd64
  linux_arm64
  linux_arm_7
  darwin_amd64
  darwin_arm64
  windows_amd64
)
artifacts=dist/artifacts.json
[ -f "$artifacts" ] || { echo "release-check: $artifacts missing" >&2; exit 1; }
missing=0
for target in "${targets[@]}"; do
  goos=${target%%_*}
  rest=${target#*_}
  goarch=${rest%%_*}
  goarm=""
  [ "$goarch" = arm ] && goarm=${rest#arm_}
  name=k3sctl
  [ "$goos" = windows ] && name=k3sctl.exe
  # goreleaser names its build directories <id>_<os>_<arch>_<variant>,
  # where the variant (v1, v8.0, 7) depends on its version; find the
  # binary by what it is, not by that name.
  path=$(find dist -mindepth 2 -maxdepth 2 -type f -name "$name" -path "dist/k3sctl_${goos}_${goarch}_${goarm}*" | head -n 1)
  if [ -z "$path" ]; then
    echo "release-check: no $name for $goos/$goarch${goarm:+ v$goarm} under dist/" >&2
    missing=1
    continue
  fi
  printf 'release-check: %-14s %s\n' "$target" "$path" >&2
done
[ "$missing" = 0 ] || exit 1

# The version reaches the binary through ldflags.
host=$(find dist -mindepth 2 -maxdepth 2 -type f -name k3sctl -path "dist/k3sctl_$($GO env GOOS)_$($GO env GOARCH)_*" | head -n 1)
if [ -n "$host" ]; then
  if "$host" version | grep -q '^k3sctl dev$'; then
    echo "release-check: $host does not carry its version (ldflags)" >&2
    exit 1
  fi
  "$host" version | sed 's/^/release-check: /' >&2
fi
echo "release-check: all ${#targets[@]} targets built" >&2
