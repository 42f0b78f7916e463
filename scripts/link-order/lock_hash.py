#!/usr/bin/env python3
"""lock_hash.py FILE: FNV-1a (64 bits) of a file but its carriage returns, as
tests/cli.rs computes it for Cargo.lock (the dependency graph the link
order's names follow)."""
import sys

h = 0xcbf29ce484222325
for b in open(sys.argv[1], 'rb').read().replace(b'\r', b''):
    h = ((h ^ b) * 0x100000001b3) % 2**64
print("%016x" % h)
