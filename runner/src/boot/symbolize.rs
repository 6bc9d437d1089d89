//! Inline frames, where the kernel has debug info, as syzbot symbolizes
//! its reports: each frame of a report (`f+0x6d/0x1c0`) is looked up with
//! addr2line and becomes the chain of functions inlined at that address,
//! innermost first (`g kernel/x.c:12 [inline]`, then `f+0x6d/0x1c0
//! kernel/x.c:40`). The title parser reads that form, so a title names
//! what a debug build's report names (`WARNING in kcmp_lock`, not the
//! syscall it was inlined into).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::host::spawn::Cmd;
use crate::image::elf::Elf;

/// A vmlinux with debug info, ready to look addresses up in.
pub(crate) struct Symbolizer {
    vmlinux: PathBuf,
    addr2line: PathBuf,
    /// Function name: (address, size) of each symbol of that name.
    funcs: HashMap<String, Vec<(u64, u64)>>,
}

impl Symbolizer {
    /// For `vmlinux` when it has debug info and addr2line is installed.
    pub(crate) fn new(vmlinux: &Path) -> Option<Symbolizer> {
        let addr2line = which::which("addr2line").ok()?;
        let data = std::fs::read(vmlinux).ok()?;
        let elf = Elf::parse(&data).ok()?;
        elf.section_by_name(b".debug_info").ok()??;
        let mut funcs: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for f in elf.functions().ok()? {
            funcs.entry(String::from_utf8_lossy(f.name).into_owned()).or_default().push((f.addr, f.size));
        }
        Some(Symbolizer { vmlinux: vmlinux.to_owned(), addr2line, funcs })
    }

    /// `lines` with every frame symbolized (lines addr2line cannot place
    /// stay as they are).
    pub(crate) fn lines(&self, lines: &[String]) -> Vec<String> {
        let frames: Vec<Option<Frame>> = lines.iter().map(|l| self.frame(l)).collect();
        let pcs: Vec<u64> = frames.iter().flatten().map(|f| f.pc).collect();
        let found = self.addr2line(&pcs).unwrap_or_default();
        let mut out = Vec::new();
        for (line, frame) in lines.iter().zip(&frames) {
            match frame.as_ref().and_then(|f| found.get(&f.pc).map(|chain| (f, chain))) {
                Some((f, chain)) if !chain.is_empty() => {
                    let (last, inlined) = chain.split_last().expect("not empty");
                    for (func, at) in inlined {
                        out.push(format!("{}{func} {at} [inline]", f.prefix));
                    }
                    out.push(format!("{line} {}", last.1));
                }
                _ => out.push(line.clone()),
            }
        }
        out
    }

    /// The frame a report line holds, as an address: `RIP: 0010:f+0x6d/0x1c0`
    /// (the faulting address itself) or a stack line (a return address:
    /// the call is the byte before).
    fn frame(&self, line: &str) -> Option<Frame> {
        let (prefix, rest, is_ip) = split_frame(line)?;
        let (func, off_size) = rest.split_once("+0x")?;
        let (off, size) = off_size.split_once("/0x")?;
        let off = u64::from_str_radix(off, 16).ok()?;
        let size = u64::from_str_radix(size.split(|c: char| !c.is_ascii_hexdigit()).next()?, 16).ok()?;
        let symbols = self.funcs.get(func)?;
        // Of several functions with one name, the one of that size.
        let (addr, _) = symbols.iter().find(|(_, s)| *s == size).or(symbols.first())?;
        let pc = addr.checked_add(off)?.checked_sub(u64::from(!is_ip))?;
        Some(Frame { prefix: prefix.to_owned(), pc })
    }

    /// Each address's chain of (function, file:line), innermost first.
    fn addr2line(&self, pcs: &[u64]) -> Option<HashMap<u64, Vec<(String, String)>>> {
        if pcs.is_empty() {
            return None;
        }
        let mut args = vec!["-a".to_owned(), "-f".to_owned(), "-i".to_owned(), "-e".to_owned()];
        args.push(self.vmlinux.display().to_string());
        args.extend(pcs.iter().map(|pc| format!("{pc:#x}")));
        let out = Cmd::new(&self.addr2line, &args, Path::new("/")).quiet().output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut chains: HashMap<u64, Vec<(String, String)>> = HashMap::new();
        let mut current = None;
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if let Some(hex) = l.strip_prefix("0x") {
                current = u64::from_str_radix(hex, 16).ok();
                continue;
            }
            let (Some(pc), Some(at)) = (current, lines.next()) else { continue };
            if l == "??" || at.starts_with("??") {
                continue;
            }
            chains.entry(pc).or_default().push((l.to_owned(), source_path(at)));
        }
        Some(chains)
    }
}

/// A frame of a report: where its function starts in the line and the
/// address it stands for.
struct Frame {
    /// What comes before the function (`RIP: 0010:`, the indent).
    prefix: String,
    pc: u64,
}

/// A report line's frame, the first `f+0x6d/0x1c0` in it: (what precedes
/// the function, the rest from the function on, whether it is the exact
/// address of the fault or WARN rather than a return address).
/// Questionable frames (`? f+0x..`) are none.
fn split_frame(line: &str) -> Option<(&str, &str, bool)> {
    let text = super::classify::kernel_text(line);
    let start = line.len() - text.len();
    let t = text.trim_start();
    if t.starts_with("? ") {
        return None;
    }
    let plus = t.find("+0x")?;
    if !t[plus..].split(' ').next().is_some_and(|off| off.contains("/0x")) {
        return None;
    }
    let func = t[..plus].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).map_or(0, |i| i + 1);
    if func == plus {
        return None;
    }
    let exact = ["RIP: ", "pc : ", "PC is at ", "WARNING: "].iter().any(|p| t.starts_with(p));
    let at = start + (text.len() - t.len()) + func;
    Some((&line[start..at], &t[func..], exact))
}

/// A source path as reports print it: from the kernel tree's top.
fn source_path(at: &str) -> String {
    const TOP: &[&str] = &[
        "arch/",
        "block/",
        "crypto/",
        "drivers/",
        "fs/",
        "include/",
        "init/",
        "io_uring/",
        "ipc/",
        "kernel/",
        "lib/",
        "mm/",
        "net/",
        "rust/",
        "security/",
        "sound/",
        "virt/",
    ];
    let at = at.split(" (discriminator").next().unwrap_or(at);
    TOP.iter()
        .filter_map(|t| at.find(&format!("/{t}")).map(|i| &at[i + 1..]))
        .min_by_key(|s| std::cmp::Reverse(s.len()))
        .unwrap_or(at)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_in_ip_and_stack_lines() {
        assert_eq!(split_frame("[ 1.0] RIP: 0010:f+0x6d/0x1c0"), Some(("RIP: 0010:", "f+0x6d/0x1c0", true)));
        assert_eq!(split_frame("[ 1.0]  f+0x6d/0x1c0"), Some((" ", "f+0x6d/0x1c0", false)));
        assert_eq!(split_frame(" f.isra.0+0x6d/0x1c0 [lkdtm]"), Some((" ", "f.isra.0+0x6d/0x1c0 [lkdtm]", false)));
        let warn = "WARNING: CPU: 0 PID: 1 at kernel/x.c:2 f+0x1/0x2";
        assert_eq!(split_frame(warn), Some(("WARNING: CPU: 0 PID: 1 at kernel/x.c:2 ", "f+0x1/0x2", true)));
        assert_eq!(split_frame(" ? f+0x6d/0x1c0"), None);
        assert_eq!(split_frame("Modules linked in:"), None);
        assert_eq!(split_frame("RSP: 0018:ffffc90000013e58 EFLAGS: 00010246"), None);
        assert_eq!(source_path("/build/linux-6.1/kernel/sys.c:2626"), "kernel/sys.c:2626");
        assert_eq!(source_path("/src/fs/kernel/x.c:1 (discriminator 3)"), "fs/kernel/x.c:1");
    }

    /// A real ELF with debug info (a program cc builds with -g), a real
    /// addr2line: a frame in `outer` at the inlined `inner`'s code gets
    /// `inner` as its inline frame, and the title names it.
    #[test]
    fn a_frame_in_inlined_code_gets_its_inline_chain() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("kernel/x.c");
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(
            &src,
            "volatile int v;\nstatic inline void inner(void) { v = 1; v = 2; v = 3; }\n\
             __attribute__((noinline)) void outer(void) { v = 0; inner(); v = 4; }\n\
             int main(void) { outer(); return 0; }\n",
        )
        .unwrap();
        let exe = d.path().join("vmlinux");
        let cc =
            Cmd::new("cc", ["-g", "-O2", "-o"], d.path()).args([exe.as_os_str(), src.as_os_str()]).quiet().output();
        cc.expect("cc and addr2line (build-essential, binutils)");
        let s = Symbolizer::new(&exe).expect("debug info and addr2line");
        let &(_, size) = s.funcs.get("outer").and_then(|v| v.first()).expect("outer's symbol");
        let found = (0..size).find_map(|off| {
            let line = format!("RIP: 0010:outer+{off:#x}/{size:#x}");
            let out = s.lines(&[line]);
            (out.len() == 2 && out[0].starts_with("RIP: 0010:inner kernel/x.c:2 [inline]")).then_some(out)
        });
        let out = found.unwrap_or_else(|| panic!("no offset of outer (size {size}) is in inner"));
        assert!(out[1].starts_with("RIP: 0010:outer+0x") && out[1].ends_with(" kernel/x.c:3"), "{out:?}");
        let offset = out[1].split("+0x").nth(1).unwrap().split(' ').next().unwrap();
        let header = s.lines(&[format!("WARNING: CPU: 0 PID: 1 at kernel/x.c:2 outer+0x{offset}")]);
        assert_eq!(header[0], "WARNING: CPU: 0 PID: 1 at kernel/x.c:2 inner kernel/x.c:2 [inline]", "{header:?}");
        let report = [header, out].concat();
        assert_eq!(crate::boot::title::title(report.iter().map(String::as_str)).unwrap(), "WARNING in inner");
    }
}
