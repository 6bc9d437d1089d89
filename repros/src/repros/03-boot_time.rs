//! `boot_time`: the kernel reached the repro within `krepro.max_uptime_ms=`.

use repros::prelude::*;

pub const REPRO: Repro = Repro {
    name: "boot_time",
    description: "fails if /proc/uptime exceeds krepro.max_uptime_ms= (default 5000)",
    config: &["PROC_FS"],
    run,
    ..Repro::DEFAULT
};

const DEFAULT_MAX_MS: u64 = 5000;

fn run(cx: &mut Cx) -> Result {
    let max_ms = match cx.param("max_uptime_ms") {
        None => DEFAULT_MAX_MS,
        Some(v) => {
            v.parse().map_err(|_| Error::Reason { step: "parse krepro.max_uptime_ms", reason: "not a whole number" })?
        }
    };
    let text = cx.read_to_string("/proc/uptime").step("read /proc/uptime")?;
    let uptime_ms = parse_uptime_ms(&text)
        .ok_or(Error::Reason { step: "parse /proc/uptime", reason: "not \"<seconds>.<hundredths> <idle>\"" })?;
    println!(cx, "boot_time: uptime {uptime_ms} ms, limit {max_ms} ms");
    Ok(if uptime_ms > max_ms {
        Verdict::Fail(format!("uptime {uptime_ms} ms exceeds krepro.max_uptime_ms={max_ms}"))
    } else {
        Verdict::Pass
    })
}

/// `/proc/uptime` is "<seconds>.<hundredths> <idle>".
fn parse_uptime_ms(text: &str) -> Option<u64> {
    let first = text.split_ascii_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
    let frac: String = frac.chars().chain("000".chars()).take(3).collect();
    Some(secs.parse::<u64>().ok()? * 1000 + frac.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_uptime() {
        assert_eq!(parse_uptime_ms("12.34 5.67\n"), Some(12_340));
        assert_eq!(parse_uptime_ms("0.05 0.00"), Some(50));
        assert_eq!(parse_uptime_ms("7 1"), Some(7000));
        assert_eq!(parse_uptime_ms(""), None);
        assert_eq!(parse_uptime_ms("x.1 0"), None);
    }

    #[test]
    fn limit_decides() {
        let mut cx = Cx::new("krepro.max_uptime_ms=1".into(), None);
        assert!(matches!(run(&mut cx), Ok(Verdict::Fail(m)) if m.contains("exceeds krepro.max_uptime_ms=1")));
        let mut cx = Cx::new("krepro.max_uptime_ms=18446744073709551615".into(), None);
        assert_eq!(run(&mut cx), Ok(Verdict::Pass));
        let mut cx = Cx::new("krepro.max_uptime_ms=soon".into(), None);
        assert_eq!(
            run(&mut cx),
            Err(Error::Reason { step: "parse krepro.max_uptime_ms", reason: "not a whole number" })
        );
    }
}
