//! Crash titles in syzbot's form: what kind of report the kernel printed
//! and the first function of its stack that is not a helper. `WARNING in
//! kcmp_lock`, `KASAN: slab-use-after-free Read in f`, `general
//! protection fault in f`, `INFO: task hung in f`.
//!
//! The same bug gets the same title on builds that inline and name things
//! differently: a syscall's wrappers (`__do_sys_X`, `__se_sys_X`,
//! `__x64_sys_X`, `__arm64_sys_X`) are one frame, `X`; compiler suffixes
//! (`.isra.0`, `.constprop.0`, `.cold`) go; and [`same_bug`] also takes
//! the older and newer names of one report kind as one.
//!
//! Written from the kernel's own report formats (lib/bug.c, kernel/panic.c,
//! mm/kasan/report.c, arch/x86/mm/fault.c, arch/arm64/mm/fault.c,
//! kernel/locking/lockdep.c, kernel/hung_task.c, kernel/rcu/tree_stall.h,
//! lib/ubsan.c) and from syzkaller's rules for which frames name a bug
//! (pkg/report/linux.go: the helpers to skip, the stall and hung-task
//! anchors). Tested on real consoles of Debian's and krepro's kernels in
//! `tests/fixtures/consoles`.

use super::classify::kernel_text;

/// The title of the first kernel report in `lines` (console lines as
/// printed: timestamps and caller ids are taken off here), or None when
/// there is none.
pub fn title<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lines: Vec<&str> = lines
        .into_iter()
        .filter(|l| !l.contains(repros::protocol::CONSOLE_PREFIX))
        .map(|l| kernel_text(l).trim_end())
        .collect();
    let start = lines.iter().position(|l| header(l).is_some())?;
    describe(&lines[start..])
}

/// Whether two titles name the same bug: equal once the function's
/// wrappers and suffixes are off and a report kind's old and new names
/// are one (`BUG: unable to handle page fault for address` and `... kernel
/// paging request`, KASAN's `use-after-free` and `slab-use-after-free`).
pub fn same_bug(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(title: &str) -> String {
    let t = title.trim();
    let (kind, func) = match t.rsplit_once(" in ") {
        Some((kind, func)) if !func.contains(' ') => (kind, canonical(func)),
        _ => (t, String::new()),
    };
    let kind = kind
        .replace("BUG: unable to handle page fault for address", "BUG: unable to handle kernel paging request")
        .replace("slab-use-after-free", "use-after-free");
    format!("{kind} in {func}")
}

/// A line that starts a kernel report, as it starts it (after any
/// `watchdog: `, `rcu: ` or `Oops: ` prefix).
pub(crate) fn header(text: &str) -> Option<&str> {
    let mut t = text.trim_start();
    for prefix in ["watchdog: ", "rcu: ", "Oops: "] {
        t = t.strip_prefix(prefix).unwrap_or(t);
    }
    const STARTS: &[&str] = &[
        "BUG:",
        "WARNING:",
        "INFO: task ",
        "INFO: rcu_",
        "INFO: possible ",
        "INFO: inconsistent lock state",
        "INFO: trying to register non-static key",
        "INFO: suspicious RCU usage",
        "general protection fault",
        "kernel BUG at ",
        "Kernel panic - not syncing",
        "UBSAN:",
        "Unable to handle kernel ",
        "Internal error: ",
        "PANIC: double fault",
        "divide error: ",
        "invalid opcode: ",
        "stack segment: ",
        "int3: ",
    ];
    if !STARTS.iter().any(|s| t.starts_with(s)) {
        return None;
    }
    // Not reports: a user program's fault the kernel logs, a BUG: in a
    // message about something else.
    if t.starts_with("general protection fault") && (t.contains(" error:") || !t.contains(':')) {
        return None;
    }
    if t.starts_with("INFO: task ") && !t.contains(" blocked for more than ") && !t.contains("can't die") {
        return None;
    }
    if t.starts_with("INFO: rcu_") && !t.contains("detected") {
        return None;
    }
    Some(t)
}

/// The title of the report whose header is `r[0]`.
fn describe(r: &[&str]) -> Option<String> {
    let head = header(r[0])?;
    let f = Frames { r };
    let title = if let Some(rest) = head.strip_prefix("BUG: KASAN: ") {
        let (kind, func) = rest.split_once(" in ").map_or((rest, None), |(k, f)| (k, func_token(f)));
        let lead: Vec<&str> = func.into_iter().collect();
        if kind.contains("double-free") || kind.contains("invalid-free") {
            let frame = f.pick(&lead, Some(0), &["slab_", "kfree", "vunmap", "vfree"]);
            // "double-free or invalid-free" (before 6.0) is syzbot's invalid-free.
            let kind = if kind == "double-free" { kind } else { "invalid-free" };
            format!("KASAN: {kind} in {}", frame?)
        } else {
            let access = r.iter().find_map(|l| {
                let l = l.trim_start();
                ["Read", "Write"]
                    .into_iter()
                    .find(|a| l.starts_with(&format!("{a} of size")) || l.starts_with(&format!("{a} at addr")))
            });
            let frame = f.pick(&lead, Some(0), &["kernel_fault", "tag_check", "mem_abort", "el1_", "el1h_"])?;
            match access {
                Some(a) => format!("KASAN: {kind} {a} in {frame}"),
                None => format!("KASAN: {kind} in {frame}"),
            }
        }
    } else if let Some(kind) = bad_access(head) {
        format!("BUG: unable to handle kernel {kind} in {}", f.pick_ip_then_stack(&[])?)
    } else if head.starts_with("BUG: soft lockup") {
        format!("BUG: soft lockup in {}", f.stall()?)
    } else if let Some(rest) = head.strip_prefix("BUG: ") {
        bug_title(rest, &f)?
    } else if let Some(rest) = head.strip_prefix("WARNING: ") {
        warning_title(rest, &f)?
    } else if head.starts_with("INFO: task ") && head.contains("can't die") {
        format!("INFO: task can't die in {}", f.pick(&[], Some(0), &["schedule"])?)
    } else if head.starts_with("INFO: task ") {
        format!("INFO: task hung in {}", f.hung()?)
    } else if head.starts_with("INFO: rcu_") {
        format!("INFO: rcu detected stall in {}", f.stall()?)
    } else if let Some(rest) = head.strip_prefix("INFO: ") {
        lock_title(rest, &f).or_else(|| {
            let what = rest.trim_end_matches(['.', '!']);
            let skip: &[&str] = if what.contains("RCU") { &["rcu", "kmem", "slab"] } else { &["stack", "lock", "IRQ"] };
            Some(format!("INFO: {what} in {}", f.pick(&[], Some(0), skip)?))
        })?
    } else if head.starts_with("general protection fault") {
        format!("general protection fault in {}", f.pick_ip_then_stack(&[])?)
    } else if let Some(at) = head.strip_prefix("kernel BUG at ") {
        if at.starts_with("lib/list_debug.c") {
            format!("BUG: corrupted list in {}", f.pick(&[], Some(0), &[])?)
        } else if at.starts_with("mm/usercopy.c") {
            format!("BUG: bad usercopy in {}", f.pick(&[], Some(0), &["usercopy", "__check"])?)
        } else {
            format!("kernel BUG in {}", f.pick_ip_then_stack(&["skb_"])?)
        }
    } else if let Some(why) = head.strip_prefix("Kernel panic - not syncing: ") {
        panic_title(why.trim(), &f)?
    } else if let Some(rest) = head.strip_prefix("UBSAN: ") {
        let kind = rest.split(" in ").next().unwrap_or(rest).trim();
        let kind = if kind == "Undefined behaviour" { "undefined-behaviour" } else { kind };
        format!("UBSAN: {kind} in {}", f.pick(&[], Some(0), &["ubsan", "overflow"])?)
    } else if head.starts_with("Internal error: ") {
        format!("Internal error in {}", f.pick_ip_then_stack(&[])?)
    } else if head.starts_with("PANIC: double fault") {
        format!("PANIC: double fault in {}", f.ip()?)
    } else {
        let kind =
            ["divide error", "invalid opcode", "stack segment", "int3"].into_iter().find(|k| head.starts_with(k))?;
        let kind = if kind == "stack segment" { "stack segment fault" } else { kind };
        format!("{kind} in {}", f.ip()?)
    };
    Some(title)
}

/// What a page fault report says was accessed: `paging request` or
/// `NULL pointer dereference` (x86 and arm64 say it differently), or
/// `access to user memory`.
fn bad_access(head: &str) -> Option<&'static str> {
    let h = head.strip_prefix("BUG: ").unwrap_or(head);
    let h = h.strip_prefix("unable to handle ").or_else(|| h.strip_prefix("Unable to handle ")).unwrap_or(h);
    let h = h.strip_prefix("kernel ").unwrap_or(h);
    if h.starts_with("NULL pointer dereference") || h.starts_with("kernel NULL pointer dereference") {
        Some("NULL pointer dereference")
    } else if h.starts_with("paging request") || h.starts_with("page fault for address") || h.starts_with("data access")
    {
        Some("paging request")
    } else if h.starts_with("access to user memory") {
        Some("access to user memory")
    } else if h.starts_with("write to read-only memory") {
        Some("write to read-only memory") // arm64
    } else if h.starts_with("execute from non-executable memory") {
        Some("execute from non-executable memory") // arm64
    } else {
        None
    }
}

/// `BUG: ...` other than KASAN, page faults and soft lockups.
fn bug_title(rest: &str, f: &Frames<'_>) -> Option<String> {
    let simple = |what: &str, skip: &[&str]| Some(format!("BUG: {what} in {}", f.pick(&[], Some(0), skip)?));
    for lock in ["spinlock ", "rwlock "] {
        if rest.starts_with(lock) {
            let what = rest.split(" on CPU").next().unwrap_or(rest).trim_end_matches(|c: char| !c.is_alphanumeric());
            return simple(what, &["spin_", "_lock", "_unlock"]);
        }
    }
    if rest.starts_with("sleeping function called from invalid context") {
        return simple("sleeping function called from invalid context", &[]);
    }
    if rest.starts_with("scheduling while atomic") {
        return simple("scheduling while atomic", &["schedule"]);
    }
    if let Some(call) = rest.strip_prefix("using ").and_then(|r| r.split_once(" in preemptible")) {
        return simple(
            &format!("using {} in preemptible code", call.0),
            &["preempt", "debug_", "processor_id", "this_cpu"],
        );
    }
    if rest.starts_with("memory leak") {
        let at = f.r.iter().position(|l| l.trim_start().starts_with("backtrace"));
        let frame =
            f.pick(&[], at, &["kmemleak", "mmap", "kmem", "slab", "alloc", "create_object", "strdup", "memdup"])?;
        return Some(format!("memory leak in {frame}"));
    }
    if rest.contains("still has locks held") {
        return Some(format!("BUG: still has locks held in {}", f.held_at()?));
    }
    if rest.starts_with("lock held when returning to user space") {
        return Some(format!("BUG: lock held when returning to user space in {}", f.held_at()?));
    }
    if rest.starts_with("bad unlock balance") {
        return simple("bad unlock balance", &[]);
    }
    if rest.contains("stack guard page was hit") {
        return Some(format!("BUG: stack guard page was hit in {}", f.pick_ip_then_stack(&[])?));
    }
    if rest.starts_with("Invalid wait context") {
        return Some(format!("WARNING: locking bug in {}", f.pick(&[], Some(0), &["lock_sock", "release_sock"])?));
    }
    // A report of its own kind: its words, without the addresses and
    // names that differ from run to run.
    let what = rest.split([':', '(', '[']).next().unwrap_or(rest).trim();
    let what = what.split(" in process ").next().unwrap_or(what);
    Some(format!("BUG: {what}"))
}

/// `WARNING: ...`: lockdep's reports, a few of WARN's well-known sites,
/// then WARN itself.
fn warning_title(rest: &str, f: &Frames<'_>) -> Option<String> {
    if let Some(t) = lock_title(rest, f) {
        return Some(t);
    }
    if rest.starts_with("suspicious RCU usage") {
        return Some(format!("WARNING: suspicious RCU usage in {}", f.pick(&[], Some(0), &["rcu", "kmem", "slab"])?));
    }
    if rest.starts_with("lock held when returning to user space") {
        return Some(format!("WARNING: lock held when returning to user space in {}", f.held_at()?));
    }
    if rest.contains("still has locks held") {
        return Some(format!("WARNING: still has locks held in {}", f.held_at()?));
    }
    if rest.starts_with("bad unlock balance") {
        return Some(format!("WARNING: bad unlock balance in {}", f.pick(&[], Some(0), &[])?));
    }
    if rest.starts_with("held lock freed") {
        return Some(format!("WARNING: held lock freed in {}", f.held_at()?));
    }
    // WARN: "CPU: 0 PID: 1 at kernel/sys.c:12 f+0x1/0x2", or since 6.19
    // "kernel/sys.c:12 at f+0x1/0x2, CPU#0: comm/1".
    let (before, after) = rest.split_once(" at ")?;
    let file = if before.starts_with("CPU: ") { after.split(' ').next()? } else { before.rsplit(' ').next()? };
    let at_func = if before.starts_with("CPU: ") {
        after.split_once(' ').and_then(|(_, f)| func_token(f))
    } else {
        func_token(after)
    };
    let lead: Vec<&str> = at_func.into_iter().collect();
    let known: &[(&str, &str, &[&str])] = &[
        (
            "lib/debugobjects.c",
            "WARNING: ODEBUG bug",
            &["debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap", "vfree", "__free_", "kobject_"],
        ),
        ("mm/usercopy.c", "WARNING: bad usercopy", &["usercopy", "__check"]),
        ("lib/kobject.c", "WARNING: kobject bug", &["kobject_"]),
        ("lib/refcount.c", "WARNING: refcount bug", &["refcount", "kobject_"]),
        ("kernel/locking/lockdep.c", "WARNING: locking bug", &["lock_sock", "release_sock"]),
    ];
    for (src, what, skip) in known {
        if file.starts_with(src) {
            // The site itself is the helper: the caller names the bug.
            return Some(format!("{what} in {}", f.pick(&[], f.ip_line(), skip)?));
        }
    }
    Some(format!("WARNING in {}", f.pick(&lead, f.ip_line(), &[])?))
}

/// lockdep's reports: possible deadlocks and inconsistent lock states,
/// named by where the lock was being taken.
fn lock_title(rest: &str, f: &Frames<'_>) -> Option<String> {
    let after = |marker: &str| {
        let i = f.r.iter().position(|l| l.contains(marker))?;
        f.r[i..].iter().find_map(|l| l.split_once(" at: ").and_then(|(_, a)| func_token(strip_pc(a))))
    };
    let deadlock = |marker: &str| Some(format!("possible deadlock in {}", canonical(after(marker)?)));
    if rest.starts_with("possible circular locking dependency detected")
        || rest.starts_with("possible recursive locking detected")
    {
        deadlock("is trying to acquire lock")
    } else if rest.starts_with("possible irq lock inversion dependency detected") {
        deadlock("just changed the state of lock")
    } else if rest.contains("-safe -> ") && rest.contains("-unsafe lock order detected") {
        deadlock("is trying to acquire")
    } else if rest.starts_with("inconsistent lock state") {
        Some(format!("inconsistent lock state in {}", f.pick(&[], Some(0), &[])?))
    } else {
        None
    }
}

/// `Kernel panic - not syncing: WHY`.
fn panic_title(why: &str, f: &Frames<'_>) -> Option<String> {
    if let Some(func) = why.strip_prefix("stack-protector: Kernel stack is corrupted in: ") {
        let func = func_token(&format!("{func}+")).map(canonical);
        return Some(match func {
            Some(func) => format!("kernel panic: stack is corrupted in {func}"),
            None => format!("kernel panic: stack is corrupted in {}", f.pick(&[], Some(0), &["stack_chk"])?),
        });
    }
    if why.starts_with("kernel stack overflow") {
        return Some(format!("kernel stack overflow in {}", f.stall()?));
    }
    if why.starts_with("Attempted to kill init!") {
        return Some("kernel panic: Attempted to kill init!".into());
    }
    Some(format!("kernel panic: {}", why.trim_end_matches(['.', '!']).trim()))
}

/// The stack traces of one report.
struct Frames<'a> {
    /// The report's lines, timestamps off, the header first.
    r: &'a [&'a str],
}

impl<'a> Frames<'a> {
    /// The first frame in `lead` then in the report's stack that is not a
    /// helper (nor in `skip`), canonical. The stack is the first `Call
    /// Trace` at or after line `from` (None: no stack, `lead` only).
    fn pick(&self, lead: &[&'a str], from: Option<usize>, skip: &[&str]) -> Option<String> {
        let stack = from.map(|i| self.call_trace(i)).unwrap_or_default();
        lead.iter()
            .chain(stack.iter())
            .find(|f| !is_helper(f) && !skip.iter().any(|s| f.contains(s)))
            .map(|f| canonical(f))
    }

    /// The faulting function (the IP line), then the stack.
    fn pick_ip_then_stack(&self, skip: &[&str]) -> Option<String> {
        let lead: Vec<&str> = self.ip().into_iter().collect();
        self.pick(&lead, Some(0), skip)
    }

    /// The function at the instruction pointer: x86's `RIP: 0010:f+0x..`,
    /// arm64's `pc : f+0x..`; raw.
    fn ip(&self) -> Option<&'a str> {
        self.r.iter().find_map(|l| ip_func(l))
    }

    /// The line of the first instruction pointer (a WARN's stack starts there).
    fn ip_line(&self) -> Option<usize> {
        self.r.iter().position(|l| ip_func(l).is_some()).or(Some(0))
    }

    /// The frames of the first call trace at or after line `from`: x86's
    /// `Call Trace:`, arm64's `Call trace:`; questionable (`? f`) frames
    /// out. When the IP line is at or after `from`, its function leads.
    fn call_trace(&self, from: usize) -> Vec<&'a str> {
        let Some(r) = self.r.get(from..) else { return Vec::new() };
        let mut out: Vec<&'a str> = Vec::new();
        if let Some(ip) = r.iter().find_map(|l| ip_func(l)).filter(|_| from > 0) {
            out.push(ip);
        }
        let Some(start) = r.iter().position(|l| {
            let l = l.trim_start();
            l.starts_with("Call Trace:") || l.starts_with("Call trace:") || l.starts_with("Backtrace:")
        }) else {
            return out;
        };
        out.extend(frames_from(&r[start + 1..]));
        out
    }

    /// A stall's representative frame (syzkaller's rule): the frames of
    /// the interrupted context (after the timer interrupt's frame), and of
    /// them the one just before the first generic dispatcher (a syscall
    /// entry, vfs_write, a workqueue): it names the looping code better
    /// than wherever the interrupt happened to land.
    fn stall(&self) -> Option<String> {
        let irq = self.r.iter().position(|l| {
            l.contains("apic_timer_interrupt") || l.contains("el1h_64_irq") || l.contains("Exception stack")
        });
        let mut frames: Vec<&str> = self.ip().into_iter().collect();
        match irq {
            Some(i) => frames.extend(frames_from(&self.r[i + 1..])),
            None => frames.extend(self.call_trace(0)),
        }
        let frames: Vec<&str> = frames
            .into_iter()
            .filter(|f| !is_helper(f) && !f.contains("apic_timer_interrupt") && !f.contains("rcu"))
            .collect();
        let mut prev = *frames.first()?;
        for f in &frames {
            let c = canonical(f);
            if STALL_ANCHORS.iter().any(|a| a.matches(&c) || a.matches(f)) {
                return Some(canonical(prev));
            }
            prev = f;
        }
        Some(canonical(frames[0]))
    }

    /// A hung task's frame (syzkaller's rule): hangs in rtnl_lock are
    /// that; in synchronize_rcu and its kin, `synchronize_rcu`; else the
    /// first frame that is not about sleeping or locking.
    fn hung(&self) -> Option<String> {
        let frames = self.call_trace(0);
        for f in &frames {
            if f.contains("rtnl_lock") {
                return Some(canonical(f));
            }
            if ["synchronize_rcu", "synchronize_srcu", "synchronize_net", "synchronize_sched"]
                .iter()
                .any(|a| f.contains(a))
            {
                return Some("synchronize_rcu".into());
            }
        }
        const SLEEPING: &[&str] = &[
            "sched",
            "_lock",
            "_slowlock",
            "down",
            "rwsem",
            "completion",
            "kthread",
            "wait",
            "synchronize",
            "context_switch",
            "__switch_to",
            "cancel_delayed_work",
            "rcu_barrier",
            "msleep",
            "schedule_timeout",
        ];
        frames.iter().find(|f| !is_helper(f) && !SLEEPING.iter().any(|s| f.contains(s))).map(|f| canonical(f))
    }

    /// lockdep's `#0: ... (lock), at: f+0x..`: the first lock's site.
    fn held_at(&self) -> Option<String> {
        self.r.iter().find_map(|l| l.split_once(", at: ").and_then(|(_, a)| func_token(strip_pc(a)))).map(canonical)
    }
}

/// The frames of a stack listing, until it ends: `f+0x1/0x2`,
/// `[<ffff..>] f+0x1/0x2`, a symbolized `f file.c:12 [inline]`; markers
/// (`<TASK>`, `<IRQ>`) and questionable frames skipped.
fn frames_from<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    for l in lines {
        let t = strip_pc(l.trim_start());
        if t.starts_with('<') && t.ends_with('>') {
            continue; // <TASK>, </IRQ>
        }
        if t.starts_with("? ") {
            continue;
        }
        match stack_frame(t) {
            Some(f) => out.push(f),
            None if out.is_empty() && t.is_empty() => {}
            None => break,
        }
    }
    out
}

/// A frame line's function: `f+0x1/0x2 [mod]` or `f file.c:12 [inline]`.
fn stack_frame(t: &str) -> Option<&str> {
    let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, rest) = t.split_at(end);
    if name.is_empty() {
        return None;
    }
    let symbolized = rest.strip_prefix(' ').is_some_and(|r| r.contains(".c:") || r.contains(".h:"));
    let offset = rest.starts_with("+0x") || (rest.starts_with('.') && rest.contains("+0x"));
    (offset || symbolized).then_some(name)
}

/// Drops a leading `[<ffffffff81234567>] ` (older kernels' frame address).
fn strip_pc(t: &str) -> &str {
    let mut t = t;
    while let Some(rest) = t.strip_prefix("[<").and_then(|r| r.split_once(">]")).map(|(_, r)| r.trim_start()) {
        t = rest;
    }
    t
}

/// The function of an instruction pointer line, raw; None for user space
/// (`RIP: 0033:`).
fn ip_func(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("RIP: ")
        .or_else(|| t.strip_prefix("pc : "))
        .or_else(|| t.strip_prefix("PC is at "))
        .or_else(|| t.strip_prefix("IP: "))
        .or_else(|| t.strip_prefix("NIP: "))?;
    let rest = strip_pc(rest.trim_start());
    let rest = match rest.split_once(':') {
        // RIP: 0010:f+0x1/0x2; user space is segment 0033
        Some((seg, f)) if seg.len() == 4 && seg.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if seg == "0033" {
                return None;
            }
            f
        }
        _ => rest,
    };
    func_token(rest)
}

/// The identifier a text starts with when a `+0x` offset or a `.suffix`
/// follows it (syzkaller's `{{FUNC}}`), or a source location (a
/// symbolized frame: `f kernel/sys.c:12 [inline]`).
fn func_token(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, rest) = s.split_at(end);
    let located = rest.strip_prefix(' ').is_some_and(|r| r.contains(".c:") || r.contains(".h:"));
    (!name.is_empty() && (rest.starts_with('+') || rest.starts_with('.') || located)).then_some(name)
}

/// The prefixes of a syscall's wrappers, taken off until none is left:
/// `__x64_sys_prctl`, `__se_sys_prctl` and `__do_sys_prctl` are `prctl`.
const WRAPPERS: &[&str] = &[
    "__x64_sys_",
    "__ia32_sys_",
    "__arm64_sys_",
    "__x64_compat_sys_",
    "__ia32_compat_sys_",
    "__arm64_compat_sys_",
    "__se_compat_sys_",
    "__do_compat_sys_",
    "compat_sys_",
    "__se_sys_",
    "__do_sys_",
    "____sys_",
    "___sys_",
    "__sys_",
    "ksys_",
    "sys_",
    "SyS_",
    "SYSC_",
    "compat_SyS_",
    "compat_SYSC_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "__se_",
];

/// A frame as titles name it: wrappers and compiler suffixes off.
pub(crate) fn canonical(func: &str) -> String {
    let mut f = func.split(['.', '+']).next().unwrap_or(func);
    loop {
        match WRAPPERS.iter().find_map(|p| f.strip_prefix(p).filter(|r| !r.is_empty())) {
            Some(rest) => f = rest,
            None => return f.to_owned(),
        }
    }
}

/// How a helper is told: by a part of its name, its start, or its whole name.
enum Match {
    Has(&'static str),
    Starts(&'static str),
    Is(&'static str),
}

impl Match {
    fn matches(&self, f: &str) -> bool {
        match self {
            Match::Has(s) => f.contains(s),
            Match::Starts(s) => f.starts_with(s),
            Match::Is(s) => f == *s,
        }
    }
}

/// Functions that report, check, lock, copy or allocate for others: never
/// what a title names (syzkaller's skip list, in substance).
const HELPERS: &[Match] = {
    use Match::*;
    &[
        Has("__sanitizer"),
        Has("__asan"),
        Has("kasan"),
        Has("hwasan"),
        Has("__msan"),
        Has("kmsan"),
        Has("kcsan_setup_watchpoint"),
        Has("check_memory_region"),
        Has("check_heap_object"),
        Has("check_object"),
        Has("read_word_at_a_time"),
        Has("print_address_description"),
        Has("panic"),
        Has("invalid_op"),
        Has("report_bug"),
        Has("fixup_bug"),
        Has("handle_bug"),
        Has("print_report"),
        Has("print_usage_bug"),
        Has("do_error"),
        Has("do_trap"),
        Has("show_stack"),
        Has("dump_stack"),
        Has("walk_stack"),
        Has("dump_backtrace"),
        Has("warn_slowpath"),
        Has("warn_alloc"),
        Has("warn_bogus"),
        Has("__warn"),
        Has("alloc_page"),
        Has("malloc"),
        Has("zalloc"),
        Has("calloc"),
        Has("krealloc"),
        Has("kmem_cache"),
        Has("allocate_slab"),
        Has("slab_"),
        Has("debug_object"),
        Has("timer_is_static_object"),
        Has("work_is_static_object"),
        Has("__might_fault"),
        Has("print_unlock"),
        Has("imbalance_bug"),
        Has("lockdep"),
        Has("bh_enable"),
        Has("bh_disable"),
        Has("perf_trace"),
        Has("lock_acquire"),
        Has("lock_release"),
        Has("lock_class"),
        Has("mark_lock"),
        Has("held_locks"),
        Has("raw_spin_rq"),
        Has("spin_lock"),
        Has("spin_trylock"),
        Has("spin_unlock"),
        Has("read_lock"),
        Has("read_trylock"),
        Has("write_lock"),
        Has("write_trylock"),
        Has("read_unlock"),
        Has("write_unlock"),
        Is("down"),
        Has("down_read"),
        Has("down_write"),
        Has("down_trylock"),
        Has("up_read"),
        Has("up_write"),
        Starts("mutex_"),
        Starts("__mutex_"),
        Starts("rt_mutex_"),
        Has("owner_on_cpu"),
        Has("osq_lock"),
        Has("osq_unlock"),
        Starts("atomic_"),
        Starts("atomic64_"),
        Starts("arch_atomic"),
        Has("set_bit"),
        Has("clear_bit"),
        Has("change_bit"),
        Has("test_bit"),
        Has("__wake_up"),
        Starts("refcount_"),
        Starts("kref_"),
        Has("ref_tracker"),
        Has("memcpy"),
        Has("memcmp"),
        Has("memset"),
        Has("memchr"),
        Has("memmove"),
        Has("memdup"),
        Has("strcmp"),
        Has("strncmp"),
        Has("strcpy"),
        Has("strlcpy"),
        Has("strncpy"),
        Has("strscpy"),
        Has("strlen"),
        Has("strstr"),
        Has("strnstr"),
        Has("strnlen"),
        Has("strchr"),
        Has("strdup"),
        Has("strndup"),
        Has("copy_to_user"),
        Has("copy_from_user"),
        Has("copy_to_iter"),
        Has("copy_from_iter"),
        Has("copy_page_to_iter"),
        Has("copy_page_from_iter"),
        Has("put_user"),
        Has("get_user"),
        Has("might_fault"),
        Has("might_sleep"),
        Has("__might_resched"),
        Has("list_add"),
        Has("list_del"),
        Has("list_replace"),
        Has("list_move"),
        Has("list_splice"),
        Starts("rb_"),
        Starts("__rb_"),
        Has("_indirect_thunk_"),
        Has("string"),
        Has("pointer"),
        Has("snprintf"),
        Has("scnprintf"),
        Has("kasprintf"),
        Has("kvasprintf"),
        Has("printk"),
        Has("va_format"),
        Starts("dev_info"),
        Starts("dev_notice"),
        Starts("dev_warn"),
        Starts("dev_err"),
        Starts("dev_alert"),
        Starts("dev_crit"),
        Starts("dev_emerg"),
        Has("del_timer"),
        Has("flush_work"),
        Has("__cancel_work_timer"),
        Has("cancel_work_sync"),
        Has("try_to_grab_pending"),
        Has("flush_workqueue"),
        Has("drain_workqueue"),
        Has("destroy_workqueue"),
        Has("queue_work"),
        Has("finish_wait"),
        Has("kthread_stop"),
        Starts("kobject_"),
        Has("add_uevent_var"),
        Has("get_device_parent"),
        Has("device_add"),
        Has("device_del"),
        Has("device_unregister"),
        Has("device_destroy"),
        Has("device_release"),
        Is("complete"),
        Has("wait_for_completion"),
        Is("kfree"),
        Is("kvfree"),
        Has("kfree_skb"),
        Is("iput"),
        Is("iput_final"),
        Is("ihold"),
        Has("print_hex_dump"),
        Starts("klist_"),
        Has("trace_hardirqs"),
        Has("trace_softirqs"),
        Starts("lock_page"),
        Starts("unlock_page"),
        Has("stack_trace_consume_entry"),
        Has("arch_stack_walk"),
        Has("stack_trace_save"),
        Has("insert_work"),
        Has("__queue_delayed_work"),
        Has("queue_delayed_work_on"),
        Has("do_kernel_fault"),
        Has("do_translation_fault"),
        Has("do_mem_abort"),
        Has("el1_abort"),
        Has("el1h_64_sync"),
        Has("el1_da"),
        Has("print_tainted"),
        Has("__phys_addr"),
        Has("__fortify_report"),
        Is("put_device"),
        Is("dput"),
        Is("fast_dput"),
        Has("exc_page_fault"),
        Has("asm_exc_"),
        Has("__die"),
        Is("die"),
        Has("die_body"),
        Has("oops_end"),
        Has("page_fault_oops"),
        Has("kernelmode_fixup_or_oops"),
        Has("__bad_area"),
        Has("bad_area"),
        Has("do_user_addr_fault"),
        Has("handle_page_fault"),
        Has("__do_kernel_fault"),
        Has("ubsan"),
    ]
};

fn is_helper(f: &str) -> bool {
    HELPERS.iter().any(|m| m.matches(f))
}

/// Where a stall's loop was dispatched from (syzkaller's anchors): the
/// frame before one of these names the stall.
const STALL_ANCHORS: &[Match] = {
    use Match::*;
    &[
        Has("process_one_work"),
        Has("do_syscall_"),
        Has("do_fast_syscall_"),
        Has("sysenter_dispatch"),
        Has("el0_svc_handler"),
        Has("invoke_syscall"),
        Has("ret_fast_syscall"),
        Has("netif_receive_skb"),
        Has("do_softirq"),
        Has("call_timer_fn"),
        Has("_run_timers"),
        Has("run_timer_softirq"),
        Has("hrtimer_run"),
        Has("run_ksoftirqd"),
        Has("smpboot_thread_fn"),
        Is("kthread"),
        Has("start_secondary"),
        Has("cpu_startup_entry"),
        Has("ret_from_fork"),
        Has("vfs_write"),
        Has("vfs_read"),
        Has("vfs_iter_read"),
        Has("vfs_iter_write"),
        Has("do_iter_read"),
        Has("do_iter_write"),
        Has("call_read_iter"),
        Has("call_write_iter"),
        Has("new_sync_read"),
        Has("new_sync_write"),
        Has("vfs_ioctl"),
        Is("ioctl"),
        Has("compat_ioctl"),
        Has("blkdev_ioctl"),
        Has("do_iter_readv_writev"),
        Has("mmap_region"),
        Has("do_mmap"),
        Has("do_dentry_open"),
        Has("vfs_open"),
        Starts("sock_sendmsg"),
        Starts("sock_recvmsg"),
        Starts("sock_release"),
        Starts("__sock_release"),
        Is("setsockopt"),
        Has("sock_common_setsockopt"),
        Is("listen"),
        Is("accept"),
        Is("connect"),
        Is("socketpair"),
        Starts("sock_do_ioctl"),
        Starts("sock_ioctl"),
        Starts("nfnetlink_rcv_msg"),
        Starts("rtnetlink_rcv_msg"),
        Starts("netlink_dump"),
        Has("__do_fault"),
        Has("do_page_fault"),
        Has("__fput"),
        Has("task_work_run"),
        Has("exit_to_usermode"),
        Has("exit_to_user_mode"),
        Has("smp_call_function"),
        Has("tasklet_action"),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Option<String> {
        title(text.lines())
    }

    #[test]
    fn an_oops_is_titled_by_its_own_kind_not_the_panic_after_it() {
        let console = "\
[    2.101000] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.101100] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.118+deb12-cloud-amd64 #1
[    2.101200] RIP: 0010:sched_clock_cpu+0x9/0x1a0
[    2.101300] Call Trace:
[    2.101400]  <TASK>
[    2.101500]  irqtime_account_irq+0x3c/0xb0
[    2.101600]  </TASK>
[    2.101700] Kernel panic - not syncing: Fatal exception in interrupt";
        assert_eq!(t(console).unwrap(), "int3 in sched_clock_cpu");
        assert_eq!(
            t("[ 1.0] Oops: invalid opcode: 0000 [#1] SMP\n[ 1.1] RIP: 0010:f+0x1/0x2").unwrap(),
            "invalid opcode in f"
        );
    }

    #[test]
    fn syscall_wrappers_are_one_frame_and_suffixes_go() {
        for f in ["__do_sys_prctl", "__se_sys_prctl", "__x64_sys_prctl", "__arm64_sys_prctl", "sys_prctl", "prctl"] {
            assert_eq!(canonical(f), "prctl", "{f}");
        }
        assert_eq!(canonical("tcp_sendmsg.isra.0"), "tcp_sendmsg");
        assert_eq!(canonical("f.cold"), "f");
        assert_eq!(canonical("__sys_sendmsg"), "sendmsg");
        assert_eq!(canonical("sys_"), "sys_");
        assert!(same_bug("WARNING in __do_sys_prctl", "WARNING in prctl"));
        assert!(same_bug("WARNING in __x64_sys_prctl", "WARNING in __se_sys_prctl"));
        assert!(same_bug(
            "BUG: unable to handle page fault for address in f",
            "BUG: unable to handle kernel paging request in f"
        ));
        assert!(same_bug("KASAN: slab-use-after-free Read in f", "KASAN: use-after-free Read in f"));
        assert!(!same_bug("WARNING in prctl", "WARNING in kcmp_lock"));
        assert!(!same_bug("KASAN: use-after-free Read in f", "KASAN: use-after-free Write in f"));
        assert!(same_bug("kernel panic: sysrq triggered crash", " kernel panic: sysrq triggered crash "));
    }

    #[test]
    fn a_warn_is_named_by_its_function_however_the_build_names_it() {
        // A build without debug info: the WARN sits in the wrapper.
        let plain = "\
[   12.345678] ------------[ cut here ]------------
[   12.345700] WARNING: CPU: 0 PID: 71 at kernel/sys.c:2412 __x64_sys_prctl+0x6d/0x1c0
[   12.345800] Modules linked in:
[   12.345900] RIP: 0010:__x64_sys_prctl+0x6d/0x1c0
[   12.346000] Call Trace:
[   12.346100]  <TASK>
[   12.346200]  do_syscall_64+0x3a/0x90
[   12.346300]  entry_SYSCALL_64_after_hwframe+0x64/0xce
[   12.346400]  </TASK>";
        // syzbot's symbolized report of a debug build: the inline frame.
        let debug = "\
WARNING: CPU: 1 PID: 5091 at kernel/sys.c:2412 __do_sys_prctl kernel/sys.c:2412 [inline]
WARNING: CPU: 1 PID: 5091 at kernel/sys.c:2412 __se_sys_prctl+0x6d/0x1c0 kernel/sys.c:2338
Modules linked in:
RIP: 0010:__do_sys_prctl kernel/sys.c:2412 [inline]
RIP: 0010:__se_sys_prctl+0x6d/0x1c0 kernel/sys.c:2338
Call Trace:
 <TASK>
 do_syscall_x64 arch/x86/entry/common.c:50 [inline]
 do_syscall_64+0x38/0xb0 arch/x86/entry/common.c:80";
        assert_eq!(t(plain).unwrap(), "WARNING in prctl");
        assert_eq!(t(debug).unwrap(), "WARNING in prctl");
    }

    #[test]
    fn an_inlined_function_names_the_bug_when_the_report_is_symbolized() {
        // What a debug build's report says: the WARN is in kcmp_lock,
        // inlined into the syscall.
        let symbolized = "\
WARNING: CPU: 0 PID: 5 at kernel/kcmp.c:99 kcmp_lock kernel/kcmp.c:99 [inline]
WARNING: CPU: 0 PID: 5 at kernel/kcmp.c:99 __do_sys_kcmp+0x1d/0x200 kernel/kcmp.c:150
RIP: 0010:kcmp_lock kernel/kcmp.c:99 [inline]
RIP: 0010:__do_sys_kcmp+0x1d/0x200 kernel/kcmp.c:150
Call Trace:
 <TASK>
 do_syscall_64+0x38/0xb0 arch/x86/entry/common.c:80";
        assert_eq!(t(symbolized).unwrap(), "WARNING in kcmp_lock");
        // The same report from a build without debug info.
        let plain =
            "WARNING: CPU: 0 PID: 5 at kernel/kcmp.c:99 __do_sys_kcmp+0x1d/0x200\nRIP: 0010:__do_sys_kcmp+0x1d/0x200";
        assert_eq!(t(plain).unwrap(), "WARNING in kcmp");
    }

    #[test]
    fn the_first_report_is_the_one_titled() {
        let log = "\
[    1.0] Run /init as init process
[    2.0] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    2.0] #PF: supervisor write access in kernel mode
[    2.0] RIP: 0010:krepro_test+0x5/0x10
[    2.0] Call Trace:
[    2.0]  <TASK>
[    2.0]  ? page_fault_oops+0x3/0x9
[    2.0]  __x64_sys_prctl+0x10/0x20
[    2.0]  </TASK>
[    2.1] Kernel panic - not syncing: Fatal exception";
        assert_eq!(t(log).unwrap(), "BUG: unable to handle kernel NULL pointer dereference in krepro_test");
        assert_eq!(t("[ 1.0] Kernel panic - not syncing: Fatal exception").unwrap(), "kernel panic: Fatal exception");
        assert_eq!(t("[ 1.0] all is well\nkrepro: verdict=pass repro=smoke"), None);
        // A user program's fault, logged: not a kernel report.
        assert_eq!(t("[ 3.0] traps: a[71] general protection fault ip:4011 sp:7ff error:0 in a[401000+1000]"), None);
    }

    #[test]
    fn frames_are_read_in_every_listing_style() {
        assert_eq!(stack_frame("f+0x1/0x2"), Some("f"));
        assert_eq!(stack_frame("f.isra.0+0x1/0x2 [mod]"), Some("f"));
        assert_eq!(stack_frame("f kernel/x.c:12 [inline]"), Some("f"));
        assert_eq!(stack_frame("RIP: 0010:f+0x1"), None);
        assert_eq!(stack_frame("Code: 48 89"), None);
        assert_eq!(strip_pc("[<ffffffff81000000>] f+0x1/0x2"), "f+0x1/0x2");
        assert_eq!(ip_func("RIP: 0010:lkdtm_WARNING+0x1d/0x30"), Some("lkdtm_WARNING"));
        assert_eq!(ip_func("pc : lkdtm_WARNING+0x14/0x28"), Some("lkdtm_WARNING"));
        assert_eq!(ip_func("RIP: 0033:0x7f00aa"), None);
        assert_eq!(ip_func("RIP: 0010:kcmp_lock kernel/kcmp.c:99 [inline]"), Some("kcmp_lock"));
    }

    /// Real consoles of real crashes (x86_64 and arm64, builder and Debian
    /// kernels: `tests/fixtures/consoles/README.md`), each with the title
    /// a boot gives it, read from the console as a boot reads it.
    #[test]
    fn real_consoles_get_syzbot_titles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/consoles");
        let list = std::fs::read_to_string(dir.join("tests.txt")).unwrap();
        let cases: Vec<(&str, &str)> = list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split_once('\t').expect("FILE<TAB>TITLE"))
            .collect();
        let mut wrong = Vec::new();
        for (file, want) in &cases {
            let console = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut scan = crate::boot::classify::ConsoleScan::default();
            for line in console.lines() {
                scan.feed(line);
            }
            let got = scan.counted_crash(true, None).and_then(|c| c.title);
            if got.as_deref() != Some(*want) {
                wrong.push(format!("{file}: {got:?}, not {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let arches = ["x86_64-", "arm64-", "debian-"].map(|p| cases.iter().filter(|(f, _)| f.starts_with(p)).count());
        assert!(cases.len() >= 15 && arches.iter().all(|&n| n > 0), "{arches:?}");
    }
}
