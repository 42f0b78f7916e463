//! Bad input at scale: configs made from `husk spec`'s by random mutation (wrong
//! types, missing fields, huge and negative numbers, unicode, long strings, deep
//! nesting, unknown enum values, broken JSON) go through parsing and planning,
//! which only read the host. None may panic, and every error is one line.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::spec;

/// A small deterministic PRNG (xorshift64*): the same configs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Field names of the spec (and a few that are not), for inserted keys.
const KEYS: &[&str] = &[
    "path",
    "type",
    "options",
    "source",
    "destination",
    "limit",
    "uid",
    "gid",
    "size",
    "containerID",
    "hostID",
    "args",
    "env",
    "cwd",
    "timeout",
    "major",
    "minor",
    "access",
    "allow",
    "names",
    "action",
    "errnoRet",
    "index",
    "value",
    "op",
    "hard",
    "soft",
    "shares",
    "quota",
    "period",
    "cpus",
    "mems",
    "weight",
    "pageSize",
    "flags",
    "readonly",
    "terminal",
    "consoleSize",
    "height",
    "width",
    "umask",
    "additionalGids",
    "noNewPrivileges",
    "oomScoreAdj",
    "scheduler",
    "ioPriority",
    "class",
    "priority",
    "nice",
    "runtime",
    "deadline",
    "execCPUAffinity",
    "initial",
    "final",
    "rlimits",
    "personality",
    "domain",
    "secs",
    "nanosecs",
    "defaultAction",
    "architectures",
    "listenerPath",
    "listenerMetadata",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "hooks",
    "prestart",
    "poststop",
    "createRuntime",
    "annotations",
    "hostname",
    "domainname",
    "cgroupsPath",
    "resources",
    "intelRdt",
    "timeOffsets",
    "uidMappings",
    "gidMappings",
    "rootfsPropagation",
    "mountLabel",
    "seccomp",
    "namespaces",
    "devices",
    "memory",
    "pids",
    "cpu",
    "blockIO",
    "hugepageLimits",
    "unified",
    "ociVersion",
    "root",
    "process",
    "linux",
    "mounts",
    "bogus",
    "",
];

/// Strings that have broken parsers: enum values that are not, paths that go
/// up or nowhere, NULs, control characters, unicode, and very long ones.
fn random_string(rng: &mut Rng) -> String {
    const PLAIN: &[&str] = &[
        "",
        "/",
        "//",
        ".",
        "..",
        "../..",
        "/a/../..",
        "rootfs",
        "/nonexistent/husk-fuzz",
        "bogus",
        "mount",
        "network",
        "pid",
        "user",
        "time",
        "cgroup",
        "uts",
        "ipc",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_NOTIFY",
        "SCMP_ARCH_X86_64",
        "SCMP_CMP_MASKED_EQ",
        "CAP_SYS_ADMIN",
        "CAP_BOGUS",
        "RLIMIT_NOFILE",
        "RLIMIT_BOGUS",
        "rshared",
        "sideways",
        "bind",
        "rbind",
        "ro",
        "idmap",
        "rro",
        "tmpcopyup",
        "copy-symlink",
        "ratime",
        "mode=0755",
        "size=9999999999999999999999k",
        "uid=4294967296",
        "a:b:c",
        "slice.slice:prefix:name",
        "1.2.0",
        "1.0.0-rc",
        "99.99.99",
        "-1",
        "0-3,7",
        "9999999999",
        "3-1",
        "net.ipv4.ip_forward",
        "kernel.shmmax",
        "vm.swappiness",
        "net..x",
        "a\0b",
        "line\nbreak",
        "tab\there",
        "\u{202e}\u{feff}é日本🦀",
        "\u{7f}\u{1b}[31m",
        "SCHED_FIFO",
        "IOPRIO_CLASS_RT",
        "PER_LINUX32",
        "c",
        "b",
        "p",
        "u",
        "a",
        "rwm",
        "KEY=VALUE",
        "NOVALUE",
    ];
    match rng.below(8) {
        0 => "x".repeat(1 << rng.below(18)),
        1 => "🦀/é\u{0}".repeat(1 + rng.below(2000)),
        2 => (0..rng.below(40))
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'))
            .collect(),
        3 => format!("/{}", "a/".repeat(rng.below(5000))),
        _ => rng.pick(PLAIN).to_string(),
    }
}

fn random_number(rng: &mut Rng) -> Value {
    const INTERESTING: &[i64] = &[
        0,
        1,
        -1,
        2,
        7,
        9,
        10,
        64,
        65,
        100,
        1000,
        1024,
        65535,
        65536,
        i32::MAX as i64,
        i32::MIN as i64,
        u32::MAX as i64,
        1 << 32,
        i64::MAX,
        i64::MIN,
        -4096,
    ];
    match rng.below(6) {
        0 => Value::from(u64::MAX - rng.below(3) as u64),
        1 => Value::from(rng.next() as i64),
        2 => serde_json::Number::from_f64(*rng.pick(&[1e308, -1e308, 0.5, -0.0, 1e19, 4294967296.5]))
            .map_or(Value::Null, Value::Number),
        _ => Value::from(*rng.pick(INTERESTING)),
    }
}

/// A value of a random type; containers recurse up to `depth`.
fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 4 } else { 7 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => random_number(rng),
        3 => Value::String(random_string(rng)),
        4 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth - 1)).collect()),
        5 => {
            let mut m = Map::new();
            for _ in 0..rng.below(4) {
                m.insert(rng.pick(KEYS).to_string(), random_value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => deep(rng.below(300)),
    }
}

/// Arrays and objects nested `n` deep.
fn deep(n: usize) -> Value {
    (0..n).fold(Value::Null, |inner, i| match i % 2 {
        0 => Value::Array(vec![inner]),
        _ => Value::Object(Map::from_iter([("path".to_string(), inner)])),
    })
}

/// A random node of `v`: the walk stops at each level with some chance.
fn random_node<'a>(v: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let len = match &*v {
        Value::Array(a) => a.len(),
        Value::Object(m) => m.len(),
        _ => 0,
    };
    if len == 0 || rng.below(6) == 0 {
        return v;
    }
    let i = rng.below(len);
    match v {
        Value::Array(a) => random_node(&mut a[i], rng),
        Value::Object(m) => random_node(m.values_mut().nth(i).expect("i < len"), rng),
        _ => unreachable!("only containers have children"),
    }
}

/// One mutation somewhere in `v`: a value replaced (by one of the same type, so
/// that planning sees it, or of any type), a key or element removed, a key
/// added, an element duplicated.
fn mutate(v: &mut Value, rng: &mut Rng) {
    let node = random_node(v, rng);
    if rng.below(2) == 0 {
        match node {
            Value::Number(_) => *node = random_number(rng),
            Value::String(_) => *node = Value::String(random_string(rng)),
            Value::Bool(b) => *b = !*b,
            _ => {}
        }
        return;
    }
    match (rng.below(5), node) {
        (0, Value::Object(m)) if !m.is_empty() => {
            let key = m.keys().nth(rng.below(m.len())).expect("not empty").clone();
            m.remove(&key);
        }
        (1, Value::Object(m)) => {
            let value = random_value(rng, 3);
            m.insert(rng.pick(KEYS).to_string(), value);
        }
        (2, Value::Array(a)) if !a.is_empty() => {
            let i = rng.below(a.len());
            match rng.below(2) {
                0 => drop(a.remove(i)),
                _ => a.push(a[i].clone()),
            }
        }
        (_, node) => *node = random_value(rng, 3),
    }
}

/// Text mutations: the JSON cut short or with a byte changed.
fn mangle_text(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = rng.below(bytes.len().max(1));
    match rng.below(2) {
        0 => bytes.truncate(at),
        _ => {
            if let Some(b) = bytes.get_mut(at) {
                *b = *rng.pick(b"{}[]\",:0-9e.\\ \xff");
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses and plans one config; returns whether it was accepted.
fn check(text: &str, bundle: &Path, opts: &spec::Options) -> bool {
    let one_line = |e: &crate::error::Error| {
        assert!(
            !e.message().contains('\n'),
            "a multi-line error: {e:?}\nfrom config: {text}"
        );
    };
    let spec = match spec::parse(text) {
        Ok(spec) => spec,
        Err(e) => {
            one_line(&e);
            return false;
        }
    };
    // Planning and the step after it (which compiles the seccomp filter).
    let planned = spec::plan(spec, bundle.to_path_buf(), opts).and_then(|mut plan| spec::prepare(&mut plan, opts));
    match planned {
        Ok(()) => true,
        Err(e) => {
            one_line(&e);
            false
        }
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ten_thousand_mutated_configs_plan_or_fail_in_one_line() {
    const CONFIGS: usize = 12_000;
    let dir = TempDir(std::env::temp_dir().join(format!("husk-fuzz-{}", std::process::id())));
    std::fs::create_dir_all(dir.0.join("rootfs")).unwrap();
    let opts = spec::Options {
        id: "fuzz",
        no_pivot: false,
        new_keyring: false,
        rootless: false,
        systemd_cgroup: false,
        root: dir.0.join("state"),
    };
    let mut base = crate::spec::template::default_config(true);
    // Compiling the default seccomp profile is most of the cost: a config with
    // a smaller one plans faster, while mutations still reach every field.
    base["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["unshare", "mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    assert!(check(&base.to_string(), &dir.0, &opts), "the base config must plan");
    let mut rng = Rng(0x4875_736b_2d66_757a);
    let mut accepted = 0;
    for i in 0..CONFIGS {
        let text = match i % 10 {
            0 => random_value(&mut rng, 4).to_string(),
            1 => mangle_text(&base.to_string(), &mut rng),
            _ => {
                let mut v = base.clone();
                for _ in 0..1 + rng.below(4) {
                    mutate(&mut v, &mut rng);
                }
                v.to_string()
            }
        };
        if check(&text, &dir.0, &opts) {
            accepted += 1;
        }
    }
    // Mutations that leave a valid config (a changed env string) must still plan.
    assert!(accepted > CONFIGS / 50, "only {accepted} of {CONFIGS} configs planned");
}
