//! A mark in a container's directory while `kill --all` holds its cgroup
//! frozen to signal every process (so that none escapes by forking). A
//! `kill` ended by SIGKILL in that window, which no signal mask defers,
//! left the container frozen though nobody paused it, reported `paused`
//! until someone resumed it (review 55 F5). The mark is a file its
//! signaller holds an flock on: the kernel lets go of that lock when the
//! signaller dies, so a mark that can be locked and is still linked was
//! left by one that died before it thawed the cgroup and removed the mark.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

const MARK: &str = "frozen-to-signal";

/// The mark of a signaller at work: removed when dropped.
pub struct FreezeMark {
    path: PathBuf,
    // Closed (its lock let go) only after the mark is removed.
    _file: File,
}

impl FreezeMark {
    /// Marks container directory `dir` before its cgroup, not frozen now,
    /// is frozen to signal it. None when another signaller at work holds the
    /// mark (its thaw is this one's too) or it cannot be made.
    pub fn take(dir: &Path) -> Option<FreezeMark> {
        let path = dir.join(MARK);
        let file = open(&path, true)?;
        sys::cgroupfs::flock(&file, libc::LOCK_EX | libc::LOCK_NB).ok()?;
        Some(FreezeMark { path, _file: file })
    }
}

impl Drop for FreezeMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Thaws the cgroup of `freezer` if a signaller froze it and died before it
/// thawed it: whether it did (the container is then not paused).
pub fn thaw_if_left_frozen(dir: &Path, freezer: &Path) -> bool {
    if !discard_stale(dir, || crate::cgroups::freeze(freezer, false).is_ok()) {
        return false;
    }
    crate::log::debug("a kill --all had been ended in its freeze: the container was thawed");
    true
}

/// Removes a mark that a signaller which died after its thaw left, before
/// the container is paused: the next status would take the pause for the
/// freeze of that signaller and undo it.
pub fn discard_left_mark(dir: &Path) {
    discard_stale(dir, || true);
}

/// Runs `undo` when `dir` holds the mark of a signaller that died, and
/// removes the mark once `undo` says it has undone its freeze.
fn discard_stale(dir: &Path, undo: impl FnOnce() -> bool) -> bool {
    let path = dir.join(MARK);
    // No mark: the path taken by nearly every status.
    let Some(file) = open(&path, false) else {
        return false;
    };
    if sys::cgroupfs::flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return false; // its signaller is at work
    }
    // Unlinked between the open and the lock: its signaller thawed and left.
    if file.metadata().map_or(true, |m| m.nlink() == 0) {
        return false;
    }
    if !undo() {
        return false;
    }
    let _ = std::fs::remove_file(&path);
    true
}

fn open(path: &Path, create: bool) -> Option<File> {
    File::options()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("husk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_mark_is_stale_only_once_its_holder_let_go() {
        let dir = scratch("freeze-mark");
        let mark = FreezeMark::take(&dir).expect("mark taken");
        assert!(FreezeMark::take(&dir).is_none(), "held by a signaller at work");
        assert!(!discard_stale(&dir, || panic!("its signaller is at work")));
        // A signaller that died: its lock went, the mark stayed.
        std::mem::forget(mark);
        std::fs::remove_file(dir.join(MARK)).unwrap();
        File::create(dir.join(MARK)).unwrap();
        assert!(!discard_stale(&dir, || false), "not undone");
        assert!(dir.join(MARK).exists(), "a mark whose freeze was not undone stays");
        assert!(discard_stale(&dir, || true));
        assert!(!dir.join(MARK).exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_mark_dropped_is_gone() {
        let dir = scratch("freeze-mark-drop");
        drop(FreezeMark::take(&dir).expect("mark taken"));
        assert!(!dir.join(MARK).exists());
        assert!(!discard_stale(&dir, || panic!("nothing to undo")));
        std::fs::remove_dir(&dir).unwrap();
    }
}
