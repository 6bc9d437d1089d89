//! What a kernel build needs on the host besides its compiler: Kconfig's
//! flex and bison, `bc` for timeconst.h, and what the final config asks
//! for (pahole for BTF, libelf for objtool, OpenSSL for the signing key,
//! the compressor of the bzImage). A missing one makes `make` fail, and a
//! bisect would take that failure for a commit (or config) that does not
//! build and skip it: so they are checked before make, installed with
//! apt-get when we are root (saying so), else named with the command.

use std::collections::BTreeMap;
use std::path::Path;

use crate::image::arch::Arch;
use crate::image::config::Value;

/// How to tell a tool is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Program(&'static str),
    /// A header of a -dev package.
    Header(&'static str),
}

impl Probe {
    fn present(self) -> bool {
        match self {
            Probe::Program(p) => which::which(p).is_ok(),
            Probe::Header(h) => Path::new(h).is_file(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Probe::Program(p) | Probe::Header(p) => p,
        }
    }
}

/// One host tool of a build: how to find it, its Debian package, and why
/// the build needs it (for the messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    probe: Probe,
    package: &'static str,
    why: &'static str,
}

/// What every build needs, before the config is even made: kbuild's own
/// tools (Kconfig's parser is generated with flex and bison).
pub(crate) fn for_any_build() -> Vec<Need> {
    vec![
        Need { probe: Probe::Program("make"), package: "make", why: "kbuild" },
        Need { probe: Probe::Program("flex"), package: "flex", why: "Kconfig's lexer" },
        Need { probe: Probe::Program("bison"), package: "bison", why: "Kconfig's parser" },
        Need { probe: Probe::Program("bc"), package: "bc", why: "timeconst.h" },
    ]
}

/// What the final config asks of the host for `arch`.
pub(crate) fn for_config(config: &BTreeMap<String, Value>, arch: Arch) -> Vec<Need> {
    let on = |name: &str| config.get(name) == Some(&Value::Y);
    let mut needs = Vec::new();
    if on("DEBUG_INFO_BTF") {
        needs.push(Need { probe: Probe::Program("pahole"), package: "dwarves", why: "CONFIG_DEBUG_INFO_BTF" });
    }
    if on("OBJTOOL") || on("STACK_VALIDATION") || on("DEBUG_INFO_BTF") {
        let why = if on("DEBUG_INFO_BTF") { "resolve_btfids" } else { "objtool" };
        needs.push(Need { probe: Probe::Header("/usr/include/gelf.h"), package: "libelf-dev", why });
    }
    if on("SYSTEM_TRUSTED_KEYRING") || on("MODULE_SIG") {
        let why = "certs/extract-cert and scripts/sign-file";
        needs.push(Need { probe: Probe::Header("/usr/include/openssl/opensslv.h"), package: "libssl-dev", why });
    }
    if on("MODULE_SIG") {
        let why = "the module signing key (CONFIG_MODULE_SIG)";
        needs.push(Need { probe: Probe::Program("openssl"), package: "openssl", why });
    }
    if on("IKHEADERS") {
        needs.push(Need { probe: Probe::Program("cpio"), package: "cpio", why: "CONFIG_IKHEADERS" });
    }
    if arch == Arch::X86_64 {
        let compressors = [
            ("KERNEL_BZIP2", "bzip2", "bzip2"),
            ("KERNEL_LZMA", "lzma", "xz-utils"),
            ("KERNEL_XZ", "xz", "xz-utils"),
            ("KERNEL_LZO", "lzop", "lzop"),
            ("KERNEL_LZ4", "lz4", "lz4"),
            ("KERNEL_ZSTD", "zstd", "zstd"),
        ];
        for (option, program, package) in compressors {
            if on(option) {
                needs.push(Need { probe: Probe::Program(program), package, why: "the bzImage's compression" });
            }
        }
    }
    needs
}

/// Makes every need present: those missing are installed with apt-get
/// (root on Debian), saying which and why; otherwise an error naming
/// them and the command that installs them.
pub(crate) fn provide(needs: &[Need], say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let missing: Vec<Need> = needs.iter().copied().filter(|n| !n.probe.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    packages.dedup();
    let named = missing
        .iter()
        .map(|n| format!("{} ({}, for {})", n.probe.name(), n.package, n.why))
        .collect::<Vec<_>>()
        .join(", ");
    say(&format!("the build needs {named}"));
    crate::host::install::apt_packages(&packages, say).map_err(|e| format!("the build needs {named}: {e}"))?;
    let still: Vec<&str> = missing.iter().filter(|n| !n.probe.present()).map(|n| n.probe.name()).collect();
    if !still.is_empty() {
        return Err(format!("installed {} but {} is still not there", packages.join(" "), still.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::parse_config;

    fn packages(config: &str, arch: Arch) -> Vec<&'static str> {
        for_config(&parse_config(config), arch).iter().map(|n| n.package).collect()
    }

    #[test]
    fn a_distro_config_asks_for_pahole_libelf_openssl_and_its_compressor() {
        // Debian 6.1 cloud-amd64's options that reach the host.
        let debian = "CONFIG_DEBUG_INFO_BTF=y\nCONFIG_OBJTOOL=y\nCONFIG_SYSTEM_TRUSTED_KEYRING=y\n\
                      CONFIG_MODULE_SIG=y\nCONFIG_KERNEL_LZ4=y\n# CONFIG_IKHEADERS is not set\n";
        assert_eq!(packages(debian, Arch::X86_64), ["dwarves", "libelf-dev", "libssl-dev", "openssl", "lz4"]);
    }

    #[test]
    fn a_minimal_config_asks_for_nothing_beyond_kbuild() {
        assert!(packages("CONFIG_KERNEL_GZIP=y\n# CONFIG_DEBUG_INFO_BTF is not set\n", Arch::X86_64).is_empty());
        // arm64's Image is not compressed by kbuild here.
        assert!(packages("CONFIG_KERNEL_LZ4=y\n", Arch::Aarch64).is_empty());
        assert_eq!(for_any_build().iter().map(|n| n.package).collect::<Vec<_>>(), ["make", "flex", "bison", "bc"]);
    }

    #[test]
    fn what_is_present_is_not_installed() {
        let present = Need { probe: Probe::Program("sh"), package: "dash", why: "test" };
        let mut said = Vec::new();
        provide(&[present], &mut |m| said.push(m.to_owned())).unwrap();
        assert!(said.is_empty(), "{said:?}");
    }
}
