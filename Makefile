# vmgate — top-level entry points. `make demo` and `make test` install what they need.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: what building needs, and what the end-to-end tests and the demo run.
BUILD_PKGS := cmake make g++ pkg-config libasio-dev libssl-dev libsasl2-dev libtomlplusplus-dev \
              libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
RUN_PKGS   := openssl qemu-system-x86 seabios ipxe-qemu sasl2-bin libsasl2-modules \
              libsasl2-modules-db python3-gi gir1.2-spiceclientglib-2.0
BENCH_PKGS := stunnel4 haproxy

.PHONY: all deps bench-deps build test unit e2e demo bench fuzz clean

all: build

deps:
	@missing=$$(for p in $(BUILD_PKGS) $(RUN_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench-deps: deps
	@missing=$$(for p in $(BENCH_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L unit -j $(JOBS)

e2e: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L e2e

demo: build
	$(BUILD_DIR)/vmgate demo $(if $(STATE_DIR),--state-dir $(STATE_DIR))

bench: bench-deps build
	/usr/bin/python3 bench/run.py --vmgate $(BUILD_DIR)/vmgate

clean:
	rm -rf $(BUILD_DIR)
