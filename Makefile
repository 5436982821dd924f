# The two commands a new user runs (README): `make demo` and `make test`. Both install what is missing.
BUILD ?= build
JOBS ?= $(shell nproc)

FUZZ_SECONDS ?= 20

.PHONY: all deps configure build test fuzz demo bench clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1200
	@./fuzz/run.sh $(FUZZ_SECONDS)

# The fuzz targets alone, longer: make fuzz FUZZ_SECONDS=600
fuzz: deps
	@./fuzz/run.sh $(FUZZ_SECONDS)

demo: build
	@./scripts/demo.sh $(BUILD)/src/cli/vhdkit

bench: build
	@./bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-fuzz
