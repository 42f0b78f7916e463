//! Lifecycle hooks. Each gets the container's state on stdin and runs with its
//! own path, args and env, within its timeout. A failing prestart,
//! createRuntime, createContainer or startContainer hook stops the operation;
//! a failing poststart or poststop hook is a warning and the rest still run.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::error::{Context, Error, Result};
use crate::{log, sys};

/// How much of a failed hook's output goes into the error.
const OUTPUT_LIMIT: usize = 512;

/// Runs `hooks` in order; the first failure is the error.
pub fn run_all(kind: &str, hooks: &[Hook], state: &str) -> Result<()> {
    for hook in hooks {
        run(hook, state).map_err(|e| Error::new(format!("{kind} hook {}: {e}", hook.path().display())))?;
    }
    Ok(())
}

/// Runs every hook of `hooks`; failures are warnings.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state: &str) {
    for hook in hooks {
        if let Err(e) = run(hook, state) {
            log::warn(&format!("{kind} hook {}: {e}", hook.path().display()));
        }
    }
}

fn run(hook: &Hook, state: &str) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut output = sys::memfd(c"husk-hook").context(|| "memfd for hook output".into())?;
    cmd.stdin(Stdio::piped())
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?);
    let mut child = cmd.spawn().context(|| "start".into())?;
    let pidfd = sys::pidfd_open(child.id() as i32).context(|| "pidfd".into())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: EPIPE is ignored.
        let _ = stdin.write_all(state.as_bytes());
    }
    let timeout = hook.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    if !exited_within(&pidfd, timeout)? {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::new(format!(
            "timed out after {}s",
            timeout.unwrap_or_default().as_secs()
        )));
    }
    let status = child.wait().context(|| "wait".into())?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    output.rewind()?;
    let _ = output.take(OUTPUT_LIMIT as u64).read_to_string(&mut text);
    let text = text.trim().replace('\n', " ");
    let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_string(),
    };
    Err(Error::new(if text.is_empty() { how } else { format!("{how}: {text}") }))
}

/// Whether the process behind `pidfd` exits within `timeout` (None: waits).
fn exited_within(pidfd: &OwnedFd, timeout: Option<Duration>) -> Result<bool> {
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
    };
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for hook".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_hook_gets_the_state_on_stdin_and_its_args_and_env() {
        let out = std::env::temp_dir().join(format!("husk-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $1 $V\" >> {0}","first"],"env":["V=v1"]}}"#,
            out.display()
        ));
        run_all("test", &[h], r#"{"id":"x"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}first  v1\n");
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn failure_and_timeout_are_errors_naming_the_hook() {
        let e = run_all(
            "prestart",
            &[hook(r#"{"path":"/bin/sh","args":["sh","-c","echo oops >&2; exit 4"]}"#)],
            "{}",
        )
        .unwrap_err();
        assert_eq!(e.message(), "prestart hook /bin/sh: exit status 4: oops");
        let e = run_all(
            "createRuntime",
            &[hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#)],
            "{}",
        )
        .unwrap_err();
        assert!(e.message().contains("timed out after 1s"), "{e}");
        let e = run_all("poststart", &[hook(r#"{"path":"/nonexistent/hook"}"#)], "{}").unwrap_err();
        assert!(
            e.message().starts_with("poststart hook /nonexistent/hook: start"),
            "{e}"
        );
    }
}
