# The two commands a new user runs (README): `make demo` and `make test`. Both install what is missing.
BUILD ?= build
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 20

.PHONY: all deps configure build test test-sanitize fuzz demo bench soak clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Tests that need the shared fixtures (../shared/fixtures, or $$VHDKIT_FIXTURES) skip without them, and the
# summary counts the skips; VHDKIT_REQUIRE_FIXTURES=1 (CI) turns those skips into failures.
test: build
	@./scripts/run-ctest.sh $(BUILD) --output-on-failure -j $(JOBS) --timeout 1200
	@./fuzz/run.sh $(FUZZ_SECONDS)

# The whole suite built with AddressSanitizer + UBSan (build-asan/), and the service and job tests built with
# ThreadSanitizer (build-tsan/): any report fails the test that caused it. CI runs it after make test.
test-sanitize: deps
	@./scripts/test-sanitize.sh

# The fuzz targets alone, longer: make fuzz FUZZ_SECONDS=600
fuzz: deps
	@./fuzz/run.sh $(FUZZ_SECONDS)

demo: build
	@./scripts/demo.sh $(BUILD)/src/cli/vhdkit

bench: build
	@./bench/run.sh $(BUILD)

# vhdkitd under load from 3 users, SIGKILLed every 2 minutes (scripts/soak.py; loopback only, as root):
# make soak SOAK_ARGS="--minutes 2 --kill-every 30" for a shorter run.
SOAK_ARGS ?=
soak: build
	@./scripts/soak.py --build $(BUILD) $(SOAK_ARGS)

clean:
	rm -rf $(BUILD) build-fuzz build-asan build-tsan

# The Debian package: build/vhdkit_VERSION_ARCH.deb (CPack; README: "Install from the .deb").
.PHONY: deb
deb: build
	@cd $(BUILD) && cpack -G DEB
