//! Ctrl-C (SIGINT), SIGTERM and SIGHUP: the first sets a flag that the run
//! loop checks every 50 ms, so qemu is stopped and temp files removed; a
//! second one exits at once (qemu still dies, by PR_SET_PDEATHSIG).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Installs the handlers once and returns the flag they set.
pub(crate) fn install() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // Order matters: the shutdown check sees the flag before this
            // signal sets it, so only a second signal exits.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
    .clone()
}
