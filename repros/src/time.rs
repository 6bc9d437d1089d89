//! Loops bounded by time: [`Cx::deadline`] and [`Deadline::race`], so that
//! a racing repro reports its verdict before the host's hang timer fires.

use core::ops::ControlFlow;
use core::time::Duration;

use crate::protocol;
use crate::sdk::{since_boot, Cx, Error, Result};

/// The deadline when the kernel command line gives none (no
/// `krepro.deadline_ms=`), in milliseconds since boot.
pub const DEFAULT_DEADLINE_MS: u64 = 20_000;

/// A time on the boot clock ([`since_boot`]) by which a repro should be
/// done. It is `Copy`: hand it to threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Duration);

/// How a [`Deadline::race`] loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Race<B> {
    /// How many times the loop body ran.
    pub iterations: u64,
    /// What the body broke out with, if it did.
    pub broke: Option<B>,
    /// Whether the deadline ended the loop.
    pub timed_out: bool,
}

impl Deadline {
    /// The deadline `at` on the boot clock.
    pub const fn at(at: Duration) -> Deadline {
        Deadline(at)
    }

    /// The deadline `d` from now.
    pub fn after(d: Duration) -> Deadline {
        Deadline(since_boot() + d)
    }

    /// When it is, on the boot clock.
    pub fn when(self) -> Duration {
        self.0
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        since_boot() >= self.0
    }

    /// The time left until it (zero once it passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_sub(since_boot())
    }

    /// Runs `body(0)`, `body(1)`, ... until it breaks, `max_iterations`
    /// have run, or the deadline passes. The clock is read about every
    /// 10 ms, not every iteration (reading it costs system calls), so the
    /// loop may end a few milliseconds after the deadline.
    pub fn race<B>(self, max_iterations: u64, mut body: impl FnMut(u64) -> ControlFlow<B>) -> Race<B> {
        let mut check = Checker::new(self);
        for i in 0..max_iterations {
            if check.passed(i) {
                return Race { iterations: i, broke: None, timed_out: true };
            }
            if let ControlFlow::Break(b) = body(i) {
                return Race { iterations: i + 1, broke: Some(b), timed_out: false };
            }
        }
        Race { iterations: max_iterations, broke: None, timed_out: false }
    }
}

/// Reads the clock at iterations spaced so that reads come about every
/// [`Checker::EVERY`]: the spacing doubles while they come faster, halves
/// while they come slower.
struct Checker<C = fn() -> Duration> {
    deadline: Deadline,
    clock: C,
    next: u64,
    stride: u64,
    last: Duration,
}

impl Checker {
    fn new(deadline: Deadline) -> Self {
        Checker::with_clock(deadline, since_boot)
    }
}

impl<C: FnMut() -> Duration> Checker<C> {
    const EVERY: Duration = Duration::from_millis(10);
    const MAX_STRIDE: u64 = 1 << 20;

    fn with_clock(deadline: Deadline, mut clock: C) -> Self {
        let last = clock();
        Checker { deadline, clock, next: 0, stride: 1, last }
    }

    /// Whether the deadline has passed, as far as iteration `i` knows.
    fn passed(&mut self, i: u64) -> bool {
        if i < self.next {
            return false;
        }
        let now = (self.clock)();
        let since = now.saturating_sub(self.last);
        if since < Self::EVERY {
            self.stride = (self.stride * 2).min(Self::MAX_STRIDE);
        } else if since > 2 * Self::EVERY {
            self.stride = (self.stride / 2).max(1);
        }
        (self.last, self.next) = (now, i + self.stride);
        now >= self.deadline.0
    }
}

/// The deadline for a kernel booted with `cmdline`: `krepro.deadline_ms=`
/// (the host's `--timeout`, else [`DEFAULT_DEADLINE_MS`]) less a margin of
/// a fifth, at least 2 s. The margin covers what the boot clock does not
/// see (qemu starting before the kernel does) and what comes after the
/// repro (the verdict on every channel, the power-off).
pub fn deadline(cmdline: &str) -> Result<Deadline> {
    let ms = match protocol::cmdline_param(cmdline, protocol::CMDLINE_DEADLINE_MS) {
        None => DEFAULT_DEADLINE_MS,
        Some(v) => v.parse().map_err(|_| Error::Reason {
            step: "parse krepro.deadline_ms",
            reason: "not a whole number of milliseconds",
        })?,
    };
    let margin = (ms / 5).max(2000);
    Ok(Deadline(Duration::from_millis(ms.saturating_sub(margin))))
}

impl Cx {
    /// When the repro should be done: see [`deadline`].
    pub fn deadline(&self) -> Result<Deadline> {
        deadline(self.cmdline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_leaves_a_margin_before_the_hosts_timeout() {
        let ms = |cmdline| deadline(cmdline).map(|d| d.when().as_millis());
        assert_eq!(ms(""), Ok(16_000));
        assert_eq!(ms("krepro.deadline_ms=60000"), Ok(48_000));
        assert_eq!(ms("krepro.deadline_ms=5000"), Ok(3000));
        assert_eq!(ms("krepro.deadline_ms=1000"), Ok(0));
        assert_eq!(
            ms("krepro.deadline_ms=10s"),
            Err(Error::Reason { step: "parse krepro.deadline_ms", reason: "not a whole number of milliseconds" })
        );
        let cx = Cx::new("krepro.deadline_ms=30000".into(), None);
        assert_eq!(cx.deadline(), Ok(Deadline::at(Duration::from_secs(24))));
    }

    #[test]
    fn a_race_ends_at_its_limit_at_a_break_or_at_the_deadline() {
        let far = Deadline::after(Duration::from_secs(3600));
        assert_eq!(
            far.race(1000, |_| ControlFlow::<()>::Continue(())),
            Race { iterations: 1000, broke: None, timed_out: false }
        );
        let r = far.race(1000, |i| if i == 41 { ControlFlow::Break("found") } else { ControlFlow::Continue(()) });
        assert_eq!(r, Race { iterations: 42, broke: Some("found"), timed_out: false });
        let past = Deadline::at(Duration::ZERO);
        assert!(past.passed() && past.remaining() == Duration::ZERO);
        assert_eq!(
            past.race(1000, |_| ControlFlow::<()>::Continue(())),
            Race { iterations: 0, broke: None, timed_out: true }
        );
        // A real deadline: the loop stops soon after it (the bound is
        // loose for loaded test machines; the clock is read every ~10 ms).
        let soon = Deadline::after(Duration::from_millis(100));
        let r = soon.race(u64::MAX, |_| ControlFlow::<()>::Continue(()));
        assert!(r.timed_out && r.iterations > 0);
        assert!(soon.passed() && since_boot() - soon.when() < Duration::from_secs(1));
    }

    #[test]
    fn the_clock_is_read_about_every_10_ms() {
        use core::cell::Cell;
        let deadline = Deadline::at(Duration::from_secs(1));
        // A clock read 1 us apart: the stride doubles at each read, so
        // 1000 iterations read it 10 times (the first at creation).
        let (now, reads) = (Cell::new(Duration::ZERO), Cell::new(0));
        let fast = || {
            now.set(now.get() + Duration::from_micros(1));
            reads.set(reads.get() + 1);
            now.get()
        };
        let mut c = Checker::with_clock(deadline, fast);
        assert!(!(0..1000).any(|i| c.passed(i)));
        assert_eq!((reads.get(), c.stride), (10, 512));
        // Reads 30 ms apart: the stride halves back to 1.
        let slow = || {
            now.set(now.get() + Duration::from_millis(30));
            now.get()
        };
        let mut c = Checker::with_clock(deadline, slow);
        c.stride = 64;
        let passed_at = (0..1000).find(|&i| c.passed(i));
        assert_eq!(c.stride, 1);
        // And once the clock is past the deadline, the check says so.
        assert!(passed_at.is_some_and(|i| i < 100), "{passed_at:?}");
    }
}
