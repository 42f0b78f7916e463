//! The messages of criu's RPC service (`criu swrk FD`), encoded and decoded
//! by hand: the few fields of criu's images/rpc.proto that husk uses, in
//! protobuf's wire format (proto2). A request is one SOCK_SEQPACKET packet,
//! as is each answer.
//!
//! Wire format: each field is a key (`field << 3 | wire type`, a varint)
//! then its value: a varint (type 0: integers, bools, enums; a negative
//! int32 is sign-extended to 64 bits, ten bytes), or a length-delimited run
//! of bytes (type 2: strings, bytes, nested messages). A repeated field is
//! its field written once per value. Types 1 and 5 (fixed 64 and 32 bits)
//! criu's answers do not use; the decoder skips them all the same.

use crate::bail;
use crate::error::Result;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// An encoded message under construction.
#[derive(Default, Debug)]
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.raw_varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A uint32/uint64/enum field.
    pub fn varint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.raw_varint(v);
    }

    /// An int32 field: a negative value takes ten bytes, as protobuf has it.
    pub fn int32(&mut self, field: u32, v: i32) {
        self.varint(field, i64::from(v) as u64);
    }

    /// A bool field, written only when true (proto2's default is false).
    pub fn bool(&mut self, field: u32, v: bool) {
        if v {
            self.varint(field, 1);
        }
    }

    /// A bytes field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, LEN);
        self.raw_varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }

    /// A string field.
    pub fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// A nested message field.
    pub fn message(&mut self, field: u32, m: &Encoder) {
        self.bytes(field, &m.0);
    }
}

/// One field of a decoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0 (and the fixed types, widened).
    Varint(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*at) else {
            bail!("criu's answer: a varint runs past the end")
        };
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("criu's answer: a varint is longer than ten bytes")
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = at.checked_add(n).filter(|&e| e <= buf.len());
    let Some(end) = end else {
        bail!("criu's answer: a field runs past the end")
    };
    let out = &buf[*at..end];
    *at = end;
    Ok(out)
}

/// The fields of message `buf`, in order: (field number, value).
pub fn fields(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = read_varint(buf, &mut at)?;
        let field = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(read_varint(buf, &mut at)?),
            LEN => {
                let n = read_varint(buf, &mut at)?;
                Value::Bytes(take(buf, &mut at, usize::try_from(n).unwrap_or(usize::MAX))?)
            }
            FIXED64 => Value::Varint(u64::from_le_bytes(take(buf, &mut at, 8)?.try_into().expect("8 bytes"))),
            FIXED32 => Value::Varint(u32::from_le_bytes(take(buf, &mut at, 4)?.try_into().expect("4 bytes")).into()),
            w => bail!("criu's answer: field {field} has wire type {w}, which husk does not read"),
        };
        out.push((field, value));
    }
    Ok(out)
}

/// criu_req_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum ReqType {
    /// A checkpoint.
    Dump = 1,
    /// A restore.
    Restore = 2,
    /// A pre-dump (the service then waits for the next request).
    PreDump = 4,
    /// A notification (criu's) and its answer (husk's).
    Notify = 6,
}

/// criu_cg_mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum CgMode {
    /// Leave the cgroups alone.
    Ignore = 0,
    /// Restore the properties of cgroups criu makes.
    Soft = 3,
    /// Restore every property.
    Full = 4,
    /// Refuse cgroups that exist.
    Strict = 5,
}

impl CgMode {
    /// runc's --manage-cgroups-mode names.
    pub fn parse(name: &str) -> Option<CgMode> {
        match name {
            "ignore" => Some(CgMode::Ignore),
            "soft" => Some(CgMode::Soft),
            "full" => Some(CgMode::Full),
            "strict" => Some(CgMode::Strict),
            _ => None,
        }
    }
}

/// The fields of criu_opts husk sets (field numbers in the comments).
#[derive(Debug, Default, Clone)]
pub struct Opts {
    /// 1: an fd of the caller (criu opens /proc/CALLER/fd/N).
    pub images_dir_fd: i32,
    /// 2: the root of the tree to dump.
    pub pid: Option<i32>,
    /// 3.
    pub leave_running: bool,
    /// 4.
    pub ext_unix_sk: bool,
    /// 5.
    pub tcp_established: bool,
    /// 6.
    pub evasive_devices: bool,
    /// 7.
    pub shell_job: bool,
    /// 8.
    pub file_locks: bool,
    /// 9.
    pub log_level: i32,
    /// 10: a name in the work directory.
    pub log_file: String,
    /// 11: page server address and port (criu_page_server_info 1, 2).
    pub page_server: Option<(String, i32)>,
    /// 12: notifications (husk needs them for orphan_pts_master).
    pub notify_scripts: bool,
    /// 13.
    pub root: Option<String>,
    /// 14: the parent images, relative to the image directory.
    pub parent_img: Option<String>,
    /// 15.
    pub track_mem: bool,
    /// 16.
    pub auto_dedup: bool,
    /// 17: an fd of the caller, as images_dir_fd.
    pub work_dir_fd: Option<i32>,
    /// 18.
    pub link_remap: bool,
    /// 23: (key, value), as `--ext-mount-map KEY:VALUE`.
    pub ext_mnt: Vec<(String, String)>,
    /// 25: cgroup_root paths (no controller: all of them).
    pub cg_root: Vec<String>,
    /// 26: the restored tree is a child of criu's parent.
    pub rst_sibling: bool,
    /// 27: (key, fd of criu's), as `--inherit-fd fd[FD]:KEY`.
    pub inherit_fd: Vec<(String, i32)>,
    /// 34.
    pub manage_cgroups_mode: Option<CgMode>,
    /// 37: as `--external`.
    pub external: Vec<String>,
    /// 38: clone flags of namespaces left empty (only CLONE_NEWNET).
    pub empty_ns: u32,
    /// 44.
    pub freeze_cgroup: Option<String>,
    /// 46.
    pub tcp_skip_in_flight: bool,
    /// 48.
    pub lazy_pages: bool,
    /// 50: a pty slave whose master is outside is restored with a new
    /// master, sent back in an "orphan-pts-master" notification.
    pub orphan_pts_master: bool,
    /// 51: a configuration file whose settings override these.
    pub config_file: Option<String>,
    /// 60: where criu mounts the cgroup hierarchies it restores into.
    pub cgroup_yard: Option<String>,
}

impl Opts {
    /// The encoded criu_opts.
    pub fn encode(&self) -> Encoder {
        let mut e = Encoder::default();
        e.int32(1, self.images_dir_fd);
        if let Some(pid) = self.pid {
            e.int32(2, pid);
        }
        e.bool(3, self.leave_running);
        e.bool(4, self.ext_unix_sk);
        e.bool(5, self.tcp_established);
        e.bool(6, self.evasive_devices);
        e.bool(7, self.shell_job);
        e.bool(8, self.file_locks);
        e.int32(9, self.log_level);
        e.string(10, &self.log_file);
        if let Some((address, port)) = &self.page_server {
            let mut ps = Encoder::default();
            ps.string(1, address);
            ps.int32(2, *port);
            e.message(11, &ps);
        }
        e.bool(12, self.notify_scripts);
        if let Some(root) = &self.root {
            e.string(13, root);
        }
        if let Some(parent) = &self.parent_img {
            e.string(14, parent);
        }
        e.bool(15, self.track_mem);
        e.bool(16, self.auto_dedup);
        if let Some(fd) = self.work_dir_fd {
            e.int32(17, fd);
        }
        e.bool(18, self.link_remap);
        for (key, val) in &self.ext_mnt {
            let mut m = Encoder::default();
            m.string(1, key);
            m.string(2, val);
            e.message(23, &m);
        }
        for path in &self.cg_root {
            let mut m = Encoder::default();
            m.string(2, path);
            e.message(25, &m);
        }
        e.bool(26, self.rst_sibling);
        for (key, fd) in &self.inherit_fd {
            let mut m = Encoder::default();
            m.string(1, key);
            m.int32(2, *fd);
            e.message(27, &m);
        }
        if let Some(mode) = self.manage_cgroups_mode {
            e.varint(34, mode as u64);
        }
        for x in &self.external {
            e.string(37, x);
        }
        if self.empty_ns != 0 {
            e.varint(38, self.empty_ns.into());
        }
        if let Some(f) = &self.freeze_cgroup {
            e.string(44, f);
        }
        e.bool(46, self.tcp_skip_in_flight);
        e.bool(48, self.lazy_pages);
        e.bool(50, self.orphan_pts_master);
        if let Some(f) = &self.config_file {
            e.string(51, f);
        }
        if let Some(y) = &self.cgroup_yard {
            e.string(60, y);
        }
        e
    }
}

/// A criu_req with options.
pub fn request(kind: ReqType, opts: &Opts) -> Vec<u8> {
    let mut e = Encoder::default();
    e.varint(1, kind as u64);
    e.message(2, &opts.encode());
    e.0
}

/// The answer to a notification: the script (husk's handling) succeeded.
pub fn notify_success() -> Vec<u8> {
    let mut e = Encoder::default();
    e.varint(1, ReqType::Notify as u64);
    e.bool(3, true);
    e.0
}

/// The answer to a notification: the script failed (criu then gives up).
pub fn notify_failure() -> Vec<u8> {
    let mut e = Encoder::default();
    e.varint(1, ReqType::Notify as u64);
    e.0
}

/// The fields husk reads of a criu_resp.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Response {
    /// 1: criu_req_type.
    pub kind: u64,
    /// 2.
    pub success: bool,
    /// 4.1: criu_restore_resp.pid.
    pub restored_pid: Option<i32>,
    /// 5.1: criu_notify.script.
    pub script: Option<String>,
    /// 5.2: criu_notify.pid.
    pub notify_pid: Option<i32>,
    /// 7.
    pub errno: Option<i32>,
    /// 9.
    pub errmsg: Option<String>,
}

fn as_i32(v: u64) -> i32 {
    // int32 on the wire: the low 32 bits (a negative one is sign-extended).
    v as u32 as i32
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Response {
    /// Decodes a criu_resp; fields husk does not read are skipped.
    pub fn decode(buf: &[u8]) -> Result<Response> {
        let mut r = Response::default();
        for (field, value) in fields(buf)? {
            match (field, value) {
                (1, Value::Varint(v)) => r.kind = v,
                (2, Value::Varint(v)) => r.success = v != 0,
                (4, Value::Bytes(m)) => {
                    for (f, v) in fields(m)? {
                        if let (1, Value::Varint(pid)) = (f, v) {
                            r.restored_pid = Some(as_i32(pid));
                        }
                    }
                }
                (5, Value::Bytes(m)) => {
                    for (f, v) in fields(m)? {
                        match (f, v) {
                            (1, Value::Bytes(s)) => r.script = Some(text(s)),
                            (2, Value::Varint(pid)) => r.notify_pid = Some(as_i32(pid)),
                            _ => {}
                        }
                    }
                }
                (7, Value::Varint(v)) => r.errno = Some(as_i32(v)),
                (9, Value::Bytes(s)) => r.errmsg = Some(text(s)),
                _ => {}
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn varints_as_the_protobuf_encoding_doc_has_them() {
        // https://protobuf.dev/programming-guides/encoding/: 150 in field 1
        // is 08 96 01; "testing" in field 2 is 12 07 74 65 73 74 69 6e 67.
        let mut e = Encoder::default();
        e.varint(1, 150);
        e.string(2, "testing");
        assert_eq!(hex(&e.0), "089601120774657374696e67");
        // A negative int32 is ten bytes.
        let mut e = Encoder::default();
        e.int32(1, -1);
        assert_eq!(hex(&e.0), "08ffffffffffffffffff01");
        let f = fields(&e.0).unwrap();
        assert_eq!(
            as_i32(match f[0].1 {
                Value::Varint(v) => v,
                _ => panic!(),
            }),
            -1
        );
    }

    // The vectors below were produced by python3's protobuf 4.21 with
    // criu 3.17's pycriu.rpc_pb2 (Debian's python3-protobuf and criu):
    // python3 -c 'from pycriu import rpc_pb2 as r; ...SerializeToString().hex()'
    const RESTORE: &str = "080212a801080530014804520b726573746f72652e6c6f6760016a152f72756e2f6875736b2f632f637269752d726f6f74880106ba01120a052f6461746112092f7372762f64617461ca010912072f6875736b2f63d00101da010e0a0a706970653a5b3132335d1001900203aa021c6e65745b343032363533313834305d3a657874526f6f744e65744e53b0028080808004900301e203152f72756e2f6875736b2f632f637269752d79617264";
    const DUMP: &str = "080112670803109221180120012801380140014804520864756d702e6c6f675a0c0a0831302e302e302e31101b60016a092f622f726f6f74667372062e2e2f7072657801800101900101900200e202152f7379732f66732f6367726f75702f6875736b2f63f00201900301";
    const RESP_NOTIFY: &str = "080610012a150a116f727068616e2d7074732d6d61737465721000";
    const RESP_RESTORE: &str = "08021001220308d209";
    const RESP_FAILED: &str = "0801100038ffffffffffffffffff014a0a43616e27742064756d70";

    #[test]
    fn a_restore_request_is_what_criu_s_own_schema_encodes() {
        let opts = Opts {
            images_dir_fd: 5,
            log_level: 4,
            log_file: "restore.log".into(),
            notify_scripts: true,
            root: Some("/run/husk/c/criu-root".into()),
            evasive_devices: true,
            rst_sibling: true,
            orphan_pts_master: true,
            manage_cgroups_mode: Some(CgMode::Soft),
            work_dir_fd: Some(6),
            ext_mnt: vec![("/data".into(), "/srv/data".into())],
            cg_root: vec!["/husk/c".into()],
            inherit_fd: vec![("pipe:[123]".into(), 1)],
            external: vec!["net[4026531840]:extRootNetNS".into()],
            empty_ns: 0x4000_0000,
            cgroup_yard: Some("/run/husk/c/criu-yard".into()),
            ..Default::default()
        };
        let got = hex(&request(ReqType::Restore, &opts));
        let want = RESTORE;
        assert_eq!(got, want);
    }

    #[test]
    fn a_dump_request_is_what_criu_s_own_schema_encodes() {
        let opts = Opts {
            images_dir_fd: 3,
            pid: Some(4242),
            leave_running: true,
            tcp_established: true,
            ext_unix_sk: true,
            shell_job: true,
            file_locks: true,
            log_level: 4,
            log_file: "dump.log".into(),
            page_server: Some(("10.0.0.1".into(), 27)),
            notify_scripts: true,
            root: Some("/b/rootfs".into()),
            parent_img: Some("../pre".into()),
            track_mem: true,
            auto_dedup: true,
            link_remap: true,
            manage_cgroups_mode: Some(CgMode::Ignore),
            freeze_cgroup: Some("/sys/fs/cgroup/husk/c".into()),
            tcp_skip_in_flight: true,
            orphan_pts_master: true,
            ..Default::default()
        };
        let got = hex(&request(ReqType::Dump, &opts));
        let want = DUMP;
        assert_eq!(got, want);
        assert_eq!(hex(&notify_success()), "08061801");
    }

    #[test]
    fn criu_s_answers_are_read() {
        let bytes = |h: &str| -> Vec<u8> {
            (0..h.trim().len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h.trim()[i..i + 2], 16).unwrap())
                .collect()
        };
        let notify = Response::decode(&bytes(RESP_NOTIFY)).unwrap();
        assert_eq!(notify.kind, ReqType::Notify as u64);
        assert!(notify.success);
        assert_eq!(notify.script.as_deref(), Some("orphan-pts-master"));
        assert_eq!(notify.notify_pid, Some(0));
        let restored = Response::decode(&bytes(RESP_RESTORE)).unwrap();
        assert_eq!(restored.kind, ReqType::Restore as u64);
        assert_eq!(restored.restored_pid, Some(1234));
        let failed = Response::decode(&bytes(RESP_FAILED)).unwrap();
        assert!(!failed.success);
        assert_eq!(failed.errno, Some(-1));
        assert_eq!(failed.errmsg.as_deref(), Some("Can't dump"));
        // Truncated: an error, never a panic.
        let b = bytes(RESP_FAILED);
        for n in 0..b.len() {
            let _ = Response::decode(&b[..n]);
        }
        assert!(Response::decode(&b[..b.len() - 1]).is_err());
    }

    /// A tiny xorshift: the decoder's fuzzing needs no crate.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn hostile_answers_are_errors_never_panics_or_loops() {
        // Crafted: a group wire type, a varint of eleven bytes, a length
        // past the end, a length of 2^64-1, fixed
        // fields cut short, a key without its value, nested messages that are
        // garbage.
        let crafted: [&[u8]; 10] = [
            b"\x0b\x08\x06",
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"\x4a\x05ab",
            b"\x4a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01ab",
            b"\x10",
            b"\x09\x01\x02",
            b"\x0d\x01",
            b"\x2a\x03\x0a\x05a",
            b"\x22\x02\x08\x80",
            b"\x2a\x02\x0f\x00",
        ];
        for c in crafted {
            assert!(Response::decode(c).is_err(), "{}", hex(c));
        }
        // A field past u32 is skipped, not wrapped onto a field husk reads.
        let r = Response::decode(b"\x88\x80\x80\x80\x80\x01\x01").unwrap();
        assert_eq!(r, Response::default());
        // Random bytes, and random mutations and cuts of real answers.
        let real = [RESP_NOTIFY, RESP_RESTORE, RESP_FAILED];
        let real: Vec<Vec<u8>> = real
            .iter()
            .map(|h| {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect()
            })
            .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..100_000 {
            let mut buf: Vec<u8> = if round % 2 == 0 {
                let n = (next(&mut state) % 64) as usize;
                (0..n).map(|_| next(&mut state) as u8).collect()
            } else {
                real[round % real.len()].clone()
            };
            if !buf.is_empty() {
                for _ in 0..(next(&mut state) % 4) {
                    let at = (next(&mut state) as usize) % buf.len();
                    buf[at] = next(&mut state) as u8;
                }
                let cut = (next(&mut state) as usize) % (buf.len() + 1);
                buf.truncate(cut);
            }
            let _ = Response::decode(&buf);
        }
    }
}
