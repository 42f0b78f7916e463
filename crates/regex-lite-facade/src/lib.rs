//! regex-lite under the regex crate's name: see Cargo.toml.

pub use regex_lite::*;
