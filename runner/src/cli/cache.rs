//! `krepro cache`: what the cache holds, part by part, and trimming it.

use super::Failure;
use crate::boot::outcome::Exit;
use crate::host::cache::Cache;
use crate::host::usage::{self, human, Part, Trimmed};

#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: Option<CacheCommand>,
    /// Print one JSON object instead
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Trim the cache to its limit, least recently used first
    ///
    /// Worktrees of kernel trees that no longer exist go first, then what
    /// was used longest ago, until the cache is within the limit
    /// ($KREPRO_CACHE_MAX, default 20G; krepro also does this after its
    /// commands, at most every ten minutes). Never what a running krepro
    /// holds, nor a paused bisect's state.
    Gc {
        /// The limit for this trim, e.g. 10G [default: $KREPRO_CACHE_MAX or 20G]
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
    },
    /// Empty parts of the cache (all of it without PART), but what a
    /// running krepro holds
    Clean {
        /// kernels, builds, built, worktrees, vmlinux, logs, init, bisect
        #[arg(value_enum)]
        parts: Vec<Part>,
    },
}

pub(crate) fn run(args: &CacheArgs, cache: &Cache) -> Result<Exit, Failure> {
    match &args.command {
        None => show(cache, args.json),
        Some(CacheCommand::Gc { max_size }) => {
            let limit = match max_size {
                Some(s) => usage::parse_size(s).map_err(|e| Failure::error(format!("--max-size {e}")))?,
                None => usage::limit_from_env().map_err(Failure::error)?,
            };
            report(&usage::gc(cache, limit), args.json, Some(limit));
            Ok(Exit::Good)
        }
        Some(CacheCommand::Clean { parts }) => {
            report(&usage::clean(cache, parts), args.json, None);
            Ok(Exit::Good)
        }
    }
}

fn show(cache: &Cache, json: bool) -> Result<Exit, Failure> {
    let limit = usage::limit_from_env().map_err(Failure::error)?;
    let entries = usage::entries(cache);
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    let rows: Vec<(Part, u64, usize, usize)> = Part::ALL
        .iter()
        .map(|&p| {
            let of: Vec<_> = entries.iter().filter(|e| e.part == p).collect();
            (p, of.iter().map(|e| e.bytes).sum(), of.len(), of.iter().filter(|e| e.in_use).count())
        })
        .collect();
    if json {
        let parts: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, bytes, n, in_use)| serde_json::json!({"part": p, "bytes": bytes, "entries": n, "in_use": in_use}))
            .collect();
        let j = serde_json::json!({"root": cache.root(), "bytes": total, "limit": limit, "parts": parts});
        println!("{j}");
        return Ok(Exit::Good);
    }
    println!("{}", cache.root().display());
    for (p, bytes, n, in_use) in rows {
        let held = if in_use > 0 { format!(", {in_use} in use") } else { String::new() };
        println!("  {:<10} {:>10}  {n} entries{held}", p.name(), human(bytes));
    }
    println!("  {:<10} {:>10}  of a {} limit ($KREPRO_CACHE_MAX)", "total", human(total), human(limit));
    Ok(Exit::Good)
}

fn report(t: &Trimmed, json: bool, limit: Option<u64>) {
    if json {
        println!("{}", serde_json::to_string(t).expect("plain data"));
        return;
    }
    for p in &t.skipped_in_use {
        eprintln!("krepro: kept {}: a running krepro holds it", p.display());
    }
    let to = limit.map(|l| format!(" (limit {})", human(l))).unwrap_or_default();
    eprintln!("krepro: removed {} entries, {}; the cache holds {}{to}", t.removed.len(), human(t.freed), human(t.left));
}
