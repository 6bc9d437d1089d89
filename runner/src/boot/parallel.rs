//! Several boots at once (`--parallel J`): each in a thread of its own,
//! with its own qemu, temp dir and console log, as one boot has. Results
//! come back in order, however the boots finish. Ctrl-C reaches every
//! boot through the plan's interrupt flag, and each boot's qemu dies with
//! its thread's handle, so none outlives the call.

use std::collections::BTreeMap;
use std::sync::{mpsc, Mutex};

use repros::protocol::Report;

use super::classify::CrashKind;
use super::qemu::Accel;
use super::run::RunEvent;

/// A [`RunEvent`] that crosses threads.
#[derive(Clone, Debug)]
pub enum Event {
    Fallback(String),
    QemuStarted { accel: Accel, command: String },
    Console(String),
    InitStarted { boot_ms: u64 },
    Crash(CrashKind),
    Verdict(Report<String>),
    QemuStderr(String),
    Output(String),
}

impl Event {
    fn of(ev: &RunEvent<'_>) -> Event {
        match ev {
            RunEvent::Fallback { reason } => Event::Fallback((*reason).to_owned()),
            RunEvent::QemuStarted { accel, command } => {
                Event::QemuStarted { accel: *accel, command: (*command).to_owned() }
            }
            RunEvent::Console(l) => Event::Console((*l).to_owned()),
            RunEvent::InitStarted { boot_ms } => Event::InitStarted { boot_ms: *boot_ms },
            RunEvent::Crash(k) => Event::Crash(*k),
            RunEvent::Verdict(r) => Event::Verdict((*r).clone()),
            RunEvent::QemuStderr(l) => Event::QemuStderr((*l).to_owned()),
            RunEvent::Output(l) => Event::Output((*l).to_owned()),
        }
    }

    /// The event as a boot emits it.
    pub fn as_run_event(&self) -> RunEvent<'_> {
        match self {
            Event::Fallback(reason) => RunEvent::Fallback { reason },
            Event::QemuStarted { accel, command } => RunEvent::QemuStarted { accel: *accel, command },
            Event::Console(l) => RunEvent::Console(l),
            Event::InitStarted { boot_ms } => RunEvent::InitStarted { boot_ms: *boot_ms },
            Event::Crash(k) => RunEvent::Crash(*k),
            Event::Verdict(r) => RunEvent::Verdict(r),
            Event::QemuStderr(l) => RunEvent::QemuStderr(l),
            Event::Output(l) => RunEvent::Output(l),
        }
    }
}

/// What the caller hears while the boots run: `index` counts from 0.
pub enum Progress<'a, R> {
    /// Boot `index` started.
    Started(u32),
    /// An event of boot `index`, as it happens (boots interleave).
    Event(u32, &'a Event),
    /// Boot `index` is done; these come in order of index.
    Done(u32, &'a R),
}

/// One boot of [`boot_all`]: its index, where its events go; its result.
pub type BootOne<'a, R> = dyn Fn(u32, &mut dyn FnMut(RunEvent<'_>)) -> R + Sync + 'a;

/// Runs `boot(0..count)` with at most `parallel` at once and returns the
/// results in order. After each result in order, `enough` is asked with
/// the results so far: once it says so (a verdict settled, a boot failed)
/// no further boot starts, and those still running finish and count.
pub fn boot_all<R: Send>(
    count: u32,
    parallel: u32,
    boot: &BootOne<'_, R>,
    enough: &dyn Fn(&[R]) -> bool,
    on: &mut dyn FnMut(Progress<'_, R>),
) -> Vec<R> {
    enum Msg<R> {
        Started(u32),
        Event(u32, Event),
        Done(u32, R),
    }
    let mut results: Vec<R> = Vec::new();
    // The workers take boots this thread hands out, one when one ends: so
    // a boot starts only after every earlier result was weighed.
    let (job_tx, job_rx) = mpsc::channel::<u32>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Msg<R>>();
        let workers = parallel.clamp(1, count.max(1));
        for _ in 0..workers {
            let tx = tx.clone();
            let job_rx = &job_rx;
            scope.spawn(move || loop {
                let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(i) = job else { return };
                let _ = tx.send(Msg::Started(i));
                let r = boot(i, &mut |ev| {
                    let _ = tx.send(Msg::Event(i, Event::of(&ev)));
                });
                let _ = tx.send(Msg::Done(i, r));
            });
        }
        drop(tx);
        let mut handed = 0;
        while handed < count.min(workers) {
            let _ = job_tx.send(handed);
            handed += 1;
        }
        let mut running = handed;
        let mut stopped = false;
        // Results that finished before an earlier one, waiting their turn.
        let mut early: BTreeMap<u32, R> = BTreeMap::new();
        while running > 0 {
            let Ok(msg) = rx.recv() else { break };
            match msg {
                Msg::Started(i) => on(Progress::Started(i)),
                Msg::Event(i, ev) => on(Progress::Event(i, &ev)),
                Msg::Done(i, r) => {
                    running -= 1;
                    early.insert(i, r);
                    while let Some(r) = early.remove(&(results.len() as u32)) {
                        on(Progress::Done(results.len() as u32, &r));
                        results.push(r);
                        stopped |= enough(&results);
                    }
                    if !stopped && handed < count {
                        let _ = job_tx.send(handed);
                        handed += 1;
                        running += 1;
                    }
                }
            }
        }
        // No more work: the workers see the channel close and end. Every
        // boot handed out is done, so none waits in `early`.
        drop(job_tx);
    });
    results
}

/// The `enough` of [`boot_all`] that stops new boots after one that
/// could not run (qemu failed, Ctrl-C): its error is the answer.
pub fn after_an_error<T, E>(results: &[Result<T, E>]) -> bool {
    results.last().is_some_and(Result::is_err)
}

/// The default `--parallel`: the host's CPUs over the guest's, at least
/// one, no more than the host's free memory holds guests of `memory_mib`.
pub fn default_parallel(guest_cpus: u32, memory_mib: u32, available_mib: Option<u64>) -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let by_cpu = (cpus / guest_cpus.max(1)).max(1);
    let by_memory = available_mib.map_or(u32::MAX, |free| (free / u64::from(memory_mib.max(1))).max(1) as u32);
    by_cpu.min(by_memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn results_come_in_order_with_at_most_j_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let boot = |i: u32, on: &mut dyn FnMut(RunEvent<'_>)| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            on(RunEvent::Console(&format!("boot {i}")));
            // Later boots finish first.
            std::thread::sleep(Duration::from_millis(u64::from(40 - i * 8)));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 10
        };
        let done = Mutex::new(Vec::new());
        let mut events = 0;
        let results = boot_all(5, 2, &boot, &|_| false, &mut |p| match p {
            Progress::Done(i, r) => done.lock().unwrap().push((i, *r)),
            Progress::Event(_, Event::Console(_)) => events += 1,
            _ => {}
        });
        assert_eq!(results, [0, 10, 20, 30, 40]);
        assert_eq!(*done.lock().unwrap(), [(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]);
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(events, 5);
    }

    #[test]
    fn once_enough_no_new_boot_starts_and_running_ones_count() {
        let started = AtomicUsize::new(0);
        let boot = |i: u32, _: &mut dyn FnMut(RunEvent<'_>)| {
            started.fetch_add(1, Ordering::SeqCst);
            // The first ends well before the second.
            std::thread::sleep(Duration::from_millis(if i == 0 { 5 } else { 80 }));
            i
        };
        // Enough after the first result: the second (running beside it) counts too.
        let results = boot_all(10, 2, &boot, &|r| !r.is_empty(), &mut |_| {});
        assert_eq!(results, [0, 1]);
        assert_eq!(started.load(Ordering::SeqCst), 2);
        // One at a time is the serial loop: it stops right away.
        let results = boot_all(10, 1, &boot, &|r| !r.is_empty(), &mut |_| {});
        assert_eq!(results, [0]);
    }

    #[test]
    fn the_default_is_cpus_over_guest_cpus_within_free_memory() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        assert_eq!(default_parallel(1, 256, None), cpus);
        assert_eq!(default_parallel(cpus * 2, 256, None), 1);
        assert_eq!(default_parallel(1, 1024, Some(1500)), 1);
        assert_eq!(default_parallel(1, 1024, Some(100)), 1);
    }
}
