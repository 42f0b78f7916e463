//! A small rtnetlink client: what moving a network device into a container's
//! network namespace takes (a link by name or index, its addresses, the move,
//! an address added, the link set up). One request at a time, answered
//! before the next; every failure keeps the kernel's errno, and every read
//! is bounded (SO_RCVTIMEO).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::check_int;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NEW_IFINDEX: u16 = 49;
const IFLA_PROP_LIST: u16 = 52;
const IFLA_ALT_IFNAME: u16 = 53;
/// Linux 6.15.
const IFLA_NETNS_IMMUTABLE: u16 = 67;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_RT_PRIORITY: u16 = 9;
/// The attributes of an address that say what it is, as opposed to its
/// label (the old name), lifetimes and counters.
const IFA_KEPT: [u16; 5] = [IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS, IFA_RT_PRIORITY];
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;

const HEADER: usize = 16;
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;

/// A network link: its index and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    /// Its name (a lookup by name also finds it by an altname).
    pub name: String,
    /// Whether it is set up (IFF_UP).
    pub up: bool,
    /// Its other names, which go with it to another namespace.
    pub altnames: Vec<String>,
    /// Whether the kernel keeps it in its namespace (a bridge, the
    /// loopback); unknown before Linux 6.15.
    pub netns_immutable: Option<bool>,
}

/// An address of a link, as the kernel reported it, to be added again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    family: u8,
    prefix_len: u8,
    flags: u32,
    scope: u8,
    /// The attributes in `IFA_KEPT`, raw.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// What the runtime spec says moves with a device: permanent addresses
    /// (set by someone, not autoconfigured) of global scope.
    pub fn moves_with_device(&self) -> bool {
        self.scope == RT_SCOPE_UNIVERSE && self.flags & IFA_F_PERMANENT != 0
    }

    /// The address as text, for messages.
    pub fn describe(&self) -> String {
        let local = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS));
        let ip = match local.map(|(_, v)| v.as_slice()) {
            Some(&[a, b, c, d]) => std::net::IpAddr::from([a, b, c, d]).to_string(),
            Some(v) if v.len() == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(v);
                std::net::IpAddr::from(o).to_string()
            }
            _ => "?".to_string(),
        };
        format!("{ip}/{}", self.prefix_len)
    }
}

/// A NETLINK_ROUTE socket of the network namespace it was opened in,
/// connected to the kernel: another process of that namespace cannot slip
/// answers into it (a connected netlink socket refuses their unicasts).
pub struct Route {
    fd: OwnedFd,
    seq: u32,
}

impl Route {
    /// A socket in the calling process's network namespace.
    pub fn open() -> io::Result<Route> {
        // SAFETY: plain syscall.
        let fd = check_int(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: the kernel just returned this fd, owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval { tv_sec: 10, tv_usec: 0 };
        // SAFETY: the option value is a live timeval of the size given.
        check_int(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        // SAFETY: zeroed is a valid sockaddr_nl: the kernel's port, no groups.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the address is a live sockaddr_nl of the size given.
        check_int(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                &kernel as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        // Not 1, 2, 3...: nothing to guess for whoever reads /proc/net/netlink.
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() ^ std::process::id());
        Ok(Route { fd, seq })
    }

    /// A socket in the network namespace open as `netns`: the caller enters
    /// it for the socket() and goes back (a socket keeps the namespace it was
    /// made in). The caller must be single-threaded.
    pub fn open_in(netns: BorrowedFd) -> io::Result<Route> {
        let home = std::fs::File::open("/proc/thread-self/ns/net")?;
        super::setns(netns.as_raw_fd(), libc::CLONE_NEWNET)?;
        let route = Route::open();
        // Cannot fail for a caller that could enter the other one; if it
        // did, the error ends the command, which must not go on there.
        super::setns(home.as_raw_fd(), libc::CLONE_NEWNET)?;
        route
    }

    /// The link named `name`, if there is one.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = Message::new(RTM_GETLINK, NLM_F_REQUEST);
        m.ifinfo(0, 0, 0);
        m.attr(IFLA_IFNAME, &nul_terminated(name));
        self.one_link(m)
    }

    /// The link with index `index`, if there is one.
    pub fn link_by_index(&mut self, index: i32) -> io::Result<Option<Link>> {
        let mut m = Message::new(RTM_GETLINK, NLM_F_REQUEST);
        m.ifinfo(index, 0, 0);
        self.one_link(m)
    }

    /// Every address of link `index`. A dump that the kernel says changed
    /// under it is read again.
    pub fn addresses(&mut self, index: i32) -> io::Result<Vec<Address>> {
        for _ in 0..5 {
            let mut m = Message::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
            m.ifaddr(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
            let (mut found, mut interrupted) = (Vec::new(), false);
            self.exchange_flagged(m, |kind, flags, payload| {
                interrupted |= flags & NLM_F_DUMP_INTR != 0;
                if kind == RTM_NEWADDR {
                    if let Some((at, address)) = parse_address(payload) {
                        if at == index {
                            found.push(address);
                        }
                    }
                }
            })?;
            if !interrupted {
                return Ok(found);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the addresses changed during every read of them",
        ))
    }

    /// Moves link `index` into the network namespace open as `netns`, where
    /// it gets index `new_index` (else one the kernel picks) and the name
    /// `name` (a name with `%d` is a template the kernel fills). The kernel
    /// moves it under its old name and renames it after: a failed rename
    /// leaves it moved.
    pub fn move_link(&mut self, index: i32, netns: BorrowedFd, new_index: Option<i32>, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.ifinfo(index, 0, 0);
        m.attr(IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        if let Some(new_index) = new_index {
            m.attr(IFLA_NEW_IFINDEX, &new_index.to_ne_bytes());
        }
        m.attr(IFLA_IFNAME, &nul_terminated(name));
        self.exchange(m, |_, _| {})
    }

    /// Adds `address` to link `index`.
    pub fn add_address(&mut self, index: i32, address: &Address) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let a = address;
        m.ifaddr(a.family, a.prefix_len, a.flags as u8, a.scope, index as u32);
        for (kind, value) in &a.attrs {
            m.attr(*kind, value);
        }
        self.exchange(m, |_, _| {})
    }

    /// Sets link `index` up.
    pub fn set_up(&mut self, index: i32) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        let up = libc::IFF_UP as u32;
        m.ifinfo(index, up, up);
        self.exchange(m, |_, _| {})
    }

    fn one_link(&mut self, m: Message) -> io::Result<Option<Link>> {
        let mut link = None;
        match self.exchange(m, |kind, payload| {
            if kind == RTM_NEWLINK {
                link = parse_link(payload);
            }
        }) {
            Ok(()) => Ok(link),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `m` and reads the answer to its end (an ack, an error, the end
    /// of a dump, or the one reply of a plain get), handing each message of
    /// the answer to `each`.
    fn exchange(&mut self, m: Message, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.exchange_flagged(m, |kind, _, payload| each(kind, payload))
    }

    /// As `exchange`, with each message's flags.
    fn exchange_flagged(&mut self, mut m: Message, mut each: impl FnMut(u16, u16, &[u8])) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = m.finish(seq);
        // SAFETY: the buffer is live for its length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
        if check_int(sent as i32)? as usize != request.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short netlink send"));
        }
        let mut buf = Vec::new();
        loop {
            let n = self.receive(&mut buf)?;
            // A datagram of an earlier, abandoned request is skipped.
            let mut more = true;
            for (header, payload) in messages(&buf[..n]) {
                if header.seq != seq {
                    continue;
                }
                match header.kind {
                    NLMSG_ERROR => return error_of(payload),
                    NLMSG_DONE => return Ok(()),
                    kind => each(kind, header.flags, payload),
                }
                more = header.flags & NLM_F_MULTI != 0;
            }
            if !more {
                return Ok(());
            }
        }
    }
}

impl Route {
    /// The next datagram, whole: its size is asked first (MSG_PEEK |
    /// MSG_TRUNC), so that a long answer is not cut.
    fn receive(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: a zero-length peek writes nothing.
        let size = unsafe { libc::recv(fd, std::ptr::null_mut(), 0, libc::MSG_PEEK | libc::MSG_TRUNC) };
        let size = check_int(size as i32)? as usize;
        buf.resize(size.max(HEADER), 0);
        // SAFETY: the buffer is live and writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        check_int(n as i32).map(|n| n as usize)
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A request being put together: header, then a fixed part, then attributes.
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Message {
        let mut bytes = vec![0u8; HEADER];
        bytes[4..6].copy_from_slice(&kind.to_ne_bytes());
        bytes[6..8].copy_from_slice(&flags.to_ne_bytes());
        Message { bytes }
    }

    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        let mut fixed = [0u8; IFINFOMSG];
        fixed[0] = libc::AF_UNSPEC as u8;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        fixed[8..12].copy_from_slice(&flags.to_ne_bytes());
        fixed[12..16].copy_from_slice(&change.to_ne_bytes());
        self.bytes.extend_from_slice(&fixed);
    }

    fn ifaddr(&mut self, family: u8, prefix_len: u8, flags: u8, scope: u8, index: u32) {
        self.bytes.extend_from_slice(&[family, prefix_len, flags, scope]);
        self.bytes.extend_from_slice(&index.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = (4 + value.len()) as u16;
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(align(self.bytes.len()), 0);
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.bytes
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

struct Header {
    kind: u16,
    flags: u16,
    seq: u32,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages in one datagram; a malformed tail ends the list.
fn messages(mut b: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind), Some(flags), Some(seq)) = (u32_at(b, 0), u16_at(b, 4), u16_at(b, 6), u32_at(b, 8))
    {
        let len = len as usize;
        if len < HEADER || len > b.len() {
            break;
        }
        out.push((Header { kind, flags, seq }, &b[HEADER..len]));
        b = &b[align(len).min(b.len())..];
    }
    out
}

/// The attributes in `b`; a malformed tail ends the list.
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u16_at(b, 0), u16_at(b, 2)) {
        let len = len as usize;
        if len < 4 || len > b.len() {
            break;
        }
        // The top two bits are flags (nested, byte order).
        out.push((kind & 0x3fff, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    out
}

fn error_of(payload: &[u8]) -> io::Result<()> {
    match u32_at(payload, 0).map(|e| e as i32) {
        Some(0) => Ok(()),
        Some(e) => Err(io::Error::from_raw_os_error(-e)),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink error")),
    }
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32_at(payload, 4)? as i32;
    let flags = u32_at(payload, 8)?;
    let attrs = attributes(payload.get(IFINFOMSG..)?);
    let text = |v: &[u8]| String::from_utf8_lossy(v.split(|&c| c == 0).next().unwrap_or(v)).into_owned();
    let name = text(attrs.iter().find(|(k, _)| *k == IFLA_IFNAME)?.1);
    let altnames = attrs
        .iter()
        .filter(|(k, _)| *k == IFLA_PROP_LIST)
        .flat_map(|(_, nested)| attributes(nested))
        .filter(|(k, _)| *k == IFLA_ALT_IFNAME)
        .map(|(_, v)| text(v))
        .collect();
    let netns_immutable = attrs
        .iter()
        .find(|(k, _)| *k == IFLA_NETNS_IMMUTABLE)
        .and_then(|(_, v)| v.first())
        .map(|&b| b != 0);
    Some(Link {
        index,
        name,
        up: flags & libc::IFF_UP as u32 != 0,
        altnames,
        netns_immutable,
    })
}

fn parse_address(payload: &[u8]) -> Option<(i32, Address)> {
    let fixed = payload.get(..IFADDRMSG)?;
    let index = u32_at(fixed, 4)? as i32;
    let attrs = attributes(&payload[IFADDRMSG..]);
    let flags = attrs
        .iter()
        .find(|(k, _)| *k == IFA_FLAGS)
        .and_then(|(_, v)| u32_at(v, 0))
        .unwrap_or(fixed[2] as u32);
    let kept = attrs
        .into_iter()
        .filter(|(k, _)| IFA_KEPT.contains(k))
        .map(|(k, v)| (k, v.to_vec()))
        .collect();
    Some((
        index,
        Address {
            family: fixed[0],
            prefix_len: fixed[1],
            flags,
            scope: fixed[3],
            attrs: kept,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address_message(index: u32, flags: u8, scope: u8, extra: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = Message::new(RTM_NEWADDR, 0);
        m.ifaddr(libc::AF_INET as u8, 24, flags, scope, index);
        m.attr(IFA_ADDRESS, &[10, 1, 2, 3]);
        m.attr(IFA_LOCAL, &[10, 1, 2, 3]);
        m.attr(3, b"old0\0"); // IFA_LABEL
        for (k, v) in extra {
            m.attr(*k, v);
        }
        m.finish(1).to_vec()
    }

    #[test]
    fn an_address_keeps_what_it_is_and_drops_its_label() {
        let bytes = address_message(7, IFA_F_PERMANENT as u8, RT_SCOPE_UNIVERSE, &[]);
        let list = messages(&bytes);
        assert_eq!(list.len(), 1);
        let (at, a) = parse_address(list[0].1).unwrap();
        assert_eq!(at, 7);
        assert!(a.moves_with_device());
        assert_eq!(a.describe(), "10.1.2.3/24");
        let kinds: Vec<u16> = a.attrs.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [IFA_ADDRESS, IFA_LOCAL]);
    }

    #[test]
    fn only_permanent_addresses_of_global_scope_move() {
        let host_scope = address_message(7, IFA_F_PERMANENT as u8, 254, &[]);
        let dynamic = address_message(7, 0, RT_SCOPE_UNIVERSE, &[]);
        // IFA_FLAGS, when there, overrides the 8 bits of the fixed part.
        let by_attr = address_message(7, 0, RT_SCOPE_UNIVERSE, &[(IFA_FLAGS, &IFA_F_PERMANENT.to_ne_bytes())]);
        let moves = |b: &[u8]| parse_address(messages(b)[0].1).unwrap().1.moves_with_device();
        assert!(!moves(&host_scope));
        assert!(!moves(&dynamic));
        assert!(moves(&by_attr));
    }

    #[test]
    fn malformed_answers_end_the_list_instead_of_panicking() {
        let mut bytes = address_message(7, 0, 0, &[]);
        bytes.extend_from_slice(&[200, 0, 0, 0, 1]);
        assert_eq!(messages(&bytes).len(), 1);
        assert!(messages(&[1, 2, 3]).is_empty());
        assert!(parse_address(&[1, 2]).is_none());
        assert!(attributes(&[8, 0, 1, 0, 1]).is_empty());
        assert!(error_of(&[1]).is_err());
        assert_eq!(
            error_of(&(-19i32).to_ne_bytes()).unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }

    /// Another socket of the namespace (a co-tenant with CAP_NET_ADMIN) cannot
    /// slip an answer into husk's: review 51, M2.
    #[test]
    fn a_connected_socket_refuses_messages_from_other_sockets() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: sending to another netlink socket needs CAP_NET_ADMIN");
            return;
        }
        let mut route = Route::open().unwrap();
        route.link_by_index(1).unwrap(); // binds it to a port
                                         // SAFETY: zeroed is a valid sockaddr_nl; getsockname fills it.
        let mut ours: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: the address and its length are live.
        let r = unsafe {
            libc::getsockname(
                route.fd.as_raw_fd(),
                (&mut ours as *mut libc::sockaddr_nl).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        let forger = Route::open().unwrap();
        // A bare ack for the next request.
        let mut ack = Message::new(NLMSG_ERROR, 0);
        ack.bytes.extend_from_slice(&[0u8; 20]);
        let bytes = ack.finish(route.seq.wrapping_add(1)).to_vec();
        // SAFETY: zeroed is a valid sockaddr_nl.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        to.nl_pid = ours.nl_pid;
        // SAFETY: the buffer and the address are live for the sizes given.
        let sent = unsafe {
            libc::sendto(
                forger.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        assert_eq!(sent, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::ECONNREFUSED));
        // And the real answer still comes: lo is there.
        assert!(route.link_by_name("lo").unwrap().is_some());
    }

    #[test]
    fn the_loopback_is_found_by_name_and_by_index() {
        let mut route = Route::open().unwrap();
        let lo = route.link_by_name("lo").unwrap().unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(route.link_by_index(1).unwrap(), Some(lo));
        assert_eq!(route.link_by_name("husk-no-such").unwrap(), None);
        // Global and permanent addresses only: lo's 127.0.0.1 is host scope.
        assert!(route.addresses(1).unwrap().iter().all(|a| !a.moves_with_device()));
    }
}
