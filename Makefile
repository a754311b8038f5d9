# vmgate — top-level entry points. `make demo` and `make test` install what they need.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: what building needs, and what the end-to-end tests and the demo run.
BUILD_PKGS := cmake make g++ pkg-config libasio-dev libssl-dev libsasl2-dev libdb-dev libtomlplusplus-dev \
              libcli11-dev nlohmann-json3-dev libvirt-dev libxml2-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev \
              libsystemd-dev
RUN_PKGS   := openssl qemu-system-x86 seabios ipxe-qemu sasl2-bin libsasl2-modules \
              libsasl2-modules-db python3-gi python3-cryptography gir1.2-spiceclientglib-2.0 \
              gir1.2-gtk-vnc-2.0 tzdata util-linux \
              libvirt-daemon-system libvirt-clients systemd groff-base \
              iptables nftables sudo openssh-server iproute2 python3-prometheus-client
BENCH_PKGS := stunnel4 haproxy
FUZZ_PKGS  := clang libclang-rt-14-dev

FUZZ_TARGETS := fuzz_spice_downstream_link fuzz_spice_upstream_link fuzz_spice_main_channel_filter \
                fuzz_vnc_downstream_handshake fuzz_vnc_upstream_handshake \
                fuzz_vnc_client_message_filter fuzz_qmp_client fuzz_http_connect_request
FUZZ_SECONDS ?= 60

.PHONY: all deps build test unit e2e demo bench fuzz fuzz-smoke clean

all: build

deps:
	@missing=$$(for p in $(BUILD_PKGS) $(RUN_PKGS) $(EXTRA_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every fuzz target for a few seconds, then the unit and end-to-end tests.
test: build
	$(MAKE) fuzz-smoke
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L unit -j $(JOBS)

e2e: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L e2e

demo: build
	$(BUILD_DIR)/vmgate demo $(if $(STATE_DIR),--state-dir $(STATE_DIR))

bench: EXTRA_PKGS = $(BENCH_PKGS)
bench: build
	/usr/bin/python3 bench/run.py --vmgate $(BUILD_DIR)/vmgate

# libFuzzer (clang) on the protocol state machines: FUZZ_SECONDS per target, corpus kept in
# build-fuzz/corpus/ between runs.
fuzz: EXTRA_PKGS = $(FUZZ_PKGS)
fuzz: deps
	CXX=clang++ cmake -S . -B build-fuzz -DVMGATE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > build-fuzz.log
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS) >> build-fuzz.log
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  if build-fuzz/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$t > build-fuzz/$$t.log 2>&1; \
	  then echo "fuzz $$t: $(FUZZ_SECONDS) s, no crash ($$(grep -o 'Done [0-9]* runs' build-fuzz/$$t.log))"; \
	  else tail -40 build-fuzz/$$t.log; echo "fuzz $$t: CRASH (see build-fuzz/$$t.log)"; exit 1; fi; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

clean:
	rm -rf $(BUILD_DIR) build-fuzz build-fuzz.log
