# postcote: `make test` installs what the tests need and runs them all;
# `make dev` builds and runs a complete server in ./devdata.

GO ?= go
BIN := bin/postcote

.PHONY: all build build-pam test unit e2e vet fmt dev bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/postcote

# The same binary with `passdb { driver = pam }` calling libpam: needs cgo
# and Debian's libpam0g-dev (README, "Builds").
build-pam:
	CGO_ENABLED=1 $(GO) build -tags pam -o $(BIN) ./cmd/postcote

# The one test command: README's and CI's.
test: deps vet
	$(GO) test -race -timeout 20m ./...

deps:
	./scripts/install-test-deps.sh

vet:
	@unformatted="$$(gofmt -l cmd internal bench)"; if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

dev: build
	./$(BIN) dev ./devdata

# Needs root and Debian's postfix, dovecot-core and dovecot-lmtpd for the comparison.
bench: build
	$(GO) run ./bench/smtpbench

clean:
	rm -rf bin devdata
