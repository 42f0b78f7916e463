//! The channels between husk and the processes it clones: one for `create`
//! (husk and the container's init), one for `exec` (husk, the joiner, then the
//! exec process). Each is a SOCK_SEQPACKET socketpair with a typed end for
//! each side; where a process the container can see will hold the child's
//! end, the child replaces the pair with one of its own making first thing
//! (`Channel`, see `ParentEnd`): a side has a method for each step it takes, and each receive
//! returns only what the peer may send at that point; anything else is an
//! error that names the message.
//!
//! `create`, time downwards (what each side does between, in brackets):
//!
//! ```text
//!          [ husk create: InitParent ]               [ init: InitChild ]
//!     clone into the new namespaces --------------> [affinity, signals]
//!     [husk moves off its CPU if the
//!      init is queued there]
//!   with a new user namespace:
//!     [write uid_map and gid_map]
//!     send_maps_written ---------------------------> wait_maps_written
//!                                                    [take uid and gid 0]
//!   when husk places the init in its cgroup (unprivileged, or a systemd
//!   unit; privileged, the init is cloned into it or moves itself first
//!   thing, see cgroups::place):
//!     [start the systemd unit, write cgroup.procs]
//!     send_placed ---------------------------------> wait_placed, only once
//!                                                    the setup needs it
//!                                                    [unshare the cgroup ns]
//!   privileged on a pure v1 host, where husk makes the cgroup while the
//!   init sets up (Driver::places_after_clone):
//!     [make the cgroup, apply the limits]
//!     send_tasks: the tasks files (SCM_RIGHTS) ----> recv_placement, as above
//!     [build the cgroup tmpfs]                       [write "0" to each]
//!     send_placed_with the tmpfs ------------------> recv_placement
//!                                                    [unshare the cgroup ns]
//!                                                    [joined namespaces, sysctls,
//!                                                     mounts, rootfs]
//!   with create hooks, before pivot_root:
//!     recv_setup: RunHooks <------------------------ send_run_hooks
//!     [prestart, createRuntime hooks]
//!     send_hook_state (in a memfd) ----------------> wait_hook_state
//!                                                    [createContainer hooks]
//!     recv_setup: HooksRun <------------------------ send_hooks_run (only
//!                                                    with createContainer hooks)
//!   joining a pid namespace late (the first init clones and exits):
//!     recv_setup: Pid <----------------------------- send_pid
//!     [the clone is the container's init]
//!   with a terminal:
//!     recv_setup: Master <-------------------------- send_master: the pty
//!     [to the console socket, or kept for            master (SCM_RIGHTS)
//!      the caller's terminal]
//!                                                    [cwd, program, limits]
//!                                                    [close fds, confine]
//!   with a seccomp listener, as soon as confine has loaded the filter:
//!     recv_setup: SeccompFd <----------------------- send_seccomp_fd (SCM_RIGHTS)
//!     recv_setup: Ready <--------------------------- send_ready (plain write)
//!     [config.json, commit the state, hand the
//!      seccomp fd to the listener, --pid-file]
//!     send_committed ------------------------------> wait_committed (plain read)
//!     exits                                          [waits on exec.fifo for `start`]
//! ```
//!
//! Until it is ready, the init may send an error instead (`send_error`,
//! `recv_setup`: Failed) and exit: husk reports the error as its own. An end
//! of file means that the peer died: husk then reports the init's exit status.
//! Until Ready the init dies with husk (PR_SET_PDEATHSIG), after it a husk
//! that dies before committing closes the socket, and the init exits.
//!
//! `exec`:
//!
//! ```text
//!       [ husk exec: ExecParent ]    [ joiner: ExecChild ]           [ exec process ]
//!     clone -----------------------> make a pair
//!     take_joiners_end <------------ the other end (SCM_RIGHTS); ours closes
//!                                    [privileged on v1: move itself into
//!                                     the container's cgroups]
//!                                    [join the init's namespaces,
//!                                     mnt last; close fds; signals]
//!   unprivileged or on a unified host:
//!     [join the init's cgroups]
//!     send_placed -----------------> wait_placed
//!                                    [stdio's /dev/null, cwd, program,
//!                                     limits: only once in the cgroups]
//!   with a seccomp listener:        [no_new_privs if asked, load the filter]
//!     recv_spawned: SeccompFd <----- send_seccomp_fd (SCM_RIGHTS)
//!     [hand it to the listener]
//!     send_seccomp_fd_taken -------> wait_seccomp_fd_taken (plain read)
//!                                    [close it]
//!                                    [confine: labels, capabilities,
//!                                     ids, seccomp]
//!                                    clone (CLONE_PARENT) ----------> [born confined]
//!     recv_spawned: Pid <----------- send_pid (plain write)
//!     [reap the joiner]              exits
//!     [with --pid-file: write it]
//!     send_go --------------------------------------------------------> wait_go
//!                                                                      (plain read; exits
//!                                                                      at an end of file)
//!   with a terminal:
//!     wait_exec: Master <--------------------------------------------- send_master (sendmsg)
//!     [to the console socket, or kept]
//!     send_go --------------------------------------------------------> wait_go
//!                                                                      execve
//!     wait_exec: Failed <--------------------------------------------- send_error (plain write)
//!            or Execed: the end of file, as execve closes the socket (close-on-exec)
//! ```
//!
//! The joiner sends an error instead of the pid when it fails; an end of file
//! then means it died. husk hears only the joiner, then the exec process
//! (SO_PASSCRED: the kernel names each message's sender); a message from any
//! other process (one that took a copy of the child's end) is an error.
//!
//! With `--debug`, the cloned side also sends its debug lines (tag `D`, see
//! `log::forward_debug_to`) at any point until Ready or its exec: its stderr
//! is the container's, and husk's log file is closed there early. Every
//! receive logs such a line and reads on.
//!
//! On the wire, a message is one packet: a tag byte, then its text. The hook
//! state goes in a memfd, as it can be larger than a packet; the seccomp fd,
//! the `tasks` files and the cgroup tmpfs go with SCM_RIGHTS. A process whose seccomp filter may be in place sends
//! and receives with plain write and read, which any usable profile allows.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::sys;

/// The largest packet.
const MAX: usize = 4096;

/// The first byte of each message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    MapsWritten = b'G',
    PlacementFiles = b'F',
    Placed = b'C',
    HookState = b'T',
    Committed = b'K',
    RunHooks = b'H',
    SeccompFd = b'S',
    SeccompFdTaken = b'A',
    Pid = b'P',
    Ready = b'R',
    Error = b'E',
    NetReady = b'N',
    NetMoved = b'M',
    HooksRun = b'O',
    Go = b'W',
    Master = b'Y',
    UsernsMade = b'U',
    Channel = b'X',
}

impl Tag {
    const ALL: [Tag; 18] = [
        Tag::MapsWritten,
        Tag::PlacementFiles,
        Tag::Placed,
        Tag::HookState,
        Tag::Committed,
        Tag::RunHooks,
        Tag::SeccompFd,
        Tag::SeccompFdTaken,
        Tag::Pid,
        Tag::Ready,
        Tag::Error,
        Tag::NetReady,
        Tag::NetMoved,
        Tag::HooksRun,
        Tag::Go,
        Tag::Master,
        Tag::UsernsMade,
        Tag::Channel,
    ];

    fn of(byte: u8) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| *t as u8 == byte)
    }

    fn name(self) -> &'static str {
        match self {
            Tag::MapsWritten => "maps written",
            Tag::PlacementFiles => "placement files",
            Tag::Placed => "placed",
            Tag::HookState => "hook state",
            Tag::Committed => "committed",
            Tag::RunHooks => "run hooks",
            Tag::SeccompFd => "seccomp fd",
            Tag::SeccompFdTaken => "seccomp fd taken",
            Tag::Pid => "pid",
            Tag::Ready => "ready",
            Tag::Error => "error",
            Tag::NetReady => "network namespace ready",
            Tag::NetMoved => "network devices moved",
            Tag::HooksRun => "createContainer hooks run",
            Tag::Go => "go",
            Tag::Master => "pty master",
            Tag::UsernsMade => "user namespace made",
            Tag::Channel => "channel",
        }
    }
}

/// A message as it arrived: its tag, the text after it, and the fds that came with it.
struct Packet {
    tag: Tag,
    text: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Packet {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    fn fd(self) -> io::Result<OwnedFd> {
        let name = self.tag.name();
        self.fds
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("a {name} message without its fd")))
    }

    fn pid(&self) -> io::Result<libc::pid_t> {
        std::str::from_utf8(&self.text)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a malformed pid message"))
    }

    /// The error for a message that the receiver does not take at this point.
    fn unexpected(&self, expected: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected message {}, expected {expected}", self.tag.name()),
        )
    }
}

/// The bytes of a message: its tag, then `text`, cut to fit in a packet.
fn encode(tag: Tag, text: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + text.len().min(MAX - 1));
    buf.push(tag as u8);
    buf.extend_from_slice(&text[..text.len().min(MAX - 1)]);
    buf
}

/// Sends a message; a peer that is gone is an error (EPIPE), not a SIGPIPE.
fn send(sock: &OwnedFd, tag: Tag, text: &[u8]) -> io::Result<()> {
    use nix::sys::socket::{send, MsgFlags};
    send(sock.as_raw_fd(), &encode(tag, text), MsgFlags::MSG_NOSIGNAL)?;
    Ok(())
}

/// `send` for a process whose seccomp filter may be in place: a plain write
/// (a peer gone raises SIGPIPE, which ends such a process as it should).
fn send_plain(sock: &OwnedFd, tag: Tag, text: &[u8]) -> io::Result<()> {
    nix::unistd::write(sock, &encode(tag, text))?;
    Ok(())
}

/// Sends `payload` with `fd` attached (SCM_RIGHTS).
pub fn send_with_fd(sock: &impl AsRawFd, payload: &[u8], fd: &impl AsRawFd) -> io::Result<()> {
    send_with_fds(sock, payload, &[fd.as_raw_fd()])
}

/// Sends all of `payload` on a stream socket, `fd` attached to its first
/// bytes: a stream may take less than all at once (a peer that reads slowly),
/// and the rest follows, all within `deadline`. The socket is made
/// non-blocking for it: a send timeout restarts with every bit the peer
/// reads, and would let a peer that reads a little now and then hold the
/// sender for ever. How much went is the error's when it is not all.
pub fn send_all_with_fd(
    sock: &impl AsFd,
    payload: &[u8],
    fd: &impl AsRawFd,
    deadline: std::time::Instant,
) -> std::result::Result<(), (io::Error, usize)> {
    use nix::errno::Errno;
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let sock = sock.as_fd();
    sys::fs::set_nonblocking(sock).map_err(|e| (e, 0))?;
    let fds = [fd.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let mut sent = 0;
    while sent < payload.len() {
        // The fd goes with the first bytes that go.
        let cmsg: &[ControlMessage] = if sent == 0 { &rights } else { &[] };
        let iov = [io::IoSlice::new(&payload[sent..])];
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            cmsg,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let timeout = nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
                let mut poll_fds = [nix::poll::PollFd::new(sock, nix::poll::PollFlags::POLLOUT)];
                match nix::poll::poll(&mut poll_fds, timeout) {
                    Ok(0) => return Err((io::ErrorKind::TimedOut.into(), sent)),
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err((e.into(), sent)),
                }
            }
            Err(e) => return Err((e.into(), sent)),
        }
    }
    Ok(())
}

/// Sends `payload` with `fds` attached (SCM_RIGHTS; none: a plain message).
fn send_with_fds(sock: &impl AsRawFd, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [io::IoSlice::new(payload)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsg: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Sends `text` in a memfd: it may not fit in a packet.
fn send_in_memfd(sock: &OwnedFd, tag: Tag, text: &str) -> io::Result<()> {
    let mut file = sys::memfd(c"husk-state")?;
    io::Write::write_all(&mut file, text.as_bytes())?;
    send_with_fd(sock, &[tag as u8], &file)
}

/// The next message, or None when the peer closed its end (it died).
fn recv(sock: &OwnedFd) -> io::Result<Option<Packet>> {
    recv_heard(sock, None)
}

/// [`recv`], from one of `senders` only (see [`recv_one_heard`]).
fn recv_heard(sock: &OwnedFd, senders: Option<&[libc::pid_t]>) -> io::Result<Option<Packet>> {
    loop {
        if let Received::Packet(p) = recv_one_heard(sock, senders)? {
            return Ok(p);
        }
    }
}

/// One datagram of the peer's.
enum Received {
    /// A `--debug` line, logged.
    Logged,
    /// A message, or None when the peer closed its end.
    Packet(Option<Packet>),
}

/// One datagram, which must come from one of `senders` (when given; the
/// socket passes credentials): a message any other process sent (one that
/// took a copy of the peer's end, review 60b F1) is an error.
fn recv_one_heard(sock: &OwnedFd, senders: Option<&[libc::pid_t]>) -> io::Result<Received> {
    let mut buf = [0u8; MAX];
    let received = loop {
        match sys::process::recv_from(sock, &mut buf) {
            Ok(received) => break received,
            // A peer that exited with a message of ours unread leaves ECONNRESET,
            // which the kernel reports (once) before what the peer still sent.
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let end_of_file = received.bytes == 0 && received.sender.is_none();
    if let Some(senders) = senders.filter(|_| !end_of_file) {
        let from = received
            .sender
            .map_or("an unknown process".into(), |pid| format!("process {pid}"));
        if !received.sender.is_some_and(|pid| senders.contains(&pid)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message from {from}, which husk did not start for this"),
            ));
        }
        // Never sent: it would read as the end of file (the execve), review 60c F3.
        if received.bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an empty message from {from}"),
            ));
        }
    }
    let bytes = &buf[..received.bytes];
    match is_forwarded_debug(bytes) {
        true => Ok(Received::Logged),
        false => decode(bytes, received.fds).map(Received::Packet),
    }
}

/// `recv` for a process whose seccomp filter may be in place: a plain read;
/// no fd can come with it.
fn recv_plain(sock: &OwnedFd) -> io::Result<Option<Packet>> {
    let mut buf = [0u8; MAX];
    let n = loop {
        match nix::unistd::read(sock, &mut buf) {
            Ok(n) if is_forwarded_debug(&buf[..n]) => continue,
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    decode(&buf[..n], Vec::new())
}

/// A `--debug` line of the peer (see `log::forward_debug_to`): logged here,
/// then the receive goes on.
fn is_forwarded_debug(bytes: &[u8]) -> bool {
    match bytes.split_first() {
        Some((&crate::log::FORWARDED_TAG, line)) => {
            // Escaped: a line may be forged by the container (review 60 F4),
            // and --debug prints it on the caller's terminal.
            crate::log::debug(&crate::log::printable(&String::from_utf8_lossy(line)));
            true
        }
        _ => false,
    }
}

fn decode(bytes: &[u8], fds: Vec<OwnedFd>) -> io::Result<Option<Packet>> {
    let Some((&first, text)) = bytes.split_first() else {
        return Ok(None);
    };
    let tag = Tag::of(first).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown message {:?}", char::from(first)),
        )
    })?;
    Ok(Some(Packet {
        tag,
        text: text.to_vec(),
        fds,
    }))
}

/// The next message, which must be `tag`; the end of file is an error here.
fn expect(received: io::Result<Option<Packet>>, tag: Tag) -> io::Result<Packet> {
    match received? {
        Some(p) if p.tag == tag => Ok(p),
        Some(p) => Err(p.unexpected(tag.name())),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the channel closed, expected {}", tag.name()),
        )),
    }
}

/// The first message that a peer we killed sent, if it was its error.
fn failure(sock: &OwnedFd) -> Option<String> {
    match recv(sock) {
        Ok(Some(p)) if p.tag == Tag::Error => Some(p.text()),
        _ => None,
    }
}

/// husk's end of a channel, which the child may replace with the end of a
/// pair of its own making (`own_end`, `ParentEnd::take_childs`). A
/// socketpair tells whoever holds an end the pid of its maker
/// (SO_PEERPIDFD): the end a process the container can see holds (the exec
/// process from its clone, a pod member's process) must not name husk, or
/// a container with CAP_SYS_PTRACE takes it (pidfd_getfd) and, through
/// husk's pidfd, husk's fds (the caller's stdio) and namespaces (review
/// 60c F1). The child that makes the pair is one the container cannot see,
/// and holds nothing of husk's once it has handed husk its end.
struct ParentEnd {
    first: OwnedFd,
    own: std::cell::OnceCell<OwnedFd>,
    timeout: std::cell::Cell<Option<std::time::Duration>>,
}

impl ParentEnd {
    fn new(first: OwnedFd) -> ParentEnd {
        ParentEnd {
            first,
            own: std::cell::OnceCell::new(),
            timeout: std::cell::Cell::new(None),
        }
    }

    /// The end in use: the child's pair's, once it handed it over.
    fn get(&self) -> &OwnedFd {
        self.own.get().unwrap_or(&self.first)
    }

    fn bound_receives(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.timeout.set(timeout);
        sys::set_receive_timeout(self.get(), timeout)
    }

    /// Until the child has handed over its pair's end (its first message,
    /// from one of `senders` when given); then that end is ours. Once.
    fn take_childs(&self, senders: Option<&[libc::pid_t]>) -> io::Result<()> {
        if self.own.get().is_some() {
            return Ok(());
        }
        let sock = match recv_heard(&self.first, senders)? {
            Some(p) if p.tag == Tag::Error => return Err(io::Error::other(p.text())),
            received => expect(Ok(received), Tag::Channel)?.fd()?,
        };
        // What the child made, checked all the same: a datagram socket of
        // another kind would cut or merge our messages.
        use nix::sys::socket::{getsockopt, sockopt};
        if getsockopt(&sock, sockopt::SockType).ok() != Some(nix::sys::socket::SockType::SeqPacket) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a channel that is not a packet socket",
            ));
        }
        if senders.is_some() {
            sys::process::pass_credentials(&sock)?;
        }
        sys::set_receive_timeout(&sock, self.timeout.get())?;
        let _ = self.own.set(sock);
        Ok(())
    }
}

/// In the child: makes a pair, hands husk one end (with SO_PASSCRED set when
/// `credentials`, before any message reaches it) and returns the other;
/// the caller then drops `sock`, husk's. The pair's maker is a child of
/// ours that is gone by then: we outlive the clone of the process that
/// inherits our end, and a pod that sees that process could otherwise take
/// our fds through our pidfd meanwhile.
fn own_end(sock: &OwnedFd, credentials: bool) -> io::Result<OwnedFd> {
    let (ours, husks) = sys::process::seqpacket_pair_of_a_gone_maker()?;
    if credentials {
        sys::process::pass_credentials(&husks)?;
    }
    send_with_fd(sock, &[Tag::Channel as u8], &husks)?;
    Ok(ours)
}

/// The channel of `create`: husk's end and the init's.
pub fn init_channel() -> io::Result<(InitParent, InitChild)> {
    let (parent, child) = sys::seqpacket_pair()?;
    sys::process::pass_credentials(&parent)?;
    let parent = InitParent {
        sock: ParentEnd::new(parent),
        senders: std::cell::RefCell::new(None),
    };
    Ok((parent, InitChild { sock: child }))
}

/// husk's end of the `create` channel.
pub struct InitParent {
    sock: ParentEnd,
    /// The processes heard, once a pod will see the init's process (see
    /// `hear_from`); until then, every message (nothing else can hold the
    /// init's end).
    senders: std::cell::RefCell<Option<Vec<libc::pid_t>>>,
}

/// What the init says while it sets up the container.
#[derive(Debug)]
pub enum FromInit {
    /// It is confined and waits for `start`; it goes on once husk has
    /// committed the state and sent committed.
    Ready,
    /// husk runs the prestart and createRuntime hooks now and sends the state.
    RunHooks,
    /// The notify fd of the seccomp filter it loaded, for the listener.
    SeccompFd(OwnedFd),
    /// It started the container's process (this pid) in the pid namespace it
    /// joins late, as husk's child, and exits.
    Pid(libc::pid_t),
    /// It has run its createContainer hooks (see `InitChild::send_hooks_run`).
    HooksRun,
    /// A `--debug` line of its, logged.
    Logged,
    /// The pty master of the process's terminal, for the console socket
    /// or the caller's terminal (`Console::pass_on`).
    Master(OwnedFd),
    /// It is in the container's network namespace and waits until husk has
    /// moved the network devices there (`send_net_moved`).
    NetReady,
    /// It failed with this error and exits.
    Failed(String),
    /// It is gone without a word.
    Exited,
}

impl InitParent {
    /// From now on, only messages from process `pid`, the first init whose
    /// process a pod will see: that process can be ptraced by the pod's,
    /// which then wrote into its end (a Ready ahead of the first init's
    /// word, review 61c F1).
    pub fn hear_from(&self, pid: libc::pid_t) {
        *self.senders.borrow_mut() = Some(vec![pid]);
    }

    /// From now on, only process `pid`, that process, once the first init
    /// (which says nothing after) has named it.
    pub fn hear_only(&self, pid: libc::pid_t) {
        if let Some(senders) = self.senders.borrow_mut().as_mut() {
            *senders = vec![pid];
        }
    }

    fn recv_one(&self) -> io::Result<Received> {
        recv_one_heard(self.sock.get(), self.senders.borrow().as_deref())
    }

    /// The channel's socket, to wait on (`Foreground::until_readable`).
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.sock.get())
    }

    /// Bounds each of the receives that follow (`None`: no bound): one that
    /// times out fails with `io::ErrorKind::WouldBlock`.
    pub fn bound_receives(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.sock.bound_receives(timeout)
    }

    /// Until the init, which a pod's processes will see, has handed over the
    /// end of a pair of its making (`InitChild::make_own_end`).
    pub fn take_inits_end(&self) -> io::Result<()> {
        self.sock.take_childs(self.senders.borrow().as_deref())
    }

    /// Until the init, which joins a pid namespace before it makes its user
    /// namespace, has made it (`NamespacePlan::userns_after_pid`); its error
    /// if it failed.
    pub fn wait_userns_made(&self) -> io::Result<()> {
        match recv_heard(self.sock.get(), self.senders.borrow().as_deref())? {
            Some(p) if p.tag == Tag::Error => Err(io::Error::other(p.text())),
            received => expect(Ok(received), Tag::UsernsMade).map(drop),
        }
    }

    /// The init's user namespace has its uid and gid maps.
    pub fn send_maps_written(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::MapsWritten, b"")
    }

    /// The init is in the container's cgroup.
    pub fn send_placed(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::Placed, b"")
    }

    /// The cgroup is made: the `tasks` files through which the init moves
    /// itself into it now, each with its directory (for errors). In as few
    /// packets as they fit in (MAX_FDS files, the directories NUL-separated
    /// in the text), so that the init wakes about once; `send_placed_with`
    /// follows.
    pub fn send_tasks(&self, tasks: &[(std::path::PathBuf, std::fs::File)]) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let mut payload = vec![Tag::PlacementFiles as u8];
        let mut fds: Vec<RawFd> = Vec::new();
        for (dir, file) in tasks {
            // Only a directory longer than a whole packet is cut.
            let dir = dir.as_os_str().as_bytes();
            let dir = &dir[..dir.len().min(MAX - 1)];
            let room = MAX - payload.len() - usize::from(!fds.is_empty());
            if !fds.is_empty() && (dir.len() > room || fds.len() == sys::process::MAX_FDS) {
                send_with_fds(self.sock.get(), &payload, &fds)?;
                payload.truncate(1);
                fds.clear();
            }
            if !fds.is_empty() {
                payload.push(0);
            }
            payload.extend_from_slice(dir);
            fds.push(file.as_raw_fd());
        }
        match fds.is_empty() {
            true => Ok(()),
            false => send_with_fds(self.sock.get(), &payload, &fds),
        }
    }

    /// The init is in its cgroup, or has its `tasks` files (`send_tasks`);
    /// with the v1 cgroup tmpfs built for it, if any
    /// (`rootfs::cgroup_tree_for_init`).
    pub fn send_placed_with(&self, cgroup_tree: Option<&OwnedFd>) -> io::Result<()> {
        let fds: Vec<RawFd> = cgroup_tree.iter().map(|t| t.as_raw_fd()).collect();
        send_with_fds(self.sock.get(), &[Tag::Placed as u8], &fds)
    }

    /// The answer to RunHooks: the state the hooks ran with, for createContainer.
    pub fn send_hook_state(&self, state: &str) -> io::Result<()> {
        send_in_memfd(self.sock.get(), Tag::HookState, state)
    }

    /// The answer to NetReady.
    pub fn send_net_moved(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::NetMoved, b"")
    }

    /// The state is saved: the init may outlive husk now.
    pub fn send_committed(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::Committed, b"")
    }

    /// The init's next word while it sets up, up to Ready; each `--debug`
    /// line of its too (`Logged`), so that the caller waits for the next as
    /// it waited for this one.
    pub fn recv_setup(&self) -> io::Result<FromInit> {
        let Received::Packet(packet) = self.recv_one()? else {
            return Ok(FromInit::Logged);
        };
        let Some(p) = packet else {
            return Ok(FromInit::Exited);
        };
        Ok(match p.tag {
            Tag::Ready => FromInit::Ready,
            Tag::RunHooks => FromInit::RunHooks,
            Tag::SeccompFd => FromInit::SeccompFd(p.fd()?),
            Tag::Pid => FromInit::Pid(p.pid()?),
            Tag::Error => FromInit::Failed(p.text()),
            Tag::NetReady => FromInit::NetReady,
            Tag::HooksRun => FromInit::HooksRun,
            Tag::Master => FromInit::Master(p.fd()?),
            _ => {
                return Err(
                    p.unexpected("ready, run hooks, seccomp fd, pid, network namespace ready, pty master or error")
                )
            }
        })
    }

    /// Why an init that husk killed failed, if it said so before.
    pub fn failure(&self) -> Option<String> {
        failure(self.sock.get())
    }
}

/// What `create` hands the init for its cgroup, in turn.
#[derive(Debug)]
pub enum PlacementStep {
    /// `tasks` files to move itself through at once, each with its
    /// directory (`send_tasks`).
    Tasks(Vec<(std::path::PathBuf, std::fs::File)>),
    /// The cgroup is complete, with the v1 cgroup tmpfs built and detached,
    /// if any (`send_placed_with`).
    Placed(Option<OwnedFd>),
}

/// The init's end of the `create` channel.
pub struct InitChild {
    sock: OwnedFd,
}

impl AsRawFd for InitChild {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl InitChild {
    /// Hands husk one end of a pair we make, and takes the other in place of
    /// ours, which husk made (see `ParentEnd`): first thing, in an init whose
    /// process a pod will see.
    pub fn make_own_end(&mut self) -> io::Result<()> {
        self.sock = own_end(&self.sock, true)?;
        Ok(())
    }

    /// Until husk has written the maps of our user namespace.
    pub fn wait_maps_written(&self) -> io::Result<()> {
        expect(recv(&self.sock), Tag::MapsWritten).map(drop)
    }

    /// husk's next word about our cgroup: `tasks` files to move ourselves
    /// through, or placed (once husk has put us in the cgroup, or after the
    /// files), perhaps with the cgroup tmpfs.
    pub fn recv_placement(&self) -> io::Result<PlacementStep> {
        use std::os::unix::ffi::OsStrExt;
        let p = match recv(&self.sock)? {
            Some(p) if p.tag == Tag::PlacementFiles => p,
            received => {
                let placed = expect(Ok(received), Tag::Placed)?;
                return Ok(PlacementStep::Placed(placed.fds.into_iter().next()));
            }
        };
        let dirs: Vec<_> = p.text.split(|b| *b == 0).collect();
        if dirs.len() != p.fds.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a placement message with {} files for {} directories",
                    p.fds.len(),
                    dirs.len()
                ),
            ));
        }
        let dirs = dirs
            .into_iter()
            .map(|d| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(d)));
        Ok(PlacementStep::Tasks(
            dirs.zip(p.fds.into_iter().map(std::fs::File::from)).collect(),
        ))
    }

    /// Until placed, for a caller that expects no `tasks` files.
    #[cfg(test)]
    fn wait_placed(&self) -> io::Result<Option<OwnedFd>> {
        match self.recv_placement()? {
            PlacementStep::Placed(tree) => Ok(tree),
            PlacementStep::Tasks(_) => Err(io::Error::other("tasks files before placed")),
        }
    }

    /// Asks husk to move the network devices into our network namespace,
    /// and waits until it has.
    pub fn await_net_devices(&self) -> io::Result<()> {
        send(&self.sock, Tag::NetReady, b"")?;
        expect(recv(&self.sock), Tag::NetMoved).map(drop)
    }

    /// We joined the pid namespace and made our user namespace: husk may write its maps.
    pub fn send_userns_made(&self) -> io::Result<()> {
        send(&self.sock, Tag::UsernsMade, b"")
    }

    /// Asks husk to run the prestart and createRuntime hooks.
    pub fn send_run_hooks(&self) -> io::Result<()> {
        send(&self.sock, Tag::RunHooks, b"")
    }

    /// Its createContainer hooks have run: husk, which waited for them
    /// without a bound (they have their own timeouts), bounds its waits again.
    pub fn send_hooks_run(&self) -> io::Result<()> {
        send(&self.sock, Tag::HooksRun, b"")
    }

    /// The state husk ran the hooks with, for the createContainer hooks.
    pub fn wait_hook_state(&self) -> io::Result<String> {
        let p = expect(recv(&self.sock), Tag::HookState)?;
        read_all(p.fd()?)
    }

    /// Hands husk the notify fd of our seccomp filter, for the listener.
    pub fn send_seccomp_fd(&self, fd: &OwnedFd) -> io::Result<()> {
        send_with_fd(&self.sock, &[Tag::SeccompFd as u8], fd)
    }

    /// Our terminal's pty master, for husk to pass on.
    pub fn send_master(&self, master: &OwnedFd) -> io::Result<()> {
        send_with_fd(&self.sock, &[Tag::Master as u8], master)
    }

    /// The pid (in husk's pid namespace) of the container's process that we
    /// started for husk before we exit.
    pub fn send_pid(&self, pid: libc::pid_t) -> io::Result<()> {
        send(&self.sock, Tag::Pid, pid.to_string().as_bytes())
    }

    /// The error that stops us, for husk to report.
    pub fn send_error(&self, error: &str) -> io::Result<()> {
        send(&self.sock, Tag::Error, error.as_bytes())
    }

    /// We are confined and wait for `start`. A plain write: our seccomp filter may be in place.
    pub fn send_ready(&self) -> io::Result<()> {
        send_plain(&self.sock, Tag::Ready, b"")
    }

    /// Until husk has committed the state. A plain read: our seccomp filter may be in place.
    pub fn wait_committed(&self) -> io::Result<()> {
        expect(recv_plain(&self.sock), Tag::Committed).map(drop)
    }
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

/// The channel of `exec`: husk's end and the one of the joiner and the exec process.
pub fn exec_channel() -> io::Result<(ExecParent, ExecChild)> {
    let (parent, child) = sys::seqpacket_pair()?;
    sys::process::pass_credentials(&parent)?;
    let parent = ExecParent {
        sock: ParentEnd::new(parent),
        senders: std::cell::RefCell::new(Vec::new()),
    };
    Ok((parent, ExecChild { sock: child }))
}

/// husk's end of the `exec` channel. It hears only the processes husk
/// started (`hear_from`): a container that may ptrace the exec process
/// can take a copy of its end (pidfd_getfd), and wrote a pid of its choice
/// into it, one of the caller's other children, which husk then killed
/// (review 60b F1).
pub struct ExecParent {
    sock: ParentEnd,
    senders: std::cell::RefCell<Vec<libc::pid_t>>,
}

/// What the joiner says once it is placed.
#[derive(Debug)]
pub enum FromJoiner {
    /// It started the exec process (this pid, husk's child) and exits.
    Pid(libc::pid_t),
    /// It failed with this error and exits.
    Failed(String),
    /// It is gone without a word.
    Exited,
    /// A `--debug` line of its, logged.
    Logged,
    /// The notify fd of the seccomp filter it loaded, for the listener;
    /// the pid or an error follows.
    SeccompFd(OwnedFd),
}

/// How the exec process ended its setup.
#[derive(Debug)]
pub enum ExecOutcome {
    /// It runs the program: its execve closed the socket.
    Execed,
    /// It failed with this error and exits.
    Failed(String),
    /// Not yet: a `--debug` line of its, logged.
    Logged,
    /// Not yet: its terminal's pty master.
    Master(OwnedFd),
}

impl ExecParent {
    /// The channel's socket, to wait on (`Foreground::until_readable`).
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.sock.get())
    }

    /// Bounds each of the receives that follow, as [`InitParent::bound_receives`].
    pub fn bound_receives(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.sock.bound_receives(timeout)
    }

    /// Until the joiner has handed over the end of a pair of its making
    /// (`ExecChild::make_own_end`), from it alone. Then no end the exec
    /// process holds names husk.
    pub fn take_joiners_end(&self) -> io::Result<()> {
        self.sock.take_childs(Some(&self.senders.borrow()))
    }

    /// From now on, messages from process `pid` (the joiner, then the exec
    /// process it names) are heard too; those of any other are errors.
    pub fn hear_from(&self, pid: libc::pid_t) {
        self.senders.borrow_mut().push(pid);
    }

    /// From now on, only process `pid` (the exec process, once the joiner
    /// is reaped: its pid may be a new process's soon, review 60c F5).
    pub fn hear_only(&self, pid: libc::pid_t) {
        *self.senders.borrow_mut() = vec![pid];
    }

    fn recv_one(&self) -> io::Result<Received> {
        recv_one_heard(self.sock.get(), Some(&self.senders.borrow()))
    }

    /// Once the joiner, which says nothing after its word, is reaped:
    /// whether a message is waiting all the same, sent in its name (the
    /// kernel lets a process with CAP_SYS_ADMIN over husk's pid namespace
    /// claim any pid there, review 60c F2): then the word may not be its
    /// own. Debug lines are logged and passed over.
    pub fn more_after_the_word(&self) -> io::Result<bool> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            let mut ready = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
            if poll(&mut ready, PollTimeout::ZERO)? == 0 {
                return Ok(false);
            }
            match self.recv_one()? {
                Received::Logged => continue,
                Received::Packet(packet) => return Ok(packet.is_some()),
            }
        }
    }

    /// The joiner is in the container's cgroups.
    pub fn send_placed(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::Placed, b"")
    }

    /// The agent has the joiner's notify fd: it may go on.
    pub fn send_seccomp_fd_taken(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::SeccompFdTaken, b"")
    }

    /// The joiner's answer to placed: the exec process's pid, or its error.
    pub fn recv_spawned(&self) -> io::Result<FromJoiner> {
        let Received::Packet(packet) = self.recv_one()? else {
            return Ok(FromJoiner::Logged);
        };
        let Some(p) = packet else {
            return Ok(FromJoiner::Exited);
        };
        Ok(match p.tag {
            Tag::Pid => FromJoiner::Pid(p.pid()?),
            Tag::Error => FromJoiner::Failed(p.text()),
            Tag::SeccompFd => FromJoiner::SeccompFd(p.fd()?),
            _ => return Err(p.unexpected("pid, seccomp fd or error")),
        })
    }

    /// husk knows the exec process (and the `--pid-file` names it): it may
    /// run its program.
    pub fn send_go(&self) -> io::Result<()> {
        send(self.sock.get(), Tag::Go, b"")
    }

    /// Until the exec process has run its program, or failed to.
    pub fn wait_exec(&self) -> io::Result<ExecOutcome> {
        match self.recv_one()? {
            Received::Logged => Ok(ExecOutcome::Logged),
            Received::Packet(None) => Ok(ExecOutcome::Execed),
            Received::Packet(Some(p)) if p.tag == Tag::Error => Ok(ExecOutcome::Failed(p.text())),
            Received::Packet(Some(p)) if p.tag == Tag::Master => Ok(ExecOutcome::Master(p.fd()?)),
            Received::Packet(Some(p)) => Err(p.unexpected("pty master, error or the end of file")),
        }
    }

    /// Why a joiner that husk killed failed, if it said so before.
    pub fn failure(&self) -> Option<String> {
        match recv_heard(self.sock.get(), Some(&self.senders.borrow())) {
            Ok(Some(p)) if p.tag == Tag::Error => Some(p.text()),
            _ => None,
        }
    }
}

/// The end of the `exec` channel of the joiner, then of the exec process.
pub struct ExecChild {
    sock: OwnedFd,
}

impl AsRawFd for ExecChild {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl ExecChild {
    /// As `InitChild::make_own_end`, first thing in the joiner; husk's end
    /// passes credentials (see `ExecParent`).
    pub fn make_own_end(&mut self) -> io::Result<()> {
        self.sock = own_end(&self.sock, true)?;
        Ok(())
    }

    /// Until husk has put the joiner in the container's cgroups.
    pub fn wait_placed(&self) -> io::Result<()> {
        expect(recv(&self.sock), Tag::Placed).map(drop)
    }

    /// Hands husk the notify fd of the joiner's seccomp filter, for the
    /// listener (sendmsg, which a profile with a listener may not notify).
    pub fn send_seccomp_fd(&self, fd: &OwnedFd) -> io::Result<()> {
        send_with_fd(&self.sock, &[Tag::SeccompFd as u8], fd)
    }

    /// Until husk has handed the notify fd to the agent. A plain read: the
    /// filter is in place.
    pub fn wait_seccomp_fd_taken(&self) -> io::Result<()> {
        expect(recv_plain(&self.sock), Tag::SeccompFdTaken).map(drop)
    }

    /// The exec process's pid, from the joiner. A plain write: the joiner is confined.
    pub fn send_pid(&self, pid: libc::pid_t) -> io::Result<()> {
        send_plain(&self.sock, Tag::Pid, pid.to_string().as_bytes())
    }

    /// In the exec process, until husk knows its pid (and has written the
    /// `--pid-file`); an end of file (husk failed or died first) is an
    /// error. A plain read: it is confined.
    pub fn wait_go(&self) -> io::Result<()> {
        expect(recv_plain(&self.sock), Tag::Go).map(drop)
    }

    /// The exec process's pty master, for husk to pass on (sendmsg, which
    /// the exec process's filter must allow for a terminal, as it did when
    /// the process sent it to the console socket itself).
    pub fn send_master(&self, master: &OwnedFd) -> io::Result<()> {
        send_with_fd(&self.sock, &[Tag::Master as u8], master)
    }

    /// The error that stops the joiner or the exec process. A plain write:
    /// the seccomp filter may be in place.
    pub fn send_error(&self, error: &str) -> io::Result<()> {
        send_plain(&self.sock, Tag::Error, error.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pid_of(m: FromInit) -> Option<libc::pid_t> {
        match m {
            FromInit::Pid(pid) => Some(pid),
            _ => None,
        }
    }

    #[test]
    fn a_peer_that_closed_with_our_message_unread_still_delivers_its_own() {
        let (parent, child) = init_channel().unwrap();
        child.send_error("exec: not found").unwrap();
        parent.send_maps_written().unwrap(); // never read by the child
        drop(child);
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Failed(e) if e == "exec: not found"));
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Exited));
    }

    #[test]
    fn a_plain_read_also_gets_what_a_peer_sent_before_it_closed() {
        let (parent, child) = init_channel().unwrap();
        child.send_ready().unwrap(); // never read by the parent
        parent.send_committed().unwrap();
        drop(parent);
        child.wait_committed().unwrap();
    }

    #[test]
    fn a_state_larger_than_any_message_arrives_whole() {
        let (parent, child) = init_channel().unwrap();
        let state = format!("{{\"big\":\"{}\"}}", "x".repeat(1 << 20));
        parent.send_hook_state(&state).unwrap();
        assert_eq!(child.wait_hook_state().unwrap(), state);
    }

    #[test]
    fn the_whole_create_sequence() {
        let (parent, child) = init_channel().unwrap();
        parent.send_maps_written().unwrap();
        parent.send_placed().unwrap();
        child.wait_maps_written().unwrap();
        assert!(child.wait_placed().unwrap().is_none());

        // Answered ahead here: the init's side waits for the answer.
        parent.send_net_moved().unwrap();
        child.await_net_devices().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::NetReady));

        child.send_run_hooks().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::RunHooks));
        parent.send_hook_state("{\"status\":\"creating\"}").unwrap();
        assert_eq!(child.wait_hook_state().unwrap(), "{\"status\":\"creating\"}");

        child.send_pid(4242).unwrap();
        assert_eq!(pid_of(parent.recv_setup().unwrap()), Some(4242));

        let notify = sys::memfd(c"husk-test").unwrap();
        child.send_seccomp_fd(&OwnedFd::from(notify)).unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::SeccompFd(_)));

        child.send_ready().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Ready));
        parent.send_committed().unwrap();
        child.wait_committed().unwrap();
        drop(parent);
        assert_eq!(
            child.wait_committed().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof,
            "a parent that died before committing is an error"
        );
    }

    fn memfds(dirs: &[&str]) -> Vec<(std::path::PathBuf, std::fs::File)> {
        dirs.iter()
            .map(|dir| (dir.into(), sys::memfd(c"husk-test").unwrap()))
            .collect()
    }

    fn tasks_of(step: PlacementStep) -> Vec<(std::path::PathBuf, std::fs::File)> {
        match step {
            PlacementStep::Tasks(tasks) => tasks,
            PlacementStep::Placed(_) => panic!("placed, expected tasks files"),
        }
    }

    #[test]
    fn placement_files_arrive_in_one_message_with_their_directories_then_placed() {
        let (parent, child) = init_channel().unwrap();
        let files = memfds(&["/sys/fs/cgroup/pids/c", "/sys/fs/cgroup/memory/c"]);
        parent.send_tasks(&files).unwrap();
        parent.send_placed_with(None).unwrap();
        let got = tasks_of(child.recv_placement().unwrap());
        let dirs: Vec<_> = got.iter().map(|(d, _)| d.to_str().unwrap()).collect();
        assert_eq!(dirs, ["/sys/fs/cgroup/pids/c", "/sys/fs/cgroup/memory/c"]);
        // Each file is its own: what is written through it lands in that memfd.
        for ((_, mut got), (_, sent)) in got.into_iter().zip(&files) {
            got.write_all(b"0").unwrap();
            assert_eq!(sent.metadata().unwrap().len(), 1);
        }
        assert!(child.wait_placed().unwrap().is_none());
        // With the cgroup tmpfs: it comes with placed.
        let tree = OwnedFd::from(sys::memfd(c"husk-test").unwrap());
        parent.send_placed_with(Some(&tree)).unwrap();
        assert!(child.wait_placed().unwrap().is_some());
        // Anything else there is an error that names it.
        parent.send_committed().unwrap();
        let e = child.recv_placement().unwrap_err();
        assert!(
            e.to_string().contains("unexpected message committed, expected placed"),
            "{e}"
        );
    }

    fn dirs_of(step: PlacementStep) -> Vec<String> {
        let tasks = tasks_of(step);
        tasks.iter().map(|(d, _)| d.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn placement_files_go_sixteen_to_a_message() {
        let (parent, child) = init_channel().unwrap();
        let dirs: Vec<String> = (0..sys::process::MAX_FDS + 3)
            .map(|i| format!("/sys/fs/cgroup/h{i}/c"))
            .collect();
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        parent.send_tasks(&memfds(&dirs)).unwrap();
        let first = dirs_of(child.recv_placement().unwrap());
        let second = dirs_of(child.recv_placement().unwrap());
        assert_eq!(first, dirs[..sys::process::MAX_FDS]);
        assert_eq!(second, dirs[sys::process::MAX_FDS..]);
    }

    #[test]
    fn long_directories_arrive_whole_in_as_many_messages_as_they_need() {
        let (parent, child) = init_channel().unwrap();
        let long: Vec<String> = (0..3)
            .map(|i| format!("/sys/fs/cgroup/{i}/{}", "d".repeat(1500)))
            .collect();
        let longest = format!("/sys/fs/cgroup/{}", "e".repeat(2 * MAX));
        let dirs = [long[0].as_str(), long[1].as_str(), long[2].as_str(), longest.as_str()];
        parent.send_tasks(&memfds(&dirs)).unwrap();
        assert_eq!(dirs_of(child.recv_placement().unwrap()), dirs[..2]);
        assert_eq!(dirs_of(child.recv_placement().unwrap()), dirs[2..3]);
        // Only what no packet can hold is cut.
        assert_eq!(dirs_of(child.recv_placement().unwrap()), [&longest[..MAX - 1]]);
    }

    #[test]
    fn a_placement_message_whose_files_and_directories_differ_is_refused() {
        let (parent, child) = init_channel().unwrap();
        let file = sys::memfd(c"husk-test").unwrap();
        send_with_fds(parent.sock.get(), b"Fa\0b", &[file.as_raw_fd()]).unwrap();
        let e = child.recv_placement().unwrap_err();
        assert_eq!(e.to_string(), "a placement message with 1 files for 2 directories");
    }

    #[test]
    fn forwarded_debug_lines_are_logged_and_skipped_or_said() {
        assert!(
            Tag::of(crate::log::FORWARDED_TAG).is_none(),
            "no message uses the debug tag"
        );
        let (parent, child) = init_channel().unwrap();
        let debug_line = |text: &str| {
            let mut packet = vec![crate::log::FORWARDED_TAG];
            packet.extend_from_slice(text.as_bytes());
            sys::write_raw(child.as_raw_fd(), &packet).unwrap();
        };
        // recv_setup says each: its caller waits again, watching what it watched.
        debug_line("init: mounts (1us)");
        child.send_run_hooks().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Logged));
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::RunHooks));
        debug_line("init: confined (1us)");
        child.send_ready().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Logged));
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Ready));
        debug_line("init: after ready (1us)");
        drop(child);
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Logged));
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Exited));
    }

    #[test]
    fn the_exec_process_debug_lines_are_said_to_exec() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        let debug_line = || {
            let mut packet = vec![crate::log::FORWARDED_TAG];
            packet.extend_from_slice(b"exec: joined (1us)");
            sys::write_raw(child.as_raw_fd(), &packet).unwrap();
        };
        debug_line();
        child.send_pid(42).unwrap();
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Logged));
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Pid(42)));
        debug_line();
        drop(child);
        assert!(matches!(parent.wait_exec().unwrap(), ExecOutcome::Logged));
        assert!(matches!(parent.wait_exec().unwrap(), ExecOutcome::Execed));
    }

    #[test]
    fn a_pty_master_comes_from_the_init_and_the_exec_process() {
        let (parent, child) = init_channel().unwrap();
        let master = OwnedFd::from(crate::sys::memfd(c"husk-test").unwrap());
        child.send_master(&master).unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Master(_)));

        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        child.send_master(&master).unwrap();
        assert!(matches!(parent.wait_exec().unwrap(), ExecOutcome::Master(_)));
    }

    #[test]
    fn a_child_hands_over_the_end_of_a_pair_of_its_own() {
        let (parent, mut child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        child.make_own_end().unwrap();
        parent.take_joiners_end().unwrap();
        parent.take_joiners_end().unwrap(); // once
        parent.send_placed().unwrap();
        child.wait_placed().unwrap();
        child.send_pid(77).unwrap();
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Pid(77)));

        let (parent, mut child) = init_channel().unwrap();
        child.make_own_end().unwrap();
        parent.take_inits_end().unwrap();
        child.send_ready().unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Ready));
    }

    #[test]
    fn once_a_pod_will_see_the_inits_process_only_its_inits_are_heard() {
        let (parent, mut child) = init_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        child.make_own_end().unwrap();
        parent.take_inits_end().unwrap();
        child.send_pid(77).unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Pid(77)));
        // The process named now speaks alone: anything else is forged.
        parent.hear_only(1);
        child.send_ready().unwrap();
        let e = parent.recv_setup().unwrap_err();
        assert!(e.to_string().contains("which husk did not start"), "{e}");
    }

    #[test]
    fn a_channel_handed_over_must_be_a_packet_socket() {
        let (parent, child) = init_channel().unwrap();
        let stream = std::os::unix::net::UnixStream::pair().unwrap().0;
        send_with_fd(&child.sock, &[Tag::Channel as u8], &stream).unwrap();
        let e = parent.take_inits_end().unwrap_err();
        assert_eq!(e.to_string(), "a channel that is not a packet socket");
    }

    #[test]
    fn a_child_that_fails_before_it_hands_over_its_end_says_why() {
        let (parent, child) = init_channel().unwrap();
        child.send_error("make the channel: EMFILE").unwrap();
        let e = parent.take_inits_end().unwrap_err();
        assert_eq!(e.to_string(), "make the channel: EMFILE");
        drop(child);
        let (parent, child) = init_channel().unwrap();
        drop(child);
        assert!(parent.take_inits_end().is_err());
    }

    #[test]
    fn a_long_error_is_cut_to_one_message() {
        let (parent, child) = init_channel().unwrap();
        child.send_error(&"e".repeat(2 * MAX)).unwrap();
        assert!(matches!(parent.recv_setup().unwrap(), FromInit::Failed(e) if e.len() == MAX - 1));
    }

    #[test]
    fn an_unexpected_message_is_an_error_that_names_it() {
        let (parent, child) = init_channel().unwrap();
        parent.send_committed().unwrap();
        let e = child.wait_maps_written().unwrap_err();
        assert_eq!(e.to_string(), "unexpected message committed, expected maps written");

        drop(parent);
        let e = child.wait_placed().unwrap_err();
        assert_eq!(e.to_string(), "the channel closed, expected placed");
    }

    #[test]
    fn the_whole_exec_sequence() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        parent.send_placed().unwrap();
        child.wait_placed().unwrap();
        child.send_pid(77).unwrap();
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Pid(77)));
        drop(child); // execve closes it
        assert!(matches!(parent.wait_exec().unwrap(), ExecOutcome::Execed));
    }

    #[test]
    fn an_exec_process_that_fails_says_why() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        child.send_pid(77).unwrap();
        child
            .send_error("exec: \"nope\": executable file not found in $PATH")
            .unwrap();
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Pid(77)));
        assert!(matches!(
            parent.wait_exec().unwrap(),
            ExecOutcome::Failed(e) if e == "exec: \"nope\": executable file not found in $PATH"
        ));
    }

    #[test]
    fn a_joiner_that_dies_is_an_end_of_file_and_a_killed_one_may_have_said_why() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        child
            .send_error("join namespace /proc/1/ns/mnt: Operation not permitted")
            .unwrap();
        drop(child);
        assert_eq!(
            parent.failure().as_deref(),
            Some("join namespace /proc/1/ns/mnt: Operation not permitted")
        );
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Exited));
        assert_eq!(parent.failure(), None);
    }

    #[test]
    fn the_parent_takes_no_message_of_its_own() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(std::process::id() as libc::pid_t);
        // A message only husk sends, as if the child had sent it.
        send(&child.sock, Tag::Placed, b"").unwrap();
        let e = parent.recv_spawned().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected message placed, expected pid, seccomp fd or error"
        );
        send(&child.sock, Tag::Committed, b"").unwrap();
        assert!(parent.wait_exec().is_err());
    }

    /// A process that took a copy of the child's end (a container that may
    /// ptrace the exec process) wrote a pid of its choice into it, which
    /// husk then killed (review 60b F1). Only the processes husk started are
    /// heard: not even an empty message, an end of file's look-alike.
    #[test]
    fn the_parent_hears_only_the_processes_it_started() {
        let (parent, child) = exec_channel().unwrap();
        parent.hear_from(1);
        child.send_pid(42).unwrap();
        let e = parent.recv_spawned().unwrap_err();
        let me = std::process::id();
        assert_eq!(
            e.to_string(),
            format!("a message from process {me}, which husk did not start for this")
        );
        nix::sys::socket::send(child.sock.as_raw_fd(), b"", nix::sys::socket::MsgFlags::empty()).unwrap();
        assert!(parent.wait_exec().is_err(), "an empty message taken for the execve");
        parent.hear_from(me as libc::pid_t);
        child.send_pid(42).unwrap();
        assert!(matches!(parent.recv_spawned().unwrap(), FromJoiner::Pid(42)));
        assert!(!parent.more_after_the_word().unwrap());
        // What a process may send in the name of one heard (60c F2, F3).
        child.send_pid(43).unwrap();
        assert!(parent.more_after_the_word().unwrap(), "a second word");
        nix::sys::socket::send(child.sock.as_raw_fd(), b"", nix::sys::socket::MsgFlags::empty()).unwrap();
        let e = parent.wait_exec().unwrap_err();
        assert_eq!(e.to_string(), format!("an empty message from process {me}"));
        drop(child);
        assert!(matches!(parent.wait_exec().unwrap(), ExecOutcome::Execed));
    }
}
