//! The `[limits]` of the configuration, installed once when the daemon starts so that the
//! sans-I/O codecs read them without a configuration handle. Code that never installs them
//! (unit tests, the CLI) gets the defaults.

use crate::config::LimitsConfig;
use std::sync::OnceLock;

static LIMITS: OnceLock<LimitsConfig> = OnceLock::new();

/// Sets the limits for the life of the process; false when they were already read or set
/// (then the first value stays).
pub fn install(limits: &LimitsConfig) -> bool {
    LIMITS.set(limits.clone()).is_ok()
}

/// The limits in force.
pub fn get() -> &'static LimitsConfig {
    LIMITS.get_or_init(LimitsConfig::default)
}
