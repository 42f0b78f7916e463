//! `checkpoint`: a running container's processes written to an image
//! directory by CRIU, then (unless `leave_running` or `pre_dump`) the
//! container is gone, as runc has it. A failed checkpoint leaves the
//! container running as it was: criu thaws what it froze.

use std::path::{Path, PathBuf};

use super::delete::{kill_and_wait, remove_container};
use super::Mode;
use crate::bail;
use crate::criu::rpc::{Opts, ReqType};
use crate::criu::{self, CriuOptions, PinnedDir};
use crate::error::{Context, Result};
use crate::state::{Saved, Status, Store};

/// runc's checkpoint flags.
#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// The container.
    pub id: String,
    /// The flags checkpoint and restore share.
    pub criu: CriuOptions,
    /// Leave the container running once it is checkpointed.
    pub leave_running: bool,
    /// Write only the memory (a pre-dump), leaving the container running.
    pub pre_dump: bool,
    /// A previous pre-dump's image directory, relative to the image directory.
    pub parent_path: Option<PathBuf>,
}

/// Why checkpoint and restore refuse an unprivileged caller.
pub(super) fn refuse_rootless(mode: Mode, what: &str) -> Result<()> {
    if mode.rootless {
        bail!(
            "{what} needs root: CRIU reads and rebuilds every process, mount and namespace of the container through ptrace, /proc/PID/map_files and namespaces only root of the host may use, so husk does not run it rootless"
        );
    }
    Ok(())
}

/// criu links the new images to the pre-dump's at `parent` (relative to
/// the image directory) and, when there is none, fails deep in its dump with
/// a message that names no flag: said first, as runc does.
fn check_parent(image: &PinnedDir, parent: &Path) -> Result<()> {
    let at = || {
        format!(
            "--parent-path {} (in the image directory {})",
            parent.display(),
            image.path.display()
        )
    };
    match std::fs::metadata(Path::new(&image.arg()).join(parent)) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("{}: not a directory", at()),
        Err(e) => Err(e).context(at),
    }
}

/// Checkpoints the running (or paused) container `opts.id` into the image
/// directory with criu; see [`CheckpointOptions`].
pub fn checkpoint(store: &Store, opts: &CheckpointOptions, mode: Mode) -> Result<()> {
    refuse_rootless(mode, "checkpoint")?;
    opts.criu.check()?;
    if let Some(parent) = &opts.parent_path {
        if parent.is_absolute() {
            bail!(
                "--parent-path {}: must be relative to the image directory, as criu takes it",
                parent.display()
            );
        }
    }
    let locked = store.lock(&opts.id)?;
    let saved = locked.load(&opts.id)?;
    let status = locked.status(&saved);
    match status {
        // A paused container may be a created one (its init before execve).
        Status::Paused if !saved.restored && saved.init_before_exec() => {
            bail!(
                "cannot checkpoint container {}: it is paused while created, not running",
                opts.id
            )
        }
        Status::Running => crate::state::clear_left_mark(&locked.dir),
        Status::Paused => {}
        status => bail!("cannot checkpoint container {}: it is {status}, not running", opts.id),
    }
    let config = locked.dir.join("config.json");
    let text = std::fs::read_to_string(&config).context(|| format!("container \"{}\" config", opts.id))?;
    let spec = crate::spec::parse(&text).context(|| config.display().to_string())?;
    warn_lost_no_new_privs(&spec);
    // A pre-dump looks at neither the terminals nor the stdio.
    let mountinfo = match opts.pre_dump {
        true => String::new(),
        false => criu::mountinfo(saved.pid),
    };
    let mounts = criu::mount_ids(&mountinfo);
    if !opts.criu.shell_job && !opts.pre_dump {
        refuse_host_terminals(&spec, saved.pid, &mounts)?;
    }
    let writable = criu::writable_by_container(&spec, &saved.rootfs, &saved.bundle);
    let config = criu::config_file(&spec, &writable)?;
    let mut dirs = opts.criu.open_dirs(true, &writable)?;
    dirs.config = config;
    if let Some(parent) = &opts.parent_path {
        check_parent(&dirs.image, parent).inspect_err(|_| dirs.remove_made())?;
    }
    let (kind, log) = if opts.pre_dump {
        (ReqType::PreDump, "pre-dump.log")
    } else {
        (ReqType::Dump, "dump.log")
    };
    let criu_opts = dump_opts(opts, &saved, &spec, &dirs, (&mountinfo, &mounts))?;
    let frozen_by_criu = criu_opts.freeze_cgroup.is_some() && status == Status::Running;
    if let Err(e) = criu::run(
        kind,
        criu_opts,
        &dirs,
        log,
        criu::Spawn::default(),
        &mut |_, _| Ok(()),
        None,
    ) {
        if frozen_by_criu {
            thaw_after(&saved);
        }
        return Err(e);
    }
    if opts.leave_running || opts.pre_dump {
        return Ok(());
    }
    // criu killed the processes: the container is gone, as after runc's checkpoint.
    kill_and_wait(&saved)?;
    remove_container(locked, &saved)
}

/// A container whose config asks for no_new_privs, checkpointed where criu
/// would restore it without (before 3.19, as Debian 12's 3.17): the image
/// is sound (a newer criu elsewhere restores it), but `restore` refuses it
/// here (see restore.rs), so say so before a checkpoint ends the container.
fn warn_lost_no_new_privs(spec: &oci_spec::runtime::Spec) {
    let asks = spec
        .process()
        .as_ref()
        .and_then(|p| p.no_new_privileges())
        .unwrap_or(false);
    if let Some(v) = criu::version().filter(|v| asks && *v < (3, 19)) {
        crate::log::warn(&format!(
            "process.noNewPrivileges: criu {}.{} restores processes without no_new_privs (3.19 and later keep it): husk restores this image only with a newer criu",
            v.0, v.1
        ));
    }
}

/// A container whose stdio is its caller's terminal (`husk run -d` typed
/// at a shell, without `process.terminal`) is restored only as a shell job:
/// a checkpoint without `--shell-job` would end it for an image no restore
/// can use (criu: "tty: BUG"). A pre-dump writes only memory.
fn refuse_host_terminals(spec: &oci_spec::runtime::Spec, pid: libc::pid_t, mounts: &[u64]) -> Result<()> {
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    if terminal {
        return Ok(());
    }
    if let Some((n, link)) = criu::host_terminals(pid, mounts).into_iter().next() {
        bail!(
            "fd {n} of the container's process is a terminal outside it ({link}), which criu restores only as a shell job: checkpoint and restore it with --shell-job (Debian 12's criu 3.17 fails to dump it even so, leaving it running), or give the container a pipe, a file or process.terminal"
        );
    }
    Ok(())
}

/// Thaws a container that was running before a criu that failed: a criu
/// that reports its failure thaws what it froze itself, but one killed (by
/// husk's timeout, the OOM killer, a signal) leaves the cgroup frozen, and
/// the container would be stuck, paused, though nobody paused it.
fn thaw_after(saved: &Saved) {
    let thawed = crate::cgroups::driver::for_record(&saved.cgroup).and_then(|cgroup| cgroup.freeze(false));
    if let Err(e) = thawed {
        crate::log::warn(&format!("checkpoint failed: thaw container {}: {e}", saved.id));
    }
}

fn dump_opts(
    opts: &CheckpointOptions,
    saved: &Saved,
    spec: &oci_spec::runtime::Spec,
    dirs: &criu::Dirs,
    (mountinfo, mounts): (&str, &[u64]),
) -> Result<Opts> {
    let mut args = Opts {
        pid: Some(saved.pid),
        root: Some(saved.rootfs.to_string_lossy().into_owned()),
        ..Default::default()
    };
    opts.criu.common_opts(&mut args);
    opts.criu.dump_opts(&mut args)?;
    if let Some(parent) = &opts.parent_path {
        args.parent_img = Some(parent.to_string_lossy().into_owned());
    }
    args.track_mem = opts.pre_dump || opts.parent_path.is_some();
    args.leave_running = opts.leave_running && !opts.pre_dump;
    // criu stops every process of the container at once through its freezer
    // (runc does so too), rather than one by one through ptrace.
    if let Some(freezer) = saved.cgroup.freezer.as_deref().and_then(|f| f.parent()) {
        if saved.cgroup.owns() {
            args.freeze_cgroup = Some(freezer.to_string_lossy().into_owned());
        }
    }
    if opts.pre_dump {
        return Ok(args);
    }
    for m in criu::external_mounts(spec, &saved.bundle) {
        args.ext_mnt.push((m.destination, m.key));
    }
    for file in criu::masked_files(spec, mountinfo) {
        args.ext_mnt.push((file, "/dev/null".into()));
    }
    criu::dump_external_namespaces(spec, &mut args)?;
    criu::dump_stdio(&dirs.image, saved.pid, mounts, saved.stdio.as_deref(), &mut args)?;
    // A terminal's master is outside the container (with whoever got it
    // over the console socket): criu dumps the pty's slave, which restore
    // gives a new master (orphan_pts_master, set on every run), as runc has it.
    Ok(args)
}
