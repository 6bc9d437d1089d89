//! A C source as repro: compiled statically for the guest's architecture
//! (the host's `cc`, or the cross gcc for another architecture, installed
//! with apt when missing and root), with `-O2 -pthread` as syzkaller's
//! and kselftests' C programs expect, and cached by content. It then runs
//! as `--exec` does: exit 0 pass, 4 skip, anything else fail.

use std::path::{Path, PathBuf};

use super::{io, GuestError};
use crate::host::cache::Cache;
use crate::host::install;
use crate::host::spawn::{Cmd, CmdError};
use crate::image::arch::Arch;

/// The flags every C repro is compiled with; the source and output follow.
pub(crate) const CFLAGS: &[&str] = &["-static", "-O2", "-pthread", "-Wall"];

/// The compiler for `arch`: `cc` for the host's architecture, else the
/// cross gcc (`aarch64-linux-gnu-gcc`).
fn compiler(arch: Arch, say: &mut dyn FnMut(&str)) -> Result<PathBuf, GuestError> {
    let found = if Arch::host() == Some(arch) {
        install::find_or_install("cc", "build-essential", say)
    } else {
        let triple = arch.gnu_triple();
        install::find_or_install(&format!("{triple}-gcc"), &format!("gcc-{triple}"), say)
    };
    found.map_err(|e| GuestError::Toolchain(format!("compiling a C repro for {arch}: {e}")))
}

/// `source` compiled for `arch` (or the cached result of the same source,
/// compiler and flags): a static executable in `<cache>/guest/c/`.
pub(crate) fn compile(
    cache: &Cache,
    source: &Path,
    arch: Arch,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, GuestError> {
    let text = std::fs::read(source).map_err(io(format!("read {}", source.display())))?;
    let cc = compiler(arch, say)?;
    let version = Cmd::new(&cc, ["--version"], Path::new("/")).quiet().output()?;
    let mut h = blake3::Hasher::new();
    for part in [&text[..], &version.stdout, cc.as_os_str().as_encoded_bytes(), CFLAGS.join(" ").as_bytes()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let stem = source.file_stem().map_or("repro".into(), |s| s.to_string_lossy().into_owned());
    let dir = cache.guest().join("c");
    let exe = dir.join(format!("{stem}-{}-{}", arch.name(), &h.finalize().to_hex()[..16]));
    if exe.is_file() {
        return Ok(exe);
    }
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}-"))
        .tempfile_in(&dir)
        .map_err(io(format!("create a temp file in {}", dir.display())))?;
    let cwd = source.parent().unwrap_or(Path::new("/"));
    let out =
        Cmd::new(&cc, CFLAGS, cwd).args(["-o".as_ref(), tmp.path().as_os_str(), source.as_os_str()]).quiet().output();
    match out {
        Ok(_) => {}
        Err(CmdError::Failed { stderr, .. }) => {
            return Err(GuestError::Compile { path: source.to_owned(), output: stderr.trim_end().to_owned() })
        }
        Err(e) => return Err(e.into()),
    }
    tmp.persist(&exe).map_err(|e| GuestError::Io { context: format!("write {}", exe.display()), source: e.error })?;
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_shows_the_compilers_errors() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path().join("cache"));
        let src = d.path().join("ok.c");
        std::fs::write(&src, "#include <pthread.h>\nint main(void) { return 0; }\n").unwrap();
        let exe = compile(&cache, &src, Arch::host_or_default(), &mut |_| {}).unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        crate::image::elf::check_static(&bytes, true).unwrap();
        let again = compile(&cache, &src, Arch::host_or_default(), &mut |_| {}).unwrap();
        assert_eq!(again, exe, "cached by content");
        std::fs::write(&src, "int main(void) { return 1; }\n").unwrap();
        assert_ne!(
            compile(&cache, &src, Arch::host_or_default(), &mut |_| {}).unwrap(),
            exe,
            "a new text is a new build"
        );

        let bad = d.path().join("bad.c");
        std::fs::write(&bad, "int main(void) { return x; }\n").unwrap();
        let e = compile(&cache, &bad, Arch::host_or_default(), &mut |_| {}).unwrap_err();
        let GuestError::Compile { path, output } = &e else { panic!("{e:?}") };
        assert_eq!(path, &bad);
        assert!(output.contains("bad.c:1:") && output.contains("undeclared"), "{output}");
    }
}
