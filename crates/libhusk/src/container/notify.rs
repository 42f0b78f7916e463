//! NOTIFY_SOCKET passthrough (`Type=notify` units, `podman --sdnotify=container`).
//!
//! At create, a directory of the state dir is bound into the container at the
//! directory of the socket path the container's environment names (the host's
//! path when it names none). `start` (or `run`) binds the socket in it just
//! before the program runs and relays what the container sends to the host's
//! socket. `start` and `run -d` relay until READY=1 or until the container
//! dies, MAINPID rewritten to the init's host pid; nothing lingers between
//! create and start, nor after READY. `run` in the foreground relays for as
//! long as it waits (STATUS=, WATCHDOG=1, RELOADING=1 after READY=1 too), with
//! MAINPID its own pid: husk stays the service's main process and exits with
//! the container's status (runc's `run` does the same).

use std::os::fd::AsFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Context, Result};

pub const DIR: &str = "notify";

/// How many messages a relay passes on after the container's process exited.
const MAX_DRAINED: usize = 256;

/// How often a relay whose host socket has no room tries again (and asks
/// whether the container is still there).
const ROOM_CHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// The socket path inside the container: what its env names, else the
/// host's, else (an abstract or relative host socket) runc's
/// /run/notify/notify.sock. A path must name a file in a directory: one
/// ending in `..` would bind the directory with no socket in it.
pub fn container_path(env: &[std::ffi::CString], host: &Path) -> PathBuf {
    let usable = |p: &Path| {
        p.is_absolute() && p.file_name().is_some() && !p.components().any(|c| c == std::path::Component::ParentDir)
    };
    env.iter()
        .filter_map(|e| e.to_str().ok())
        .find_map(|e| e.strip_prefix("NOTIFY_SOCKET=").map(PathBuf::from))
        .filter(|p| usable(p))
        .or_else(|| Some(host.to_path_buf()).filter(|p| usable(p)))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_INSIDE))
}

const DEFAULT_INSIDE: &str = "/run/notify/notify.sock";

/// The host's socket from this process's environment (abstract ones start with '@').
pub fn host_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

/// Binds the socket the container sends to, `name` in `state_dir/notify`. The
/// path is reached through a directory fd, so a long state dir cannot overflow
/// sun_path.
pub fn bind(state_dir: &Path, name: &str) -> Result<UnixDatagram> {
    let dir = std::fs::File::open(state_dir.join(DIR)).context(|| "open notify directory".into())?;
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}/{name}", dir.as_raw_fd());
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).context(|| "bind notify socket".into())?;
    // The container's processes, of any uid, must be able to send.
    allow_everyone(&dir, name).context(|| "chmod notify socket".into())?;
    Ok(sock)
}

/// chmod 0777 of the socket `name` in `dir`, never of what a link put in
/// its place would name: the socket is opened O_PATH without following
/// links, checked to be a socket, and changed through that fd.
fn allow_everyone(dir: &std::fs::File, name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let flags = libc::O_PATH | libc::O_NOFOLLOW;
    let sock = crate::sys::openat(dir.as_raw_fd(), &name, flags, 0)?;
    let st = nix::sys::stat::fstat(&sock)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(std::io::Error::other("not the socket husk bound"));
    }
    use std::os::unix::fs::PermissionsExt;
    let path = format!("/proc/self/fd/{}", sock.as_raw_fd());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
}

fn host_address(host: &Path) -> Result<SocketAddr> {
    let bytes = host.as_os_str().as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name).context(|| "NOTIFY_SOCKET".into());
    }
    SocketAddr::from_pathname(host).context(|| format!("NOTIFY_SOCKET {}", host.display()))
}

/// Passes what the container sends to the host's socket, MAINPID set to
/// `main_pid`: the container's init when husk leaves (`start`, `run -d`),
/// husk itself when it stays as the container's parent (`run` in the
/// foreground), as runc does, so that systemd gets the container's exit
/// status from husk's.
pub struct Relay {
    sock: UnixDatagram,
    out: UnixDatagram,
    to: SocketAddr,
    host: PathBuf,
    main_pid: libc::pid_t,
}

impl Relay {
    pub fn new(sock: UnixDatagram, host: &Path, main_pid: libc::pid_t) -> Result<Relay> {
        // Read only when poll says so; a message taken by no one is no reason to block.
        sock.set_nonblocking(true).context(|| "notify socket".into())?;
        // A host socket with no room (its reader stopped reading) must not
        // keep us waiting once the container is gone: see `forward_unless`.
        let out = UnixDatagram::unbound().context(|| "notify socket".into())?;
        out.set_nonblocking(true).context(|| "notify socket".into())?;
        Ok(Relay {
            sock,
            out,
            to: host_address(host)?,
            host: host.to_path_buf(),
            main_pid,
        })
    }

    /// Passes on the message waiting, if one is. While the host's socket has
    /// no room (its reader is slow, or stopped reading), asks `gone` (which
    /// may wait as long as it is given) whether to give up; then the message
    /// is dropped.
    pub fn forward_unless(&self, gone: impl Fn(std::time::Duration) -> bool) -> Result<Forwarded> {
        let mut buf = vec![0u8; 4096];
        let n = match self.sock.recv(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Forwarded::Nothing),
            r => r.context(|| "read notify socket".into())?,
        };
        let (message, ready) = rewrite(&String::from_utf8_lossy(&buf[..n]), self.main_pid);
        loop {
            match self.out.send_to_addr(message.as_bytes(), &self.to) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if gone(ROOM_CHECK) {
                        return Ok(Forwarded::Dropped);
                    }
                }
                r => {
                    r.context(|| format!("send to NOTIFY_SOCKET {}", self.host.display()))?;
                    return Ok(Forwarded::Sent { ready });
                }
            }
        }
    }

    /// Passes on the messages waiting (what a program said just before it
    /// exited), a bounded number: processes left without a pid namespace
    /// could keep sending.
    /// A host socket with no room gets a second at most.
    pub fn drain(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let out_of_time = |wait| {
            std::thread::sleep(wait);
            std::time::Instant::now() > deadline
        };
        for _ in 0..MAX_DRAINED {
            match self.forward_unless(out_of_time)? {
                Forwarded::Sent { .. } => {}
                Forwarded::Nothing | Forwarded::Dropped => break,
            }
        }
        Ok(())
    }
}

/// What [`Relay::forward_unless`] did.
pub enum Forwarded {
    /// No message was waiting.
    Nothing,
    /// The message went to the host's socket.
    Sent { ready: bool },
    /// The host's socket had no room until the caller gave up.
    Dropped,
}

impl AsFd for Relay {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Relays messages until READY=1 (true) or the container's death (false).
pub fn relay_until_ready(relay: &Relay, pidfd: &std::os::fd::OwnedFd) -> Result<bool> {
    loop {
        let mut fds = [
            PollFd::new(relay.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context(|| "wait for the container's notification".into()),
            Ok(_) => {}
        }
        let message_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let died = fds[1].revents().is_some_and(|r| !r.is_empty());
        if !message_ready && died {
            return Ok(false);
        }
        // Waiting for room in the host's socket, the container's death ends the wait.
        let gone = |wait: std::time::Duration| {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let wait = PollTimeout::try_from(wait).expect("fits");
            matches!(poll(&mut fds, wait), Ok(n) if n > 0)
        };
        match relay.forward_unless(gone)? {
            Forwarded::Dropped => return Ok(false),
            Forwarded::Sent { ready: true } => return Ok(true),
            _ => {}
        }
    }
}

/// The message with MAINPID set to `pid` (where it names one, or says
/// READY=1); and whether it says READY=1.
fn rewrite(message: &str, pid: libc::pid_t) -> (String, bool) {
    let ready = message.lines().any(|l| l == "READY=1");
    let had_mainpid = message.lines().any(|l| l.starts_with("MAINPID="));
    let mut lines: Vec<String> = message
        .lines()
        .filter(|l| !l.starts_with("MAINPID="))
        .map(String::from)
        .collect();
    if had_mainpid || ready {
        lines.push(format!("MAINPID={pid}"));
    }
    (lines.join("\n") + "\n", ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainpid_is_rewritten_to_the_host_pid() {
        assert_eq!(rewrite("READY=1", 4242), ("READY=1\nMAINPID=4242\n".into(), true));
        assert_eq!(
            rewrite("STATUS=warming up\nMAINPID=1", 7),
            ("STATUS=warming up\nMAINPID=7\n".into(), false)
        );
        assert_eq!(rewrite("STATUS=hi", 7), ("STATUS=hi\n".into(), false));
    }

    #[test]
    fn container_path_prefers_the_containers_env() {
        let env = [std::ffi::CString::new("NOTIFY_SOCKET=/run/n.sock").unwrap()];
        assert_eq!(container_path(&env, Path::new("/host/s")), PathBuf::from("/run/n.sock"));
        assert_eq!(container_path(&[], Path::new("/host/s")), PathBuf::from("/host/s"));
    }

    #[test]
    fn an_abstract_or_relative_host_socket_or_a_path_ending_in_dots_gets_runcs_path() {
        let default = PathBuf::from("/run/notify/notify.sock");
        assert_eq!(container_path(&[], Path::new("@abstract")), default);
        assert_eq!(container_path(&[], Path::new("relative.sock")), default);
        for bad in [
            "NOTIFY_SOCKET=/run/..",
            "NOTIFY_SOCKET=/run/x/../n.sock",
            "NOTIFY_SOCKET=/",
            "NOTIFY_SOCKET=n",
        ] {
            let env = [std::ffi::CString::new(bad).unwrap()];
            assert_eq!(
                container_path(&env, Path::new("/host/s")),
                PathBuf::from("/host/s"),
                "{bad}"
            );
            assert_eq!(container_path(&env, Path::new("@a")), default, "{bad}");
        }
    }
}
