//! `dmesg_clean`: the kernel log holds no warning, BUG or Oops.

use repros::prelude::*;

pub const REPRO: Repro = Repro {
    name: "dmesg_clean",
    description: "fails if the kernel log holds a WARNING:, BUG:, KASAN:/UBSAN: report or Oops, quoting it",
    config: &["PRINTK", "DEVTMPFS"],
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    let log = match cx.kmsg_since(KmsgMark::START) {
        Ok(log) => log,
        Err(e) if e.step() == "open /dev/kmsg" => return Ok(Verdict::Skip(format!("no kernel log: {e}"))),
        Err(e) => return Err(e),
    };
    Ok(match splat(&log) {
        Some(line) => Verdict::Fail(format!("kernel log: {line}")),
        None => Verdict::Pass,
    })
}
