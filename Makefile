CARGO ?= cargo
PREFIX ?= /usr/local
HUSK := target/release/husk

.PHONY: all build deps demo test unit lint install clean

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
