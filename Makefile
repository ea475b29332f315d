# evo's top-level make: a thin wrapper around CMake.
#   make          build everything into build/ (the CLI is build/evo)
#   make test     install missing dependencies, build, run the whole test suite:
#                 ctest in build/, then the parser fuzzers and unit tests under
#                 ASan+UBSan (clang) in build-asan/
#   make demo     the main job (see README.md)
#   make asan     only the sanitizer build and its tests
#   make fuzz     a fuzzing campaign: fresh seeds, every target, FUZZ_SECONDS each
#   make format   apply .clang-format
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
CTEST_FLAGS ?=

FUZZ_SECONDS ?= 600

.PHONY: all deps configure test asan fuzz demo format clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash scripts/install-deps.sh

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)
	$(MAKE) asan

asan: deps
	@test -f $(ASAN_BUILD)/CMakeCache.txt || CC=clang cmake -S . -B $(ASAN_BUILD) \
	  -DCMAKE_BUILD_TYPE=Debug -DEVO_SANITIZE=ON -DEVO_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|fuzz|asan' $(CTEST_FLAGS)

fuzz: asan
	bash scripts/fuzz-campaign.sh $(FUZZ_SECONDS)

demo: all
	@bash scripts/demo.sh $(BUILD)/evo

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
