CARGO ?= cargo
PREFIX ?= /usr/local
# The shipped husk is static: musl (Rust's x86_64-unknown-linux-musl, which
# `make deps` adds with rustup) and libseccomp, or glibc where Rust has no
# musl target; glibc's own start takes 0.3-0.6 ms of each command
# (docs/design.md, record 4). Deferred (=): deps may add the target first.
# libseccomp.a is Debian's, reached through a directory of its own: a -L of
# all of /usr/lib/x86_64-linux-gnu would let glibc's libc.a into a musl link.
MUSL := x86_64-unknown-linux-musl
TARGET = $(shell test -d "$$(rustc --print target-libdir --target $(MUSL) 2>/dev/null)" && \
	echo $(MUSL) || echo x86_64-unknown-linux-gnu)
# Without rustc (`sudo make install`: sudo's PATH lacks rustup's), the one
# `make build` made last.
HUSK = $(if $(shell command -v rustc),target/$(TARGET)/release/husk,$(BUILT))
BUILT = $(firstword $(shell ls -t target/$(MUSL)/release/husk target/x86_64-unknown-linux-gnu/release/husk 2>/dev/null))
SECCOMP_LIB := target/libseccomp
# musl builds are static without RUSTFLAGS (link-order.txt's names are made
# without them). The tests run the shipped build where it is musl; with
# glibc, cargo's usual dynamic build, as before.
STATIC = $(if $(filter $(MUSL),$(TARGET)),,RUSTFLAGS="-C target-feature=+crt-static") \
	LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=$(CURDIR)/$(SECCOMP_LIB)
TEST_ENV = $(if $(filter $(MUSL),$(TARGET)),TARGET=$(MUSL) $(STATIC))
# The VM suites build their test programs as make test does: against the
# shipped build (its husk is the one CARGO_BIN_EXE_husk names).
VM_TEST_BUILD = $(TEST_ENV) $(CARGO) test --release $(if $(filter $(MUSL),$(TARGET)),--target $(MUSL)) --no-run --message-format=json

.PHONY: all build deps deps-vm deps-bench demo test test-cgroupv2 test-systemd test-checkpoint integration conformance conformance-cgroupv2 bench bench-quick link-order unit lint install uninstall clean

all: build

build: $(SECCOMP_LIB)/libseccomp.a
	$(STATIC) $(CARGO) build --release --target $(TARGET)
	@echo "built $(HUSK)"

$(SECCOMP_LIB)/libseccomp.a:
	@test -f /usr/lib/x86_64-linux-gnu/libseccomp.a || \
		{ echo "build: no /usr/lib/x86_64-linux-gnu/libseccomp.a: run make deps" >&2; exit 1; }
	mkdir -p $(SECCOMP_LIB) && ln -sf /usr/lib/x86_64-linux-gnu/libseccomp.a $@

# `make demo` and `make test` work as root and as an ordinary user with sudo:
# cargo always runs as the user who runs make (sudo would reset PATH and lose
# rustup's cargo); sudo is used only for apt-get and to run what needs root.
# deps: what building husk, the demo and the tests need; the VM suites, the
# benchmarks and the managers install their own (scripts/install-deps.sh).
deps:
	scripts/install-deps.sh

deps-vm:
	scripts/install-deps.sh --vm

deps-bench:
	scripts/install-deps.sh --bench

demo: deps build
	HUSK=$(HUSK) scripts/demo.sh

# Unit tests run anywhere; the integration tests in tests/ run real containers
# as root: scripts/test.sh builds them as the user and runs them as root.
# TEST_ARGS: more arguments of cargo test (e.g. TEST_ARGS="--test rootless").
test: deps $(SECCOMP_LIB)/libseccomp.a
	CARGO=$(CARGO) $(TEST_ENV) scripts/test.sh $(TEST_ARGS)

# The cgroup v2 tests, in a QEMU VM whose only hierarchy is cgroup v2.
test-cgroupv2: deps deps-vm $(SECCOMP_LIB)/libseccomp.a
	bin=$$($(VM_TEST_BUILD) --test cgroupv2 \
		| grep -o '"executable":"[^"]*cgroupv2[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --timeout 900 -- $$bin --ignored --test-threads=1

# The systemd cgroup driver's tests, in a QEMU VM that boots systemd as PID 1.
test-systemd: deps deps-vm $(SECCOMP_LIB)/libseccomp.a
	bin=$$($(VM_TEST_BUILD) --test systemd \
		| grep -o '"executable":"[^"]*/deps/systemd-[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --systemd --timeout 900 -- $$bin --ignored --test-threads=1

# checkpoint and restore (CRIU), in the QEMU VM: CRIU 3.17 fails on newer
# kernels than Debian's 6.1 (a vDSO it does not know).
# Then podman's and containerd's checkpoint and restore with husk, in the VM too.
test-checkpoint: deps deps-vm build
	bin=$$($(VM_TEST_BUILD) --test checkpoint \
		| grep -o '"executable":"[^"]*checkpoint[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --timeout 1500 -- $$bin --ignored --test-threads=1
	scripts/install-deps.sh --managers
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
conformance-cgroupv2: deps-vm $(if $(RUNTIME_TOOLS)$(CONTEST),build)
	tests/conformance/vm.sh --runtime $(HUSK) \
		--runtime-tools "$(RUNTIME_TOOLS)" --contest "$(CONTEST)" \
		--expected tests/conformance/expected-cgroupv2.txt $(CONFORMANCE_ARGS)

# Benchmarks against Debian's crun and runc (issue #18), as root: writes
# docs/bench.md, docs/bench-*.svg and README's benchmark table. About 5 minutes here;
# smaller runs through the environment or make's command line (scripts/bench.sh
# lists the knobs), e.g.
#   make bench RUNS=5 ROUNDS=1 SCALE=1,10,100 CYCLES=200 MANAGERS=0
# The managers' part (podman, containerd, docker) installs them first.
bench: deps deps-bench build
	$(if $(filter 0,$(MANAGERS)),,scripts/install-deps.sh --managers)
	scripts/bench.sh $(HUSK)

# The ratios to crun of (a)-(d), both bundle kinds, few runs (CI prints them;
# never fails; about a minute).
bench-quick: deps deps-bench build
	scripts/bench.sh --quick $(HUSK) || true

unit:
	$(CARGO) test --release --workspace --lib --bins

# Remakes crates/husk/link-order.txt, the order lld lays out the functions
# husk's commands run (crates/husk/build.rs): 10-20 minutes. Run it when a
# change moves much code, after a Rust update, and after any change of
# Cargo.lock (the names' hashes follow the dependency graph: make test's
# the_link_order_is_made_for_this_cargo_lock fails until then); names that no
# longer exist are skipped. Builds as you (with lld's map), traces as root
# (sudo if needed).
link-order: deps $(SECCOMP_LIB)/libseccomp.a
	HUSK_LINK_MAP=$(CURDIR)/target/link-order.map $(STATIC) $(CARGO) build --release --target $(TARGET)
	$$([ "$$(id -u)" -eq 0 ] || echo sudo) scripts/link-order/run.sh target/link-order.map $(HUSK)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(if $(filter $(MUSL),$(TARGET)),$(STATIC) $(CARGO) clippy --all-targets --target $(MUSL) -- -D warnings)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# Installs what `make build` built, and the man pages and shell completions
# that binary writes (husk man, husk completion): no cargo here, so
# `make build && sudo make install` never builds as root. DESTDIR for packaging.
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
BASHDIR = $(PREFIX)/share/bash-completion/completions
ZSHDIR = $(PREFIX)/share/zsh/site-functions
FISHDIR = $(PREFIX)/share/fish/vendor_completions.d
INSTALLED = $(BINDIR)/husk $(MANDIR)/man8/husk.8 $(MANDIR)/man8/husk-*.8 $(BASHDIR)/husk $(ZSHDIR)/_husk $(FISHDIR)/husk.fish

install:
	@test -x "$(HUSK)" || { echo "make install: $(HUSK) is missing: run make build first" >&2; exit 1; }
	gen=$$(mktemp -d) && trap 'rm -rf "$$gen"' EXIT && \
	$(HUSK) man "$$gen/man8" && \
	$(HUSK) completion bash > "$$gen/husk.bash" && \
	$(HUSK) completion zsh > "$$gen/_husk" && \
	$(HUSK) completion fish > "$$gen/husk.fish" && \
	install -D -m 0755 $(HUSK) "$(DESTDIR)$(BINDIR)/husk" && \
	install -d "$(DESTDIR)$(MANDIR)/man8" && \
	install -m 0644 "$$gen"/man8/*.8 "$(DESTDIR)$(MANDIR)/man8/" && \
	install -D -m 0644 "$$gen/husk.bash" "$(DESTDIR)$(BASHDIR)/husk" && \
	install -D -m 0644 "$$gen/_husk" "$(DESTDIR)$(ZSHDIR)/_husk" && \
	install -D -m 0644 "$$gen/husk.fish" "$(DESTDIR)$(FISHDIR)/husk.fish"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	$(CARGO) clean
	rm -rf demo
