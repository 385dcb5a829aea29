GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/k3sctl/k3sctl/internal/buildinfo.Version=$(VERSION) \
            -X github.com/k3sctl/k3sctl/internal/buildinfo.Commit=$(COMMIT)
E2E_TIMEOUT ?= 40m
# End-to-end tests mostly wait on containers, so more run at once than there are cores.
E2E_PARALLEL ?= 6
# staticcheck, pinned; its settings are in staticcheck.conf files.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test unit e2e lint bench bench-micro deps golden clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/k3sctl ./cmd/k3sctl

## test: everything — lint, unit tests and the end-to-end tests in the container test world.
# The end-to-end run is verbose so the log shows every test that ran against
# the containers; only the result lines are printed, the whole log on failure.
E2E_LOG ?= $(or $(TMPDIR),/tmp)/k3sctl-e2e.log
test: lint deps
	$(GO) test -count=1 -timeout $(E2E_TIMEOUT) $$($(GO) list ./... | grep -v '/test/e2e$$')
	@status=0; $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) -v ./test/e2e/ >$(E2E_LOG) 2>&1 || status=$$?; \
	  grep -E '^\s*--- (PASS|FAIL|SKIP)|^(ok|FAIL|PASS)|test world: built' $(E2E_LOG); \
	  if [ $$status -ne 0 ]; then echo "--- end-to-end log ($(E2E_LOG)), last 400 lines:"; tail -n 400 $(E2E_LOG); fi; \
	  exit $$status

## unit: tests that need no containers.
unit:
	$(GO) test -short -count=1 ./...

## e2e: only the end-to-end tests (installs and starts what they need when run as root).
e2e: deps
	$(GO) test -count=1 -timeout $(E2E_TIMEOUT) -parallel $(E2E_PARALLEL) -v ./test/e2e/...

deps:
	@scripts/testworld-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: side-by-side table of k3sctl against a parallel ssh/scp floor (needs the test world).
# BENCH_SIZES are agents per cluster, BENCH_RUNS runs per case (the fastest is
# shown); the full table: make bench BENCH_SIZES=2,8,20 BENCH_RUNS=3
# The table is printed and written to bench/results/<date>.md (or BENCH_RESULTS).
BENCH_SIZES ?= 2
BENCH_RUNS  ?= 1
BENCH_PAD_MB ?= 70
# BENCH_BASELINE=path/to/k3sctl adds that binary's `apply -f` as a case.
BENCH_BASELINE ?=
# BENCH_CASES: only these cases (comma-separated names or the groups sizes,
# site, many; see bench/cases.go); empty is all.
BENCH_CASES ?=
# The site behind a slow uplink (BENCH_SITE=0 skips it): Mbit/s and added
# ms, each way.
BENCH_SITE ?= 1
BENCH_UPLINK_MBIT ?= 80
BENCH_UPLINK_MS ?= 20
# Memory at many hosts (BENCH_MANY_HOSTS=0 skips it): one sshd per host,
# spread over BENCH_MANY_CONTAINERS containers.
BENCH_MANY_HOSTS ?= 300
BENCH_MANY_CONTAINERS ?= 10
bench: deps
	BENCH_SIZES='$(BENCH_SIZES)' BENCH_RUNS='$(BENCH_RUNS)' BENCH_PAD_MB='$(BENCH_PAD_MB)' BENCH_BASELINE='$(BENCH_BASELINE)' \
	  BENCH_CASES='$(BENCH_CASES)' BENCH_SITE='$(BENCH_SITE)' BENCH_UPLINK_MBIT='$(BENCH_UPLINK_MBIT)' BENCH_UPLINK_MS='$(BENCH_UPLINK_MS)' \
	  BENCH_MANY_HOSTS='$(BENCH_MANY_HOSTS)' BENCH_MANY_CONTAINERS='$(BENCH_MANY_CONTAINERS)' CI=true \
	  $(GO) test -run '^$$' -bench 'SideBySide' -benchtime 1x -timeout 180m ./bench/

## bench-micro: upload throughput against scp, and apply times for 1, 10 and 30 hosts.
bench-micro: deps
	$(GO) test -run '^$$' -bench Upload -benchtime 3x -timeout 30m ./bench/
	$(GO) test -run '^$$' -bench Apply -benchtime 1x -timeout 40m ./bench/

## golden: rewrite golden files after an intended change.
golden:
	$(GO) test ./... -run Golden -update

clean:
	rm -rf bin dist

.PHONY: docs release-check demo

## docs: regenerate the command reference (docs/cli, docs/man) from internal/cli.
docs:
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
	  $(GO) run ./cmd/k3sctl gen-docs --dir docs/cli --man docs/man

## release-check: goreleaser check and a snapshot build of every release target.
release-check:
	@scripts/release-check.sh

## demo: three simulated hosts, one inventory, kubectl get nodes; no hardware needed.
demo: deps
	$(GO) run ./test/demo $(DEMO_FLAGS)
