//! What a tree's Kconfig files say of each symbol: where it is defined,
//! the first line of its help, what it depends on and what it selects.
//! Read once per tree for a config bisect's order and report; an
//! approximation of Kconfig (no expression evaluation; every Kconfig file
//! of the tree is read, those of other architectures left out). What an
//! `if` block, or a `menu` or `choice` with `depends on`, holds depends on
//! it, and so does what a `source` line in such a block brings in: UNIX
//! needs NET through `if NET` around `source "net/unix/Kconfig"` in
//! net/Kconfig, not through a `depends on` of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::image::arch::Arch;

/// One symbol's Kconfig entry (the first, when several files define it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The Kconfig file, relative to the tree, and the line of `config NAME`.
    pub file: PathBuf,
    pub line: usize,
    /// Its prompt (`bool "..."`), where it has one.
    pub prompt: Option<String>,
    /// The first line of its help text.
    pub help: Option<String>,
    /// Its `depends on` expressions, those of the blocks around it (`if`,
    /// a menu's or a choice's `depends on`) included.
    pub depends: Vec<String>,
    /// The symbols it selects (`select X [if ...]`).
    pub selects: Vec<String>,
}

impl Entry {
    /// Every symbol its dependencies mention.
    pub(crate) fn depends_on(&self) -> BTreeSet<String> {
        self.depends.iter().flat_map(|d| symbols(d)).collect()
    }
}

/// The keywords that start an entry of a Kconfig file (what follows them,
/// up to the next one, are its attributes).
const ENTRY_KEYWORDS: &[&str] = &[
    "config",
    "menuconfig",
    "source",
    "rsource",
    "osource",
    "orsource",
    "choice",
    "endchoice",
    "menu",
    "endmenu",
    "comment",
    "mainmenu",
    "if",
    "endif",
];

/// Every symbol of a tree.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub entries: BTreeMap<String, Entry>,
    /// Each `source` line: the file it is in, the path it names (as
    /// written), and the conditions of the blocks around it.
    sources: Vec<(PathBuf, String, Vec<String>)>,
}

impl Index {
    /// Reads every Kconfig file of `source` (arch/ only for `arch`).
    pub(crate) fn read(source: &Path, arch: Arch) -> Index {
        let mut index = Index::default();
        for path in kconfig_files(source, arch) {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let rel = path.strip_prefix(source).unwrap_or(&path).to_owned();
                index.add(&rel, &text);
            }
        }
        index.inherit(arch);
        index
    }

    /// Adds to each entry the blocks around the `source` lines that lead
    /// to its file (the first place that sources a file counts).
    pub(crate) fn inherit(&mut self, arch: Arch) {
        let mut parent: BTreeMap<PathBuf, (PathBuf, Vec<String>)> = BTreeMap::new();
        for (from, named, ifs) in &self.sources {
            let named = named.replace("$(SRCARCH)", arch.kernel_arch()).replace("$SRCARCH", arch.kernel_arch());
            parent.entry(PathBuf::from(named)).or_insert_with(|| (from.clone(), ifs.clone()));
        }
        for entry in self.entries.values_mut() {
            let mut file = entry.file.clone();
            // A chain of sources, cut short should one loop.
            for _ in 0..32 {
                let Some((from, ifs)) = parent.get(&file) else { break };
                for cond in ifs {
                    if !entry.depends.contains(cond) {
                        entry.depends.push(cond.clone());
                    }
                }
                file = from.clone();
            }
        }
    }

    /// One file's entries.
    pub(crate) fn add(&mut self, file: &Path, text: &str) {
        // The blocks around the line: `if X`, `menu` and `choice` (with the
        // `depends on` of their heads), each with the keyword that ends it.
        let mut blocks: Vec<(&str, Vec<String>)> = Vec::new();
        // Whether the lines are a menu's or a choice's head (its `depends on`
        // are the block's).
        let mut head = false;
        let around = |blocks: &[(&str, Vec<String>)]| -> Vec<String> {
            blocks.iter().flat_map(|(_, conds)| conds.iter().cloned()).collect()
        };
        let mut current: Option<(String, Entry)> = None;
        // The help text's indentation, while in one.
        let mut help: Option<Option<usize>> = None;
        // A symbol defined again (another arch's file, a second prompt)
        // keeps its first place and help, and adds its dependencies.
        let finish = |current: &mut Option<(String, Entry)>, entries: &mut BTreeMap<String, Entry>| {
            if let Some((name, entry)) = current.take() {
                match entries.get_mut(&name) {
                    Some(first) => {
                        first.depends.extend(entry.depends);
                        first.selects.extend(entry.selects);
                    }
                    None => {
                        entries.insert(name, entry);
                    }
                }
            }
        };
        for (i, line) in text.lines().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let t = line.trim();
            if let Some(level) = help {
                // Help goes on while lines are blank or indented deeper
                // than its first line... or than the keyword, for the first.
                match level {
                    _ if t.is_empty() => continue,
                    None => {
                        if let Some((_, e)) = current.as_mut() {
                            e.help = Some(t.to_owned());
                        }
                        help = Some(Some(indent));
                        continue;
                    }
                    Some(l) if indent >= l => continue,
                    Some(_) => help = None,
                }
            }
            let t = t.split('#').next().unwrap_or("").trim();
            let mut words = t.splitn(2, char::is_whitespace);
            let word = words.next().unwrap_or("");
            let rest = words.next().unwrap_or("").trim();
            if ENTRY_KEYWORDS.contains(&word) {
                head = false;
            }
            match word {
                "config" | "menuconfig" => {
                    finish(&mut current, &mut self.entries);
                    let entry =
                        Entry { file: file.to_owned(), line: i + 1, depends: around(&blocks), ..Entry::default() };
                    current = Some((rest.to_owned(), entry));
                }
                "source" | "rsource" | "osource" | "orsource" => {
                    finish(&mut current, &mut self.entries);
                    if let Some(named) = quoted(rest) {
                        // rsource and orsource name a path relative to this file's dir.
                        let named = if word == "rsource" || word == "orsource" {
                            file.parent().unwrap_or(Path::new("")).join(named).to_string_lossy().into_owned()
                        } else {
                            named
                        };
                        self.sources.push((file.to_owned(), named, around(&blocks)));
                    }
                }
                "menu" | "choice" => {
                    finish(&mut current, &mut self.entries);
                    blocks.push((if word == "menu" { "endmenu" } else { "endchoice" }, Vec::new()));
                    head = true;
                }
                "if" => {
                    finish(&mut current, &mut self.entries);
                    blocks.push(("endif", vec![rest.to_owned()]));
                }
                "endmenu" | "endchoice" | "endif" => {
                    finish(&mut current, &mut self.entries);
                    // Up to the block this ends (a file with a stray end
                    // keeps its blocks).
                    if let Some(at) = blocks.iter().rposition(|(end, _)| *end == word) {
                        blocks.truncate(at);
                    }
                }
                "comment" | "mainmenu" => finish(&mut current, &mut self.entries),
                "help" | "---help---" => help = Some(None),
                _ if head => {
                    if let (Some(expr), Some((_, conds))) = (t.strip_prefix("depends on"), blocks.last_mut()) {
                        conds.push(expr.trim().to_owned());
                    }
                }
                _ => {
                    let Some((_, e)) = current.as_mut() else { continue };
                    if let Some(expr) = t.strip_prefix("depends on") {
                        e.depends.push(expr.trim().to_owned());
                    } else if word == "select" {
                        if let Some(s) = rest.split_whitespace().next() {
                            e.selects.push(s.to_owned());
                        }
                    } else if matches!(word, "bool" | "tristate" | "string" | "int" | "hex" | "prompt") {
                        if let Some(p) = quoted(rest) {
                            e.prompt.get_or_insert(p);
                        }
                    }
                }
            }
        }
        finish(&mut current, &mut self.entries);
    }

    /// The symbols that select `name`.
    pub(crate) fn selected_by(&self, name: &str) -> Vec<&str> {
        self.entries.iter().filter(|(_, e)| e.selects.iter().any(|s| s == name)).map(|(n, _)| n.as_str()).collect()
    }

    /// The symbols whose dependencies mention `name`.
    pub(crate) fn dependents(&self, name: &str) -> Vec<&str> {
        self.entries.iter().filter(|(_, e)| e.depends_on().contains(name)).map(|(n, _)| n.as_str()).collect()
    }

    /// `names` ordered so that what one depends on (or is selected by)
    /// comes before it where the two are both in `names`; otherwise in
    /// the given order. Applying options in this order, a prefix rarely
    /// holds an option whose dependency is still missing.
    pub(crate) fn dependency_order(&self, names: &[String]) -> Vec<String> {
        let set: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let before = |n: &str| -> Vec<String> {
            let mut b: Vec<String> = self
                .entries
                .get(n)
                .map(|e| e.depends_on().into_iter().filter(|d| set.contains(d.as_str()) && d != n).collect())
                .unwrap_or_default();
            b.extend(self.selected_by(n).into_iter().filter(|s| set.contains(s) && *s != n).map(str::to_owned));
            b
        };
        let mut out = Vec::new();
        let mut placed = BTreeSet::new();
        let mut visiting = BTreeSet::new();
        fn place(
            n: &str,
            before: &dyn Fn(&str) -> Vec<String>,
            out: &mut Vec<String>,
            placed: &mut BTreeSet<String>,
            visiting: &mut BTreeSet<String>,
        ) {
            if placed.contains(n) || !visiting.insert(n.to_owned()) {
                return; // placed, or a cycle: left where it stands
            }
            for b in before(n) {
                place(&b, before, out, placed, visiting);
            }
            placed.insert(n.to_owned());
            out.push(n.to_owned());
        }
        for n in names {
            place(n, &before, &mut out, &mut placed, &mut visiting);
        }
        out
    }
}

/// The tree's Kconfig files, sorted: every one but those of other
/// architectures under arch/, Documentation/ and tools/.
pub(crate) fn kconfig_files(source: &Path, arch: Arch) -> Vec<PathBuf> {
    let arches = source.join("arch");
    let skip = |dir: &Path| dir.parent() == Some(arches.as_path()) && !dir.ends_with(arch.kernel_arch());
    let mut files = Vec::new();
    collect(source, &skip, &mut files);
    files.sort();
    files
}

fn collect(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        let name = e.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && !name.starts_with('.') && name != "Documentation" && name != "tools" {
            if !skip(&path) {
                collect(&path, skip, out);
            }
        } else if kind.is_file() && name.starts_with("Kconfig") {
            out.push(path);
        }
    }
}

/// The text between the first pair of double quotes.
fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let end = start + s[start..].find('"')?;
    Some(s[start..end].to_owned())
}

/// The config symbols an expression mentions.
pub(crate) fn symbols(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            !w.is_empty()
                && w.chars().any(|c| c.is_ascii_uppercase())
                && !w.starts_with(|c: char| c.is_ascii_digit())
                && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KCONFIG: &str = r#"
menu "Networking"

config NET
	bool "Networking support"
	help
	  Unless you really know what you are doing, you should say Y here.
	  depends on nothing: this is help text.

if NET

config UNIX
	tristate "Unix domain sockets"
	depends on NET && !UML  # a comment
	select NET_HELPER if UNIX_EXTRA
	help
	  If you say Y here, you will include support for Unix domain sockets.

config NET_HELPER
	bool

endif

endmenu
"#;

    fn index() -> Index {
        let mut i = Index::default();
        i.add(Path::new("net/Kconfig"), KCONFIG);
        i
    }

    #[test]
    fn entries_have_their_place_prompt_help_and_dependencies() {
        let i = index();
        let net = &i.entries["NET"];
        assert_eq!((net.file.as_path(), net.line), (Path::new("net/Kconfig"), 4));
        assert_eq!(net.prompt.as_deref(), Some("Networking support"));
        assert_eq!(net.help.as_deref(), Some("Unless you really know what you are doing, you should say Y here."));
        // Help text is not a dependency.
        assert!(net.depends.is_empty(), "{:?}", net.depends);
        let unix = &i.entries["UNIX"];
        assert_eq!(unix.depends, ["NET", "NET && !UML"]);
        assert_eq!(unix.depends_on(), ["NET", "UML"].map(str::to_owned).into());
        assert_eq!(unix.selects, ["NET_HELPER"]);
        assert_eq!(unix.help.as_deref(), Some("If you say Y here, you will include support for Unix domain sockets."));
        assert_eq!(i.entries["NET_HELPER"].depends, ["NET"]);
        assert_eq!(i.selected_by("NET_HELPER"), ["UNIX"]);
        assert_eq!(i.dependents("NET"), ["NET_HELPER", "UNIX"]);
    }

    #[test]
    fn the_ifs_around_a_source_line_are_dependencies_of_what_the_file_defines() {
        let mut i = Index::default();
        i.add(Path::new("Kconfig"), "source \"arch/$(SRCARCH)/Kconfig\"\nsource \"net/Kconfig\"\n");
        i.add(Path::new("arch/x86/Kconfig"), "config X86\n\tdef_bool y\n");
        i.add(
            Path::new("net/Kconfig"),
            "menuconfig NET\n\tbool \"net\"\n\nif NET\nif INET\nrsource \"ipv4/Kconfig\"\nendif\nsource \"net/unix/Kconfig\"\nendif\n",
        );
        i.add(Path::new("net/unix/Kconfig"), "config UNIX\n\ttristate \"Unix domain sockets\"\n");
        i.add(Path::new("net/ipv4/Kconfig"), "config IP_MULTICAST\n\tbool \"m\"\n\tdepends on X86\n");
        i.inherit(Arch::X86_64);
        assert_eq!(i.entries["UNIX"].depends, ["NET"]);
        assert_eq!(i.entries["IP_MULTICAST"].depends, ["X86", "NET", "INET"]);
        assert!(i.entries["NET"].depends.is_empty() && i.entries["X86"].depends.is_empty());
        let order = i.dependency_order(&["UNIX".into(), "NET".into()]);
        assert_eq!(order, ["NET", "UNIX"]);
    }

    #[test]
    fn a_menus_and_a_choices_depends_on_are_dependencies_of_what_they_hold() {
        let mut i = Index::default();
        i.add(
            Path::new("drivers/Kconfig"),
            r#"
menu "Block devices"
	depends on BLOCK
	visible if EXPERT

comment "a comment"
	depends on PCI

config VIRTIO_BLK
	tristate "Virtio block driver"
	depends on VIRTIO

choice
	prompt "Default I/O scheduler"
	depends on MQ_IOSCHED
	help
	  depends on nothing: this is help text.

config DEFAULT_DEADLINE
	bool "Deadline"

endchoice

source "drivers/md/Kconfig"

endmenu

config AFTER
	bool "after the menu"
"#,
        );
        i.add(Path::new("drivers/md/Kconfig"), "config MD\n\tbool \"md\"\n");
        i.inherit(Arch::X86_64);
        assert_eq!(i.entries["VIRTIO_BLK"].depends, ["BLOCK", "VIRTIO"]);
        assert_eq!(i.entries["DEFAULT_DEADLINE"].depends, ["BLOCK", "MQ_IOSCHED"]);
        assert_eq!(i.entries["MD"].depends, ["BLOCK"]);
        assert!(i.entries["AFTER"].depends.is_empty(), "{:?}", i.entries["AFTER"].depends);
    }

    #[test]
    fn dependencies_come_first() {
        let i = index();
        let order = i.dependency_order(&["NET_HELPER".into(), "UNIX".into(), "ZSWAP".into(), "NET".into()]);
        assert_eq!(order, ["NET", "UNIX", "NET_HELPER", "ZSWAP"]);
    }
}
