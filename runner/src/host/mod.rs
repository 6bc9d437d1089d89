//! The host around the guest: the one process spawner, tools installed
//! with apt, krepro's cache, and distro kernels fetched into it.

pub mod cache;
pub mod fetch;
pub mod install;
pub mod spawn;
pub(crate) mod sys;
