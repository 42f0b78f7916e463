//! The cgroup v2 device controller: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
//! assembled from the device rules and attached to the container's cgroup.
//!
//! The program reads the request (type, access, major, minor) and checks the
//! rules from the last to the first: the first that matches decides, which is
//! the OCI meaning of "later rules override earlier ones". No match: denied.

use std::os::fd::AsFd;

use crate::cgroups::resources::DeviceRule;
use crate::error::{Context, Result};
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const MOV_REG: u8 = 0xbf;
const MOV_IMM: u8 = 0xb7;
const AND_IMM: u8 = 0x57;
const RSH_IMM: u8 = 0x77;
const JNE_IMM: u8 = 0x55; // if r_dst != imm goto +off
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |a, c| {
        a | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The program for `rules`.
fn assemble(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0), // r2 = access_type
        insn(MOV_REG, 3, 2, 0, 0),
        insn(AND_IMM, 3, 0, 0, 0xffff), // r3 = device type
        insn(MOV_REG, 4, 2, 0, 0),
        insn(RSH_IMM, 4, 0, 0, 16), // r4 = requested access
        insn(LDX_W, 5, 1, 4, 0),    // r5 = major
        insn(LDX_W, 6, 1, 8, 0),    // r6 = minor
    ];
    for rule in rules.iter().rev() {
        // Each check jumps past the rest of this rule's block when it fails.
        let mut checks: Vec<Vec<Insn>> = Vec::new();
        match rule.kind {
            'c' => checks.push(vec![insn(JNE_IMM, 3, 0, 0, DEV_CHAR)]),
            'b' => checks.push(vec![insn(JNE_IMM, 3, 0, 0, DEV_BLOCK)]),
            _ => {}
        }
        if let Some(major) = rule.major.filter(|m| *m >= 0) {
            checks.push(vec![insn(JNE_IMM, 5, 0, 0, major as i32)]);
        }
        if let Some(minor) = rule.minor.filter(|m| *m >= 0) {
            checks.push(vec![insn(JNE_IMM, 6, 0, 0, minor as i32)]);
        }
        let allowed = access_bits(&rule.access);
        if allowed != 7 {
            // Any requested access outside the rule's: no match.
            checks.push(vec![
                insn(MOV_REG, 7, 4, 0, 0),
                insn(AND_IMM, 7, 0, 0, !allowed & 7),
                insn(JNE_IMM, 7, 0, 0, 0),
            ]);
        }
        let verdict = [insn(MOV_IMM, 0, 0, 0, rule.allow as i32), insn(EXIT, 0, 0, 0, 0)];
        let unconditional = checks.is_empty();
        let mut remaining: usize = checks.iter().map(Vec::len).sum::<usize>() + verdict.len();
        for check in checks {
            remaining -= check.len();
            for mut ins in check {
                if ins.code == JNE_IMM {
                    ins.off = remaining as i16;
                }
                prog.push(ins);
            }
        }
        prog.extend(verdict);
        // Nothing after a rule that matches everything could run, and the
        // verifier refuses unreachable code.
        if unconditional {
            return prog;
        }
    }
    prog.extend([insn(MOV_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    prog
}

/// The name of husk's device filters, by which a later one finds those it replaces.
const FILTER_NAME: &std::ffi::CStr = c"husk_devices";

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the device filter of `rules` and attaches it to the cgroup
/// directory `cgroup`. With `replace`, it takes the place of the filters husk
/// attached there before (an `update`, or a cgroup that existed): a cgroup's
/// filters must all allow a request, so a filter left beside the new one
/// would keep denying what the new one allows, and each `update` would add
/// one until the kernel's 64 are reached. Filters someone else attached
/// stay.
pub fn attach_device_filter(cgroup: &std::path::Path, rules: &[DeviceRule], replace: bool) -> Result<()> {
    let prog = assemble(rules);
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for i in &prog {
        bytes.push(i.code);
        bytes.push(i.regs);
        bytes.extend_from_slice(&i.off.to_ne_bytes());
        bytes.extend_from_slice(&i.imm.to_ne_bytes());
    }
    let prog_fd = sys::bpf::prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, &bytes, c"Apache-2.0", FILTER_NAME)
        .context(|| "linux.resources.devices: load the eBPF device filter".into())?;
    let dir = std::fs::File::open(cgroup).context(|| format!("open {}", cgroup.display()))?;
    let previous = match replace {
        true => husks_filters(dir.as_fd())
            .context(|| format!("linux.resources.devices: the device filters of {}", cgroup.display()))?,
        false => Vec::new(),
    };
    let attach = |old: Option<std::os::fd::BorrowedFd<'_>>| {
        sys::bpf::prog_attach(dir.as_fd(), prog_fd.as_fd(), BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, old)
            .context(|| "linux.resources.devices: attach the eBPF device filter".into())
    };
    let Some((first, others)) = previous.split_first() else {
        return attach(None);
    };
    attach(Some(first.as_fd()))?;
    for old in others {
        sys::bpf::prog_detach(dir.as_fd(), old.as_fd(), BPF_CGROUP_DEVICE)
            .context(|| "linux.resources.devices: detach an earlier eBPF device filter".into())?;
    }
    Ok(())
}

/// The device filters husk attached to the cgroup `dir` (by their name).
fn husks_filters(dir: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<std::os::fd::OwnedFd>> {
    let mut filters = Vec::new();
    for id in sys::bpf::prog_query(dir, BPF_CGROUP_DEVICE)? {
        let prog = match sys::bpf::prog_fd_by_id(id) {
            // Detached and freed since the query.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            other => other?,
        };
        if sys::bpf::prog_name(prog.as_fd())? == FILTER_NAME.to_bytes() {
            filters.push(prog);
        }
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on a request, as the kernel would.
    fn run(prog: &[Insn], kind: i32, access: i32, major: i32, minor: i32) -> i64 {
        let ctx = [(access << 16 | kind) as u32, major as u32, minor as u32];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = ctx[i.off as usize / 4] as i64,
                MOV_REG => r[dst] = r[src],
                MOV_IMM => r[dst] = i.imm as i64,
                AND_IMM => r[dst] &= i.imm as i64,
                RSH_IMM => r[dst] >>= i.imm,
                JNE_IMM => {
                    if r[dst] != i.imm as i64 {
                        pc += i.off as usize
                    }
                }
                EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn later_rules_win_and_unmatched_is_denied() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rw"),
            rule(false, 'c', Some(1), Some(3), "w"),
        ];
        let p = assemble(&rules);
        assert_eq!(run(&p, DEV_CHAR, 2, 1, 3), 1, "read /dev/null");
        assert_eq!(run(&p, DEV_CHAR, 4, 1, 3), 0, "write /dev/null: the last rule denies");
        assert_eq!(run(&p, DEV_CHAR, 6, 136, 7), 1, "pts read+write");
        assert_eq!(run(&p, DEV_CHAR, 1, 136, 7), 0, "pts mknod is not in rw");
        assert_eq!(run(&p, DEV_BLOCK, 2, 1, 3), 0, "a block 1:3 is not the char one");
        assert_eq!(run(&p, DEV_CHAR, 2, 1, 1), 0, "/dev/mem");
        let all = assemble(&[rule(true, 'a', None, None, "rwm")]);
        assert_eq!(run(&all, DEV_BLOCK, 7, 8, 0), 1);
        assert_eq!(
            all.len(),
            7 + 2,
            "nothing unreachable after a rule that matches everything"
        );
    }

    /// `device_rules` leaves out a linux.devices allow rule equal to one after
    /// the last deny: for random mixes of allow and deny rules, whatever the
    /// device and access asked, the program decides as with every rule kept.
    #[test]
    fn dropping_a_repeated_allow_never_changes_a_decision() {
        use crate::rootfs::devices::DevicePlan;
        use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder};
        let mut seed = 0x005e_edd3_u64;
        let mut below = |n: u64| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545f4914f6cdd1d) % n
        };
        let majors = [1, 5, 10, 136];
        let minors = [0, 1, 3, 229];
        let accesses = ["r", "w", "m", "rw", "rwm"];
        let mut dropped = 0;
        for _ in 0..2000 {
            let mut config = Vec::new();
            for _ in 0..below(6) {
                let typ = [LinuxDeviceType::A, LinuxDeviceType::C, LinuxDeviceType::B][below(3) as usize];
                let mut d = LinuxDeviceCgroupBuilder::default()
                    .allow(below(2) == 0)
                    .typ(typ)
                    .access(accesses[below(5) as usize]);
                if below(3) > 0 {
                    d = d.major(majors[below(4) as usize]);
                }
                if below(3) > 0 {
                    d = d.minor(minors[below(4) as usize]);
                }
                config.push(d.build().unwrap());
            }
            let resources = LinuxResourcesBuilder::default().devices(config).build().unwrap();
            let devices: Vec<DevicePlan> = (0..below(4))
                .map(|_| DevicePlan {
                    path: "/dev/x".into(),
                    kind: if below(4) == 0 { libc::S_IFBLK } else { libc::S_IFCHR },
                    major: majors[below(4) as usize] as u64,
                    minor: minors[below(4) as usize] as u64,
                    mode: 0o666,
                    uid: 0,
                    gid: 0,
                })
                .collect();
            let nodes = crate::cgroups::resources::device_nodes(&devices);
            let kept = crate::cgroups::resources::device_rules(Some(&resources), &nodes).unwrap();
            let mut all = crate::cgroups::resources::device_rules(Some(&resources), &[]).unwrap();
            all.extend(devices.iter().map(|d| {
                let kind = if d.kind == libc::S_IFBLK { 'b' } else { 'c' };
                rule(true, kind, Some(d.major as i64), Some(d.minor as i64), "rwm")
            }));
            dropped += all.len() - kept.len();
            let (kept_prog, all_prog) = (assemble(&kept), assemble(&all));
            for kind in [DEV_BLOCK, DEV_CHAR] {
                for access in 1..8 {
                    for major in majors {
                        for minor in minors {
                            assert_eq!(
                                run(&kept_prog, kind, access, major, minor),
                                run(&all_prog, kind, access, major, minor),
                                "{kind} {major}:{minor} access {access}: {all:?} kept as {kept:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(dropped > 100, "only {dropped} rules dropped: the mixes miss the case");
    }
}
