# Every target installs what it needs first: the Go modules and the pinned local DynamoDB
# (dynalite, from npm). Needs Go and Node.js 20 or newer.
GO ?= go
DYNALITE_DIR := internal/dynalite
DYNALITE := $(DYNALITE_DIR)/node_modules/dynalite/package.json
# Bounds for CI: the whole suite, and the fuzz run of the row decoder. The suite never answers
# from Go's test cache (-count=1): it runs against a server whose state the cache cannot see,
# and a run repeated to look for flakiness must really run.
TEST_TIMEOUT ?= 30m
FUZZ_TIME ?= 20s
BENCH ?= .
BENCH_COUNT ?= 1
# Where `make dynamodb` listens.
DYNAMODB_PORT ?= 8000

.PHONY: deps test bench bench-peers demo fuzz dynamodb

deps: $(DYNALITE)
	$(GO) mod download

$(DYNALITE): $(DYNALITE_DIR)/package.json $(DYNALITE_DIR)/package-lock.json
	cd $(DYNALITE_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) build ./...
	@echo "Running go test -race ./... (minutes; it prints nothing until each package is done)"
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd benchmarks && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd examples/service && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

fuzz: deps
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRow$$' -fuzztime $(FUZZ_TIME) .

bench: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCH_COUNT) -timeout 60m .

# Side by side with LaunchDarkly's official store, from the separate module in benchmarks/.
bench-peers: deps
	cd benchmarks && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCH_COUNT) -timeout 60m .

demo: deps
	$(GO) run ./examples/demo

# A local DynamoDB (the same pinned dynalite as the tests, in memory) on 127.0.0.1:$(DYNAMODB_PORT),
# in the foreground until Ctrl-C; for the quick start and for trying the examples.
dynamodb: deps
	node $(DYNALITE_DIR)/launch.js --port $(DYNAMODB_PORT)
