//! `--distcc`'s host check against real distccd daemons the test starts
//! on 127.0.0.1 (Debian's distcc, which `cargo xtask ci` installs): a
//! host with the same compiler is kept, one whose compiler records
//! another version is dropped, one that does not answer is dropped, each
//! with its one-line warning. Builds through distcc and the shared ccache
//! are in the slow tier.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use krepro_runner::builder::distribute::check_distcc;

#[test]
fn hosts_with_another_compiler_or_no_answer_are_dropped_with_a_warning() {
    let same = common::distccd(false);
    let other = common::distccd(true);
    let silent = common::free_port();
    let hosts = format!("127.0.0.1:{}/3 127.0.0.1:{}/3 127.0.0.1:{silent} localhost/2", same.port, other.port);
    let mut said = Vec::new();
    let remote = check_distcc(&hosts, "gcc-12", None, &mut |m| said.push(m.to_owned())).unwrap();
    let remote = remote.expect("the host with the same compiler is kept");
    let env: Vec<(&str, &str)> = remote.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let kept = format!("127.0.0.1:{}/3 localhost/2", same.port);
    assert_eq!(env, [("CCACHE_PREFIX", "distcc"), ("DISTCC_HOSTS", kept.as_str())]);
    // distcc's own count of the slots: 3 there and 2 here.
    assert_eq!(remote.jobs, Some(5));
    let warnings: Vec<&String> = said.iter().filter(|m| m.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{said:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "warning: distcc host 127.0.0.1:{}/3 compiles with \"GCC: (Debian 11.3.0-12) 11.3.0\", not this machine's \"GCC: (Debian 12",
            other.port
        )),
        "{said:?}"
    );
    assert!(
        warnings[1]
            .starts_with(&format!("warning: distcc host 127.0.0.1:{silent} did not compile with gcc-12: dropped")),
        "{said:?}"
    );
    assert!(warnings.iter().all(|w| !w.contains('\n')), "{said:?}");
    // The kept host did compile the probe.
    assert!(same.log().contains("COMPILE_OK"), "{}", same.log());
}

#[test]
fn with_no_host_left_the_build_is_local_and_says_so() {
    let other = common::distccd(true);
    let mut said = Vec::new();
    let remote = check_distcc(&format!("127.0.0.1:{}", other.port), "gcc-12", None, &mut |m| said.push(m.to_owned()));
    assert_eq!(remote.unwrap(), None);
    assert_eq!(said.last().map(String::as_str), Some("warning: no distcc host is left: compiling here"), "{said:?}");
}
