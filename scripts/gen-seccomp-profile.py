#!/usr/bin/env python3
"""Writes seccomp/default.json, the profile `husk spec` puts into config.json.

Allowed: every syscall of the x86 and x86_64 tables in the kernel headers,
except the ones in DENY (what an unprivileged container process has no
business calling, or what its default capabilities would refuse anyway).
clone may not create namespaces; clone3 answers ENOSYS so that libc falls back
to clone, whose flags the filter can inspect; personality keeps to the usual
personas. Syscalls newer than the headers get ENOSYS from husk itself.

Usage: scripts/gen-seccomp-profile.py > seccomp/default.json
"""
import json
import re

HEADERS = ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/x86_64-linux-gnu/asm/unistd_32.h"]

DENY = {
    # kernel modules, kexec, reboot, swap, accounting, quotas
    "create_module", "delete_module", "finit_module", "init_module", "query_module", "get_kernel_syms",
    "kexec_file_load", "kexec_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    # mounts, root changes and namespaces
    "mount", "umount", "umount2", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "pivot_root", "chroot", "setns", "unshare",
    # clocks
    "clock_adjtime", "clock_settime", "settimeofday", "stime",
    # keyrings
    "add_key", "keyctl", "request_key",
    # tracing, other processes' memory, kernel introspection
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "perf_event_open",
    "bpf", "lookup_dcookie", "syslog", "userfaultfd", "fanotify_init",
    # file handles bypass path permissions
    "name_to_handle_at", "open_by_handle_at",
    # NUMA policy needs CAP_SYS_NICE
    "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "migrate_pages", "move_pages",
    # legacy and hardware access
    "ioperm", "iopl", "modify_ldt", "vm86", "vm86old", "uselib", "ustat", "sysfs", "_sysctl",
    "nfsservctl", "vhangup", "afs_syscall", "tuxcall", "security", "getpmsg", "putpmsg", "vserver",
    # handled by their own rules below
    "clone", "clone3", "personality",
}

CLONE_NAMESPACE_FLAGS = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]


def syscall_names():
    names = set()
    for header in HEADERS:
        with open(header) as f:
            names.update(re.findall(r"#define __NR_(\w+)\s+\d+", f.read()))
    return sorted(names)


def main():
    allowed = [n for n in syscall_names() if n not in DENY]
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"} for p in PERSONAS]},
        ],
    }
    print(json.dumps(profile, indent=1))


if __name__ == "__main__":
    main()
