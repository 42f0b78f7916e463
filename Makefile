CARGO ?= cargo
PREFIX ?= /usr/local
HUSK := target/release/husk

.PHONY: all build deps demo test test-cgroupv2 unit lint install clean

all: build

build:
	$(CARGO) build --release

deps:
	scripts/install-deps.sh

demo: deps build
	HUSK=$(HUSK) scripts/demo.sh

# Unit tests run anywhere; the integration tests in tests/ run real containers as root.
test: deps
	$(CARGO) test --release

# The cgroup v2 tests, in a QEMU VM whose only hierarchy is cgroup v2.
test-cgroupv2: deps
	$(CARGO) build --release
	bin=$$($(CARGO) test --release --test cgroupv2 --no-run --message-format=json \
		| grep -o '"executable":"[^"]*cgroupv2[^"]*"' | cut -d'"' -f4) && \
	integration/vm/run-in-vm.sh --timeout 900 -- $$bin --ignored --test-threads=1

unit:
	$(CARGO) test --release --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

install: build
	install -D -m 0755 $(HUSK) $(DESTDIR)$(PREFIX)/bin/husk

clean:
	$(CARGO) clean
	rm -rf demo
