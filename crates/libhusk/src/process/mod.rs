//! The processes husk makes: the container's init and the exec process, and
//! what both set up in themselves (namespaces, user maps, capabilities,
//! attributes, sysctls, the console) before they exec the container's program.

pub mod attrs;
pub mod capabilities;
pub mod channel;
pub mod console;
pub mod exec;
pub mod hook_runner;
pub mod init;
pub mod mempolicy;
pub mod namespaces;
pub mod prologue;
pub mod seal;
pub mod signal;
pub mod sysctl;
pub mod userns;
