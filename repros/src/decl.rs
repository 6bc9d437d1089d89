//! A repro's declaration read from its source text, without compiling it:
//! the host needs a repro's name, description, kernel config and guest
//! (CPUs, disks, memory) before it builds anything, for repros compiled
//! into krepro and for a user's `probe.rs` alike. The same reader lists
//! the items init's registry is generated from (init/build.rs and this
//! crate's build.rs include this file), so the host and the guest never
//! disagree on what a file declares.
//!
//! A declaration is a `pub const NAME: Repro = Repro { ... };` item at the
//! start of a line whose fields are literals:
//!
//! ```text
//! pub const REPRO: Repro = Repro {
//!     name: "probe",                 // required: [a-z0-9_]+
//!     description: "what it checks", // one line
//!     config: &["NET", "INET"],      // kernel options, without CONFIG_
//!     cpus: 2,
//!     disks: &["new:64M:ext4"],
//!     memory_mib: 512,
//!     run,                           // or run: some_fn
//!     ..Repro::DEFAULT
//! };
//! ```
//!
//! Anything else in a field (a constant, `concat!`) is refused with the
//! line it is on: the host could not know its value.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One repro as its file declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decl {
    /// The constant's name (`REPRO`): what the registry lists.
    pub item: String,
    /// The line the item starts on (1-based).
    pub line: usize,
    pub name: String,
    pub description: String,
    pub config: Vec<String>,
    pub cpus: u32,
    pub disks: Vec<String>,
    pub memory_mib: u32,
}

/// Why a file's declarations could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclError {
    /// 1-based; 0 when it concerns the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DeclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(&self.message),
            n => write!(f, "line {n}: {}", self.message),
        }
    }
}

fn error<T>(line: usize, message: impl Into<String>) -> Result<T, DeclError> {
    Err(DeclError { line, message: message.into() })
}

/// Whether `name` is a well-formed repro name: `[a-z0-9_]+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every repro `text` declares, in file order. A file that declares none
/// is an error, and so is a declaration the host cannot read.
pub fn parse(text: &str) -> Result<Vec<Decl>, DeclError> {
    let tokens = tokenize(text)?;
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if is_decl_start(&tokens, i) {
            let (decl, next) = declaration(&tokens, i)?;
            found.push(decl);
            i = next;
        } else {
            i += 1;
        }
    }
    if found.is_empty() {
        return error(
            0,
            "declares no repro: it needs a `pub const NAME: Repro = Repro { name: \"...\", run, ..Repro::DEFAULT };`",
        );
    }
    Ok(found)
}

/// `pub const NAME: Repro =`, with `pub` first on its line.
fn is_decl_start(t: &[Token], i: usize) -> bool {
    matches!(
        t.get(i..i + 6),
        Some([
            Token { kind: Kind::Ident(p), first_on_line: true, .. },
            Token { kind: Kind::Ident(c), .. },
            Token { kind: Kind::Ident(_), .. },
            Token { kind: Kind::Punct(':'), .. },
            Token { kind: Kind::Ident(ty), .. },
            Token { kind: Kind::Punct('='), .. },
        ]) if p == "pub" && c == "const" && ty == "Repro"
    )
}

/// Reads the declaration starting at token `i`; returns it and the index
/// after its `;`.
fn declaration(t: &[Token], i: usize) -> Result<(Decl, usize), DeclError> {
    let line = t[i].line;
    let Kind::Ident(item) = &t[i + 2].kind else { unreachable!("checked by is_decl_start") };
    let mut decl = Decl {
        item: item.clone(),
        line,
        name: String::new(),
        description: String::new(),
        config: Vec::new(),
        cpus: 1,
        disks: Vec::new(),
        memory_mib: 0,
    };
    let mut j = i + 6;
    match (t.get(j), t.get(j + 1)) {
        (Some(Token { kind: Kind::Ident(s), .. }), Some(Token { kind: Kind::Punct('{'), .. })) if s == "Repro" => {}
        _ => return error(line, format!("{item}: the value must be a `Repro {{ ... }}` literal")),
    }
    j += 2;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let Some(tok) = t.get(j) else { return error(line, format!("{item}: the `Repro {{` is never closed")) };
        match &tok.kind {
            Kind::Punct('}') => {
                j += 1;
                break;
            }
            Kind::Punct(',') => j += 1,
            Kind::Punct('.') if matches!(t.get(j + 1), Some(Token { kind: Kind::Punct('.'), .. })) => {
                // `..Repro::DEFAULT`: the rest of the fields keep their defaults.
                j = skip_expr(t, j + 2);
            }
            Kind::Ident(field) => {
                if seen.contains(field) {
                    return error(tok.line, format!("{item}: field `{field}` is given twice"));
                }
                seen.push(field.clone());
                let shorthand = !matches!(t.get(j + 1), Some(Token { kind: Kind::Punct(':'), .. }));
                if shorthand {
                    if field != "run" {
                        return error(tok.line, format!("{item}: field `{field}` needs a value"));
                    }
                    j += 1;
                    continue;
                }
                let start = j + 2;
                let end = skip_expr(t, start);
                let value = &t[start..end];
                let at = tok.line;
                match field.as_str() {
                    "name" => decl.name = string(value, at, item, field)?,
                    "description" => decl.description = string(value, at, item, field)?,
                    "config" => decl.config = strings(value, at, item, field)?,
                    "disks" => decl.disks = strings(value, at, item, field)?,
                    "cpus" => decl.cpus = number(value, at, item, field)?,
                    "memory_mib" => decl.memory_mib = number(value, at, item, field)?,
                    "run" => {}
                    other => return error(at, format!("{item}: `Repro` has no field `{other}`")),
                }
                j = end;
            }
            _ => return error(tok.line, format!("{item}: unexpected `{}` in the `Repro {{ ... }}`", tok.kind)),
        }
    }
    if !matches!(t.get(j), Some(Token { kind: Kind::Punct(';'), .. })) {
        return error(line, format!("{item}: the declaration must end with `}};`"));
    }
    if decl.name.is_empty() {
        return error(line, format!("{item}: it needs a `name: \"...\"`"));
    }
    if !valid_name(&decl.name) {
        return error(line, format!("{item}: name {:?} is not [a-z0-9_]+", decl.name));
    }
    if decl.description.contains('\n') {
        return error(line, format!("{item}: the description is one line"));
    }
    if decl.cpus == 0 {
        return error(line, format!("{item}: cpus is at least 1"));
    }
    for c in &decl.config {
        if c.starts_with("CONFIG_") || c.contains('=') || c.is_empty() {
            return error(line, format!("{item}: config option {c:?} is a bare name, without CONFIG_ or a value"));
        }
    }
    Ok((decl, j + 1))
}

/// The index after an expression starting at `i`: up to a `,` or the
/// closing bracket at depth 0.
fn skip_expr(t: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(tok) = t.get(i) {
        match tok.kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(')' | ']' | '}') if depth == 0 => break,
            Kind::Punct(')' | ']' | '}') => depth -= 1,
            Kind::Punct(',') if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    i
}

fn not_literal<T>(line: usize, item: &str, field: &str, what: &str) -> Result<T, DeclError> {
    error(line, format!("{item}: `{field}` must be {what} (the host reads it without compiling the file)"))
}

fn string(v: &[Token], line: usize, item: &str, field: &str) -> Result<String, DeclError> {
    match v {
        [Token { kind: Kind::Str(s), .. }] => Ok(s.clone()),
        _ => not_literal(line, item, field, "a string literal"),
    }
}

fn strings(v: &[Token], line: usize, item: &str, field: &str) -> Result<Vec<String>, DeclError> {
    let what = "a literal list of strings, &[\"...\", ...]";
    let [Token { kind: Kind::Punct('&'), .. }, Token { kind: Kind::Punct('['), .. }, inner @ .., Token { kind: Kind::Punct(']'), .. }] =
        v
    else {
        return not_literal(line, item, field, what);
    };
    let mut out = Vec::new();
    for (k, tok) in inner.iter().enumerate() {
        match (&tok.kind, k % 2) {
            (Kind::Str(s), 0) => out.push(s.clone()),
            (Kind::Punct(','), 1) => {}
            _ => return not_literal(line, item, field, what),
        }
    }
    Ok(out)
}

fn number(v: &[Token], line: usize, item: &str, field: &str) -> Result<u32, DeclError> {
    match v {
        [Token { kind: Kind::Num(n), .. }] => Ok(*n),
        _ => not_literal(line, item, field, "a whole number literal"),
    }
}

/// The Rust source of a registry: one module per file (by path), and
/// `REPROS`, the items of each file in order. Each file is (path, items,
/// whether it is a user's): a user's own file may use `unsafe` (raw system
/// calls through `repros::syscall`), where krepro's own code may not.
/// `repro_type` names the `Repro` type where the registry is included.
pub fn render_registry(files: &[(&str, Vec<String>, bool)], repro_type: &str) -> String {
    let mut out = String::from("// Generated from the repro files' declarations: do not edit.\n\n");
    for (i, (path, _, user)) in files.iter().enumerate() {
        if *user {
            out.push_str("#[allow(unsafe_code)]\n");
        }
        out.push_str(&format!("#[path = {path:?}]\nmod repro_{i};\n"));
    }
    out.push_str(&format!("\n/// Every repro compiled in, in order.\npub static REPROS: &[{repro_type}] = &[\n"));
    for (i, (_, items, _)) in files.iter().enumerate() {
        for item in items {
            out.push_str(&format!("    repro_{i}::{item},\n"));
        }
    }
    out.push_str("];\n");
    out
}

/// Where a built-in repro file comes in the list: files named
/// `NN-name.rs` first, by number, then the others by name.
pub fn file_order(file_name: &str) -> (u32, String) {
    let stem = file_name.strip_suffix(".rs").unwrap_or(file_name);
    match stem.split_once('-') {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (n.parse().unwrap_or(u32::MAX), rest.to_string())
        }
        _ => (u32::MAX, stem.to_string()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Ident(String),
    Str(String),
    Num(u32),
    /// Any other literal (a char, a float, a number too big): never a field value here.
    Other,
    Punct(char),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Ident(s) => f.write_str(s),
            Kind::Str(s) => write!(f, "{s:?}"),
            Kind::Num(n) => write!(f, "{n}"),
            Kind::Other => f.write_str("literal"),
            Kind::Punct(c) => write!(f, "{c}"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    line: usize,
    /// Whether it starts its line, in the first column: an item at the
    /// file's top level, as rustfmt leaves it.
    first_on_line: bool,
}

/// Rust's tokens, as far as declarations need them: identifiers, string,
/// number and char literals, punctuation one character at a time;
/// comments and white space dropped.
fn tokenize(text: &str) -> Result<Vec<Token>, DeclError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        let start_line = line;
        let first = line_start && (i == 0 || b[i - 1] == b'\n');
        match c {
            b'\n' => {
                line += 1;
                line_start = true;
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                loop {
                    match (b.get(i), b.get(i + 1)) {
                        (None, _) => return error(start_line, "a /* comment is never closed"),
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(b'\n'), _) => {
                            line += 1;
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
                continue;
            }
            b'"' => {
                let (s, end, lines) = quoted(text, i + 1, start_line)?;
                out.push(Token { kind: Kind::Str(s), line: start_line, first_on_line: first });
                line += lines;
                i = end;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#')) && raw_string_start(b, i + 1).is_some() => {
                let hashes = raw_string_start(b, i + 1).unwrap_or(0);
                let body = i + 2 + hashes;
                let close: Vec<u8> = core::iter::once(b'"').chain(core::iter::repeat_n(b'#', hashes)).collect();
                let Some(len) = b[body..].windows(close.len()).position(|w| w == close.as_slice()) else {
                    return error(start_line, "a raw string is never closed");
                };
                let s = &text[body..body + len];
                line += s.matches('\n').count();
                out.push(Token { kind: Kind::Str(s.to_string()), line: start_line, first_on_line: first });
                i = body + len + close.len();
            }
            b'b' if b.get(i + 1) == Some(&b'"') => {
                let (_, end, lines) = quoted(text, i + 2, start_line)?;
                out.push(Token { kind: Kind::Other, line: start_line, first_on_line: first });
                line += lines;
                i = end;
            }
            b'\'' => {
                // A char literal ('a', '\n', '\'', '\u{e9}') or a lifetime ('a).
                let rest = &text[i + 1..];
                let mut chars = rest.char_indices();
                let end = match chars.next() {
                    // An escape: the escaped character, then up to the quote.
                    Some((_, '\\')) => chars.nth(1).and_then(|(k, _)| rest[k..].find('\'').map(|q| k + q)),
                    Some(_) => chars.next().filter(|(_, c)| *c == '\'').map(|(k, _)| k),
                    None => None,
                };
                match end {
                    Some(k) => {
                        out.push(Token { kind: Kind::Other, line: start_line, first_on_line: first });
                        i += 1 + k + 1;
                    }
                    None => {
                        // A lifetime: the quote, then its name as an identifier.
                        out.push(Token { kind: Kind::Punct('\''), line: start_line, first_on_line: first });
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                    // A `.` is part of the number only before a digit (1.5, not 1..2 or x.0.f()).
                    if b[j] == b'.' && !b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                        break;
                    }
                    j += 1;
                }
                out.push(Token { kind: number_literal(&text[i..j]), line: start_line, first_on_line: first });
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
                    j += 1;
                }
                out.push(Token { kind: Kind::Ident(text[i..j].to_string()), line: start_line, first_on_line: first });
                i = j;
            }
            c => {
                out.push(Token { kind: Kind::Punct(c as char), line: start_line, first_on_line: first });
                i += 1;
            }
        }
        line_start = false;
    }
    Ok(out)
}

/// How many `#` a raw string starting at `b[i]` (after the `r`) has, if it is one.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i..].iter().take_while(|c| **c == b'#').count();
    (b.get(i + hashes) == Some(&b'"')).then_some(hashes)
}

/// A `"..."` body from `start` (after the quote): its value, the index
/// after the closing quote, and how many newlines it spans.
fn quoted(text: &str, start: usize, line: usize) -> Result<(String, usize, usize), DeclError> {
    let mut out = String::new();
    let mut lines = 0;
    let mut chars = text[start..].char_indices().peekable();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + k + 1, lines)),
            '\n' => {
                lines += 1;
                out.push('\n');
            }
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                Some('\n') => {
                    // A line continuation: the newline and the next line's
                    // leading white space are not part of the string.
                    lines += 1;
                    while let Some((_, w)) = chars.next_if(|(_, w)| w.is_whitespace()) {
                        lines += usize::from(w == '\n');
                    }
                }
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).map(|(_, h)| h).collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(v) if v < 0x80 => out.push(char::from(v)),
                        _ => return error(line, "a bad \\x escape in a string"),
                    }
                }
                Some('u') => {
                    let mut hex = String::new();
                    for (_, h) in chars.by_ref() {
                        match h {
                            '{' => {}
                            '}' => break,
                            _ => hex.push(h),
                        }
                    }
                    match u32::from_str_radix(&hex.replace('_', ""), 16).ok().and_then(char::from_u32) {
                        Some(ch) => out.push(ch),
                        None => return error(line, "a bad \\u escape in a string"),
                    }
                }
                _ => return error(line, "an unknown escape in a string"),
            },
            c => out.push(c),
        }
    }
    error(line, "a string is never closed")
}

/// A number literal's value when it is a whole number that fits a `u32`
/// (`64`, `1_024`, `0x40`, `2u32`); anything else is `Other`.
fn number_literal(s: &str) -> Kind {
    let s = s.replace('_', "");
    let (digits, radix) = match s.get(..2) {
        Some("0x") => (&s[2..], 16),
        Some("0o") => (&s[2..], 8),
        Some("0b") => (&s[2..], 2),
        _ => (s.as_str(), 10),
    };
    let digits = ["u8", "u16", "u32", "u64", "usize", "i32", "i64"]
        .iter()
        .find_map(|suffix| digits.strip_suffix(suffix))
        .unwrap_or(digits);
    u32::from_str_radix(digits, radix).map_or(Kind::Other, Kind::Num)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SMOKE: &str = r#"//! `smoke`: a doc comment with "quotes" and a pub const X: Repro in it.

use repros::prelude::*;

pub const REPRO: Repro = Repro {
    name: "smoke",
    description: "/proc is mounted and a TCP connection over 127.0.0.1 works",
    config: &["PROC_FS", "NET", "INET"],
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    let c = '"'; let l: &'static str = "}"; /* } nested /* } */ */
    Ok(Verdict::Pass)
}
"#;

    #[test]
    fn reads_a_declaration_and_its_defaults() {
        let d = parse(SMOKE).unwrap();
        assert_eq!(
            d,
            vec![Decl {
                item: "REPRO".into(),
                line: 5,
                name: "smoke".into(),
                description: "/proc is mounted and a TCP connection over 127.0.0.1 works".into(),
                config: vec!["PROC_FS".into(), "NET".into(), "INET".into()],
                cpus: 1,
                disks: vec![],
                memory_mib: 0,
            }]
        );
    }

    #[test]
    fn reads_every_field_and_several_items_in_order() {
        let text = "pub const A: Repro = Repro {\n    name: \"a\",\n    cpus: 2,\n    disks: &[\"new:64M:ext4\", \"x.img\",],\n    memory_mib: 0x200,\n    description: r#\"raw \"one\"\"#,\n    run: go,\n};\nconst HIDDEN: Repro = Repro { name: \"h\", run };\n    pub const INNER: Repro = Repro { name: \"i\", run };\npub const LIMIT: u32 = 3;\npub const B: Repro=Repro{name:\"b\",run,..Repro::DEFAULT};\n";
        let d = parse(text).unwrap();
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!((d[0].cpus, d[0].memory_mib, d[0].disks.len()), (2, 512, 2));
        assert_eq!(d[0].description, "raw \"one\"");
        assert_eq!((d[1].item.as_str(), d[1].line), ("B", 12));
    }

    #[test]
    fn what_the_host_cannot_read_is_refused_with_its_line() {
        let e = |text: &str| parse(text).unwrap_err().to_string();
        assert!(e("fn helper() {}\n").starts_with("declares no repro"), "{}", e("fn helper() {}\n"));
        assert_eq!(
            e("pub const R: Repro = Repro {\n    name: NAME,\n    run,\n};\n"),
            "line 2: R: `name` must be a string literal (the host reads it without compiling the file)"
        );
        assert_eq!(
            e("pub const R: Repro = Repro {\n    name: \"r\",\n    cpus: N + 1,\n    run,\n};\n"),
            "line 3: R: `cpus` must be a whole number literal (the host reads it without compiling the file)"
        );
        assert_eq!(e("pub const R: Repro = Repro { run, };\n"), "line 1: R: it needs a `name: \"...\"`");
        assert_eq!(
            e("pub const R: Repro = Repro { name: \"Big\", run };\n"),
            "line 1: R: name \"Big\" is not [a-z0-9_]+"
        );
        assert_eq!(
            e("pub const R: Repro = Repro { name: \"r\", colour: 3, run };\n"),
            "line 1: R: `Repro` has no field `colour`"
        );
        assert_eq!(
            e("pub const R: Repro = Repro { name: \"r\", config: &[\"CONFIG_NET\"], run };\n"),
            "line 1: R: config option \"CONFIG_NET\" is a bare name, without CONFIG_ or a value"
        );
        assert_eq!(e("pub const R: Repro = make();\n"), "line 1: R: the value must be a `Repro { ... }` literal");
        assert_eq!(e("pub const R: Repro = Repro { name: \"r\"\n"), "line 1: R: the `Repro {` is never closed");
        assert_eq!(e("/* open\n"), "line 1: a /* comment is never closed");
    }

    #[test]
    fn string_escapes_and_numbers() {
        let d = parse("pub const R: Repro = Repro { name: \"r\", description: \"a\\tb \\u{e9} \\x41 \\\"q\\\" \\\n   c\", memory_mib: 1_024u32, run };").unwrap();
        assert_eq!(d[0].description, "a\tb \u{e9} A \"q\" c");
        assert_eq!(d[0].memory_mib, 1024);
    }

    #[test]
    fn registries_list_files_by_path_and_items_in_order() {
        let text = render_registry(
            &[("/src/01-a.rs", vec!["REPRO".into()], false), ("/x/b.rs", vec!["X".into(), "Y".into()], true)],
            "repros::Repro",
        );
        assert!(
            text.contains("#[path = \"/src/01-a.rs\"]\nmod repro_0;\n#[allow(unsafe_code)]\n#[path = \"/x/b.rs\"]\nmod repro_1;\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "pub static REPROS: &[repros::Repro] = &[\n    repro_0::REPRO,\n    repro_1::X,\n    repro_1::Y,\n];\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn numbered_files_come_first() {
        let mut files = vec!["zeta.rs", "10-ten.rs", "2-two.rs", "alpha.rs"];
        files.sort_by_key(|f| file_order(f));
        assert_eq!(files, ["2-two.rs", "10-ten.rs", "alpha.rs", "zeta.rs"]);
        assert_eq!(file_order("01-smoke.rs"), (1, "smoke".into()));
    }
}
