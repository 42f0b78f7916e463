//! Whether a state root is out of other users' reach: see [`check`].

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// At most this many links are followed on the way (as the kernel's 40).
const MAX_LINKS: usize = 40;

/// Checks every directory and link on the way to `root` (absolute), as
/// OpenSSH's StrictModes does, so that what the path names cannot change
/// under husk: each is owned by root or the caller; no directory is
/// writable by its group or others unless it is sticky (as /tmp, where no
/// one else may rename what root or the caller made), and the root itself
/// is writable by its owner alone. Links are followed as the kernel would.
/// Ok(false) when the root does not exist (yet); Err names what fails.
pub fn check(root: &Path) -> Result<bool, String> {
    walk(root, false).map_err(|refusal| match refusal {
        Refusal::Untrusted(why) | Refusal::Unmade(why) => why,
    })
}

/// Why [`make`] failed.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// What another user could change (as [`check`] says).
    Untrusted(String),
    /// A directory that could not be made.
    Unmade(String),
}

/// Makes the missing directories of `root` (mode 0711) as [`check`] walks
/// to them, so that each is made only where the walk has found its parent
/// trusted, and is checked in turn: a name another user takes first in a
/// sticky directory (/tmp) is refused as theirs, and no directory is ever
/// made inside theirs (as `mkdir -p` before the check would).
pub fn make(root: &Path) -> Result<(), Refusal> {
    match walk(root, true)? {
        true => Ok(()),
        false => Err(Refusal::Unmade(format!("{}: vanished as it was made", root.display()))),
    }
}

fn walk(root: &Path, make: bool) -> Result<bool, Refusal> {
    let untrusted = Refusal::Untrusted;
    let owner = Owners::of_caller();
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, root);
    let mut at = PathBuf::from("/");
    check_dir(
        &at,
        &std::fs::metadata(&at).map_err(|e| untrusted(format!("/: {e}")))?,
        &owner,
        pending.is_empty(),
    )
    .map_err(untrusted)?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && make => {
                make_dir(&next)?;
                std::fs::symlink_metadata(&next).map_err(|e| untrusted(format!("{}: {e}", next.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(untrusted(format!("{}: {e}", next.display()))),
        };
        if meta.file_type().is_symlink() {
            // /proc/PID/root, cwd and fd/N lead to the object, not to their
            // text: another mount namespace's files (a container's).
            if on_procfs(&at) {
                return Err(untrusted(format!(
                    "{} is a link in procfs, whose target is not its text",
                    next.display()
                )));
            }
            if !owner.trusted_above(meta.uid()) {
                return Err(untrusted(format!(
                    "{} is a link owned by uid {}",
                    next.display(),
                    meta.uid()
                )));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(untrusted(format!("{}: too many levels of links", next.display())));
            }
            let target = std::fs::read_link(&next).map_err(|e| untrusted(format!("{}: {e}", next.display())))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
            continue;
        }
        check_dir(&next, &meta, &owner, pending.is_empty()).map_err(untrusted)?;
        at = next;
    }
    Ok(true)
}

/// One directory of the root's path; one made meanwhile (by a racing
/// create, or by another user, whom the walk then refuses) is no error.
fn make_dir(path: &Path) -> Result<(), Refusal> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o711).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(Refusal::Unmade(format!("create {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

fn on_procfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Queues the components of `path` so that the first is popped first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names = path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    });
    let names: Vec<OsString> = names.collect();
    pending.extend(names.into_iter().rev());
}

fn check_dir(path: &Path, meta: &std::fs::Metadata, owner: &Owners, last: bool) -> Result<(), String> {
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let trusted = match last {
        true => owner.trusted(meta.uid()),
        false => owner.trusted_above(meta.uid()),
    };
    if !trusted {
        return Err(format!(
            "{} is owned by uid {}, neither this user nor root",
            path.display(),
            meta.uid()
        ));
    }
    let others_write = meta.mode() & 0o022 != 0;
    let sticky = meta.mode() & libc::S_ISVTX != 0;
    if others_write && (last || !sticky) {
        return Err(format!(
            "{} is writable by its group or others (mode {:o})",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The owners husk trusts: root and the caller. In a user namespace that
/// does not map the host's root (rootless podman's), the host's root (and
/// any id the namespace does not map) shows as the overflow uid, which is
/// trusted for the directories and links above the root (/, /run, /run/user
/// as that runtime sees them): there, another user's cannot be told from
/// root's, and husk, not the host's root, has no more than its user's
/// rights to lose. Whether the host's root is unmapped is read from the
/// owner of / (a uid_map names the parent namespace's ids only: root two
/// namespaces down would pass for an ordinary user).
struct Owners {
    euid: u32,
    overflow: std::cell::OnceCell<Option<u32>>,
}

impl Owners {
    fn of_caller() -> Owners {
        Owners {
            euid: nix::unistd::geteuid().as_raw(),
            overflow: std::cell::OnceCell::new(),
        }
    }

    fn trusted(&self, uid: u32) -> bool {
        uid == 0 || uid == self.euid
    }

    /// Trusted, or (above the root) the overflow uid where the host's root is unmapped.
    fn trusted_above(&self, uid: u32) -> bool {
        self.trusted(uid) || Some(uid) == *self.overflow.get_or_init(host_root_unmapped_as)
    }
}

/// The overflow uid, when / shows as owned by it: the host's root is not
/// mapped in our user namespace, so we are not it.
fn host_root_unmapped_as() -> Option<u32> {
    let overflow = overflow_uid()?;
    let root_owner = std::fs::metadata("/").ok()?.uid();
    (root_owner == overflow && overflow != nix::unistd::geteuid().as_raw()).then_some(overflow)
}

fn overflow_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::{check, make, Refusal};

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn links_and_dot_dots_are_followed_as_the_kernel_would() {
        let base = std::env::temp_dir().join(format!("husk-trust-test-{}", std::process::id()));
        let real = base.join("a/real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("../a/real", base.join("a/rel")).unwrap();
        std::os::unix::fs::symlink("loop2", base.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", base.join("loop2")).unwrap();
        assert_eq!(check(&base.join("a/rel")), Ok(true));
        assert_eq!(check(&base.join("a/real/../real")), Ok(true));
        assert_eq!(check(&base.join("a/missing/deeper")), Ok(false));
        assert!(check(&base.join("loop1"))
            .unwrap_err()
            .contains("too many levels of links"));
        // A group-writable directory on the way (not sticky), through a link.
        std::fs::set_permissions(base.join("a"), std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = check(&base.join("a/rel")).unwrap_err();
        assert!(
            err.contains("/a is writable by its group or others (mode 775)"),
            "{err}"
        );
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::set_permissions(base.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check(&real).unwrap_err();
        assert!(
            err.contains("writable by its group or others (mode 1777)"),
            "sticky is no excuse for the root itself: {err}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn missing_directories_are_made_only_inside_trusted_ones() {
        use std::os::unix::fs::MetadataExt;
        let base = std::env::temp_dir().join(format!("husk-trust-make-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let root = base.join("a/b/../c/r");
        assert_eq!(make(&root), Ok(()));
        assert_eq!(check(&root), Ok(true));
        assert_eq!(std::fs::metadata(base.join("a/c/r")).unwrap().mode() & 0o7777, 0o711);
        if nix::unistd::geteuid().is_root() {
            // Another user's name in a sticky directory: refused, and
            // nothing made inside it (mkdir -p before the check did).
            let sticky = base.join("t");
            std::fs::create_dir(&sticky).unwrap();
            std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
            std::fs::create_dir(sticky.join("theirs")).unwrap();
            std::os::unix::fs::chown(sticky.join("theirs"), Some(4242), None).unwrap();
            let refusal = make(&sticky.join("theirs/x/r")).unwrap_err();
            assert!(
                matches!(&refusal, Refusal::Untrusted(why) if why.contains("theirs is owned by uid 4242")),
                "{refusal:?}"
            );
            assert!(!sticky.join("theirs/x").exists());
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
