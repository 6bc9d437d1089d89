//! `race_two_cpus`: two threads on two CPUs race on one file descriptor
//! number. One keeps replacing it with dup2(2), alternating between two
//! files; the other keeps looking it up through /proc/self/fd (stat(2)
//! of the magic link). dup2 replaces atomically, so every lookup must find
//! the number open, on one of the two files. Also checks that each thread runs on the CPU it was
//! pinned to, and that the two really ran at the same time.

use repros::prelude::*;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use rustix::fd::{AsRawFd, OwnedFd};

pub const REPRO: Repro = Repro {
    name: "race_two_cpus",
    description: "threads on CPUs 0 and 1 race dup2 and /proc/self/fd on one fd number until the deadline; every lookup must find one of the two files",
    config: &["SMP", "PROC_FS"],
    cpus: 2,
    run,
    ..Repro::DEFAULT
};

/// dup2 calls at most, if the deadline does not come first.
const MAX_SWAPS: u64 = 1_000_000;

fn run(cx: &mut Cx) -> Result {
    let cpus = match two_cpus(&cx.cpus_online()?) {
        Ok(cpus) => cpus,
        Err(skip) => return Ok(skip),
    };
    let deadline = cx.deadline()?;
    race(cx, cpus, deadline)
}

/// The first two CPUs online, or why the repro skips.
fn two_cpus(online: &[usize]) -> core::result::Result<[usize; 2], Verdict> {
    match *online {
        [a, b, ..] => Ok([a, b]),
        _ => Err(Verdict::Skip(format!("needs 2 CPUs (--cpus 2); {} online", online.len()))),
    }
}

/// What both threads share.
struct Shared {
    barrier: Barrier,
    deadline: Deadline,
    /// Set by the first thread to finish: the other stops too.
    stop: AtomicBool,
    /// dup2 calls so far.
    swaps: AtomicU64,
    /// The raced number as /proc/self/fd names it.
    path: String,
    /// The inode numbers of the two files.
    inodes: [u64; 2],
}

/// What a thread does.
enum Role {
    /// dup2 the two files in turn onto the number (which it owns).
    Swap { target: OwnedFd, files: [OwnedFd; 2] },
    /// Look the number up.
    Look,
}

/// What a thread saw.
#[derive(Default)]
struct Side {
    iterations: u64,
    /// getcpu(2) before and after the loop.
    cpus: [usize; 2],
    /// Lookups that found each file.
    seen: [u64; 2],
    /// Lookups between which the other thread made progress: proof that
    /// the two ran at the same time.
    overlap: u64,
    /// What went wrong in the kernel, if anything.
    found: Option<String>,
    /// The raced number, kept open until both threads are done.
    target: Option<OwnedFd>,
}

/// The race on CPUs `cpus` until `deadline`.
fn race(cx: &Cx, cpus: [usize; 2], deadline: Deadline) -> Result {
    // Two different files (two pipes: the ends of one pipe are one inode),
    // and the number they take turns at, starting as a copy of the first.
    let (one, _one_w) = rustix::pipe::pipe().step("pipe")?;
    let (two, _two_w) = rustix::pipe::pipe().step("pipe")?;
    let target = rustix::io::fcntl_dupfd_cloexec(&one, 100).step("fcntl(F_DUPFD_CLOEXEC)")?;
    let shared = Arc::new(Shared {
        barrier: Barrier::new(2),
        deadline,
        stop: AtomicBool::new(false),
        swaps: AtomicU64::new(0),
        path: format!("/proc/self/fd/{}", target.as_raw_fd()),
        inodes: [inode(&one)?, inode(&two)?],
    });
    let started = cx.uptime();
    let roles = [Role::Swap { target, files: [two, one] }, Role::Look];
    let mut threads = Vec::new();
    for (cpu, role) in cpus.into_iter().zip(roles) {
        let shared = shared.clone();
        threads.push(cx.spawn(None, move || side(&shared, cpu, role))?);
    }
    let mut sides = Vec::new();
    for t in threads {
        sides.push(t.join()?);
    }
    let elapsed = (cx.uptime() - started).as_millis() as u64;
    let (swapper, looker) = (&sides[0], &sides[1]);
    println!(
        cx,
        "race_two_cpus: {} dup2 on CPU {}, {} lookups on CPU {} ({} and {} of each file, {} while dup2 ran) in {elapsed} ms",
        swapper.iterations,
        swapper.cpus[0],
        looker.iterations,
        looker.cpus[0],
        looker.seen[0],
        looker.seen[1],
        looker.overlap
    );
    if let Some(found) = sides.iter().find_map(|s| s.found.clone()) {
        return Ok(Verdict::Fail(found));
    }
    for (side, cpu) in sides.iter().zip(cpus) {
        if side.cpus != [cpu, cpu] {
            let [first, last] = side.cpus;
            return Ok(Verdict::Fail(format!("a thread pinned to CPU {cpu} ran on CPU {first}, then {last}")));
        }
    }
    if looker.overlap == 0 || looker.seen.contains(&0) {
        return Err(Error::Reason { step: "race", reason: "the two threads never ran at the same time" });
    }
    Ok(Verdict::Pass)
}

/// One thread: pins itself to `cpu`, waits for the other, then plays
/// `role` until the deadline, MAX_SWAPS, or the other stops.
fn side(shared: &Shared, cpu: usize, mut role: Role) -> Result<Side> {
    // Reach the barrier even when pinning failed, so that the other
    // thread is never left waiting there.
    let pinned = pin_to_cpu(cpu);
    shared.barrier.wait();
    let mut side = Side::default();
    let first = pinned.and_then(|()| current_cpu());
    if first.is_err() {
        shared.stop.store(true, Relaxed);
    }
    let mut last_swaps = 0;
    let race = shared.deadline.race(MAX_SWAPS, |i| {
        if shared.stop.load(Relaxed) {
            return ControlFlow::Break(Ok(()));
        }
        match &mut role {
            Role::Swap { target, files } => {
                shared.swaps.store(i + 1, Relaxed);
                if let Err(errno) = rustix::io::dup2(&files[i as usize % 2], target) {
                    return ControlFlow::Break(Err(Error::Errno { step: "dup2", errno }));
                }
            }
            Role::Look => {
                let path = shared.path.as_str();
                let ino = match rustix::fs::stat(path) {
                    Ok(st) => st.st_ino,
                    Err(errno) => {
                        let e = Error::Errno { step: "stat", errno };
                        side.found = Some(format!("{path} vanished while dup2 replaced it: {e}"));
                        return ControlFlow::Break(Ok(()));
                    }
                };
                match shared.inodes.iter().position(|&i| i == ino) {
                    Some(k) => side.seen[k] += 1,
                    None => {
                        side.found = Some(format!("{path} is inode {ino}, neither of the two files"));
                        return ControlFlow::Break(Ok(()));
                    }
                }
                let now = shared.swaps.load(Relaxed);
                side.overlap += u64::from(now != last_swaps);
                last_swaps = now;
            }
        }
        ControlFlow::Continue(())
    });
    shared.stop.store(true, Relaxed);
    if let Some(Err(e)) = race.broke {
        return Err(e);
    }
    side.iterations = race.iterations;
    side.cpus = [first?, current_cpu()?];
    if let Role::Swap { target, .. } = role {
        side.target = Some(target);
    }
    Ok(side)
}

/// The inode number of an open file.
fn inode(fd: &OwnedFd) -> Result<u64> {
    Ok(rustix::fs::fstat(fd).step("fstat")?.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::host::HOST;

    #[test]
    fn passes_on_the_host() {
        // The host's boot clock is long past any krepro.deadline_ms: race
        // for half a second from now instead.
        let cx = Cx::new(String::new(), None).with_runtime(&HOST);
        let Ok(cpus) = two_cpus(&cx.cpus_online().unwrap()) else { return };
        assert_eq!(race(&cx, cpus, Deadline::after(Duration::from_millis(500))), Ok(Verdict::Pass));
    }

    #[test]
    fn skips_with_one_cpu() {
        assert_eq!(two_cpus(&[0]), Err(Verdict::Skip("needs 2 CPUs (--cpus 2); 1 online".into())));
        assert_eq!(two_cpus(&[0, 1, 2]), Ok([0, 1]));
        assert_eq!(two_cpus(&[2, 5]), Ok([2, 5]));
    }
}
