//! A kernel's `.config`: its lines read into a map, as the builder, the
//! runner (what a kernel has: ACPI, SMP, virtio-blk) and config bisect
//! read them.

use std::collections::BTreeMap;
use std::fmt;

/// A value a config option can have.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Y,
    M,
    /// `# CONFIG_X is not set`
    N,
    /// A string (with its quotes) or a number, as written.
    Raw(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Y => f.write_str("y"),
            Value::M => f.write_str("m"),
            Value::N => f.write_str("n"),
            Value::Raw(r) => f.write_str(r),
        }
    }
}

/// As the config writes it: `y`, `m`, `n`, or the raw value.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses one .config or fragment line: `CONFIG_X=v` or `# CONFIG_X is not set`.
pub(crate) fn parse_line(line: &str) -> Option<(String, Value)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# CONFIG_") {
        let name = rest.strip_suffix(" is not set")?;
        return Some((name.to_owned(), Value::N));
    }
    let (name, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
    let value = match value {
        "y" => Value::Y,
        "m" => Value::M,
        "n" => Value::N,
        other => Value::Raw(other.to_owned()),
    };
    Some((name.to_owned(), value))
}

/// A .config as a map; options absent from it are off.
pub fn parse_config(text: &str) -> BTreeMap<String, Value> {
    text.lines().filter_map(parse_line).collect()
}

/// The architecture a kernel config is for.
pub(crate) fn config_arch(config: &str) -> Option<crate::image::arch::Arch> {
    for line in config.lines() {
        match line.trim() {
            "CONFIG_ARM64=y" => return Some(crate::image::arch::Arch::Aarch64),
            "CONFIG_X86_64=y" => return Some(crate::image::arch::Arch::X86_64),
            _ => {}
        }
    }
    None
}

/// A kernel config file the user named with `flag`: its text and its
/// architecture, or a one-line reason it is none.
pub(crate) fn read_kernel_config(
    flag: &str,
    path: &std::path::Path,
) -> Result<(String, crate::image::arch::Arch), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let arch = config_arch(&text).ok_or_else(|| {
        format!("{flag} {}: not a kernel config (no CONFIG_X86_64=y or CONFIG_ARM64=y line)", path.display())
    })?;
    Ok((text, arch))
}
