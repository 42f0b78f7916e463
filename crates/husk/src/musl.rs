//! What the musl build of husk (the shipped one, `make build`) carries of
//! its own; libhusk's seccomp module has what any musl build of it needs.
//! Why musl: docs/design.md, record 4.

/// dlmalloc instead of musl's malloc, which maps and unmaps its groups as
/// they fill and empty (38 mmap and 32 munmap in one `run`, ~0.2 ms).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
