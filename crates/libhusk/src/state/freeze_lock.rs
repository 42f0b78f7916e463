//! The freeze lock of a container: a file in its directory that `kill
//! --all`, `pause` and `resume` hold an flock on while they freeze or thaw
//! its cgroup, so that one never undoes another's freeze.
//!
//! `kill --all` freezes the cgroup (so that no process escapes its signal
//! by forking) and thaws it after. A `kill` ended by SIGKILL in between,
//! which no signal mask defers, left the container frozen though nobody
//! paused it: reported `paused` until someone resumed it (review 55 F5).
//! So while its freeze lasts the file is not empty; the kernel lets go of
//! the lock when its holder dies, and the next status of a frozen container
//! whose lock it gets with the file not empty undoes that freeze.
//!
//! The file is made with the directory, by `create` (or `restore`), and
//! never removed but with it: a lock on a path that can be unlinked and
//! made again is a lock on nothing (review 56b F1, F2), and one made by a
//! `kill` (which takes no container lock) kept a `delete -f` from removing
//! the directory (review 56c F1). A container made before it had one has
//! no turns.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use crate::error::{Context, Error, Result};

pub(super) const LOCK_FILE: &str = "freeze.lock";

/// How long a command waits for another one's freeze or thaw of the
/// container, each bounded by 10 s (cgroups::freeze); a holder found
/// stopped (SIGSTOP) is named within about 2 s instead.
const WAIT: Duration = Duration::from_secs(30);

/// The freeze lock of a container, held: let go when dropped.
pub struct FreezeLock {
    file: File,
}

impl FreezeLock {
    /// Makes the lock file of new container directory `dir`.
    pub fn make(dir: &Path) -> Result<()> {
        let path = dir.join(LOCK_FILE);
        File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map(drop)
            .context(|| format!("create {}", path.display()))
    }

    /// Waits (bounded) until no other command freezes or thaws the
    /// container in directory `dir`, and keeps others from doing so; None
    /// when it has no lock file (made by an older husk, or being deleted).
    pub fn take(dir: &Path) -> Result<Option<FreezeLock>> {
        let path = dir.join(LOCK_FILE);
        let file = match open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.context(|| format!("open {}", path.display()))?,
        };
        super::flock_within(&file, WAIT).map_err(|e| {
            Error::new(format!(
                "wait for the turn to freeze or thaw the container ({}): {e}",
                path.display()
            ))
        })?;
        Ok(Some(FreezeLock { file }))
    }

    /// [`FreezeLock::take`], then undoes the freeze of a holder that died
    /// with it under way: the cgroup of `freezer` is frozen only if
    /// someone paused it.
    pub fn take_undoing_left(dir: &Path, freezer: &Path) -> Result<Option<FreezeLock>> {
        let mut lock = FreezeLock::take(dir)?;
        if let Some(lock) = &mut lock {
            lock.undo_left(freezer)?;
        }
        Ok(lock)
    }

    fn undo_left(&mut self, freezer: &Path) -> Result<bool> {
        if !self.left_marked() {
            return Ok(false);
        }
        crate::cgroups::freeze(freezer, false)?;
        self.unmark();
        crate::log::debug("a kill --all had been ended in its freeze: the container was thawed");
        Ok(true)
    }

    /// Whether a holder died with its freeze under way (then the cgroup
    /// may still be frozen by it).
    pub fn left_marked(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.len() > 0)
    }

    /// Says that a freeze that must be undone is under way: should this
    /// process die before [`FreezeLock::unmark`], the next status undoes it.
    pub fn mark(&mut self) {
        let _ = self.file.write_all_at(b"1", 0);
    }

    /// The freeze is undone (or is a pause's now).
    pub fn unmark(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Thaws the cgroup of `freezer` if a `kill --all` froze it and died before
/// it thawed it: whether it did (the container is then not paused). Takes
/// no turn: a command freezing or thawing the container now leaves it so.
pub fn thaw_if_left_frozen(dir: &Path, freezer: &Path) -> bool {
    // No file: the path of nearly every status.
    let Ok(file) = open(&dir.join(LOCK_FILE)) else {
        return false;
    };
    if crate::sys::cgroupfs::flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return false;
    }
    let mut lock = FreezeLock { file };
    lock.undo_left(freezer).unwrap_or(false)
}

/// Clears the mark a `kill --all` killed after its thaw left on a container
/// that is not frozen, before something other than husk's turn-takers
/// (criu's freeze for `checkpoint`) freezes it: the next status would take
/// that freeze for the dead kill's and undo it (review 56e F2).
pub fn clear_left_mark(dir: &Path) {
    let Ok(file) = open(&dir.join(LOCK_FILE)) else {
        return;
    };
    if crate::sys::cgroupfs::flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
        let _ = file.set_len(0);
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("husk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        FreezeLock::make(&dir).unwrap();
        dir
    }

    #[test]
    fn a_mark_outlives_its_holder_and_only_it() {
        let dir = scratch("freeze-lock");
        let mut lock = FreezeLock::take(&dir).unwrap().unwrap();
        assert!(!lock.left_marked());
        lock.mark();
        // A status meanwhile leaves the holder's freeze alone.
        assert!(!thaw_if_left_frozen(&dir, &dir.join("no-freezer")));
        drop(lock); // as a holder that died
        let mut next = FreezeLock::take(&dir).unwrap().unwrap();
        assert!(next.left_marked(), "the dead holder's mark stays");
        next.unmark();
        drop(next);
        assert!(!FreezeLock::take(&dir).unwrap().unwrap().left_marked());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_turn_is_waited_for() {
        let dir = scratch("freeze-lock-wait");
        let held = FreezeLock::take(&dir).unwrap();
        let d = dir.clone();
        let waiter = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            FreezeLock::take(&d).map(|_| start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        let waited = waiter.join().unwrap().unwrap();
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_left_mark_is_cleared_but_not_a_holders() {
        let dir = scratch("freeze-lock-clear");
        let mut lock = FreezeLock::take(&dir).unwrap().unwrap();
        lock.mark();
        clear_left_mark(&dir);
        assert!(lock.left_marked(), "its holder is at work");
        drop(lock); // as a holder that died after its thaw
        clear_left_mark(&dir);
        assert!(!FreezeLock::take(&dir).unwrap().unwrap().left_marked());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_lock_file_no_turn() {
        let dir = scratch("freeze-lock-none");
        std::fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        assert!(FreezeLock::take(&dir).unwrap().is_none());
        assert!(!dir.join(LOCK_FILE).exists(), "not made by a take");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
