//! `sched.h`: `HYPERVISOR_sched_op` commands, shutdown reasons and arguments.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `SCHEDOP_yield`
pub const SCHEDOP_yield: u32 = 0;
/// `SCHEDOP_block`: unmask events and sleep until one arrives.
pub const SCHEDOP_block: u32 = 1;
/// `SCHEDOP_shutdown`: arg = [`SchedShutdown`].
pub const SCHEDOP_shutdown: u32 = 2;
/// `SCHEDOP_poll`: arg = [`SchedPoll`].
pub const SCHEDOP_poll: u32 = 3;
/// `SCHEDOP_remote_shutdown`: arg = [`SchedRemoteShutdown`].
pub const SCHEDOP_remote_shutdown: u32 = 4;
/// `SCHEDOP_shutdown_code`
pub const SCHEDOP_shutdown_code: u32 = 5;
/// `SCHEDOP_watchdog`: arg = [`SchedWatchdog`].
pub const SCHEDOP_watchdog: u32 = 6;
/// `SCHEDOP_pin_override`: arg = [`SchedPinOverride`].
pub const SCHEDOP_pin_override: u32 = 7;

/// `SHUTDOWN_poweroff`: domain exited normally.
pub const SHUTDOWN_poweroff: u32 = 0;
/// `SHUTDOWN_reboot`
pub const SHUTDOWN_reboot: u32 = 1;
/// `SHUTDOWN_suspend`
pub const SHUTDOWN_suspend: u32 = 2;
/// `SHUTDOWN_crash`
pub const SHUTDOWN_crash: u32 = 3;
/// `SHUTDOWN_watchdog`
pub const SHUTDOWN_watchdog: u32 = 4;
/// `SHUTDOWN_soft_reset`
pub const SHUTDOWN_soft_reset: u32 = 5;
/// `SHUTDOWN_MAX`: maximum valid shutdown reason.
pub const SHUTDOWN_MAX: u32 = 5;

/// `enum sched_shutdown_reason` as a checked Rust enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ShutdownReason {
    Poweroff = SHUTDOWN_poweroff,
    Reboot = SHUTDOWN_reboot,
    Suspend = SHUTDOWN_suspend,
    Crash = SHUTDOWN_crash,
    Watchdog = SHUTDOWN_watchdog,
    SoftReset = SHUTDOWN_soft_reset,
}

impl TryFrom<u32> for ShutdownReason {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        Ok(match v {
            SHUTDOWN_poweroff => Self::Poweroff,
            SHUTDOWN_reboot => Self::Reboot,
            SHUTDOWN_suspend => Self::Suspend,
            SHUTDOWN_crash => Self::Crash,
            SHUTDOWN_watchdog => Self::Watchdog,
            SHUTDOWN_soft_reset => Self::SoftReset,
            other => return Err(other),
        })
    }
}

impl From<ShutdownReason> for u32 {
    fn from(r: ShutdownReason) -> u32 {
        r as u32
    }
}

/// `struct sched_shutdown`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}

/// `struct sched_poll` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedPoll {
    /// Guest handle to an array of `evtchn_port_t`.
    pub ports: u64,
    pub nr_ports: u32,
    pub _pad0: [u8; 4],
    /// Absolute system time (ns); 0 = no timeout.
    pub timeout: u64,
}

/// `struct sched_remote_shutdown` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedRemoteShutdown {
    pub domain_id: u16,
    pub _pad0: [u8; 2],
    /// `SHUTDOWN_*`.
    pub reason: u32,
}

/// `struct sched_watchdog`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedWatchdog {
    pub id: u32,
    pub timeout: u32,
}

/// `struct sched_pin_override`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedPinOverride {
    pub pcpu: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_reason() {
        for v in 0..=SHUTDOWN_MAX {
            assert_eq!(u32::from(ShutdownReason::try_from(v).unwrap()), v);
        }
        assert_eq!(ShutdownReason::try_from(6), Err(6));
        assert_eq!(ShutdownReason::try_from(3), Ok(ShutdownReason::Crash));
    }
}
