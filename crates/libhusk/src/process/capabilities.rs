//! `process.capabilities`: the five sets, parsed at validation (an unknown name is
//! an error; one the running kernel lacks is dropped with a warning) and applied
//! by the init through the caps crate around the switch to the process's user.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CapsPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub permitted: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Parses the sets; returns the plan and the names dropped because the kernel lacks them.
pub fn plan(c: &LinuxCapabilities, last: u8) -> Result<(CapsPlan, Vec<String>)> {
    let mut missing = Vec::new();
    let mut set = |field: &str, list: &Option<Capabilities>| -> Result<CapsHashSet> {
        let mut out = CapsHashSet::new();
        for cap in list.iter().flatten() {
            let name = serde_json::to_value(cap)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let parsed: Capability = name
                .parse()
                .map_err(|_| Error::new(format!("process.capabilities.{field}: unknown capability {name}")))?;
            if parsed.index() > last {
                if !missing.contains(&name) {
                    missing.push(name);
                }
                continue;
            }
            out.insert(parsed);
        }
        Ok(out)
    };
    let plan = CapsPlan {
        bounding: set("bounding", c.bounding())?,
        effective: set("effective", c.effective())?,
        inheritable: set("inheritable", c.inheritable())?,
        permitted: set("permitted", c.permitted())?,
        ambient: set("ambient", c.ambient())?,
    };
    Ok((plan, missing))
}

fn fail(what: &str) -> impl Fn(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::new(format!("capabilities: {what}: {e}"))
}

/// Before the switch to the process's user: shrink the bounding set and keep the
/// permitted set across setuid.
pub fn before_setuid(p: &CapsPlan, last: u8) -> Result<()> {
    for cap in caps::all() {
        if cap.index() <= last && !p.bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(fail("drop from bounding set"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(std::io::Error::from)?;
    Ok(())
}

/// After the switch: the effective, inheritable, permitted and ambient sets, in
/// the order the kernel accepts (effective must stay within permitted).
pub fn after_setuid(p: &CapsPlan) -> Result<()> {
    caps::set(None, CapSet::Effective, &p.effective).map_err(fail("set effective"))?;
    caps::set(None, CapSet::Inheritable, &p.inheritable).map_err(fail("set inheritable"))?;
    caps::set(None, CapSet::Permitted, &p.permitted).map_err(fail("set permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(fail("clear ambient"))?;
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable; runc's default config lists ambient ones with an empty
    // inheritable set (which must stay empty: CVE-2022-29162), so the others
    // are left out, as runc does.
    for cap in p
        .ambient
        .iter()
        .filter(|c| p.permitted.contains(c) && p.inheritable.contains(c))
    {
        caps::raise(None, CapSet::Ambient, *cap).map_err(fail("raise ambient"))?;
    }
    let _ = nix::sys::prctl::set_keepcaps(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sets_and_drops_what_the_kernel_lacks() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN","CAP_CHECKPOINT_RESTORE"],"effective":["CAP_KILL"],"ambient":[]}"#,
        )
        .unwrap();
        let (p, missing) = plan(&c, 39).unwrap();
        assert_eq!(
            p.bounding,
            [Capability::CAP_KILL, Capability::CAP_CHOWN].into_iter().collect()
        );
        assert_eq!(p.effective, [Capability::CAP_KILL].into_iter().collect());
        assert!(p.permitted.is_empty() && p.ambient.is_empty());
        assert_eq!(missing, ["CAP_CHECKPOINT_RESTORE"]);
    }
}
