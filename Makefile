# Wharf — build and test.
#
#   make build                   swift build
#   make test [FILTER=Suite]     install missing deps, start a private Docker engine and two
#                                registries (scripts/testenv.sh), run `swift test` against them,
#                                stop everything again; fails if zero tests ran
#   make testenv-up              start the same environment for manual work; its directory is
#                                kept in .testenv-dir, its variables in $$(cat .testenv-dir)/env
#   make testenv-down            stop it again
#
# CI runs `bash .ci/run`, which is `make test`.

SHELL := /bin/bash
.DEFAULT_GOAL := build

SWIFT_BIN ?= /opt/swift/usr/bin
# Put the Swift toolchain on PATH unless `swift` is already there.
ifeq ($(shell command -v swift 2>/dev/null),)
export PATH := $(SWIFT_BIN):$(PATH)
endif

FILTER ?=
SWIFT_TEST_FLAGS ?=
TEST_LOG ?= .build/test.log
TESTENV_DIR_FILE := .testenv-dir
# In CI a hung test run is stopped (SIGINT, which swift test passes on to its test
# process) and cleaned up before CI's own 90-minute limit.
TEST_TIMEOUT ?= 70m
SWIFT_TEST_PREFIX := $(if $(CI),timeout -s INT -k 60s $(TEST_TIMEOUT))
SWIFT_TEST_ARGS = $(strip $(if $(FILTER),--filter '$(FILTER)') $(SWIFT_TEST_FLAGS))

.PHONY: build test testenv-up testenv-down

build:
	swift build

# One recipe, so that its trap stops the test environment on success, on failure
# and on Ctrl-C. Tests are counted from the summary lines of Swift Testing
# ("Test run with N tests ...") and XCTest ("Executed N tests ...").
test:
	@bash scripts/install-deps.sh test
	@swift build --build-tests
	@dir="$$(mktemp -d /tmp/wharf-test.XXXXXX)" || exit 1; \
	cleanup() { \
		trap - EXIT INT TERM HUP; \
		bash scripts/testenv.sh down "$$dir" || echo "make test: 'scripts/testenv.sh down $$dir' failed" >&2; \
	}; \
	trap 'rc=$$?; cleanup; exit $$rc' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; \
	bash scripts/testenv.sh up "$$dir" || exit 1; \
	while IFS='=' read -r key value; do \
		[ -n "$$key" ] && export "$$key=$$value"; \
	done <"$$dir/env"; \
	mkdir -p "$$(dirname '$(TEST_LOG)')"; \
	echo "make test: swift test $(SWIFT_TEST_ARGS) (env: $$dir/env, log: $(TEST_LOG))"; \
	$(SWIFT_TEST_PREFIX) swift test $(SWIFT_TEST_ARGS) 2>&1 | tee '$(TEST_LOG)'; \
	rc=$${PIPESTATUS[0]}; \
	[ "$$rc" -eq 124 ] && [ -n "$(SWIFT_TEST_PREFIX)" ] && echo "make test: swift test timed out after $(TEST_TIMEOUT)" >&2; \
	read -r st xc found < <(awk ' \
		match($$0, /Test run with [0-9]+ tests?/) { n = substr($$0, RSTART, RLENGTH); gsub(/[^0-9]/, "", n); st += n; found = 1 } \
		match($$0, /Executed [0-9]+ tests?/) { n = substr($$0, RSTART, RLENGTH); gsub(/[^0-9]/, "", n); if (n + 0 > xc) xc = n + 0; found = 1 } \
		END { print st + 0, xc + 0, found + 0 }' '$(TEST_LOG)'); \
	total=$$((st + xc)); \
	if [ "$$found" -eq 0 ]; then \
		echo "make test: FAILED: no test summary in the output of swift test (see $(TEST_LOG))" >&2; \
		[ "$$rc" -ne 0 ] || rc=1; \
	elif [ "$$total" -eq 0 ]; then \
		echo "make test: FAILED: zero tests ran$(if $(FILTER), (FILTER=$(FILTER) matched nothing?))" >&2; \
		[ "$$rc" -ne 0 ] || rc=1; \
	else \
		echo "make test: $$total tests ran (Swift Testing: $$st, XCTest: $$xc); swift test exit status $$rc"; \
	fi; \
	exit $$rc

testenv-up:
	@bash scripts/install-deps.sh test
	@if [ -f $(TESTENV_DIR_FILE) ] && [ -d "$$(cat $(TESTENV_DIR_FILE))" ]; then \
		echo "test environment already up in $$(cat $(TESTENV_DIR_FILE)) (make testenv-down first)"; \
		exit 0; \
	fi; \
	dir="$$(mktemp -d /tmp/wharf-test.XXXXXX)" || exit 1; \
	bash scripts/testenv.sh up "$$dir" || exit 1; \
	echo "$$dir" >$(TESTENV_DIR_FILE); \
	echo; cat "$$dir/env"; echo; \
	echo "load it with:  set -a; . $$dir/env; set +a"

testenv-down:
	@if [ -f $(TESTENV_DIR_FILE) ]; then \
		bash scripts/testenv.sh down "$$(cat $(TESTENV_DIR_FILE))" && rm -f $(TESTENV_DIR_FILE); \
	else \
		echo "no test environment up ($(TESTENV_DIR_FILE) not found)"; \
	fi

# One command to run Wharf: a server plus a local agent on the local Docker engine (scripts/run.sh).
.PHONY: run
run:
	@bash scripts/run.sh

# Benchmarks against nginx, adnanh/webhook, bare Hummingbird, raw libzmq and compose by hand
# (bench/README.md); results in bench/results/.
.PHONY: bench
bench:
	@bash bench/run.sh
