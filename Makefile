# Loa: the two commands a new user runs are `make demo` and `make test`.
# Every target installs what it needs first (scripts/install-deps) and says what it did.

GO      ?= go
BIN     := bin
# Keep the race-enabled test run inside CI's budget on 2 cores.
TESTFLAGS ?= -race -timeout 20m

.PHONY: all deps build test vet fmt-check tidy-check bench demo fuzz clean package soak

all: build

deps:
	@./scripts/install-deps

build: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/... ./internal/alsafifo/capture
	@echo "build: binaries in $(BIN)/: $$(ls $(BIN) | tr '\n' ' ')"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi; \
	echo "fmt-check: gofmt clean"

vet:
	$(GO) vet ./...

# go.mod and go.sum say exactly what the code imports: nothing to add, nothing stale.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go mod tidy would change go.mod/go.sum:"; $(GO) mod tidy -diff; exit 1; }
	@echo "tidy-check: go.mod and go.sum are tidy"

# Packages whose tests play in real time (ALSA through a paced FIFO, mpv, real agents) run one
# at a time after the others: beside a cross-compile or another real-time package, a starved
# agent underruns and a test hears a gap that is the machine's, not the code's.
REALTIME_PKGS = ./agent ./internal/e2e ./player ./device/screen

# The longest of the other packages go first, so that on 2 cores they run beside the many
# short ones rather than after them (go test starts packages in the order given).
LONG_PKGS = ./cmd/loa-hub ./scheduler ./hub/cli

# Packages that measure no time run at idle CPU priority beside all the others, in the time
# the real-time tests leave a core waiting: the package checks (cross-builds, lintian, qemu),
# the console's and the hub's suites (browsers and hubs on loopback that wait with generous
# deadlines, never on a clock) and the hub store's SQLite suite. Run before the real-time
# packages at normal priority they made make test about 2.5 minutes longer.
IDLE_PKGS = ./internal/packaging ./hub/console ./hub ./hub/store

# The hub store's suite runs twice: on SQLite with the other packages, and on a PostgreSQL
# server its TestMain starts in a temporary directory (docs/hub-storage.md). The PostgreSQL
# run mostly waits on the server, so it runs beside the others; its output follows theirs.
POSTGRES_PKGS = ./hub/store

test: deps fmt-check vet tidy-check
	@./scripts/test-lanes "$(GO)" "$(TESTFLAGS)" "$(IDLE_PKGS)" "$(LONG_PKGS)" "$(REALTIME_PKGS)" "$(POSTGRES_PKGS)"

# The long reliability runs (docs/reliability.md): a lost week on a fast clock (1 day in
# `make test`; about a minute), 1,000 power cuts under the agent's data directory (8 in
# `make test`; about 75 minutes on 2 cores), 100 under the hub's (5 in `make test`; about 10
# minutes), then 1,000 SIGKILLs of the agent and 40 of the hub while plays and confirmations
# flow (about 50 minutes) and a minute of play through bad links.
# Prints the LOSTWEEK, POWERCUT, HUBPOWERCUT and KILLS figures lines, then one table of them.
POWERCUTS ?= 1000
KILLS ?= 1000
HUBPOWERCUTS ?= 100
soak: deps
	@mkdir -p $(BIN)
	@echo "soak: the filesystem's own and the in-process power-cut tests (LOA_FUSE_INPROCESS=1)"
	LOA_FUSE_INPROCESS=1 $(GO) test -count=1 -timeout 10m ./internal/powercut ./internal/atomicfile ./content ./agent/journal
	@echo "soak: two players held in step on FIFO cards, one 3,000 ppm fast (docs/sync.md)"
	LOA_SOAK=1 $(GO) test -count=1 -timeout 10m -v -run 'TestTwoCardsInStep' ./player
	@echo "soak: the lost week (7 simulated days offline on a fast clock, then delivery to a real hub)"
	@LOA_SOAK=1 $(GO) test -count=1 -timeout 30m -v -run 'TestAgentLostWeek' ./agent >$(BIN)/soak-lostweek.log 2>&1; rc=$$?; \
	grep -E 'LOSTWEEK|^(---|ok|FAIL)' $(BIN)/soak-lostweek.log; [ $$rc -eq 0 ] || { echo "soak: full log in $(BIN)/soak-lostweek.log"; exit $$rc; }
	@LOA_POWERCUTS=$(POWERCUTS) $(GO) test -count=1 -timeout 6h -v -run 'TestAgentSurvivesPowerCuts' ./agent >$(BIN)/soak.log 2>&1; rc=$$?; \
	grep -v '^ *{' $(BIN)/soak.log | grep -E 'POWERCUT|seed|cut [0-9]|^(---|ok|FAIL)'; echo "soak: full log in $(BIN)/soak.log"; [ $$rc = 0 ] || exit $$rc
	@LOA_HUB_POWERCUTS=$(HUBPOWERCUTS) $(GO) test -count=1 -timeout 2h -v -run 'TestHubSurvivesPowerCuts' ./cmd/loa-hub >$(BIN)/soak-hub.log 2>&1; rc=$$?; \
	grep -E 'HUBPOWERCUT|seed|^(---|ok|FAIL)' $(BIN)/soak-hub.log; echo "soak: full log in $(BIN)/soak-hub.log"; [ $$rc = 0 ] || exit $$rc
	@LOA_SOAK=1 LOA_KILLS=$(KILLS) $(GO) test -count=1 -timeout 5h -v -run 'TestKillsAtScale|TestPlayingThroughBadLinks' ./internal/e2e >$(BIN)/soak-kills.log 2>&1; rc=$$?; \
	grep -v '^ *{' $(BIN)/soak-kills.log | grep -E 'KILLS|2G:|seed|kills \(|^(---|ok|FAIL)'; echo "soak: full log in $(BIN)/soak-kills.log"; exit $$rc
	@echo "soak: the table (lost, duplicated and half-files used must all be 0)"
	@./scripts/soak-table $(BIN)/soak.log $(BIN)/soak-hub.log $(BIN)/soak-kills.log $(BIN)/soak-lostweek.log

# Short fuzz runs of every parser of outside input; `FUZZTIME=1m make fuzz` for longer.
FUZZTIME ?= 20s
fuzz: deps
	@./scripts/fuzz-all $(FUZZTIME)

# Benchmarks print figures beside their reference measured in the same run.
bench: build
	@./scripts/bench

demo: build
	@./scripts/demo

# Debian packages in dist/: loa-agent (arm64, armhf, amd64), loa-hub and loa (arm64, amd64),
# cross-built with cgo; installs the cross toolchain first when root (docs/install.md).
package: deps
	@./scripts/package

clean:
	rm -rf $(BIN)
