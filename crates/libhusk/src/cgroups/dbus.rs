//! A minimal D-Bus client: the wire format (little-endian) and method calls
//! with their replies and errors over a unix socket, every exchange under a
//! timeout. Enough to drive systemd's manager; no fds, no signal handling.
//! A dedicated crate (zbus, dbus-rs) would bring an async stack or libdbus.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bail;
use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U32(u32),
    I32(i32),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    /// The element signature (needed when empty) and the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::I32(_) => "i".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => format!("({})", fields.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }
}

fn alignment(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b't' | b'x' | b'd' | b'(' | b'{') => 8,
        Some(b'n' | b'q') => 2,
        _ => 4,
    }
}

/// The first complete type of a signature, and the rest.
fn split_type(sig: &str) -> Result<(&str, &str)> {
    let bytes = sig.as_bytes();
    let mut end = 0;
    while bytes.get(end) == Some(&b'a') {
        end += 1;
    }
    let len = match bytes.get(end) {
        Some(b'(' | b'{') => {
            let mut depth = 0;
            let mut i = end;
            loop {
                match bytes.get(i) {
                    Some(b'(' | b'{') => depth += 1,
                    Some(b')' | b'}') => depth -= 1,
                    None => bail!("D-Bus: unbalanced signature \"{sig}\""),
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break i;
                }
            }
        }
        Some(_) => end + 1,
        None => bail!("D-Bus: incomplete signature \"{sig}\""),
    };
    Ok(sig.split_at(len))
}

#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::U32(n) => self.u32(*n),
            Value::I32(n) => self.u32(*n as u32),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.signature(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem));
                let start = self.buf.len();
                for item in items {
                    self.put(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.put(inner);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + n) else {
            bail!("D-Bus: truncated message")
        };
        self.pos += n;
        Ok(bytes)
    }

    fn align(&mut self, align: usize) -> Result<()> {
        let pad = (align - self.pos % align) % align;
        self.take(pad).map(|_| ())
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let s = String::from_utf8_lossy(self.take(len)?).into_owned();
        self.take(1)?;
        Ok(s)
    }

    /// Reads every value of `sig` in order.
    fn values(&mut self, mut sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (one, rest) = split_type(sig)?;
            out.push(self.value(one)?);
            sig = rest;
        }
        Ok(out)
    }

    fn value(&mut self, sig: &str) -> Result<Value> {
        Ok(match sig.as_bytes()[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'u' => Value::U32(self.u32()?),
            b'i' => Value::I32(self.u32()? as i32),
            b't' | b'x' => {
                self.align(8)?;
                Value::U64(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
            }
            b's' => {
                let len = self.u32()? as usize;
                Value::Str(self.text(len)?)
            }
            b'o' => {
                let len = self.u32()? as usize;
                Value::Path(self.text(len)?)
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.text(len)?)
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let inner = self.text(len)?;
                let (one, rest) = split_type(&inner)?;
                if !rest.is_empty() {
                    bail!("D-Bus: variant of more than one type");
                }
                Value::Variant(Box::new(self.value(one)?))
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem))?;
                let end = self.pos + len;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem)?);
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                Value::Struct(self.values(&sig[1..sig.len() - 1])?)
            }
            other => bail!("D-Bus: unsupported type '{}'", other as char),
        })
    }
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A method call as bytes: header fields, then the body.
fn method_call(serial: u32, path: &str, iface: &str, member: &str, args: &[Value]) -> Vec<u8> {
    let mut body = Writer::default();
    for a in args {
        body.put(a);
    }
    let sig: String = args.iter().map(Value::signature).collect();
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::Str(iface.into())),
        field(3, Value::Str(member.into())),
    ];
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut msg = Writer::default();
    msg.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    msg.u32(body.buf.len() as u32);
    msg.u32(serial);
    msg.put(&Value::Array("(yv)".into(), fields));
    msg.pad(8);
    msg.buf.extend_from_slice(&body.buf);
    msg.buf
}

/// A message received: its type, the serial it answers, the error name, the body.
struct Incoming {
    kind: u8,
    reply_to: Option<u32>,
    error: Option<String>,
    body: Vec<Value>,
}

fn parse(header: &[u8; 16], rest: &[u8]) -> Result<Incoming> {
    if header[0] != b'l' {
        bail!("D-Bus: big-endian messages are not supported");
    }
    let mut all = header.to_vec();
    all.extend_from_slice(rest);
    let mut r = Reader { buf: &all, pos: 12 };
    let fields = r.value("a(yv)")?;
    r.align(8)?;
    let (mut reply_to, mut error, mut sig) = (None, None, String::new());
    if let Value::Array(_, fields) = fields {
        for f in fields {
            let Value::Struct(f) = f else { continue };
            match (&f[0], &f[1]) {
                (Value::Byte(5), Value::Variant(v)) => {
                    if let Value::U32(n) = **v {
                        reply_to = Some(n);
                    }
                }
                (Value::Byte(4), v) => error = v.as_str().map(String::from),
                (Value::Byte(8), v) => sig = v.as_str().unwrap_or_default().to_string(),
                _ => {}
            }
        }
    }
    let body = r.values(&sig)?;
    Ok(Incoming {
        kind: header[1],
        reply_to,
        error,
        body,
    })
}

/// A connection to systemd's private socket: peer to peer, no message bus,
/// so no Hello and no destinations.
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    timeout: Duration,
}

impl Connection {
    /// Connects and authenticates (EXTERNAL, by uid).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Connection> {
        let sock = crate::sys::fs::connect_within(path, timeout)
            .map(UnixStream::from)
            .map_err(std::io::Error::from)
            .context(|| format!("connect to {}", path.display()))?;
        sock.set_read_timeout(Some(timeout)).context(|| "D-Bus socket".into())?;
        sock.set_write_timeout(Some(timeout))
            .context(|| "D-Bus socket".into())?;
        let mut conn = Connection {
            sock,
            serial: 0,
            timeout,
        };
        conn.authenticate()
            .context(|| format!("D-Bus authentication at {}", path.display()))?;
        Ok(conn)
    }

    fn authenticate(&mut self) -> std::io::Result<()> {
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // BEGIN is sent along, as sd-bus does: sent later, systemd 252 can read
        // it together with the first message in one go, keep that message
        // buffered and never get back to it (the call then goes unanswered).
        self.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(std::io::Error::other(format!(
                "the server answered \"{}\"",
                line.trim()
            )));
        }
        Ok(())
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while !line.ends_with(b"\r\n") {
            if self.sock.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            line.push(byte[0]);
            if line.len() > 4096 {
                return Err(std::io::Error::other("an overlong line"));
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls a method and returns the reply's values, or the error it answered.
    pub fn call(&mut self, path: &str, iface: &str, member: &str, args: &[Value]) -> Result<Vec<Value>> {
        self.serial += 1;
        let serial = self.serial;
        let what = || format!("D-Bus {iface}.{member}");
        let msg = method_call(serial, path, iface, member, args);
        self.sock.write_all(&msg).context(what)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() > deadline {
                bail!("{}: no answer within {:?}", what(), self.timeout);
            }
            let reply = self.receive().context(what)?;
            if reply.reply_to != Some(serial) {
                continue; // a signal, or NameAcquired after Hello
            }
            return match reply.kind {
                METHOD_RETURN => Ok(reply.body),
                ERROR => {
                    let name = reply.error.unwrap_or_default();
                    let text = reply
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    Err(Error::new(format!("{}: {name}: {text}", what())))
                }
                other => bail!("{}: unexpected message type {other}", what()),
            };
        }
    }

    fn receive(&mut self) -> Result<Incoming> {
        let mut header = [0u8; 16];
        self.sock.read_exact(&mut header).context(|| "read".into())?;
        let body_len = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        let fields_len = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
        let padded = (16 + fields_len).div_ceil(8) * 8 - 16;
        if padded + body_len > 1 << 26 {
            bail!("D-Bus: message too large");
        }
        let mut rest = vec![0u8; padded + body_len];
        self.sock.read_exact(&mut rest).context(|| "read".into())?;
        parse(&header, &rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as a server sends it: `kind`, header fields, body values.
    fn server_message(kind: u8, fields: Vec<(u8, Value)>, body: &[Value]) -> Vec<u8> {
        let mut b = Writer::default();
        for v in body {
            b.put(v);
        }
        let mut fields: Vec<Value> = fields
            .into_iter()
            .map(|(code, v)| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]))
            .collect();
        if !body.is_empty() {
            let sig = body.iter().map(Value::signature).collect();
            fields.push(Value::Struct(vec![
                Value::Byte(8),
                Value::Variant(Box::new(Value::Sig(sig))),
            ]));
        }
        let mut m = Writer::default();
        m.buf.extend_from_slice(&[b'l', kind, 1, 1]);
        m.u32(b.buf.len() as u32);
        m.u32(99);
        m.put(&Value::Array("(yv)".into(), fields));
        m.pad(8);
        m.buf.extend_from_slice(&b.buf);
        m.buf
    }

    /// A fake systemd: answers the auth, then a signal and the given reply to
    /// the first call, and hands back what the call was.
    fn fake_server(reply: Vec<u8>) -> (std::path::PathBuf, std::thread::JoinHandle<Vec<u8>>) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("husk-dbus-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("private");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut auth = Vec::new();
            let mut byte = [0u8];
            while !auth.ends_with(b"BEGIN\r\n") {
                s.read_exact(&mut byte).unwrap();
                auth.push(byte[0]);
            }
            assert!(auth.starts_with(b"\0AUTH EXTERNAL "), "{auth:?}");
            s.write_all(b"OK 0123456789abcdef\r\n").unwrap();
            let mut header = [0u8; 16];
            s.read_exact(&mut header).unwrap();
            let body = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
            let fields = u32::from_le_bytes(header[12..16].try_into().unwrap()) as usize;
            let mut rest = vec![0u8; (16 + fields).div_ceil(8) * 8 - 16 + body];
            s.read_exact(&mut rest).unwrap();
            if reply.is_empty() {
                std::thread::sleep(Duration::from_millis(500)); // never answers
            } else {
                let signal = server_message(4, vec![(1, Value::Path("/x".into()))], &[Value::Str("noise".into())]);
                s.write_all(&signal).unwrap();
                s.write_all(&reply).unwrap();
            }
            std::fs::remove_dir_all(&dir).unwrap();
            [header.to_vec(), rest].concat()
        });
        (path, server)
    }

    #[test]
    fn a_call_skips_signals_and_returns_its_reply() {
        let reply = server_message(METHOD_RETURN, vec![(5, Value::U32(1))], &[Value::Path("/job/7".into())]);
        let (path, server) = fake_server(reply);
        let mut conn = Connection::connect(&path, Duration::from_secs(5)).unwrap();
        let got = conn
            .call(
                MANAGER_PATH_FOR_TEST,
                "org.freedesktop.systemd1.Manager",
                "StopUnit",
                &[Value::Str("a.scope".into()), Value::Str("replace".into())],
            )
            .unwrap();
        assert_eq!(got, [Value::Path("/job/7".into())]);
        let sent = server.join().unwrap();
        assert_eq!(sent[1], METHOD_CALL);
    }

    #[test]
    fn an_error_reply_names_the_error_and_says_its_text() {
        let reply = server_message(
            ERROR,
            vec![
                (5, Value::U32(1)),
                (4, Value::Str("org.freedesktop.systemd1.NoSuchUnit".into())),
            ],
            &[Value::Str("Unit a.scope not loaded.".into())],
        );
        let (path, server) = fake_server(reply);
        let mut conn = Connection::connect(&path, Duration::from_secs(5)).unwrap();
        let e = conn
            .call(
                MANAGER_PATH_FOR_TEST,
                "org.freedesktop.systemd1.Manager",
                "StopUnit",
                &[],
            )
            .unwrap_err();
        assert_eq!(
            e.message(),
            "D-Bus org.freedesktop.systemd1.Manager.StopUnit: org.freedesktop.systemd1.NoSuchUnit: Unit a.scope not loaded."
        );
        server.join().unwrap();
    }

    #[test]
    fn an_unanswered_call_times_out() {
        let (path, server) = fake_server(Vec::new());
        let mut conn = Connection::connect(&path, Duration::from_millis(100)).unwrap();
        let started = Instant::now();
        let e = conn
            .call(
                MANAGER_PATH_FOR_TEST,
                "org.freedesktop.systemd1.Manager",
                "StopUnit",
                &[],
            )
            .unwrap_err();
        assert!(
            e.message()
                .starts_with("D-Bus org.freedesktop.systemd1.Manager.StopUnit: "),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_millis(450), "bounded by the timeout");
        server.join().unwrap();
    }

    const MANAGER_PATH_FOR_TEST: &str = "/org/freedesktop/systemd1";

    #[test]
    fn signatures_split_into_complete_types() {
        assert_eq!(split_type("sa(sv)b").unwrap(), ("s", "a(sv)b"));
        assert_eq!(split_type("a(sv)b").unwrap(), ("a(sv)", "b"));
        assert_eq!(split_type("a{sa(sv)}").unwrap(), ("a{sa(sv)}", ""));
        assert!(split_type("a(sv").is_err());
    }

    #[test]
    fn marshalled_values_read_back() {
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::Struct(vec![
                    Value::Str("Delegate".into()),
                    Value::Variant(Box::new(Value::Bool(true))),
                ]),
                Value::Struct(vec![
                    Value::Str("PIDs".into()),
                    Value::Variant(Box::new(Value::Array("u".into(), vec![Value::U32(42)]))),
                ]),
                Value::Struct(vec![
                    Value::Str("MemoryMax".into()),
                    Value::Variant(Box::new(Value::U64(1 << 26))),
                ]),
            ],
        );
        let args = [
            Value::Str("husk-x.scope".into()),
            Value::Str("replace".into()),
            props,
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let mut w = Writer::default();
        for a in &args {
            w.put(a);
        }
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        let mut r = Reader { buf: &w.buf, pos: 0 };
        assert_eq!(r.values(&sig).unwrap(), args);
        assert_eq!(r.pos, w.buf.len());
    }

    #[test]
    fn a_method_call_has_its_header_fields_and_an_aligned_body() {
        let msg = method_call(
            7,
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StopUnit",
            &[Value::Str("a.scope".into()), Value::Str("replace".into())],
        );
        assert_eq!(&msg[..4], &[b'l', METHOD_CALL, 0, 1]);
        let body_len = u32::from_le_bytes(msg[4..8].try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(msg[8..12].try_into().unwrap()), 7);
        assert_eq!((msg.len() - body_len) % 8, 0, "the body starts 8-aligned");
        let mut r = Reader { buf: &msg, pos: 12 };
        let Value::Array(_, fields) = r.value("a(yv)").unwrap() else {
            panic!()
        };
        assert_eq!(fields.len(), 4);
        let mut body = Reader {
            buf: &msg[msg.len() - body_len..],
            pos: 0,
        };
        assert_eq!(
            body.values("ss").unwrap(),
            [Value::Str("a.scope".into()), Value::Str("replace".into())]
        );
    }
}
