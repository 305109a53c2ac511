# ChadThrottle — NetLimiter for Linux. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO      ?= go
PREFIX  ?= /usr
DESTDIR ?=
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/chadthrottle/chadthrottle/helper/api.Version=$(VERSION)
# Build tags leave backends out (see README "Backends and build tags"), e.g. TAGS=no_ebpf
TAGS    ?=
GOFLAGS_TAGS := $(if $(TAGS),-tags '$(TAGS)',)
# no_emoji: Fyne's bundled emoji font (4 MB) is parsed once per text style
# the window uses, ~9 MB of live Go heap; the window shows no emoji of its
# own and an app name with one falls back to the system's fonts (issue #17)
BUILD_TAGS := $(strip no_emoji $(TAGS))

.PHONY: help build run test bench lint generate package install uninstall clean deps

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install the Debian/Ubuntu packages the build and tests need (sudo)
	@packaging/scripts/deps.sh

build: ## build the three binaries into bin/
	$(GO) build -tags '$(BUILD_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/chadthrottle ./cmd/chadthrottle-helper ./cmd/chadthrottlectl

run: ## the newcomer's command: install deps, build, make the helper available, open the window
	@packaging/scripts/run.sh

test: ## run every test (root for the kernel tests; CI=true turns privileged skips into failures)
	@# Compile every test binary in parallel, then run the packages one at a
	@# time: the kernel tests measure rates, and two packages pushing GB/s
	@# through veths on a 2-core machine made each other's figures flake.
	$(GO) test $(GOFLAGS_TAGS) -count=1 -run '^$$' ./... >/dev/null
	$(GO) test $(GOFLAGS_TAGS) -count=1 -p 1 -timeout 60m ./...

bench: ## print the measured figures (throttle accuracy, attribution, CPU, bus latency, GUI cost); PKGS=./backends/... for a part
	@set -o pipefail; $(GO) test -tags 'bench $(TAGS)' -run '^TestBench' -count=1 -p 1 -v -timeout 80m $(or $(PKGS),./...) 2>&1 | grep -v -E '^(=== RUN|=== PAUSE|=== CONT|ok |\?|PASS$$|--- PASS)'

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_TAGS) ./...

generate: ## regenerate committed generated code (bpf2go needs clang)
	$(GO) generate ./...

package: build ## build .deb and .rpm into dist/ with nfpm (DIST=dir, FORMATS="deb rpm")
	@BIN='$(BIN)' GO='$(GO)' packaging/scripts/package.sh '$(VERSION)'

install: ## install bin/ into $(DESTDIR)$(PREFIX) (after make build; system files under $(DESTDIR)/etc, /usr/share)
	@DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BIN='$(BIN)' packaging/scripts/install.sh

uninstall: ## remove what install put in $(DESTDIR)$(PREFIX)
	@DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' packaging/scripts/install.sh --uninstall

clean: ## remove build outputs
	rm -rf $(BIN) dist
