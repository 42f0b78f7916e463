//! A new `/proc/self/exe` for the running process, without an exec.
//!
//! The kernel lets a process replace its executable link (`PR_SET_MM_MAP`
//! with `exe_fd`, as criu does on restore; CAP_SYS_ADMIN or
//! CAP_CHECKPOINT_RESTORE in its user namespace) once no mapping of the old
//! file's path is left. So the binary's read-only segments are mapped again
//! from the new file (the same inode through another mount: the same page
//! cache, the same bytes), and the segments written since the start
//! (relocated data, globals) are moved, contents and all, to anonymous
//! memory. `process::seal` uses this instead of a second exec of husk.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow};

use super::check;

const PR_SET_MM: libc::c_int = 35;
const PR_SET_MM_MAP: libc::c_ulong = 14;

/// `struct prctl_mm_map` of <linux/prctl.h>.
#[repr(C)]
#[derive(Default)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// One PT_LOAD of the running binary, as mapped: page-aligned addresses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: usize,
    /// The end of the part mapped from the file (the rest is zero-fill).
    file_end: usize,
    offset: u64,
    prot: libc::c_int,
    writable: bool,
}

const PAGE: usize = 4096;

fn page_down(a: usize) -> usize {
    a & !(PAGE - 1)
}

fn page_up(a: usize) -> usize {
    (a + PAGE - 1) & !(PAGE - 1)
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_string())
}

/// Makes `exe` (open for reading: the running binary's own file, reached
/// through another mount) the process's executable. The caller must be
/// single-threaded (checked): the written segments are copied, then moved
/// into place, with every signal blocked. On an error the process goes on as
/// it was: its memory holds the same bytes, moved or not, and
/// `/proc/self/exe` is unchanged.
pub fn replace(exe: &OwnedFd) -> io::Result<()> {
    // One read of /proc/self/stat: the thread count, and the layout fields
    // PR_SET_MM_MAP takes back unchanged (moving segments changes none).
    let stat = super::fs::read_proc("/proc/self/stat")?;
    if super::parse_stat(stat.as_bytes()).is_none_or(|s| s.threads != 1) {
        return Err(unsupported("more than one thread"));
    }
    let layout = mm_fields(&stat).ok_or_else(|| unsupported("unreadable /proc/self/stat"))?;
    let segments = own_segments()?;
    let maps = super::fs::read_proc("/proc/self/maps")?;
    if !mapped_from(exe, &segments, &maps)? {
        return Err(unsupported("the running binary is not the given file"));
    }
    let protections: Vec<_> = maps.lines().filter_map(parse_maps_line).collect();
    // No signal handler may write a global between its copy and its move.
    let mask = SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK)?;
    let moved = segments.iter().try_for_each(|s| {
        if s.writable {
            move_to_anonymous(s, &protections)
        } else {
            remap_from(exe, s)
        }
    });
    mask.thread_set_mask()?;
    moved?;
    set_exe_link(exe, layout)
}

/// Whether every segment is mapped from the file `exe` is open on. The
/// program headers (AT_PHDR) are those of the program that runs, which is
/// not always the file of /proc/self/exe: run as `ld-linux-x86-64.so.2 husk
/// ...`, the executable is the loader, whose bytes mapped over husk's
/// segments would crash the process (SIGBUS past its end).
fn mapped_from(exe: &OwnedFd, segments: &[Segment], maps: &str) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::File::from(exe.try_clone()?).metadata()?;
    let file = (libc::major(meta.dev()), libc::minor(meta.dev()), meta.ino());
    Ok(segments
        .iter()
        .all(|s| maps.lines().any(|l| mapping_of(l, s.start) == Some(file))))
}

/// The running binary's program headers (AT_PHDR) and the bias of its load
/// address.
fn own_program_headers() -> io::Result<(&'static [libc::Elf64_Phdr], usize)> {
    // SAFETY: getauxval reads the process's auxiliary vector.
    let (phdr, phnum, phent) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
            libc::getauxval(libc::AT_PHENT) as usize,
        )
    };
    if phdr == 0 || phent != std::mem::size_of::<libc::Elf64_Phdr>() {
        return Err(unsupported("no program headers"));
    }
    // SAFETY: the kernel maps the program headers (AT_PHDR, AT_PHNUM entries)
    // for the life of the process, and nothing writes them.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map(|h| phdr.wrapping_sub(h.p_vaddr as usize))
        .ok_or_else(|| unsupported("no PT_PHDR"))?;
    Ok((headers, bias))
}

/// Makes the running binary's RELRO read-only (PT_GNU_RELRO: the relocated
/// pointers of vtables and GOT entries). glibc's start does it; musl's start
/// of a static PIE leaves it writable, so a memory corruption bug could aim
/// at those pointers. The pages the segment only partly covers stay as they
/// are, as glibc leaves them. Without PT_GNU_RELRO, nothing to do.
pub fn protect_relro() -> io::Result<()> {
    let (headers, bias) = own_program_headers()?;
    let Some(relro) = headers.iter().find(|h| h.p_type == libc::PT_GNU_RELRO) else {
        return Ok(());
    };
    let start = page_down(bias.wrapping_add(relro.p_vaddr as usize));
    let end = page_down(bias.wrapping_add((relro.p_vaddr + relro.p_memsz) as usize));
    if end <= start {
        return Ok(());
    }
    // SAFETY: the range is the binary's own RELRO, written only by the
    // relocations done before any Rust code ran.
    super::check_int(unsafe { libc::mprotect(start as *mut libc::c_void, end - start, libc::PROT_READ) })?;
    Ok(())
}

/// The running binary's PT_LOAD segments, from its program headers (AT_PHDR).
fn own_segments() -> io::Result<Vec<Segment>> {
    let (headers, bias) = own_program_headers()?;
    let segments: Vec<Segment> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_filesz > 0)
        .map(|h| {
            let vaddr = bias.wrapping_add(h.p_vaddr as usize);
            let prot = [
                (libc::PF_R, libc::PROT_READ),
                (libc::PF_W, libc::PROT_WRITE),
                (libc::PF_X, libc::PROT_EXEC),
            ]
            .iter()
            .filter(|(flag, _)| h.p_flags & flag != 0)
            .fold(0, |p, (_, bit)| p | bit);
            Segment {
                start: page_down(vaddr),
                file_end: page_up(vaddr + h.p_filesz as usize),
                offset: h.p_offset & !(PAGE as u64 - 1),
                prot,
                writable: h.p_flags & libc::PF_W != 0,
            }
        })
        .collect();
    // Two segments on one page (some linkers do this) cannot be handled apart.
    for pair in segments.windows(2) {
        if pair[0].file_end > pair[1].start {
            return Err(unsupported("segments share a page"));
        }
    }
    Ok(segments)
}

/// The file (device major, minor, inode) of a /proc/self/maps line, if it
/// maps `addr` from a file.
fn mapping_of(line: &str, addr: usize) -> Option<(u32, u32, u64)> {
    let (start, end, _) = parse_maps_line(line)?;
    if !(start..end).contains(&addr) {
        return None;
    }
    let mut words = line.split(' ').filter(|w| !w.is_empty()).skip(3);
    let (major, minor) = words.next()?.split_once(':')?;
    let inode: u64 = words.next()?.parse().ok()?;
    (inode != 0).then_some((
        u32::from_str_radix(major, 16).ok()?,
        u32::from_str_radix(minor, 16).ok()?,
        inode,
    ))
}

fn parse_maps_line(line: &str) -> Option<(usize, usize, libc::c_int)> {
    let mut words = line.split(' ');
    let (start, end) = words.next()?.split_once('-')?;
    let perms = words.next()?.as_bytes();
    let prot = [
        (b'r', libc::PROT_READ),
        (b'w', libc::PROT_WRITE),
        (b'x', libc::PROT_EXEC),
    ]
    .iter()
    .zip(perms)
    .filter(|((c, _), p)| c == *p)
    .fold(0, |acc, ((_, bit), _)| acc | bit);
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
        prot,
    ))
}

/// Maps the segment again from `exe`: the same bytes, from the new file.
fn remap_from(exe: &OwnedFd, s: &Segment) -> io::Result<()> {
    // SAFETY: the range holds this segment of the binary, and the new mapping
    // holds the same bytes (same inode and offset), so code running from it,
    // this function included, goes on unchanged.
    let at = unsafe {
        libc::mmap(
            s.start as *mut libc::c_void,
            s.file_end - s.start,
            s.prot,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            exe.as_raw_fd(),
            s.offset as libc::off_t,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces the file-backed part of a written segment with anonymous memory
/// holding the same bytes, with the protections it had (RELRO stays read-only).
/// (In one piece: a process's peak RSS, which the copy raises by the
/// segment's size for an instant, is not inherited by its clones.)
fn move_to_anonymous(s: &Segment, protections: &[(usize, usize, libc::c_int)]) -> io::Result<()> {
    move_piece(s.start, s.file_end - s.start)?;
    for &(start, end, prot) in protections {
        let (from, to) = (start.max(s.start), end.min(s.file_end));
        if from < to && prot != libc::PROT_READ | libc::PROT_WRITE {
            // SAFETY: the range lies within the segment just moved; it gets back
            // the protection it had.
            check(unsafe { libc::mprotect(from as *mut libc::c_void, to - from, prot) } as libc::c_long)?;
        }
    }
    Ok(())
}

/// Copies `len` bytes at `at` into new anonymous memory and moves that over them.
fn move_piece(at: usize, len: usize) -> io::Result<()> {
    // SAFETY: a fresh private anonymous mapping.
    let copy = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if copy == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the segment is mapped readable over these bytes (PF_W segments
    // are always readable here) and `copy` is a new mapping of `len` bytes.
    // Nothing writes the segment between the copy and the move: one thread,
    // every signal blocked.
    let moved = unsafe {
        std::ptr::copy_nonoverlapping(at as *const u8, copy.cast::<u8>(), len);
        libc::mremap(
            copy,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            at as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        let err = io::Error::last_os_error();
        // SAFETY: `copy` is ours and nothing points into it.
        unsafe { libc::munmap(copy, len) };
        return Err(err);
    }
    Ok(())
}

/// `PR_SET_MM_MAP` with `exe_fd`: every other field as it is now.
fn set_exe_link(exe: &OwnedFd, mut map: MmMap) -> io::Result<()> {
    // SAFETY: brk(0) only reports the current break.
    map.brk = unsafe { libc::syscall(libc::SYS_brk, 0) } as u64;
    map.exe_fd = exe.as_raw_fd() as u32;
    // SAFETY: `map` is a valid prctl_mm_map that outlives the call.
    let ret = unsafe {
        libc::prctl(
            PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const MmMap,
            std::mem::size_of::<MmMap>(),
            0,
        )
    };
    check(ret as libc::c_long).map(drop)
}

/// The memory layout fields of a `/proc/self/stat` line (proc(5): startcode
/// is field 26, startstack 28, start_data 45 to env_end 51).
fn mm_fields(stat: &str) -> Option<MmMap> {
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // fields[0] is field 3 (the state).
    let field = |n: usize| fields.get(n - 3).copied();
    Some(MmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        ..MmMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_range_and_protection() {
        let line = "5555e8a00000-5555e8b1d000 r-xp 0011c000 fe:00 1234   /usr/bin/husk";
        assert_eq!(
            parse_maps_line(line),
            Some((0x5555e8a00000, 0x5555e8b1d000, libc::PROT_READ | libc::PROT_EXEC))
        );
        let line = "7ffd1000-7ffd2000 rw-p 00000000 00:00 0";
        assert_eq!(
            parse_maps_line(line),
            Some((0x7ffd1000, 0x7ffd2000, libc::PROT_READ | libc::PROT_WRITE))
        );
    }

    #[test]
    fn maps_lines_give_the_file_of_an_address() {
        let line = "5555e8a00000-5555e8b1d000 r-xp 0011c000 fe:01 1234   /usr/bin/husk";
        assert_eq!(mapping_of(line, 0x5555e8a00000), Some((0xfe, 1, 1234)));
        assert_eq!(mapping_of(line, 0x5555e8b1d000), None);
        let line = "7ffd1000-7ffd2000 rw-p 00000000 00:00 0";
        assert_eq!(mapping_of(line, 0x7ffd1000), None);
    }

    #[test]
    fn stat_fields_by_number() {
        // A command name with spaces and a parenthesis, then fields 3 to 52.
        let mut stat = String::from("42 (a) b) S");
        for n in 4..=52 {
            stat.push_str(&format!(" {n}"));
        }
        let m = mm_fields(&stat).unwrap();
        assert_eq!((m.start_code, m.end_code, m.start_stack), (26, 27, 28));
        assert_eq!((m.start_data, m.env_end), (45, 51));
    }

    /// In a forked child (one thread): the test binary's read-only bind
    /// becomes its executable, and the process goes on with its data intact.
    #[test]
    fn replace_swaps_the_exe_link_and_keeps_the_data() {
        use std::sync::atomic::{AtomicU64, Ordering};
        if !linked_with_phdr() {
            return;
        }
        static MARKER: AtomicU64 = AtomicU64::new(0);
        MARKER.store(0x5eed, Ordering::SeqCst);
        let original = std::fs::read_link("/proc/self/exe").unwrap();
        // SAFETY: the child runs only this test's code and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = match super::super::open_tree(c"/proc/self/exe", super::super::OPEN_TREE_CLONE) {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => 77,
                Err(_) => 1,
                Ok(tree) => child_replaces(&tree, &original, &MARKER),
            };
            // SAFETY: leaves the forked child without running the harness's exit.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        // SAFETY: geteuid cannot fail.
        if libc::WEXITSTATUS(status) == 77 && unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: a read-only bind of the binary needs root");
            return;
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed at step {status:#x}"
        );
    }

    fn child_replaces(tree: &OwnedFd, original: &std::path::Path, marker: &std::sync::atomic::AtomicU64) -> i32 {
        use std::sync::atomic::Ordering;
        let ro = super::super::MountAttr {
            attr_set: crate::rootfs::mounts::MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        if super::super::mount_setattr(tree, false, &ro).is_err() {
            return 8;
        }
        let Ok(file) = super::super::openat(
            libc::AT_FDCWD,
            &super::super::fd_path(tree.as_raw_fd()),
            libc::O_RDONLY,
            0,
        ) else {
            return 2;
        };
        unmap_other_mappings_of(original);
        if replace(&file).is_err() {
            return 3;
        }
        // The link names the detached bind now, a read-only mount. (A write
        // through it fails with ETXTBSY first: the test binary runs.)
        if std::fs::read_link("/proc/self/exe").ok().as_deref() != Some(std::path::Path::new("/")) {
            return 4;
        }
        let readonly = nix::sys::statvfs::statvfs("/proc/self/exe")
            .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        if !readonly {
            return 5;
        }
        // Globals, the heap and formatting still work; no mapping of the old path is left.
        if marker.load(Ordering::SeqCst) != 0x5eed {
            return 6;
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        if maps.is_empty() || maps.contains(original.to_str().unwrap_or("?")) {
            return 7;
        }
        0
    }

    /// Unmaps what maps the test binary but its own segments: a test that
    /// panicked in another thread as the harness forked had it mapped for
    /// the backtrace's debug info, which replace() rightly refuses to leave.
    fn unmap_other_mappings_of(original: &std::path::Path) {
        let Ok(segments) = own_segments() else { return };
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let name = original.to_string_lossy();
        for line in maps.lines().filter(|l| l.ends_with(&*name)) {
            let Some((start, end, _)) = parse_maps_line(line) else {
                continue;
            };
            if segments.iter().any(|s| page_down(s.start) < end && start < s.file_end) {
                continue;
            }
            // SAFETY: a read-only mapping that no code of this child uses.
            unsafe { libc::munmap(start as *mut libc::c_void, end - start) };
        }
    }

    /// Whether this test binary has a PT_PHDR, which the seal needs. lld
    /// writes one; GNU ld does not in a static PIE, and links the musl test
    /// binaries (crates/husk/build.rs has lld link only husk itself): there
    /// the seal must refuse, which is what it is checked for.
    fn linked_with_phdr() -> bool {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let u16_at = |at: usize| u16::from_le_bytes(exe[at..at + 2].try_into().unwrap()) as usize;
        let phoff = u64::from_le_bytes(exe[0x20..0x28].try_into().unwrap()) as usize;
        let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
        let has = (0..phnum).any(|i| {
            let at = phoff + i * phentsize;
            u32::from_le_bytes(exe[at..at + 4].try_into().unwrap()) == libc::PT_PHDR
        });
        if !has {
            let refused = own_segments().map(drop).map_err(|e| (e.kind(), e.to_string()));
            assert_eq!(refused, Err((io::ErrorKind::Unsupported, "no PT_PHDR".to_string())));
        }
        has
    }

    #[test]
    fn own_segments_cover_the_text() {
        if !linked_with_phdr() {
            return;
        }
        let segments = own_segments().unwrap();
        let here = own_segments_cover_the_text as *const () as usize;
        assert!(segments
            .iter()
            .any(|s| !s.writable && s.prot & libc::PROT_EXEC != 0 && (s.start..s.file_end).contains(&here)));
        assert!(segments.iter().any(|s| s.writable));
    }
}
