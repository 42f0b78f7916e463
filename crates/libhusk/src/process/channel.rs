//! Messages between `husk create` and the container's init over a SOCK_SEQPACKET
//! socketpair: the child reports that it is set up and waiting, or the error that
//! stopped it, which the parent then reports as its own.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MAX: usize = 4096;

#[derive(Debug)]
pub enum Msg {
    Ready,
    /// Parent to init: the user namespace maps are written, go on.
    Go,
    /// Init to parent: run the prestart and createRuntime hooks now.
    Hooks,
    /// Parent to init: you are in your cgroup.
    Placed,
    /// Parent to init: the state JSON for the hooks the init runs. It goes in a
    /// memfd: with its annotations it can be far larger than one message.
    State(String),
    Error(String),
    /// The seccomp notify fd of the init, for the listener.
    SeccompFd(OwnedFd),
    /// The pid (in the parent's pid namespace) of a process started for the parent.
    Pid(libc::pid_t),
    /// Parent to init: the state is saved, go on without me.
    Committed,
}

impl PartialEq for Msg {
    fn eq(&self, other: &Msg) -> bool {
        match (self, other) {
            (Msg::Ready, Msg::Ready)
            | (Msg::Go, Msg::Go)
            | (Msg::Hooks, Msg::Hooks)
            | (Msg::Placed, Msg::Placed)
            | (Msg::Committed, Msg::Committed) => true,
            (Msg::State(a), Msg::State(b)) => a == b,
            (Msg::Error(a), Msg::Error(b)) => a == b,
            (Msg::Pid(a), Msg::Pid(b)) => a == b,
            _ => false,
        }
    }
}

/// Sends `fd` with SCM_RIGHTS, tagged as the seccomp notify fd.
pub fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> io::Result<()> {
    send_with_fd(sock, b"S", fd)
}

/// Sends `payload` with `fd` attached (SCM_RIGHTS).
pub fn send_with_fd(sock: &impl AsRawFd, payload: &[u8], fd: &impl AsRawFd) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [io::IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// `send` for a process whose seccomp filter may be in place: a plain write,
/// which any usable profile allows (a peer gone raises SIGPIPE, which ends
/// such a process as it should).
pub fn send_plain(sock: &OwnedFd, msg: &Msg) -> io::Result<()> {
    let buf = encode(msg)?;
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::write(sock.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `recv` for a process whose seccomp filter may be in place: a plain read;
/// no fd can come with it.
pub fn recv_plain(sock: &OwnedFd) -> io::Result<Option<Msg>> {
    let mut buf = [0u8; MAX];
    let n = loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ECONNRESET)) {
            return Err(e);
        }
    };
    decode(&buf[..n], None)
}

/// The bytes of a message that carries no fd.
fn encode(msg: &Msg) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(64);
    match msg {
        Msg::Ready => buf.push(b'R'),
        Msg::Go => buf.push(b'G'),
        Msg::Hooks => buf.push(b'H'),
        Msg::Placed => buf.push(b'C'),
        Msg::Committed => buf.push(b'K'),
        Msg::Pid(pid) => {
            buf.push(b'P');
            buf.extend_from_slice(pid.to_string().as_bytes());
        }
        Msg::Error(e) => {
            buf.push(b'E');
            let bytes = e.as_bytes();
            buf.extend_from_slice(&bytes[..bytes.len().min(MAX - 1)]);
        }
        Msg::State(_) | Msg::SeccompFd(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this message goes with an fd",
            ))
        }
    }
    Ok(buf)
}

pub fn send(sock: &OwnedFd, msg: &Msg) -> io::Result<()> {
    let buf = match msg {
        Msg::State(s) => {
            let mut file = crate::sys::memfd(c"husk-state")?;
            io::Write::write_all(&mut file, s.as_bytes())?;
            return send_with_fd(sock, b"T", &file);
        }
        Msg::SeccompFd(fd) => return send_fd(sock, fd),
        other => encode(other)?,
    };
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The next message, or None when the other side closed without sending one.
pub fn recv(sock: &OwnedFd) -> io::Result<Option<Msg>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; MAX];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fd) = loop {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let fd = msg.cmsgs()?.find_map(|c| match c {
                    ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                    _ => None,
                });
                break (msg.bytes, fd);
            }
            // A peer that exited with a message of ours unread leaves ECONNRESET,
            // which the kernel reports (once) before what the peer still sent.
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // SAFETY: the kernel installed this descriptor for us with the message.
    let fd = fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    decode(&buf[..n], fd)
}

fn decode(bytes: &[u8], fd: Option<OwnedFd>) -> io::Result<Option<Msg>> {
    Ok(match (bytes.split_first(), fd) {
        (None, _) => None,
        (Some((b'S', _)), Some(fd)) => Some(Msg::SeccompFd(fd)),
        (Some((b'R', _)), _) => Some(Msg::Ready),
        (Some((b'G', _)), _) => Some(Msg::Go),
        (Some((b'H', _)), _) => Some(Msg::Hooks),
        (Some((b'C', _)), _) => Some(Msg::Placed),
        (Some((b'P', rest)), _) => match std::str::from_utf8(rest).ok().and_then(|p| p.parse().ok()) {
            Some(pid) => Some(Msg::Pid(pid)),
            None => Some(Msg::Error("a malformed pid message".into())),
        },
        (Some((b'K', _)), _) => Some(Msg::Committed),
        (Some((b'T', _)), Some(fd)) => Some(Msg::State(read_all(fd)?)),
        (Some((_, rest)), _) => Some(Msg::Error(String::from_utf8_lossy(rest).into_owned())),
    })
}

/// The whole content of a memfd the peer wrote (its offset is at the end).
fn read_all(fd: OwnedFd) -> io::Result<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::from(fd);
    file.rewind()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_closed_with_our_message_unread_still_delivers_its_own() {
        let (parent, child) = crate::sys::seqpacket_pair().unwrap();
        send(&child, &Msg::Error("exec: not found".into())).unwrap();
        send(&parent, &Msg::Go).unwrap(); // never read by the child
        drop(child);
        assert_eq!(recv(&parent).unwrap(), Some(Msg::Error("exec: not found".into())));
        assert_eq!(recv(&parent).unwrap(), None);
    }

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        send(&a, &Msg::Error("mount /x: denied".into())).unwrap();
        send(&a, &Msg::Ready).unwrap();
        send(&a, &Msg::Pid(4242)).unwrap();
        assert_eq!(recv(&b).unwrap(), Some(Msg::Error("mount /x: denied".into())));
        assert_eq!(recv(&b).unwrap(), Some(Msg::Ready));
        assert_eq!(recv(&b).unwrap(), Some(Msg::Pid(4242)));
        drop(a);
        assert_eq!(recv(&b).unwrap(), None);
    }

    #[test]
    fn a_state_larger_than_any_message_arrives_whole() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        let state = format!("{{\"big\":\"{}\"}}", "x".repeat(1 << 20));
        send(&a, &Msg::State(state.clone())).unwrap();
        assert_eq!(recv(&b).unwrap(), Some(Msg::State(state)));
    }
}
