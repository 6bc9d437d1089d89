//! Booting: qemu's argument lists, one boot under a guard, reading the
//! console, deciding the outcome, and Ctrl-C.

pub mod classify;
pub mod disk;
pub(crate) mod interrupt;
pub mod log;
pub mod outcome;
pub mod qemu;
pub mod run;
