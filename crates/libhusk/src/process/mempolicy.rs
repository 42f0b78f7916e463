//! `linux.memoryPolicy`: the NUMA memory policy of the container's processes
//! (set_mempolicy(2)), planned into the mode word and node mask the kernel
//! takes, and set by the init and by every exec process before they exec.
//!
//! The plan refuses what the kernel refuses for any host (a mode that needs
//! nodes without them, or the reverse; flags that exclude each other or do
//! not go with the mode), so that such a config fails as a config error
//! naming the field; whether the nodes exist here is the kernel's to say, at
//! `create`.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::sys;

// Modes and flags of set_mempolicy(2) (linux/mempolicy.h); libc lacks the newer modes.
const MPOL_DEFAULT: i32 = 0;
const MPOL_PREFERRED: i32 = 1;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_LOCAL: i32 = 4;
const MPOL_PREFERRED_MANY: i32 = 5;
const MPOL_WEIGHTED_INTERLEAVE: i32 = 6;
const MPOL_F_NUMA_BALANCING: i32 = 1 << 13;
const MPOL_F_RELATIVE_NODES: i32 = 1 << 14;
const MPOL_F_STATIC_NODES: i32 = 1 << 15;

/// The highest node number husk takes (as runc): a sanity bound that keeps a
/// bogus range from making a huge mask. The kernel refuses far lower ones
/// (above its MAX_NUMNODES, 1024 at most on common builds).
const MAX_NODE: u32 = 64 * 1024;

/// `linux.memoryPolicy` as set_mempolicy(2) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    /// The mode with its flags or'ed in.
    pub mode: i32,
    /// The node mask, 64 nodes a word, lowest first; empty for none.
    pub nodes: Vec<u64>,
    /// The mode and nodes as the config gives them, for messages.
    pub text: String,
}

fn mode_of(m: MemoryPolicyModeType) -> (i32, &'static str) {
    use MemoryPolicyModeType::*;
    match m {
        MpolDefault => (MPOL_DEFAULT, "MPOL_DEFAULT"),
        MpolPreferred => (MPOL_PREFERRED, "MPOL_PREFERRED"),
        MpolBind => (MPOL_BIND, "MPOL_BIND"),
        MpolInterleave => (MPOL_INTERLEAVE, "MPOL_INTERLEAVE"),
        MpolLocal => (MPOL_LOCAL, "MPOL_LOCAL"),
        MpolPreferredMany => (MPOL_PREFERRED_MANY, "MPOL_PREFERRED_MANY"),
        MpolWeightedInterleave => (MPOL_WEIGHTED_INTERLEAVE, "MPOL_WEIGHTED_INTERLEAVE"),
    }
}

fn flag_of(f: MemoryPolicyFlagType) -> i32 {
    use MemoryPolicyFlagType::*;
    match f {
        MpolFNumaBalancing => MPOL_F_NUMA_BALANCING,
        MpolFRelativeNodes => MPOL_F_RELATIVE_NODES,
        MpolFStaticNodes => MPOL_F_STATIC_NODES,
    }
}

/// "0-3,7" → the mask of nodes 0, 1, 2, 3 and 7 (spaces and empty entries
/// allowed, as runc reads it).
pub fn parse_nodes(list: &str) -> Result<Vec<u64>> {
    let bad = |why: &str| Error::new(format!("linux.memoryPolicy.nodes \"{list}\": {why}"));
    let node = |s: &str| -> Result<u32> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| bad(&format!("\"{}\" is not a node number", s.trim())))?;
        if n > MAX_NODE {
            return Err(bad(&format!("node {n} is over {MAX_NODE}")));
        }
        Ok(n)
    };
    let mut mask: Vec<u64> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (node(a)?, node(b)?),
            None => (node(part)?, node(part)?),
        };
        if first > last {
            return Err(bad(&format!("range {part} goes backwards")));
        }
        let words = last as usize / 64 + 1;
        if mask.len() < words {
            mask.resize(words, 0);
        }
        for n in first..=last {
            mask[n as usize / 64] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

/// Validates `linux.memoryPolicy` into what set_mempolicy(2) takes.
pub fn plan(policy: Option<&LinuxMemoryPolicy>) -> Result<Option<MemPolicy>> {
    let Some(policy) = policy else {
        return Ok(None);
    };
    let (mode, name) = mode_of(policy.mode());
    let list = policy.nodes().as_deref().unwrap_or("");
    let nodes = parse_nodes(list)?;
    let flags = policy.flags().iter().flatten().fold(0, |acc, f| acc | flag_of(*f));
    check(mode, name, !nodes.is_empty(), flags)?;
    let text = match list.trim() {
        "" => name.to_string(),
        list => format!("{name} nodes {list}"),
    };
    Ok(Some(MemPolicy {
        mode: mode | flags,
        nodes,
        text,
    }))
}

/// The combinations that set_mempolicy(2) refuses on every kernel.
fn check(mode: i32, name: &str, has_nodes: bool, flags: i32) -> Result<()> {
    let field = "linux.memoryPolicy";
    let (is_static, relative) = (flags & MPOL_F_STATIC_NODES != 0, flags & MPOL_F_RELATIVE_NODES != 0);
    if is_static && relative {
        bail!("{field}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other");
    }
    if flags & MPOL_F_NUMA_BALANCING != 0 && !matches!(mode, MPOL_BIND | MPOL_PREFERRED_MANY) {
        bail!("{field}.flags: MPOL_F_NUMA_BALANCING goes with MPOL_BIND or MPOL_PREFERRED_MANY, not {name}");
    }
    match mode {
        MPOL_DEFAULT | MPOL_LOCAL if has_nodes => bail!("{field}.nodes: {name} takes no nodes"),
        MPOL_LOCAL if is_static || relative => bail!("{field}.flags: {name} takes no node flags"),
        // Without nodes, MPOL_PREFERRED is the local node: nothing to make static or relative.
        MPOL_PREFERRED if !has_nodes && (is_static || relative) => {
            bail!("{field}.flags: {name} without nodes takes no node flags")
        }
        MPOL_BIND | MPOL_INTERLEAVE | MPOL_PREFERRED_MANY | MPOL_WEIGHTED_INTERLEAVE if !has_nodes => {
            bail!("{field}.nodes: {name} needs at least one node")
        }
        _ => Ok(()),
    }
}

/// Sets the policy of the calling process (inherited by its children and
/// kept across execve).
pub fn apply(p: &MemPolicy) -> Result<()> {
    sys::attrs::set_mempolicy(p.mode, &p.nodes).context(|| format!("linux.memoryPolicy {}: set_mempolicy", p.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<Option<MemPolicy>> {
        let p: LinuxMemoryPolicy = serde_json::from_str(json).unwrap();
        plan(Some(&p))
    }

    fn err(json: &str) -> String {
        policy(json).unwrap_err().message().to_string()
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_nodes("").unwrap(), Vec::<u64>::new());
        assert_eq!(parse_nodes("0").unwrap(), [1]);
        assert_eq!(parse_nodes("0-3,7").unwrap(), [0x8f]);
        assert_eq!(parse_nodes(" 1 , ,64").unwrap(), [2, 1]);
        assert_eq!(parse_nodes("63-64").unwrap(), [1 << 63, 1]);
        for (bad, why) in [
            ("x", "\"x\" is not a node number"),
            ("3-1", "range 3-1 goes backwards"),
            ("0-9876543210", "\"9876543210\" is not a node number"),
            ("70000", "node 70000 is over 65536"),
            ("-1", "\"\" is not a node number"),
        ] {
            let e = parse_nodes(bad).unwrap_err();
            assert_eq!(e.message(), format!("linux.memoryPolicy.nodes \"{bad}\": {why}"));
        }
    }

    #[test]
    fn modes_and_flags_become_the_mode_word() {
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"0-1","flags":["MPOL_F_STATIC_NODES"]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.mode, MPOL_BIND | MPOL_F_STATIC_NODES);
        assert_eq!((p.nodes, p.text.as_str()), (vec![3], "MPOL_BIND nodes 0-1"));
        let p = policy(r#"{"mode":"MPOL_PREFERRED","nodes":"0","flags":["MPOL_F_RELATIVE_NODES"]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.mode, MPOL_PREFERRED | MPOL_F_RELATIVE_NODES);
        let p = policy(r#"{"mode":"MPOL_DEFAULT","nodes":""}"#).unwrap().unwrap();
        assert_eq!(
            (p.mode, p.nodes.len(), p.text.as_str()),
            (MPOL_DEFAULT, 0, "MPOL_DEFAULT")
        );
        let p = policy(r#"{"mode":"MPOL_PREFERRED"}"#).unwrap().unwrap();
        assert_eq!(p.mode, MPOL_PREFERRED);
        let p = policy(r#"{"mode":"MPOL_WEIGHTED_INTERLEAVE","nodes":"0"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.mode, MPOL_WEIGHTED_INTERLEAVE);
        let p = policy(r#"{"mode":"MPOL_PREFERRED_MANY","nodes":"0","flags":["MPOL_F_NUMA_BALANCING"]}"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.mode, MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING);
        assert_eq!(plan(None).unwrap(), None);
    }

    #[test]
    fn what_every_kernel_refuses_is_a_config_error() {
        assert_eq!(
            err(r#"{"mode":"MPOL_DEFAULT","nodes":"0-7"}"#),
            "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes"
        );
        assert_eq!(
            err(r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#),
            "linux.memoryPolicy.nodes: MPOL_LOCAL takes no nodes"
        );
        assert_eq!(
            err(r#"{"mode":"MPOL_BIND"}"#),
            "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"
        );
        assert_eq!(
            err(r#"{"mode":"MPOL_INTERLEAVE","nodes":" , "}"#),
            "linux.memoryPolicy.nodes: MPOL_INTERLEAVE needs at least one node"
        );
        assert!(
            err(r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#)
                .contains("exclude each other")
        );
        assert!(
            err(r#"{"mode":"MPOL_INTERLEAVE","nodes":"0","flags":["MPOL_F_NUMA_BALANCING"]}"#)
                .starts_with("linux.memoryPolicy.flags: MPOL_F_NUMA_BALANCING goes with")
        );
        assert!(err(r#"{"mode":"MPOL_PREFERRED","flags":["MPOL_F_STATIC_NODES"]}"#).contains("without nodes"));
        assert!(err(r#"{"mode":"MPOL_LOCAL","flags":["MPOL_F_RELATIVE_NODES"]}"#).contains("no node flags"));
    }

    #[test]
    fn the_default_policy_applies_anywhere() {
        // MPOL_DEFAULT without nodes is what every process starts with.
        let p = policy(r#"{"mode":"MPOL_DEFAULT"}"#).unwrap().unwrap();
        apply(&p).unwrap();
    }
}
