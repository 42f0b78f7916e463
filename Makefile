CARGO ?= cargo
PREFIX ?= /usr/local
# The shipped husk is static (glibc and libseccomp): each command starts ~1 ms
# faster than a dynamically linked one, which counts three times per container.
TARGET := x86_64-unknown-linux-gnu
HUSK := target/$(TARGET)/release/husk
STATIC := RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static \
	LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu

.PHONY: all build deps demo test test-cgroupv2 test-systemd test-checkpoint integration conformance conformance-cgroupv2 bench bench-quick unit lint install clean

all: build

build:
	$(STATIC) $(CARGO) build --release --target $(TARGET)

deps:
	scripts/install-deps.sh

demo: deps build
	HUSK=$(HUSK) scripts/demo.sh

# Unit tests run anywhere; the integration tests in tests/ run real containers as root.
test: deps
	$(CARGO) test --release

# The cgroup v2 tests, in a QEMU VM whose only hierarchy is cgroup v2.
test-cgroupv2: deps
	bin=$$($(CARGO) test --release --test cgroupv2 --no-run --message-format=json \
		| grep -o '"executable":"[^"]*cgroupv2[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --timeout 900 -- $$bin --ignored --test-threads=1

# The systemd cgroup driver's tests, in a QEMU VM that boots systemd as PID 1.
test-systemd: deps
	bin=$$($(CARGO) test --release --test systemd --no-run --message-format=json \
		| grep -o '"executable":"[^"]*systemd[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --systemd --timeout 900 -- $$bin --ignored --test-threads=1

# checkpoint and restore (CRIU), in the QEMU VM: CRIU 3.17 fails on newer
# kernels than Debian's 6.1 (a vDSO it does not know).
# Then podman's and containerd's checkpoint and restore with husk, in the VM too.
test-checkpoint: deps build
	bin=$$($(CARGO) test --release --test checkpoint --no-run --message-format=json \
		| grep -o '"executable":"[^"]*checkpoint[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --timeout 1500 -- $$bin --ignored --test-threads=1
	integration/vm/run-in-vm.sh --timeout 900 -- integration/checkpoint-managers.sh $(HUSK)

# End-to-end runs under podman (root and rootless), containerd and docker.
integration: build
	scripts/install-deps.sh --managers
	integration/run.sh $(HUSK)

# The OCI conformance suites, built in checkouts you name (nothing is fetched,
# nothing lands in this repository; docs/conformance.md says how to get them):
#   make conformance RUNTIME_TOOLS=~/src/runtime-tools CONTEST=~/src/youki
# compares each test file / group with tests/conformance/expected.txt and fails
# on a regression; a suite whose checkout is not given is skipped. Not in CI.
# CONFORMANCE_ARGS: more options of tests/conformance/conformance.sh, then
# test names to run only those.
conformance: $(if $(RUNTIME_TOOLS)$(CONTEST),build)
	tests/conformance/conformance.sh --runtime $(HUSK) \
		--runtime-tools "$(RUNTIME_TOOLS)" --contest "$(CONTEST)" \
		--expected tests/conformance/expected.txt $(CONFORMANCE_ARGS)

# The same in the pure cgroup v2 VM (slow: TCG), against expected-cgroupv2.txt.
conformance-cgroupv2: $(if $(RUNTIME_TOOLS)$(CONTEST),build)
	tests/conformance/vm.sh --runtime $(HUSK) \
		--runtime-tools "$(RUNTIME_TOOLS)" --contest "$(CONTEST)" \
		--expected tests/conformance/expected-cgroupv2.txt $(CONFORMANCE_ARGS)

# Benchmarks against Debian's crun and runc: docs/bench.md and docs/bench.svg.
bench: deps build
	scripts/bench.sh $(HUSK)

# A quick create+start+delete comparison with crun (CI prints it; never fails).
bench-quick: deps build
	scripts/bench.sh --quick $(HUSK) || true

unit:
	$(CARGO) test --release --workspace --lib --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

install: build
	install -D -m 0755 $(HUSK) $(DESTDIR)$(PREFIX)/bin/husk

clean:
	$(CARGO) clean
	rm -rf demo
