//! `linux.seccomp`: checked at validation (so a bad profile fails `create`
//! before anything exists), compiled to a BPF program by libseccomp in the
//! parent right after it (`spec::prepare`, through a cache of compiled
//! filters), then loaded by the init with seccomp(2) and the spec's flags.

use std::collections::HashSet;
use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use crate::bail;
use crate::error::{Context, Error, Result};

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The highest syscall number probed when looking for syscalls newer than a profile.
const MAX_SYSCALL_PROBE: i32 = 1024;

/// A profile that adds rules for more syscalls than this gets a filter in
/// the shape of a binary tree. With few a tree gains nothing, and with none libseccomp
/// before 2.5.4 made a filter that ignored the default action (its issue
/// 370); runc's threshold.
const TREE_FROM: usize = 8;

/// Changed whenever `compile` makes another filter of the same profile, so
/// that the cache (keyed by husk's version, which a build does not change)
/// does not hand back the old one.
const COMPILE_REVISION: &[u8] = b"binary tree past 8 syscalls with rules";

pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

pub struct SeccompPlan {
    /// struct sock_filter[], as the kernel takes it; empty until compiled.
    pub bpf: Vec<u8>,
    pub flags: u32,
    pub listener: Option<Listener>,
    /// The profile's syscall names this libseccomp does not know, left out
    /// of the filter (as runc does).
    pub unknown: Vec<String>,
    /// The profile, checked, until it is compiled (`compile_planned`).
    pending: Option<LinuxSeccomp>,
}

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn flag_bits(s: &LinuxSeccomp) -> Result<u32> {
    let mut flags = 0;
    for f in s.flags().as_deref().unwrap_or(&[]) {
        flags |= match enum_name(f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => FLAG_WAIT_KILLABLE_RECV,
            other => bail!("linux.seccomp.flags: unsupported flag {other}"),
        };
    }
    Ok(flags)
}

/// Compiling a full profile takes tens of milliseconds, so the BPF is kept in
/// `cache` (under the state root), named by a hash of the profile, husk's
/// version and libseccomp's. The file holds that whole key before the BPF,
/// and a hit must match it byte for byte: the hash (FNV-1a) is no defence
/// against a profile made to collide with another's, whose filter it would
/// otherwise get.
pub fn compile_cached(s: &LinuxSeccomp, cache: &Path) -> Result<SeccompPlan> {
    let key = cache_key(s);
    let path = cache.join(format!("{:016x}.bpf", fnv1a(&key)));
    let cached = is_cache_dir(cache).then(|| read_entry(&path)).flatten();
    if let Some((unknown, bpf)) = cached.and_then(|entry| cached_filter(&entry, &key)) {
        let (flags, listener) = flags_and_listener(s)?;
        return Ok(SeccompPlan {
            bpf,
            flags,
            listener,
            unknown,
            pending: None,
        });
    }
    let plan = compile(s)?;
    // Best effort: a cache that cannot be written only costs time.
    use std::os::unix::fs::DirBuilderExt;
    let made = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(cache);
    if made.is_ok() && is_cache_dir(cache) {
        let _ = crate::sys::fs::write_atomic(&path, &cache_entry(&key, &plan.unknown, &plan.bpf), 0o600);
        prune_cache(cache, MAX_CACHED);
    }
    Ok(plan)
}

/// Whether `cache` is a directory, not a link to one: the prune removes
/// files there (a link would have it remove another directory's, review
/// 60b F3).
fn is_cache_dir(cache: &Path) -> bool {
    cache.symlink_metadata().is_ok_and(|m| m.is_dir())
}

/// How many compiled filters the cache keeps: a host runs few distinct
/// profiles, but every husk upgrade and every profile edited by hand leaves
/// entries that are never hit again.
const MAX_CACHED: usize = 64;

/// Removes the least recently used entries of `cache` beyond `keep` (used:
/// read or written, as the access and modification times tell; with
/// relatime, a read counts once a day). Only on a miss, which costs a
/// compile anyway; a racing create may find its entry gone and compile again.
fn prune_cache(cache: &Path, keep: usize) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let mut files: Vec<(i64, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| is_entry_name(&e.file_name()))
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            Some((meta.atime().max(meta.mtime()), e.path()))
        })
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}

/// A name `compile_cached` gives an entry: 16 hex digits and `.bpf`.
fn is_entry_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.len() == 20 && name.ends_with(b".bpf") && name[..16].iter().all(u8::is_ascii_hexdigit)
}

/// The largest cache entry read: the biggest profiles make well under 1 MiB.
const MAX_ENTRY: u64 = 4 << 20;

/// The cache entry at `path`, if it is one husk could have written: a
/// regular file of this user's that no one else may write, of a bounded
/// size, opened without following a link or waiting on a fifo. Anything
/// else (another user's forged entry, a fifo that would hold husk, a link to
/// /dev/zero) is a miss, and the entry written after the compile replaces it.
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let ours = meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0;
    if !meta.is_file() || !ours || meta.len() > MAX_ENTRY {
        return None;
    }
    let mut entry = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_ENTRY).read_to_end(&mut entry).ok()?;
    Some(entry)
}

/// What the cache is keyed by: the profile as JSON, husk's and libseccomp's versions.
fn cache_key(s: &LinuxSeccomp) -> Vec<u8> {
    let version = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro));
    let mut bytes = serde_json::to_vec(s).expect("serialises");
    bytes.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    bytes.extend_from_slice(version.unwrap_or_default().as_bytes());
    bytes.extend_from_slice(COMPILE_REVISION);
    // The entry's layout: an entry of another layout is a miss.
    bytes.extend_from_slice(b"\0entry: key, unknown names, bpf");
    bytes
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A cache file: the key's length (u64, little-endian), the key, the BPF.
fn cache_entry(key: &[u8], unknown: &[String], bpf: &[u8]) -> Vec<u8> {
    let names = unknown.join("\n");
    let mut entry = Vec::with_capacity(16 + key.len() + names.len() + bpf.len());
    for part in [key, names.as_bytes()] {
        entry.extend_from_slice(&(part.len() as u64).to_le_bytes());
        entry.extend_from_slice(part);
    }
    entry.extend_from_slice(bpf);
    entry
}

/// A length-prefixed part of a cache entry, and what follows it.
fn entry_part(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<8>()?;
    rest.split_at_checked(usize::try_from(u64::from_le_bytes(*len)).ok()?)
}

/// The unknown names and the BPF of a cache file made for exactly `key`;
/// None for any other file.
fn cached_filter(entry: &[u8], key: &[u8]) -> Option<(Vec<String>, Vec<u8>)> {
    let (stored, rest) = entry_part(entry)?;
    if stored != key {
        return None;
    }
    let (names, bpf) = entry_part(rest)?;
    let whole = !bpf.is_empty() && bpf.len() % std::mem::size_of::<libc::sock_filter>() == 0;
    let names = std::str::from_utf8(names).ok()?;
    let unknown = names.split('\n').filter(|n| !n.is_empty()).map(String::from).collect();
    whole.then(|| (unknown, bpf.to_vec()))
}

/// The filter's flags and its notify listener, checked.
fn flags_and_listener(s: &LinuxSeccomp) -> Result<(u32, Option<Listener>)> {
    check_errno_values(s)?;
    let default = action(s.default_action(), s.default_errno_ret());
    check_notify_lets_the_fd_out(s, default)?;
    check_clone_cannot_be_faked(s, default)?;
    let uses_notify = default == ScmpAction::Notify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| action(r.action(), r.errno_ret()) == ScmpAction::Notify);
    let mut flags = flag_bits(s)?;
    if !uses_notify {
        return Ok((flags, None));
    }
    let Some(path) = s.listener_path().clone() else {
        bail!("linux.seccomp.listenerPath is required with SCMP_ACT_NOTIFY")
    };
    flags |= FLAG_NEW_LISTENER;
    Ok((
        flags,
        Some(Listener {
            path,
            metadata: s.listener_metadata().clone().unwrap_or_default(),
        }),
    ))
}

/// The kernel keeps 16 bits of an action's value (SECCOMP_RET_DATA), which
/// for SCMP_ACT_ERRNO is an errno below 4096: errnoRet 65536 was
/// errno 0, a call that seemed to succeed, past the check below (review
/// 56 F1). What the kernel would not return as given is refused.
fn check_errno_values(s: &LinuxSeccomp) -> Result<()> {
    let check = |field: &str, a: LinuxSeccompAction, value: Option<u32>| -> Result<()> {
        let max = match a {
            LinuxSeccompAction::ScmpActErrno => MAX_ERRNO,
            LinuxSeccompAction::ScmpActTrace => u16::MAX as u32,
            _ => return Ok(()),
        };
        match value.filter(|&v| v > max) {
            Some(v) => bail!("{field}: {v} is out of range for {a} (at most {max})"),
            None => Ok(()),
        }
    };
    check(
        "linux.seccomp.defaultErrnoRet",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        check(
            &format!("linux.seccomp.syscalls[{i}].errnoRet"),
            rule.action(),
            rule.errno_ret(),
        )?;
    }
    Ok(())
}

/// The largest errnoRet: libseccomp refuses the kernel's MAX_ERRNO (4095)
/// too, with a message that does not say why.
const MAX_ERRNO: u32 = 4094;

/// exec's joiner, and a pod member's init, clone the process that runs the
/// program under the container's filter: a clone that an agent answers
/// (SCMP_ACT_NOTIFY) or that the filter skips with SCMP_ACT_ERRNO and
/// errnoRet 0 "returns 0", and the cloner takes itself for the child and
/// runs the program outside the container's pid namespace (review 55c F1).
fn check_clone_cannot_be_faked(s: &LinuxSeccomp, default: ScmpAction) -> Result<()> {
    let fakes = |a: ScmpAction| matches!(a, ScmpAction::Notify | ScmpAction::Errno(0));
    if fakes(default) {
        bail!("linux.seccomp.defaultAction SCMP_ACT_ERRNO with errnoRet 0: not allowed (every call it refuses would seem to succeed, husk's clone of the process that runs the program among them)");
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let a = action(rule.action(), rule.errno_ret());
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| matches!(n.as_str(), "clone" | "clone3"))
            .filter(|_| fakes(a))
        {
            let how = match a {
                ScmpAction::Notify => "SCMP_ACT_NOTIFY",
                _ => "SCMP_ACT_ERRNO with errnoRet 0",
            };
            bail!("linux.seccomp.syscalls[{i}]: {how} not allowed for {name} (husk clones the process that runs the program under the filter: a clone that seems to return 0 would run it outside the container)");
        }
    }
    Ok(())
}

/// The init loads a filter with SCMP_ACT_NOTIFY, then hands its notify fd
/// to husk with sendmsg: were that call held for a listener, none could ever
/// get the fd, and `create` would wait for ever (runc refuses the same).
fn check_notify_lets_the_fd_out(s: &LinuxSeccomp, default: ScmpAction) -> Result<()> {
    if default == ScmpAction::Notify {
        bail!("linux.seccomp.defaultAction SCMP_ACT_NOTIFY: not allowed as the default action (the init could not hand over the notify fd)");
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let notify = action(rule.action(), rule.errno_ret()) == ScmpAction::Notify;
        if notify && rule.names().iter().any(|n| n == "sendmsg") {
            bail!("linux.seccomp.syscalls[{i}]: SCMP_ACT_NOTIFY not allowed for sendmsg (the init hands over the notify fd with it)");
        }
    }
    Ok(())
}

/// Checks everything in the profile that can be checked without compiling
/// it, with the messages compiling would give; no side effect. The filter is
/// compiled later, by `compile_planned`.
pub fn check(s: &LinuxSeccomp) -> Result<SeccompPlan> {
    let default = action(s.default_action(), s.default_errno_ret());
    // Only builds the filter in memory: whether this kernel has the action.
    ScmpFilterContext::new(default).map_err(libseccomp_error("default action"))?;
    architectures(s)?;
    let (flags, listener) = flags_and_listener(s)?;
    for (i, rule) in s.syscalls().as_deref().unwrap_or(&[]).iter().enumerate() {
        conditions(i, rule)?;
    }
    Ok(SeccompPlan {
        bpf: Vec::new(),
        flags,
        listener,
        unknown: Vec::new(),
        pending: Some(s.clone()),
    })
}

/// Compiles a profile `check` passed, through the cache of compiled filters
/// in `cache` (which it may write).
pub fn compile_planned(plan: &mut SeccompPlan, cache: &Path) -> Result<()> {
    if let Some(profile) = &plan.pending {
        *plan = compile_cached(profile, cache)?;
        warn_unknown(&plan.unknown);
    }
    Ok(())
}

/// Names a profile may carry for a newer kernel or libseccomp: left out, but
/// said, so that a misspelt name is not silently an unfiltered syscall.
fn warn_unknown(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!(" {}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    crate::log::warn(&format!(
        "linux.seccomp: syscalls unknown to libseccomp{version} are left out of the filter: {}",
        names.join(", ")
    ));
}

fn libseccomp_error(what: &'static str) -> impl Fn(libseccomp::error::SeccompError) -> Error {
    move |e| Error::new(format!("linux.seccomp: {what}: {e}"))
}

fn architectures(s: &LinuxSeccomp) -> Result<Vec<ScmpArch>> {
    let names = s.architectures().as_deref().unwrap_or(&[]).iter().map(enum_name);
    names
        .map(|name| {
            name.parse()
                .map_err(|_| Error::new(format!("linux.seccomp.architectures: unknown {name}")))
        })
        .collect()
}

pub fn compile(s: &LinuxSeccomp) -> Result<SeccompPlan> {
    let plan = compile_shaped(s, true)?;
    // A tree is longer than the chain: one the kernel would refuse for its
    // length, where the chain fits, is not worth the failure.
    if plan.bpf.len() / 8 > BPF_MAXINSNS {
        return compile_shaped(s, false);
    }
    Ok(plan)
}

/// The most instructions the kernel takes in one filter.
const BPF_MAXINSNS: usize = 4096;

/// As [`compile`]; `tree_if_large`: false gives the chain whatever the size
/// (what the tests compare the tree with).
fn compile_shaped(s: &LinuxSeccomp, tree_if_large: bool) -> Result<SeccompPlan> {
    let err = libseccomp_error;
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(err("default action"))?;
    ctx.set_ctl_nnp(false).map_err(err("filter attributes"))?;
    for arch in architectures(s)? {
        if !ctx.is_arch_present(arch).map_err(err("architectures"))? {
            ctx.add_arch(arch).map_err(err("architectures"))?;
        }
    }
    let (flags, listener) = flags_and_listener(s)?;
    let mut seen = Names::default();
    for (i, rule) in s.syscalls().as_deref().unwrap_or(&[]).iter().enumerate() {
        let act = action(rule.action(), rule.errno_ret());
        add_rule(&mut ctx, i, rule, act, default, &mut seen)?;
    }
    let Names {
        named,
        ruled,
        mut unknown,
    } = seen;
    unknown.sort();
    unknown.dedup();
    // Counted by the syscalls that got a rule: names with the default
    // action add none (review 48b).
    if tree_if_large && ruled.len() > TREE_FROM {
        // A chain of one test per syscall costs the kernel at load a pass
        // of it for every syscall number of every architecture (the cache of
        // what is always allowed), and every syscall a pass down to its
        // test: a tree is O(log n). Loading husk's default profile took
        // ~840 us as a chain, ~370 as a tree (`exec --debug`). Only an
        // optimisation: a libseccomp older than 2.5 makes the chain.
        let _ = ctx.set_ctl_optimize(2);
    }
    if !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Errno(libc::ENOSYS)
    ) {
        deny_newer_syscalls_with_enosys(&mut ctx, &named);
    }
    Ok(SeccompPlan {
        bpf: export(&ctx)?,
        flags,
        listener,
        unknown,
        pending: None,
    })
}

/// A rule's argument conditions, and whether two of them are on the same
/// argument (alternatives, then).
fn conditions(i: usize, rule: &LinuxSyscall) -> Result<(Vec<ScmpArgCompare>, bool)> {
    let mut conditions = Vec::new();
    let mut indexes = Vec::new();
    for (j, a) in rule.args().as_deref().unwrap_or(&[]).iter().enumerate() {
        let op = match enum_name(&a.op()).as_str() {
            "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
            "SCMP_CMP_LT" => ScmpCompareOp::Less,
            "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
            "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
            "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
            "SCMP_CMP_GT" => ScmpCompareOp::Greater,
            "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value()),
            other => bail!("linux.seccomp.syscalls[{i}].args[{j}].op: unknown {other}"),
        };
        let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
            a.value_two().unwrap_or(0)
        } else {
            a.value()
        };
        if a.index() > 5 {
            bail!("linux.seccomp.syscalls[{i}].args[{j}].index {} is over 5", a.index());
        }
        conditions.push(ScmpArgCompare::new(a.index() as u32, op, datum));
        indexes.push(a.index());
    }
    indexes.sort_unstable();
    let repeats = indexes.windows(2).any(|w| w[0] == w[1]);
    Ok((conditions, repeats))
}

/// The syscalls a profile names, those of them that got a rule (an action
/// other than the default), and the names libseccomp does not know.
#[derive(Default)]
struct Names {
    named: HashSet<i32>,
    ruled: HashSet<i32>,
    unknown: Vec<String>,
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    i: usize,
    rule: &LinuxSyscall,
    act: ScmpAction,
    default: ScmpAction,
    seen: &mut Names,
) -> Result<()> {
    // Conditions on one argument index are alternatives: one rule each (as runc does).
    let (conditions, repeats) = conditions(i, rule)?;
    for name in rule.names() {
        // A name this libseccomp does not know is skipped, not fatal.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            seen.unknown.push(name.clone());
            continue;
        };
        seen.named.insert(sc.as_raw_syscall());
        if act == default {
            continue;
        }
        let added = if conditions.is_empty() {
            ctx.add_rule(act, sc)
        } else if repeats {
            conditions
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(drop))
                .map(|()| &mut *ctx)
        } else {
            ctx.add_rule_conditional(act, sc, &conditions)
        };
        added.map_err(|e| Error::new(format!("linux.seccomp.syscalls[{i}] {name}: {e}")))?;
        seen.ruled.insert(sc.as_raw_syscall());
    }
    Ok(())
}

/// Syscalls newer than every one the profile names get ENOSYS instead of the
/// default action, so that libc falls back (clone3 to clone, say), as runc does.
fn deny_newer_syscalls_with_enosys(ctx: &mut ScmpFilterContext, named: &HashSet<i32>) {
    let Some(&newest) = named.iter().max() else {
        return;
    };
    for nr in newest + 1..MAX_SYSCALL_PROBE {
        let sc = ScmpSyscall::from_raw_syscall(nr);
        // Only syscalls libseccomp can name: it then maps them onto every arch of the filter.
        let Ok(name) = sc.get_name_by_arch(ScmpArch::Native) else {
            continue;
        };
        let Ok(by_name) = ScmpSyscall::from_name(&name) else {
            continue;
        };
        // Best effort: a syscall the filter's other arches lack is simply not covered.
        let _ = ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), by_name);
    }
}

/// The filter as BPF bytes. libseccomp 2.5 (Debian 12) has no export to memory,
/// so it goes through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    let mut file = crate::sys::memfd(c"husk-seccomp").context(|| "memfd for seccomp".into())?;
    ctx.export_bpf(&file)
        .map_err(|e| Error::new(format!("linux.seccomp: export filter: {e}")))?;
    let mut bpf = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut bpf)?;
    Ok(bpf)
}

/// Loads the filter into this process. Returns the notify fd when the filter
/// has SCMP_ACT_NOTIFY rules.
pub fn load(plan: &SeccompPlan) -> std::io::Result<Option<OwnedFd>> {
    if plan.bpf.is_empty() {
        // Never run a container without the filter it asked for.
        return Err(std::io::Error::other(
            "the seccomp filter was not compiled (spec::prepare)",
        ));
    }
    let new_listener = plan.flags & FLAG_NEW_LISTENER != 0;
    crate::sys::cgroupfs::seccomp_set_mode_filter(&plan.bpf, plan.flags, new_listener)
}

/// glibc's fortified `fprintf`, for a musl build linked with a libseccomp.a
/// built against glibc with _FORTIFY_SOURCE (Debian's: husk's `make build`):
/// its PFC export (gen_pfc.o, linked with the rest of its API) calls it, and
/// musl has none. husk never exports PFC; should anything call it, it writes
/// nothing and returns -1 (an output error), which libseccomp reports as a
/// failed export.
#[cfg(target_env = "musl")]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn __fprintf_chk(
    _stream: *mut libc::c_void,
    _flag: libc::c_int,
    _format: *const libc::c_char,
) -> libc::c_int {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compiles_rules_and_skips_unknown_names() {
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["read","write","no_such_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap();
        assert!(!p.bpf.is_empty() && p.bpf.len() % 8 == 0);
        assert_eq!(p.unknown, ["no_such_syscall_xyz"]);
        assert_eq!(p.flags, FLAG_LOG);
        assert!(p.listener.is_none());
    }

    /// What classic BPF `filter` returns for one seccomp_data: a small
    /// interpreter of the instructions libseccomp emits.
    fn run_bpf(filter: &[u8], data: &[u8; 64]) -> u32 {
        let insn = |pc: usize| {
            let b = &filter[pc * 8..pc * 8 + 8];
            let k = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            (u16::from_le_bytes([b[0], b[1]]), b[2] as usize, b[3] as usize, k)
        };
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        loop {
            let (code, jt, jf, k) = insn(pc);
            pc += 1;
            let jump = |cond: bool| if cond { jt } else { jf };
            match code {
                0x20 => a = u32::from_le_bytes(data[k as usize..k as usize + 4].try_into().unwrap()),
                0x00 => a = k,
                0x01 => x = k,
                0x60 => a = mem[k as usize],
                0x61 => x = mem[k as usize],
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x54 => a &= k,
                0x44 => a |= k,
                0x07 => x = a,
                0x87 => a = x,
                0x05 => pc += k as usize,
                0x15 => pc += jump(a == k),
                0x25 => pc += jump(a > k),
                0x35 => pc += jump(a >= k),
                0x45 => pc += jump(a & k != 0),
                0x1d => pc += jump(a == x),
                0x2d => pc += jump(a > x),
                0x3d => pc += jump(a >= x),
                0x4d => pc += jump(a & x != 0),
                0x06 => return k,
                0x16 => return a,
                other => panic!("BPF opcode {other:#x} at {}", pc - 1),
            }
        }
    }

    /// The chain and the tree of `p` return the same for every syscall
    /// number of every x86 architecture, with arguments from `values`.
    fn assert_tree_is_chain(p: &LinuxSeccomp, values: &[u64]) {
        let chain = compile_shaped(p, false).unwrap().bpf;
        let tree = compile(p).unwrap().bpf;
        assert_ne!(chain, tree, "no tree was made");
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        const X32_BIT: u32 = 0x4000_0000;
        let targets = [
            (AUDIT_ARCH_X86_64, 0),
            (AUDIT_ARCH_X86_64, X32_BIT),
            (AUDIT_ARCH_I386, 0),
            (0xdead, 0),
        ];
        let mut checked = 0;
        for (arch, bit) in targets {
            for nr in 0..600u32 {
                for &v in values {
                    for which in 0..7 {
                        let mut data = [0u8; 64];
                        data[0..4].copy_from_slice(&(nr | bit).to_le_bytes());
                        data[4..8].copy_from_slice(&arch.to_le_bytes());
                        for i in 0..6 {
                            let arg = if which == 6 || which == i { v } else { 0 };
                            data[16 + i * 8..24 + i * 8].copy_from_slice(&arg.to_le_bytes());
                        }
                        let (c, t) = (run_bpf(&chain, &data), run_bpf(&tree, &data));
                        assert_eq!(c, t, "arch {arch:#x} nr {} arg {which} = {v:#x}", nr | bit);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn the_tree_filter_of_the_default_profile_decides_as_the_chain() {
        let p: LinuxSeccomp = serde_json::from_str(crate::spec::template::DEFAULT_SECCOMP).unwrap();
        let values = [
            0,
            1,
            8,
            0x20000,
            0x20008,
            0xffff_ffff,
            0x7e02_0000,
            0x1000_0000,
            0x1_0000_0000,
            u64::MAX,
        ];
        assert_tree_is_chain(&p, &values);
    }

    #[test]
    fn the_tree_filter_of_rules_with_arguments_decides_as_the_chain() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[
                  {"names":["read","write","close","openat","mmap","brk","exit","exit_group","futex","getpid"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":97,"args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"}]},
                  {"names":["socketpair"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":10,"op":"SCMP_CMP_LE"}]},
                  {"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":21505,"op":"SCMP_CMP_NE"}]},
                  {"names":["kill"],"action":"SCMP_ACT_TRAP","args":[{"index":1,"value":9,"op":"SCMP_CMP_GE"}]},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["lseek"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_LT"}]},
                  {"names":["mkdir","rmdir","unlink"],"action":"SCMP_ACT_LOG"},
                  {"names":["ptrace"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        let values = [
            0,
            1,
            9,
            10,
            11,
            16,
            21505,
            0x7e02_0000,
            0x1000_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ];
        assert_tree_is_chain(&p, &values);
    }

    #[test]
    fn a_profile_of_few_syscalls_stays_a_chain() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(compile(&p).unwrap().bpf, compile_shaped(&p, false).unwrap().bpf);
        // Names with the default action add no rule, however many.
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","write","close","openat","mmap","brk","futex","getpid","gettid","uname"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(compile(&p).unwrap().bpf, compile_shaped(&p, false).unwrap().bpf);
    }

    #[test]
    fn the_cache_returns_the_same_filter() {
        let dir = std::env::temp_dir().join(format!("husk-seccomp-cache-{}", std::process::id()));
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write","exit_group","nope2","nope1"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let first = compile_cached(&p, &dir).unwrap();
        assert_eq!(first.unknown, ["nope1", "nope2"]);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1, "one cached filter");
        let second = compile_cached(&p, &dir).unwrap();
        assert_eq!(first.bpf, second.bpf);
        assert_eq!(first.flags, second.flags);
        assert_eq!(first.unknown, second.unknown, "a cache hit knows the unknown names too");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used_filters() {
        let dir = std::env::temp_dir().join(format!("husk-seccomp-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = std::time::SystemTime::now();
        for age in 0..MAX_CACHED as u64 + 5 {
            let file = std::fs::File::create(dir.join(format!("{age:016x}.bpf"))).unwrap();
            let used = now - std::time::Duration::from_secs(3600 * (age + 1));
            file.set_times(std::fs::FileTimes::new().set_accessed(used).set_modified(used))
                .unwrap();
        }
        let other = dir.join("notes.txt");
        std::fs::write(&other, "").unwrap();
        std::fs::File::open(&other)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH)
            .unwrap();
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        compile_cached(&p, &dir).unwrap();
        assert!(other.exists(), "a file that is no entry was pruned");
        std::fs::remove_file(&other).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let old: Vec<String> = (0..MAX_CACHED as u64 + 5)
            .map(|age| format!("{age:016x}.bpf"))
            .collect();
        assert_eq!(names.len(), MAX_CACHED, "{names:?}");
        assert!(
            old[..MAX_CACHED - 1].iter().all(|n| names.contains(n)),
            "the most recent stay: {names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| !old.contains(n)).count(),
            1,
            "the new entry stays: {names:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A cache that is a link to another directory is not used: the prune
    /// removed that directory's files (review 60b F3).
    #[test]
    fn a_cache_that_is_a_link_is_not_used() {
        let base = std::env::temp_dir().join(format!("husk-seccomp-link-{}", std::process::id()));
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        for n in 0..MAX_CACHED + 2 {
            std::fs::write(elsewhere.join(format!("{n:016x}.bpf")), "").unwrap();
        }
        std::os::unix::fs::symlink(&elsewhere, base.join("cache")).unwrap();
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        compile_cached(&p, &base.join("cache")).unwrap();
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), MAX_CACHED + 2);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_cache_file_made_for_another_profile_is_never_loaded() {
        let dir = std::env::temp_dir().join(format!("husk-seccomp-collide-{}", std::process::id()));
        let strict = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let loose = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let loose_bpf = compile(&loose).unwrap().bpf;
        // As if the loose profile had been made to collide with the strict one.
        let path = dir.join(format!("{:016x}.bpf", fnv1a(&cache_key(&strict))));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, cache_entry(&cache_key(&loose), &[], &loose_bpf)).unwrap();
        let got = compile_cached(&strict, &dir).unwrap();
        assert_eq!(got.bpf, compile(&strict).unwrap().bpf);
        assert_ne!(got.bpf, loose_bpf);
        // A torn or foreign file is a miss too, never a filter.
        for junk in [&b""[..], &b"\xff\xff\xff\xff\xff\xff\xff\xff"[..], &loose_bpf[..]] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(compile_cached(&strict, &dir).unwrap().bpf, got.bpf);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn notify_may_not_hold_the_fds_way_out() {
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/l.sock"}"#,
        ))
        .err()
        .expect("an error");
        assert!(
            e.message()
                .starts_with("linux.seccomp.defaultAction SCMP_ACT_NOTIFY: not allowed"),
            "{e}"
        );
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"},{"names":["read","sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .err()
        .expect("an error");
        assert!(
            e.message()
                .starts_with("linux.seccomp.syscalls[1]: SCMP_ACT_NOTIFY not allowed for sendmsg"),
            "{e}"
        );
    }

    #[test]
    fn a_clone_the_filter_could_fake_is_refused() {
        let refused = [
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":0}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":0}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock","syscalls":[{"names":["read","clone"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ];
        for json in refused {
            let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
            let e = check(&s).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.starts_with("linux.seccomp.") && e.contains("seem"), "{json}: {e}");
        }
        // ENOSYS or EPERM for clone3 is fine (clone(2) is tried then).
        let allowed = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#;
        assert!(check(&serde_json::from_str(allowed).unwrap()).is_ok());
    }

    /// The kernel keeps the low 16 bits: 65536 was errno 0 (review 56 F1).
    #[test]
    fn an_errno_the_kernel_would_cut_short_is_refused() {
        let refused = [
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone3","clone"],"action":"SCMP_ACT_ERRNO","errnoRet":65536}]}"#,
                "linux.seccomp.syscalls[0].errnoRet: 65536 is out of range for SCMP_ACT_ERRNO (at most 4094)",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":4294901760}"#,
                "linux.seccomp.defaultErrnoRet: 4294901760 is out of range for SCMP_ACT_ERRNO (at most 4094)",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}"#,
                "linux.seccomp.syscalls[1].errnoRet: 4095 is out of range for SCMP_ACT_ERRNO (at most 4094)",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_TRACE","errnoRet":65536}]}"#,
                "linux.seccomp.syscalls[0].errnoRet: 65536 is out of range for SCMP_ACT_TRACE (at most 65535)",
            ),
        ];
        for (json, want) in refused {
            let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
            let e = check(&s).err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(e, want, "{json}");
        }
        let allowed = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":4094,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":65536}]}"#;
        let r = check(&serde_json::from_str(allowed).unwrap());
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    }

    #[test]
    fn notify_needs_a_listener_path() {
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .err()
        .expect("an error");
        assert!(e.message().contains("listenerPath"), "{e}");
        let p = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/l.sock","listenerMetadata":"m","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert_eq!(p.flags & FLAG_NEW_LISTENER, FLAG_NEW_LISTENER);
        assert_eq!(p.listener.unwrap().metadata, "m");
    }

    #[test]
    fn bad_operator_index_is_named() {
        let e = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        ))
        .err()
        .expect("an error");
        assert!(e.message().contains("syscalls[0].args[0].index"), "{e}");
    }
}
