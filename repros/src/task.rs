//! Threads and child processes: [`Cx::spawn`], [`Thread::join`],
//! [`Barrier`], [`pin_to_cpu`], [`current_cpu`], [`Cx::cpus_online`] and
//! [`Cx::fork`].
//!
//! Creating a thread or a process takes what rustix's safe calls cannot
//! do (clone(2) onto a new stack, fork(2) with the allocator's lock held),
//! so the SDK asks the process it runs in, through [`Runtime`]: PID 1
//! implements it on raw system calls (init/src/sys/thread.rs), the host
//! tests on std. Everything else here is safe rustix.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, Ordering};

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};
use rustix::thread::futex;

use crate::sdk::{Cx, Error, Result, Step as _};

/// A thread's function as the runtime runs it: what it returns is boxed.
pub type ThreadMain = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// What the SDK needs from the process it runs in to start threads and
/// child processes. PID 1 provides one; a repro never implements it.
pub trait Runtime: Sync {
    /// Starts `main` on a new thread of this process, with a stack of its
    /// own.
    fn spawn(&self, main: ThreadMain) -> Result<Box<dyn Join>>;

    /// fork(2). In the child, runs `child` and ends the process with the
    /// status it returns, never returning here nor running anything of the
    /// parent's (no verdict, no power-off). In the parent: the child's pid.
    fn fork(&self, child: &mut dyn FnMut() -> i32) -> Result<Pid>;
}

/// A thread [`Runtime::spawn`] started.
pub trait Join: Send {
    /// Waits until the thread has ended; what its function returned.
    fn join(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A running thread whose function returns `Result<T>`. Dropping it
/// without [`Thread::join`] lets the thread run on (its stack is then
/// never freed).
pub struct Thread<T> {
    handle: Box<dyn Join>,
    result: PhantomData<fn() -> T>,
}

impl<T: 'static> Thread<T> {
    /// Waits for the thread to end; what it returned. (A panic in a thread
    /// does not come back here: it is the repro's `error` verdict at once.)
    pub fn join(self) -> Result<T> {
        match self.handle.join().downcast::<Result<T>>() {
            Ok(result) => *result,
            Err(_) => Err(Error::Reason { step: "join", reason: "the thread ended without a result" }),
        }
    }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this status.
    Exited(i32),
    /// This signal killed it.
    Killed(i32),
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChildExit::Exited(code) => write!(f, "exit status {code}"),
            ChildExit::Killed(sig) => write!(f, "killed by signal {sig}{}", crate::guest::signal_name(sig)),
        }
    }
}

impl Cx {
    /// Runs `f` on a new thread, pinned to CPU `cpu` when given (before `f`
    /// starts; a failed pin is the thread's error). `thread.join()` gives
    /// what `f` returned.
    pub fn spawn<T, F>(&self, cpu: Option<usize>, f: F) -> Result<Thread<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let main: ThreadMain = Box::new(move || {
            let result = match cpu {
                Some(cpu) => pin_to_cpu(cpu).and_then(|()| f()),
                None => f(),
            };
            Box::new(result)
        });
        Ok(Thread { handle: self.runtime("spawn")?.spawn(main)?, result: PhantomData })
    }

    /// Runs `child` in a forked child process and waits for it: its exit
    /// status (what `child` returned) or the signal that killed it. A child
    /// that dies of SIGSEGV is data for the repro, not a crash of PID 1;
    /// a Rust panic in the child prints its message and kills the child
    /// with SIGABRT.
    pub fn fork<F: FnOnce() -> i32>(&self, child: F) -> Result<ChildExit> {
        let mut child = Some(child);
        let pid = self.runtime("fork")?.fork(&mut || child.take().map_or(0, |f| f()))?;
        wait_child(pid)
    }

    /// The CPUs online, e.g. `[0, 1]`: those this process may run on
    /// (sched_getaffinity(2)), which the kernel reports as its allowed
    /// CPUs that are active. For PID 1, whose affinity is every CPU, that
    /// is the CPUs online.
    pub fn cpus_online(&self) -> Result<Vec<usize>> {
        let set = rustix::thread::sched_getaffinity(None).step("sched_getaffinity")?;
        Ok((0..rustix::thread::CpuSet::MAX_CPU).filter(|&cpu| set.is_set(cpu)).collect())
    }
}

/// Waits for child `pid` to end.
pub fn wait_child(pid: Pid) -> Result<ChildExit> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(ChildExit::Exited(code));
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(ChildExit::Killed(sig));
                }
            }
            Ok(None) | Err(Errno::INTR) => {}
            Err(errno) => return Err(Error::Errno { step: "waitpid", errno }),
        }
    }
}

/// Pins the calling thread to CPU `cpu` (sched_setaffinity(2)).
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).step("sched_setaffinity")
}

/// The CPU the calling thread runs on now (getcpu(2)).
pub fn current_cpu() -> Result<usize> {
    crate::syscall::getcpu().map(|(cpu, _)| cpu as usize).step("getcpu")
}

/// Lets `n` threads start something together: each calls
/// [`Barrier::wait`], and none returns before all `n` have called it. It
/// can be used again, round after round. Waiters spin briefly, then sleep
/// on a futex.
#[derive(Debug)]
pub struct Barrier {
    parties: u32,
    arrived: AtomicU32,
    round: AtomicU32,
}

impl Barrier {
    /// A barrier for `n` threads (at least 1).
    pub fn new(n: usize) -> Barrier {
        Barrier { parties: n.clamp(1, u32::MAX as usize) as u32, arrived: AtomicU32::new(0), round: AtomicU32::new(0) }
    }

    /// Waits until all threads have arrived. True for exactly one of them
    /// each round (the last to arrive).
    pub fn wait(&self) -> bool {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            // Reset before the new round is visible: a thread can only
            // arrive again after it has seen it.
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            // FUTEX_WAKE takes an int count: i32::MAX is "all".
            let _ = futex::wake(&self.round, futex::Flags::PRIVATE, i32::MAX as u32);
            return true;
        }
        let mut spins = 0u32;
        while self.round.load(Ordering::Acquire) == round {
            if spins < 10_000 {
                spins += 1;
                core::hint::spin_loop();
            } else {
                // EAGAIN: the round moved on before we slept.
                let _ = futex::wait(&self.round, futex::Flags::PRIVATE, round, None);
            }
        }
        false
    }
}

/// The runtime the host tests use: std threads and libc's fork.
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) mod host {
    extern crate std;
    use super::*;

    pub(crate) struct Host;
    pub(crate) static HOST: Host = Host;

    struct StdThread(std::thread::JoinHandle<Box<dyn Any + Send>>);

    impl Join for StdThread {
        fn join(self: Box<Self>) -> Box<dyn Any + Send> {
            self.0.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }
    }

    impl Runtime for Host {
        fn spawn(&self, main: ThreadMain) -> Result<Box<dyn Join>> {
            Ok(Box::new(StdThread(std::thread::spawn(main))))
        }

        fn fork(&self, child: &mut dyn FnMut() -> i32) -> Result<Pid> {
            // SAFETY: glibc's fork leaves the child's malloc usable; the
            // child only runs `child` and then _exit()s, never returning
            // into the test harness.
            match unsafe { libc::fork() } {
                -1 => {
                    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    Err(Error::Errno { step: "fork", errno: Errno::from_raw_os_error(errno) })
                }
                0 => {
                    let status = child();
                    // SAFETY: ends the child at once, running nothing of
                    // the test harness's.
                    unsafe { libc::_exit(status) }
                }
                pid => Pid::from_raw(pid).ok_or(Error::Reason { step: "fork", reason: "a negative pid" }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::sync::Arc;
    use core::sync::atomic::AtomicUsize;
    use rustix::process::{getpid, kill_process, Signal};

    fn cx() -> Cx {
        Cx::new(String::new(), None).with_runtime(&host::HOST)
    }

    #[test]
    fn threads_return_their_results() {
        let cx = cx();
        let a = cx.spawn(None, || Ok(40 + 2)).unwrap();
        let b = cx.spawn(None, || -> Result<()> { Err(Error::Reason { step: "b", reason: "failed" }) }).unwrap();
        assert_eq!(a.join(), Ok(42));
        assert_eq!(b.join(), Err(Error::Reason { step: "b", reason: "failed" }));
    }

    #[test]
    fn a_thread_runs_on_the_cpu_it_is_pinned_to() {
        let cx = cx();
        let cpu = *cx.cpus_online().unwrap().last().unwrap();
        let t = cx.spawn(Some(cpu), current_cpu).unwrap();
        assert_eq!(t.join(), Ok(cpu));
        // A CPU that does not exist: the thread's error, from the kernel.
        let t = cx.spawn(Some(1023), || Ok(())).unwrap();
        assert_eq!(t.join(), Err(Error::Errno { step: "sched_setaffinity", errno: Errno::INVAL }));
    }

    #[test]
    fn no_runtime_no_threads() {
        let cx = Cx::new(String::new(), None);
        let e = cx.spawn(None, || Ok(())).err().unwrap();
        assert_eq!(e.to_string(), "spawn: this context has no runtime (Cx::with_runtime)");
        assert_eq!(cx.fork(|| 0).unwrap_err().step(), "fork");
    }

    #[test]
    fn barrier_holds_everyone_until_the_last_arrives_round_after_round() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 200;
        let cx = cx();
        let barrier = Arc::new(Barrier::new(THREADS));
        let arrived = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, arrived) = (barrier.clone(), arrived.clone());
                cx.spawn(None, move || {
                    let mut leaders = 0;
                    for round in 0..ROUNDS {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        leaders += usize::from(barrier.wait());
                        // Nobody is past the barrier before all arrived.
                        let seen = arrived.load(Ordering::SeqCst);
                        if seen < (round + 1) * THREADS {
                            return Err(Error::Reason { step: "barrier", reason: "passed before all arrived" });
                        }
                        barrier.wait();
                    }
                    Ok(leaders)
                })
                .unwrap()
            })
            .collect();
        let leaders: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(leaders, ROUNDS, "one leader per round");
    }

    #[test]
    fn fork_gives_the_exit_status_or_the_signal() {
        let cx = cx();
        assert_eq!(cx.fork(|| 7), Ok(ChildExit::Exited(7)));
        assert_eq!(cx.fork(|| 0), Ok(ChildExit::Exited(0)));
        // (Not SIGSEGV: std's stack overflow handler catches that here.)
        let died = cx.fork(|| {
            let _ = kill_process(getpid(), Signal::KILL);
            0
        });
        assert_eq!(died, Ok(ChildExit::Killed(9)));
        assert_eq!(died.unwrap().to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!(ChildExit::Killed(11).to_string(), "killed by signal 11 (SIGSEGV)");
        assert_eq!(ChildExit::Exited(3).to_string(), "exit status 3");
    }

    #[test]
    fn the_cpus_online_are_those_we_may_run_on() {
        let cpus = cx().cpus_online().unwrap();
        assert!(!cpus.is_empty() && cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
        let last = online.trim().rsplit([',', '-']).next().unwrap().parse::<usize>().unwrap();
        assert!(*cpus.last().unwrap() <= last, "{cpus:?} vs {online}");
    }
}
