//! Messages between `husk create` and the container's init over a SOCK_SEQPACKET
//! socketpair: the child reports that it is set up and waiting, or the error that
//! stopped it, which the parent then reports as its own.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

const MAX: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    Ready,
    Error(String),
}

pub fn send(sock: &OwnedFd, msg: &Msg) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64);
    match msg {
        Msg::Ready => buf.push(b'R'),
        Msg::Error(e) => {
            buf.push(b'E');
            let bytes = e.as_bytes();
            buf.extend_from_slice(&bytes[..bytes.len().min(MAX - 1)]);
        }
    }
    // SAFETY: buf is valid for its length.
    let n = unsafe {
        libc::send(
            sock.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The next message, or None when the other side closed without sending one.
pub fn recv(sock: &OwnedFd) -> io::Result<Option<Msg>> {
    let mut buf = [0u8; MAX];
    let n = loop {
        // SAFETY: buf is valid for MAX bytes.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), MAX, 0) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    Ok(match buf[..n].split_first() {
        None => None,
        Some((b'R', _)) => Some(Msg::Ready),
        Some((_, rest)) => Some(Msg::Error(String::from_utf8_lossy(rest).into_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = crate::sys::seqpacket_pair().unwrap();
        send(&a, &Msg::Error("mount /x: denied".into())).unwrap();
        send(&a, &Msg::Ready).unwrap();
        assert_eq!(
            recv(&b).unwrap(),
            Some(Msg::Error("mount /x: denied".into()))
        );
        assert_eq!(recv(&b).unwrap(), Some(Msg::Ready));
        drop(a);
        assert_eq!(recv(&b).unwrap(), None);
    }
}
