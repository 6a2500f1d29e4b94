# Thin wrapper over CMake. `make` builds build/descent and the libraries,
# `make test` builds and runs every test, `make demo` runs the main job,
# `make bench` the benchmarks and their summary table, `make install PREFIX=DIR` installs.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure test demo bench install clean asan

all: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# Installs missing Debian packages (as root) or says which are missing.
deps:
	@bash scripts/install-deps.sh $(DEPS_FLAGS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
	    $(if $(PREFIX),-DCMAKE_INSTALL_PREFIX="$(PREFIX)") $(CMAKE_FLAGS)

# Idle OpenMP threads sleep instead of spinning, so parallel tests do not
# steal each other's cores.
test: all
	cd $(BUILD) && OMP_WAIT_POLICY=passive ctest --output-on-failure -j $(JOBS)

demo: DEPS_FLAGS = --lab
demo: all
	./$(BUILD)/descent demo

# Every benchmark, then one summary table of the speed targets, each a ratio
# measured in the same run (scripts/bench-all.sh; docs/performance.md).
# `make bench BENCH_FLAGS=--quick` runs the short modes.
bench: all
	@bash scripts/bench-all.sh $(BUILD) $(BENCH_FLAGS)

# `make install PREFIX=DIR` installs under DIR (default: CMake's, /usr/local).
install: all
	cmake --install $(BUILD) $(if $(PREFIX),--prefix "$(PREFIX)")

asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DDESCENT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"

clean:
	rm -rf $(BUILD) build-asan $(BUILD)-avx2 $(BUILD)-baseline
