//! Helpers of the unit tests.

use std::time::{Duration, Instant};

/// A `sleep 30` in a mount namespace of its own (`unshare --mount`), once it
/// is there: unshare execs sleep only after it has made the namespace.
pub(crate) fn in_new_mount_namespace() -> std::process::Child {
    let child = std::process::Command::new("unshare")
        .args(["--mount", "sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{}/exe", child.id())).is_ok_and(|e| !e.ends_with("sleep")) {
        assert!(Instant::now() < deadline, "unshare never exec'd");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}
