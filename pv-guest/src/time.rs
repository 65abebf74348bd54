//! Time from `vcpu_time_info` and the shared_info wallclock.
//!
//! Both are seqlocks written by Xen: read `version`, read barrier, read the fields, read
//! barrier, re-read `version`; the snapshot is good when the version was even and did
//! not change. System time is `system_time` plus the TSC delta since `tsc_timestamp`,
//! shifted by `tsc_shift` and multiplied by `tsc_to_system_mul` as a 32.32 fixed-point
//! fraction (xen-abi's `VcpuTimeInfo::system_time_at`, which is Xen's `scale_delta`).

use core::sync::atomic::{fence, Ordering};
use xen_abi::xen::VcpuTimeInfo;

/// Reads a consistent snapshot of seqlock-protected data.
pub fn read_versioned<T>(mut version: impl FnMut() -> u32, mut read: impl FnMut() -> T) -> T {
    loop {
        let before = version();
        fence(Ordering::Acquire);
        let value = read();
        fence(Ordering::Acquire);
        let after = version();
        if before & 1 == 0 && before == after {
            return value;
        }
        core::hint::spin_loop();
    }
}

/// Nanoseconds of system time at `tsc`.
pub fn system_time_ns(info: &VcpuTimeInfo, tsc: u64) -> u64 {
    info.system_time_at(tsc)
}

/// The wallclock fields of shared_info (`wc_sec_hi:wc_sec`, `wc_nsec`): the time of day
/// at system time 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallclockBase {
    pub sec: u64,
    pub nsec: u32,
}

impl WallclockBase {
    pub fn from_fields(sec_lo: u32, sec_hi: u32, nsec: u32) -> Self {
        Self { sec: u64::from(sec_hi) << 32 | u64::from(sec_lo), nsec }
    }

    /// Time of day (seconds, nanoseconds) at `system_ns`.
    pub fn at(&self, system_ns: u64) -> (u64, u32) {
        let total = u128::from(self.nsec) + u128::from(system_ns);
        (self.sec + (total / 1_000_000_000) as u64, (total % 1_000_000_000) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    fn info(mul: u32, shift: i8) -> VcpuTimeInfo {
        VcpuTimeInfo { tsc_timestamp: 1_000, system_time: 7_000, tsc_to_system_mul: mul, tsc_shift: shift, ..Default::default() }
    }

    #[test]
    fn scaling_like_xen() {
        // A 1 GHz TSC: mul = 2^31 with shift 1 (1 tick = 1 ns).
        assert_eq!(system_time_ns(&info(1 << 31, 1), 1_000 + 123_456), 7_000 + 123_456);
        // 3 GHz: Xen picks shift -1, mul = 2^32 * 2/3 (rounded) -> 1/3 ns per tick.
        let i = info(0xaaaa_aaab, -1);
        assert_eq!(system_time_ns(&i, 1_000 + 3_000_000_000), 7_000 + 1_000_000_000);
        // The product is 64x32 bits: deltas of minutes at GHz rates must not overflow.
        let i = info(0xffff_ffff, 0);
        let delta = 600u64 * 4_000_000_000;
        let want = ((u128::from(delta) * 0xffff_ffff) >> 32) as u64;
        assert_eq!(system_time_ns(&i, 1_000 + delta), 7_000 + want);
        // TSC before the timestamp wraps like Xen's unsigned arithmetic.
        assert_eq!(system_time_ns(&info(1 << 31, 1), 1_000), 7_000);
    }

    #[test]
    fn seqlock_retries_odd_and_changed_versions() {
        let versions = [1u32, 2, 2, 4, 6, 6];
        let step = Cell::new(0);
        let reads = Cell::new(0);
        let v = read_versioned(
            || {
                let v = versions[step.get()];
                step.set(step.get() + 1);
                v
            },
            || {
                reads.set(reads.get() + 1);
                reads.get()
            },
        );
        // (1,2): odd -> retry; (2,4): changed -> retry; (6,6): good on the third read.
        assert_eq!(v, 3);
        assert_eq!(step.get(), 6);
    }

    #[test]
    fn wallclock() {
        let wc = WallclockBase::from_fields(1_700_000_000, 0, 999_999_999);
        assert_eq!(wc.at(0), (1_700_000_000, 999_999_999));
        assert_eq!(wc.at(1), (1_700_000_001, 0));
        assert_eq!(wc.at(2_500_000_000), (1_700_000_003, 499_999_999));
        assert_eq!(WallclockBase::from_fields(0, 1, 0).sec, 1 << 32);
    }
}
