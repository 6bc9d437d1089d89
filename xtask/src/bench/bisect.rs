//! `cargo xtask bench --bisect`: the planted bisect (the slow tier's), run
//! as a user would, with where each step's time went.
//!
//! In a fresh krepro cache with a warm ccache (its own, kept under
//! target/, warmed by the first run): the user builds their tree once
//! (`krepro kernel build`, as before bisecting), then `krepro bisect` runs
//! in the tree, with verification. Prints the bisect's wall time, each
//! step's phases and their medians beside make's own time, as the
//! report's JSON gives them.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use krepro_runner::host::spawn::Cmd;
use serde_json::Value;

use super::planted;

/// Runs it; `json` also gets the bisect's report.
pub fn bench(extra: &[String], json: Option<&Path>) -> Result<()> {
    let scratch = crate::target_dir().join("krepro/bench-bisect");
    let repo = planted::history(&scratch.join("linux-git"))?;
    let ccache = scratch.join("ccache");
    std::fs::create_dir_all(&ccache).with_context(|| format!("create {}", ccache.display()))?;
    let cache = tempfile::Builder::new().prefix("krepro-bench-bisect-").tempdir().context("create a temp dir")?;
    let me = std::env::current_exe().context("find the xtask binary")?;
    let run = |args: &[&str]| -> Result<(f64, String)> {
        let started = Instant::now();
        let out = Cmd::new(&me, args, &repo)
            .args(extra)
            .env("XDG_CACHE_HOME", cache.path())
            .env("CCACHE_DIR", &ccache)
            .quiet()
            .output_any_status()?;
        let secs = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!("xtask {} failed ({}):\n{stderr}", args.join(" "), out.status);
        }
        Ok((secs, stderr))
    };
    eprintln!("krepro: the user's build of {} (a fresh krepro cache, ccache in {})", repo.display(), ccache.display());
    let (user_secs, _) = run(&["kernel", "build", "--repro", "listen_backlog"])?;
    eprintln!("krepro: the planted bisect, in the tree");
    let report_path = cache.path().join("bisect.json");
    let report = report_path.to_str().context("a UTF-8 temp path")?;
    let (bisect_secs, _) = run(&[
        "bisect",
        "--good",
        "krepro-test-good",
        "--bad",
        "krepro-test-bad",
        "--repro",
        "listen_backlog",
        "--accel",
        "tcg",
        "--json",
        report,
    ])?;
    let text = std::fs::read_to_string(&report_path).with_context(|| format!("read {report}"))?;
    let r: Value = serde_json::from_str(&text)?;
    if let Some(out) = json {
        std::fs::write(out, &text).with_context(|| format!("write {}", out.display()))?;
    }
    print(&r, user_secs, bisect_secs);
    Ok(())
}

const PHASES: [&str; 8] = ["checkout", "fetch", "config", "compile", "link", "image", "vmlinux", "boot"];

fn print(r: &Value, user_secs: f64, bisect_secs: f64) {
    let found = r["commit"]["subject"].as_str().unwrap_or("?");
    let verification = &r["verification"];
    println!(
        "bisect: {bisect_secs:.0} s wall ({} s in the report), {} commits tested, verification {:.0} s ({}); found: {found}",
        r["wall_secs"].as_f64().unwrap_or(0.0).round(),
        r["steps"].as_array().map_or(0, Vec::len),
        verification["secs"].as_f64().unwrap_or(0.0),
        verification["status"].as_str().unwrap_or("none"),
    );
    println!("the user's build before it: {user_secs:.0} s");
    println!("{:<14} {:<8} {}  {:>6}", "step", "verdict", PHASES.map(|p| format!("{p:>8}")).join(""), "make");
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len() + 1];
    for s in r["steps"].as_array().into_iter().flatten() {
        let p = &s["phases"];
        let values: Vec<f64> = PHASES.iter().map(|k| p[k].as_f64().unwrap_or(0.0)).collect();
        let make = values[3] + values[4] + values[5];
        for (i, v) in values.iter().chain([&make]).enumerate() {
            columns[i].push(*v);
        }
        println!(
            "{:<14} {:<8} {}  {make:>6.1}",
            &s["commit"].as_str().unwrap_or("?")[..12],
            s["verdict"].as_str().unwrap_or("?"),
            values.iter().map(|v| format!("{v:>8.1}")).collect::<String>(),
        );
    }
    let medians: Vec<f64> = columns.iter().map(|c| super::median(c).unwrap_or(0.0)).collect();
    println!(
        "{:<14} {:<8} {}  {:>6.1}",
        "median",
        "",
        medians[..PHASES.len()].iter().map(|v| format!("{v:>8.1}")).collect::<String>(),
        medians[PHASES.len()]
    );
}
