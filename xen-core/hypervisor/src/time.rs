//! Time arithmetic shared with guests: Xen's TSC-to-nanoseconds scale (`vcpu_time_info`'s
//! `tsc_to_system_mul` / `tsc_shift`) and calendar conversion for the wallclock.

/// A scale that turns counter ticks into nanoseconds:
/// `ns = ((ticks << shift) * mul) >> 32` (a negative shift shifts right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    pub mul: u32,
    pub shift: i8,
}

const NS_PER_SEC: u64 = 1_000_000_000;

impl TimeScale {
    /// Xen's `set_time_scale`: normalise the rate into (1e9, 2e9] by shifting, then take
    /// the 32-bit fraction 1e9 / rate.
    pub fn from_hz(ticks_per_sec: u64) -> Self {
        let mut tps64 = ticks_per_sec.max(1);
        let mut shift: i32 = 0;
        while tps64 > NS_PER_SEC * 2 {
            tps64 >>= 1;
            shift -= 1;
        }
        let mut tps32 = tps64 as u32;
        while tps32 <= NS_PER_SEC as u32 {
            tps32 <<= 1;
            shift += 1;
        }
        let mul = ((NS_PER_SEC << 32) / u64::from(tps32)) as u32;
        TimeScale { mul, shift: shift as i8 }
    }

    /// Xen's `scale_delta`.
    pub fn scale(&self, delta: u64) -> u64 {
        let d = if self.shift < 0 { delta >> -self.shift } else { delta << self.shift };
        ((u128::from(d) * u128::from(self.mul)) >> 32) as u64
    }
}

/// Seconds since the Unix epoch for a UTC calendar date and time (proleptic Gregorian).
pub fn unix_seconds(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> u64 {
    // Days from civil (Howard Hinnant's algorithm), shifted so March is month 0.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec)).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_matches_rates() {
        for hz in [1_000_000_000u64, 2_500_000_000, 3_000_000_000, 100_000_000, 1_193_182, 25_000_000_000] {
            let s = TimeScale::from_hz(hz);
            let one_sec = s.scale(hz);
            assert!(one_sec.abs_diff(NS_PER_SEC) <= 2, "{hz} Hz: {one_sec} ns for one second ({s:?})");
            let ticks = hz / 100;
            let want = (u128::from(ticks) * u128::from(NS_PER_SEC) / u128::from(hz)) as u64;
            assert!(s.scale(ticks).abs_diff(want) <= 2, "{hz} Hz: {} != {want}", s.scale(ticks));
        }
    }

    #[test]
    fn xen_normalisation() {
        // 2.5 GHz: shifted right once to 1.25e9, mul = 1e9/1.25e9 * 2^32.
        assert_eq!(TimeScale::from_hz(2_500_000_000), TimeScale { mul: 3_435_973_836, shift: -1 });
        // 1 GHz is at the lower bound, so it is doubled.
        assert_eq!(TimeScale::from_hz(1_000_000_000), TimeScale { mul: 1 << 31, shift: 1 });
    }

    #[test]
    fn calendar() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_seconds(2026, 11, 21, 15, 30, 0), 1_795_275_000);
        assert_eq!(unix_seconds(2024, 2, 29, 23, 59, 59), 1_709_251_199);
    }
}
