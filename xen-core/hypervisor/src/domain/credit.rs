//! The scheduling policy, pure and host-tested: credit-style weights and caps (Xen's
//! credit1 model) and per-vCPU hard and soft affinity. `pv::credit` applies it to the domain
//! table; `pv::sched` asks it which vCPUs a CPU may run and in what order.
//!
//! - **Parameters** (`XEN_DOMCTL_scheduler_op` for `XEN_SCHEDULER_CREDIT`, Xen's
//!   `csched_dom_cntl`): weight 256 and cap 0 (none) by default; a putinfo with weight 0
//!   keeps the weight and one with cap `0xffff` keeps the cap; any other value is taken
//!   (the hypervisor has no range check: the weight's 1..65535 and the cap's
//!   0..100×vCPUs are libxl's, so our `xl` checks them as libxl does).
//! - **Affinity** (`XEN_DOMCTL_setvcpuaffinity`, `vcpu_affinity_domctl`): a CPU mask per
//!   vCPU, all CPUs by default; a mask with no online CPU is `-EINVAL`; what is given back
//!   is the mask and the online CPUs; masks travel as `xenctl_bitmap` bytes. Soft
//!   affinity is any mask; where it holds some but not all of the hard ∧ online CPUs it
//!   is a preference ([`VcpuSched::better_elsewhere`]): an idle CPU there takes the
//!   vCPU before any other CPU does (credit1's soft-affinity step).
//! - **Wake-up** (`pv::sched`): a woken vCPU preempts a busy CPU whatever its credit,
//!   where credit1 boosts only UNDER vCPUs (see there why), once the running vCPU has
//!   had the pool's rate limit.
//! - **Pool parameters** (`XEN_SYSCTL_scheduler_op`, Xen's `csched_sys_cntl`): time
//!   slice, rate limit and migration delay ([`PoolParams`], [`pool_op`]).
//! - **Credit**: every accounting period ([`PERIOD_NS`], Xen's 30 ms) the active vCPUs
//!   (runnable, or ran during the period and spent their credit) earn credit in proportion to their domain's
//!   weight, and burn it nanosecond for nanosecond while they run. A vCPU with credit
//!   ([`Priority::Under`]) runs before one without ([`Priority::Over`]); among equals the
//!   caller's round robin decides. A capped domain earns at most cap% of one CPU per
//!   period, split over its active vCPUs, and a vCPU of it with no credit left is parked
//!   (not run) until the next period gives it some.
//!
//! One difference from Xen's credit1, on purpose: Xen splits the whole pool's credit
//! (period × CPUs) over the active domains by weight, so two vCPUs pinned to the same
//! CPU both earn more than that CPU can give and run round robin whatever their weights.
//! Here each CPU's period is split over the active vCPUs allowed on it (a vCPU allowed on
//! n CPUs bids weight/n on each), so vCPUs competing for one CPU share it in proportion
//! to weight; with no pinning the two agree.
#![forbid(unsafe_code)]

use xen_abi::domctl::XEN_SCHEDULER_CREDIT;
use xen_abi::errno::Errno;
use xen_abi::sysctl::*;

/// A credit pool's parameters (`XEN_SYSCTL_scheduler_op`, Xen's `csched_sys_cntl`):
/// the time slice a vCPU runs before another runnable one gets the CPU, the rate limit
/// (a vCPU that has run less than this since it was switched in is not preempted by a
/// woken one; 0: none) and the migration delay (kept and reported; xen-core's placement
/// has no cache-hot test to use it in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    pub tslice_ms: u32,
    pub ratelimit_us: u32,
    pub migr_delay_us: u32,
}

impl PoolParams {
    /// Xen 4.17's defaults: `sched_credit_tslice_ms` 30, `sched_ratelimit_us` 1000,
    /// `vcpu_migration_delay` 0.
    pub const DEFAULT: PoolParams = PoolParams { tslice_ms: 30, ratelimit_us: 1000, migr_delay_us: 0 };

    pub fn tslice_ns(self) -> u64 {
        u64::from(self.tslice_ms) * 1_000_000
    }

    pub fn ratelimit_ns(self) -> u64 {
        u64::from(self.ratelimit_us) * 1000
    }

    /// The boot command line's values (`crate::boot_options::CreditBoot`) as Xen 4.17
    /// starts credit1 with them (`csched_global_init`, `scheduler_init`, `csched_init`):
    /// a slice outside 1..=1000 ms, a rate limit other than 0 outside 100..=500000 µs, a
    /// migration delay outside 0..=100000 µs each go back to the default with Xen's
    /// warning (`warn`); a rate limit longer than the slice becomes the slice.
    pub fn from_boot(b: crate::boot_options::CreditBoot, mut warn: impl FnMut(core::fmt::Arguments)) -> PoolParams {
        let d = PoolParams::DEFAULT;
        let (tmin, tmax) = (XEN_SYSCTL_CSCHED_TSLICE_MIN, XEN_SYSCTL_CSCHED_TSLICE_MAX);
        let tslice_ms = match b.tslice_ms {
            None => d.tslice_ms,
            Some(t) if (i64::from(tmin)..=i64::from(tmax)).contains(&t) => t as u32,
            Some(_) => {
                warn(format_args!("WARNING: sched_credit_tslice_ms outside of valid range [{tmin},{tmax}].\n Resetting to default {}", d.tslice_ms));
                d.tslice_ms
            }
        };
        let (rmin, rmax) = (XEN_SYSCTL_SCHED_RATELIMIT_MIN, XEN_SYSCTL_SCHED_RATELIMIT_MAX);
        let mut ratelimit_us = match b.ratelimit_us {
            None => d.ratelimit_us,
            Some(0) => 0,
            Some(r) if (i64::from(rmin)..=i64::from(rmax)).contains(&r) => r as u32,
            Some(_) => {
                warn(format_args!("WARNING: sched_ratelimit_us outside of valid range [{rmin},{rmax}].\n Resetting to default {}", d.ratelimit_us));
                d.ratelimit_us
            }
        };
        if u64::from(ratelimit_us) > u64::from(tslice_ms) * 1000 {
            warn(format_args!("WARNING: sched_ratelimit_us >sched_credit_tslice_ms is undefined\nSetting ratelimit to tslice"));
            ratelimit_us = tslice_ms * 1000;
        }
        let migr_delay_us = match b.migr_delay_us {
            None => d.migr_delay_us,
            Some(m) if (0..=i64::from(XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US)).contains(&m) => m as u32,
            Some(_) => {
                warn(format_args!("WARNING: vcpu_migration_delay outside of valid range [0,{}]us.\nResetting to default: 0", XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US));
                0
            }
        };
        PoolParams { tslice_ms, ratelimit_us, migr_delay_us }
    }

    /// A putinfo's parameters as `csched_sys_cntl` checks them: the slice within
    /// 1..=1000 ms, the rate limit 0 or within 100..=500000 µs and not longer than the
    /// slice, the migration delay at most 100 ms; anything else -EINVAL.
    pub fn check(p: &XenSysctlCreditSchedule) -> Result<PoolParams, Errno> {
        let tslice_ok = (XEN_SYSCTL_CSCHED_TSLICE_MIN..=XEN_SYSCTL_CSCHED_TSLICE_MAX).contains(&p.tslice_ms);
        let ratelimit_ok = p.ratelimit_us == 0 || (XEN_SYSCTL_SCHED_RATELIMIT_MIN..=XEN_SYSCTL_SCHED_RATELIMIT_MAX).contains(&p.ratelimit_us);
        let within_slice = u64::from(p.ratelimit_us) <= u64::from(p.tslice_ms) * 1000;
        if !(tslice_ok && ratelimit_ok && within_slice && p.vcpu_migr_delay_us <= XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US) {
            return Err(Errno::EINVAL);
        }
        Ok(PoolParams { tslice_ms: p.tslice_ms, ratelimit_us: p.ratelimit_us, migr_delay_us: p.vcpu_migr_delay_us })
    }

    /// Whether the rate limit holds a woken vCPU's boost back (credit1's
    /// `csched_schedule`): the running vCPU is runnable, did not yield, and has run less
    /// than the rate limit (`ran_ns`) since it was switched in; never with no rate limit.
    pub fn holds_back(self, ran_ns: u64, yielded: bool) -> bool {
        self.ratelimit_us != 0 && !yielded && ran_ns < self.ratelimit_ns()
    }

    /// When the CPU must look again after holding a boost back: once the running vCPU
    /// (switched in at `switched_in`) has had the rate limit, and never sooner than
    /// Xen's `CSCHED_MIN_TIMER` (100 µs) from `now`.
    pub fn rate_limit_end(self, switched_in: u64, now: u64) -> u64 {
        switched_in.saturating_add(self.ratelimit_ns()).max(now.saturating_add(MIN_TIMER_NS))
    }

    /// One word for a lock-free read at every pick: each field in 21 bits, which holds
    /// every value [`PoolParams::check`] accepts (at most 500000).
    pub const fn pack(self) -> u64 {
        (self.tslice_ms as u64 & FIELD) | (self.ratelimit_us as u64 & FIELD) << 21 | (self.migr_delay_us as u64 & FIELD) << 42
    }

    pub const fn unpack(w: u64) -> PoolParams {
        PoolParams { tslice_ms: (w & FIELD) as u32, ratelimit_us: (w >> 21 & FIELD) as u32, migr_delay_us: (w >> 42 & FIELD) as u32 }
    }

    fn to_abi(self) -> XenSysctlCreditSchedule {
        XenSysctlCreditSchedule { tslice_ms: self.tslice_ms, ratelimit_us: self.ratelimit_us, vcpu_migr_delay_us: self.migr_delay_us }
    }
}

/// `XEN_SYSCTL_scheduler_op` on xen-core's machine, Pool-0 (id 0) under the credit
/// scheduler, as Xen's `sched_adjust_global` and `csched_sys_cntl` answer it: a command
/// other than put/getinfo -EINVAL (looked at first), another pool -ESRCH, another
/// scheduler's id -EINVAL, bad parameters -EINVAL (nothing changed); putinfo sets them
/// and, as getinfo, writes the pool's parameters back into `op`.
pub fn pool_op(op: &mut XenSysctlSchedulerOp, params: &mut PoolParams) -> Result<(), Errno> {
    if !matches!(op.cmd, XEN_SYSCTL_SCHEDOP_putinfo | XEN_SYSCTL_SCHEDOP_getinfo) {
        return Err(Errno::EINVAL);
    }
    if op.cpupool_id != 0 {
        return Err(Errno::ESRCH);
    }
    if op.sched_id != XEN_SCHEDULER_CREDIT {
        return Err(Errno::EINVAL);
    }
    if op.cmd == XEN_SYSCTL_SCHEDOP_putinfo {
        *params = PoolParams::check(&op.credit())?;
    }
    op.set_credit(params.to_abi());
    Ok(())
}

/// One packed field of [`PoolParams::pack`].
const FIELD: u64 = (1 << 21) - 1;

/// The shortest timer the rate limit arms (Xen's `CSCHED_MIN_TIMER`).
pub const MIN_TIMER_NS: u64 = 100_000;
/// Xen's `CSCHED_DEFAULT_WEIGHT`.
pub const DEFAULT_WEIGHT: u16 = 256;
/// The putinfo cap that means "leave the cap as it is" (`(uint16_t)~0U`).
pub const CAP_UNCHANGED: u16 = 0xffff;
/// The accounting period (Xen's `CSCHED_TICKS_PER_ACCT` × 10 ms ticks).
pub const PERIOD_NS: u64 = 30_000_000;
/// How many CPUs a mask holds.
pub const MASK_BITS: usize = 64;

/// The bytes of a guest's `xenctl_bitmap` of `nr_bits` bits, as Xen computes them, in
/// `unsigned int`: `(nr_bits + 7) / 8`, so 2^32 - 7 bits and more wrap to a handful of
/// bytes or none (2^32 - 1 bits: 0 bytes).
pub fn xenctl_bytes(nr_bits: u32) -> u32 {
    nr_bits.wrapping_add(7) / 8
}

/// A set of physical CPUs (bit n: CPU n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMask(pub u64);

impl CpuMask {
    /// Every CPU (Xen's default hard and soft affinity, `cpumask_setall`).
    pub const ALL: CpuMask = CpuMask(u64::MAX);

    /// CPUs `0..n`.
    pub fn first(n: usize) -> CpuMask {
        if n >= MASK_BITS {
            CpuMask::ALL
        } else {
            CpuMask((1u64 << n) - 1)
        }
    }

    pub fn contains(self, cpu: usize) -> bool {
        cpu < MASK_BITS && self.0 & (1 << cpu) != 0
    }

    pub fn and(self, o: CpuMask) -> CpuMask {
        CpuMask(self.0 & o.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// A `xenctl_bitmap` of `nr_bits` bits as the guest gave it (`bytes`: its first
    /// `ceil(nr_bits / 8)` bytes, or fewer if the caller copied fewer), as Xen's
    /// `xenctl_bitmap_to_bitmap`: bits past `nr_bits` in the last byte are ignored, bits
    /// past what the mask holds too.
    pub fn from_xenctl(bytes: &[u8], nr_bits: u32) -> CpuMask {
        let guest_bytes = xenctl_bytes(nr_bits) as usize;
        let n = guest_bytes.min(bytes.len()).min(MASK_BITS / 8);
        let mut m = 0u64;
        for (i, &b) in bytes[..n].iter().enumerate() {
            let mut b = b;
            if i + 1 == guest_bytes && !nr_bits.is_multiple_of(8) {
                b &= !(0xffu8 << (nr_bits % 8));
            }
            m |= u64::from(b) << (8 * i);
        }
        CpuMask(m)
    }

    /// Xen's `bitmap_to_xenctl_bitmap` of this mask (`nr_cpus` CPUs) into a guest bitmap
    /// of `nr_bits` bits: the bytes holding the mask (`min(guest bytes, ceil(nr_cpus /
    /// 8))`, whole bytes as `bitmap_long_to_byte` copies them), and how many zero bytes
    /// follow to the end of the guest's [`xenctl_bytes`] (up to 512 MiB: counted, never
    /// allocated).
    pub fn to_xenctl(self, nr_bits: u32, nr_cpus: usize) -> (alloc::vec::Vec<u8>, u64) {
        let guest_bytes = u64::from(xenctl_bytes(nr_bits));
        let ours = (nr_cpus.div_ceil(8).min(MASK_BITS / 8) as u64).min(guest_bytes);
        let bytes = (0..ours).map(|i| (self.0 >> (8 * i)) as u8).collect();
        (bytes, guest_bytes - ours)
    }
}

/// A domain's credit parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomParams {
    pub weight: u16,
    /// Percent of one CPU per period; 0: no cap.
    pub cap: u16,
}

impl Default for DomParams {
    fn default() -> Self {
        DomParams { weight: DEFAULT_WEIGHT, cap: 0 }
    }
}

impl DomParams {
    /// `XEN_DOMCTL_SCHEDOP_putinfo` (`csched_dom_cntl`): weight 0 and cap `0xffff` leave
    /// that parameter as it is.
    pub fn put(&mut self, weight: u16, cap: u16) {
        if weight != 0 {
            self.weight = weight;
        }
        if cap != CAP_UNCHANGED {
            self.cap = cap;
        }
    }
}

/// Whether a vCPU has credit to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Credit left: runs first (Xen's `CSCHED_PRI_TS_UNDER`).
    Under,
    /// Credit spent (`CSCHED_PRI_TS_OVER`).
    Over,
}

/// A vCPU's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuSched {
    /// Hard affinity: the only CPUs it may run on.
    pub hard: CpuMask,
    /// Soft affinity: the CPUs it prefers within its hard affinity ([`Self::prefers`]).
    pub soft: CpuMask,
    /// Credit in nanoseconds of CPU time; earned each period, burned while running.
    pub credit: i64,
    /// Running time already burned (the run-state's running total when last burned).
    pub burned_upto: u64,
    /// It ran since the last accounting (counts as active then).
    pub ran: bool,
    /// A capped domain's vCPU with no credit: not run until the next period.
    pub parked: bool,
    /// The CPU it last ran on (Xen's `v->processor`).
    pub cpu: usize,
}

impl Default for VcpuSched {
    fn default() -> Self {
        VcpuSched { hard: CpuMask::ALL, soft: CpuMask::ALL, credit: 0, burned_upto: 0, ran: false, parked: false, cpu: 0 }
    }
}

impl VcpuSched {
    /// Whether it may run on `cpu` now: in its hard affinity and not parked.
    pub fn may_run_on(&self, cpu: usize) -> bool {
        self.hard.contains(cpu) && !self.parked
    }

    /// The CPUs it prefers, as Xen's `has_soft_affinity`: soft ∧ hard ∧ online, when
    /// that is neither empty nor all of hard ∧ online (else there is no preference:
    /// None).
    pub fn preferred(&self, online: CpuMask) -> Option<CpuMask> {
        let hard = self.hard.and(online);
        let soft = self.soft.and(hard);
        (!soft.is_empty() && soft != hard).then_some(soft)
    }

    /// Whether `cpu` is one it prefers (every CPU it may run on, with no preference).
    pub fn prefers(&self, cpu: usize, online: CpuMask) -> bool {
        self.preferred(online).is_none_or(|s| s.contains(cpu))
    }

    /// Whether it should wait for another CPU rather than run on `cpu`: `cpu` is not one
    /// it prefers while one it prefers is idle (`idle`: the idle CPUs but `cpu`), as
    /// Xen's credit1 places a vCPU in its soft affinity first when a CPU there is free.
    pub fn better_elsewhere(&self, cpu: usize, idle: CpuMask, online: CpuMask) -> bool {
        !self.prefers(cpu, online) && !self.preferred(online).unwrap_or(CpuMask(0)).and(idle).is_empty()
    }

    /// `soft_affinity` as `setvcpuaffinity` sets it: any mask is taken (Xen keeps an
    /// empty or disjoint soft mask and simply has no preference); the effective mask
    /// (soft ∧ hard ∧ online) is what is given back.
    pub fn set_soft(&mut self, mask: CpuMask, online: CpuMask) -> CpuMask {
        self.soft = mask;
        mask.and(self.hard).and(online)
    }

    pub fn priority(&self) -> Priority {
        if self.credit > 0 {
            Priority::Under
        } else {
            Priority::Over
        }
    }

    /// Burns the running time since the last burn: `running_total` is the vCPU's whole
    /// running time so far. A capped domain's vCPU that runs out is parked.
    pub fn burn(&mut self, running_total: u64, capped: bool) {
        let spent = running_total.saturating_sub(self.burned_upto);
        self.burned_upto = running_total.max(self.burned_upto);
        if spent > 0 {
            self.ran = true;
            self.credit = self.credit.saturating_sub(i64::try_from(spent).unwrap_or(i64::MAX)).max(-(PERIOD_NS as i64));
        }
        if capped && self.credit <= 0 {
            self.parked = true;
        }
    }

    /// How long it may run before its credit runs out, for a capped domain's vCPU (the
    /// caller arms a timer for it); None when uncapped.
    pub fn run_limit_ns(&self, capped: bool) -> Option<u64> {
        capped.then(|| u64::try_from(self.credit.max(0)).unwrap_or(0))
    }

    /// The CPU `getvcpuinfo` reports: where it runs, else where it ran last if its
    /// affinity still allows that, else the first CPU its affinity allows (where Xen
    /// would move it).
    pub fn reported_cpu(&self, running_on: Option<usize>, online: CpuMask) -> usize {
        running_on
            .or(Some(self.cpu).filter(|&c| self.hard.and(online).contains(c)))
            .unwrap_or_else(|| self.hard.and(online).0.trailing_zeros() as usize % MASK_BITS)
    }

    /// `hard_affinity` as `setvcpuaffinity` sets it: refused (`None`, Xen's -EINVAL) when
    /// it has no online CPU; the effective mask (with the online CPUs) otherwise.
    pub fn set_hard(&mut self, mask: CpuMask, online: CpuMask) -> Option<CpuMask> {
        if mask.and(online).is_empty() {
            return None;
        }
        self.hard = mask;
        Some(mask.and(online))
    }
}

/// One vCPU as the accounting sees it.
#[derive(Debug)]
pub struct Account<'a> {
    pub params: DomParams,
    /// Its domain (to split a cap over the domain's active vCPUs).
    pub domain: u16,
    /// It wants a CPU now (runnable).
    pub runnable: bool,
    pub sched: &'a mut VcpuSched,
}

/// One accounting period's earnings (Xen's `csched_acct`, per CPU as the module says):
/// each of the `nr_cpus` CPUs gives `PERIOD_NS` of credit to the active vCPUs allowed on
/// it in proportion to weight / (how many online CPUs the vCPU may use); a capped
/// domain's vCPUs get at most their share of cap% of one period; credit stays within one
/// period either way. Parks and unparks capped vCPUs; clears `ran`.
pub fn account(vcpus: &mut [Account<'_>], nr_cpus: usize) {
    let online = CpuMask::first(nr_cpus);
    // Weight bids, scaled so the split over CPUs stays exact enough.
    let bid = |a: &Account<'_>| -> u64 {
        let n = u64::from(a.sched.hard.and(online).count().max(1));
        (u64::from(a.params.weight) << 16) / n
    };
    // Active: wants a CPU now, or ran and used up what it had. A vCPU that ran a little
    // and blocked with credit left does not need more (Xen makes such a vCPU inactive
    // once its credit passes a time slice), so it takes no share of the CPUs from those
    // that compete for them.
    let active = |a: &Account<'_>| a.runnable || (a.sched.ran && a.sched.credit <= 0);
    let mut per_cpu_bids = [0u64; MASK_BITS];
    for a in vcpus.iter().filter(|a| active(a)) {
        for (c, total) in per_cpu_bids.iter_mut().enumerate().take(nr_cpus.min(MASK_BITS)) {
            if a.sched.hard.contains(c) {
                *total += bid(a);
            }
        }
    }
    let active_in = |vcpus: &[Account<'_>], d: u16| vcpus.iter().filter(|a| a.domain == d && active(a)).count() as u64;
    let counts: alloc::vec::Vec<u64> = vcpus.iter().map(|a| active_in(vcpus, a.domain)).collect();
    let period = PERIOD_NS as i64;
    for (a, &n_active) in vcpus.iter_mut().zip(&counts) {
        if active(a) {
            let b = u128::from(bid(a));
            let mut earn: u128 = 0;
            for (c, &total) in per_cpu_bids.iter().enumerate().take(nr_cpus.min(MASK_BITS)) {
                if a.sched.hard.contains(c) && total > 0 {
                    earn += u128::from(PERIOD_NS) * b / u128::from(total);
                }
            }
            if a.params.cap != 0 {
                let cap_share = u128::from(PERIOD_NS) * u128::from(a.params.cap) / 100 / u128::from(n_active.max(1));
                earn = earn.min(cap_share);
            }
            let earn = i64::try_from(earn).unwrap_or(period);
            a.sched.credit = a.sched.credit.saturating_add(earn).clamp(-period, period);
        } else {
            a.sched.credit = a.sched.credit.clamp(-period, period);
        }
        a.sched.parked = a.params.cap != 0 && a.sched.credit <= 0;
        a.sched.ran = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn pool(cpupool_id: u32, sched_id: u32, cmd: u32, tslice_ms: u32, ratelimit_us: u32, vcpu_migr_delay_us: u32) -> XenSysctlSchedulerOp {
        let mut op = XenSysctlSchedulerOp { cpupool_id, sched_id, cmd, ..Default::default() };
        op.set_credit(XenSysctlCreditSchedule { tslice_ms, ratelimit_us, vcpu_migr_delay_us });
        op
    }

    #[test]
    fn pool_params_validated_as_csched_sys_cntl() {
        let ok = |t, r, m| PoolParams::check(&XenSysctlCreditSchedule { tslice_ms: t, ratelimit_us: r, vcpu_migr_delay_us: m });
        assert_eq!(ok(30, 1000, 0), Ok(PoolParams::DEFAULT));
        assert_eq!(PoolParams::DEFAULT.tslice_ns(), 30_000_000);
        assert_eq!(PoolParams::DEFAULT.ratelimit_ns(), 1_000_000);
        // Slice bounds.
        assert_eq!(ok(0, 0, 0), Err(Errno::EINVAL));
        assert_eq!(ok(1001, 0, 0), Err(Errno::EINVAL));
        assert!(ok(1, 0, 0).is_ok() && ok(1000, 0, 0).is_ok());
        // Rate limit: 0, or 100..=500000, and never past the slice.
        assert!(ok(1, 100, 0).is_ok() && ok(1, 1000, 0).is_ok());
        assert_eq!(ok(1, 1001, 0), Err(Errno::EINVAL));
        assert_eq!(ok(30, 99, 0), Err(Errno::EINVAL));
        assert_eq!(ok(30, 30_001, 0), Err(Errno::EINVAL));
        assert!(ok(1000, 500_000, 0).is_ok());
        assert_eq!(ok(1000, 500_001, 0), Err(Errno::EINVAL));
        assert_eq!(ok(1000, u32::MAX, 0), Err(Errno::EINVAL));
        // Migration delay up to 100 ms.
        assert!(ok(30, 1000, 100_000).is_ok());
        assert_eq!(ok(30, 1000, 100_001), Err(Errno::EINVAL));
        assert_eq!(ok(u32::MAX, u32::MAX, u32::MAX), Err(Errno::EINVAL));
        // Everything accepted survives the one-word form the scheduler reads.
        for (t, r, m) in [(30, 1000, 0), (1, 0, 0), (1000, 500_000, 100_000), (7, 100, 1)] {
            let p = ok(t, r, m).unwrap();
            assert_eq!(PoolParams::unpack(p.pack()), p);
        }
    }

    #[test]
    fn boot_parameters_checked_as_xen_starts_credit1() {
        use crate::boot_options::CreditBoot;
        let boot = |t, r, m| {
            let mut warnings = 0;
            let p = PoolParams::from_boot(CreditBoot { tslice_ms: t, ratelimit_us: r, migr_delay_us: m }, |_| warnings += 1);
            (p.tslice_ms, p.ratelimit_us, p.migr_delay_us, warnings)
        };
        assert_eq!(boot(None, None, None), (30, 1000, 0, 0));
        assert_eq!(boot(Some(5), Some(0), Some(100_000)), (5, 0, 100_000, 0));
        assert_eq!(boot(Some(0), None, None), (30, 1000, 0, 1), "slice below 1 ms");
        assert_eq!(boot(Some(1001), None, None), (30, 1000, 0, 1));
        assert_eq!(boot(None, Some(99), None), (30, 1000, 0, 1), "rate limit below 100 us");
        assert_eq!(boot(None, Some(-1), None), (30, 1000, 0, 1));
        assert_eq!(boot(Some(1), Some(5000), None), (1, 1000, 0, 1), "rate limit past the slice becomes the slice");
        assert_eq!(boot(None, None, Some(100_001)), (30, 1000, 0, 1));
        assert_eq!(boot(None, None, Some(-5)), (30, 1000, 0, 1));
        // Whatever the command line says, the pool starts with parameters putinfo takes.
        for (t, r, m) in [(Some(-3), Some(i64::MAX), Some(7)), (Some(2), Some(2000), None)] {
            let p = PoolParams::from_boot(CreditBoot { tslice_ms: t, ratelimit_us: r, migr_delay_us: m }, |_| ());
            let abi = p.to_abi();
            assert_eq!(PoolParams::check(&abi), Ok(p));
        }
    }

    #[test]
    fn rate_limit_holds_a_boost_back_until_it_has_run() {
        let p = PoolParams::DEFAULT;
        assert!(p.holds_back(0, false) && p.holds_back(999_999, false));
        assert!(!p.holds_back(1_000_000, false), "ran the whole rate limit");
        assert!(!p.holds_back(10, true), "a yield is never held");
        assert!(!PoolParams { ratelimit_us: 0, ..p }.holds_back(0, false), "no rate limit");
        // The timer: the end of the rate limit, at least 100 µs ahead.
        assert_eq!(p.rate_limit_end(5_000_000, 5_200_000), 6_000_000);
        assert_eq!(p.rate_limit_end(5_000_000, 5_950_000), 6_050_000);
        assert_eq!(p.rate_limit_end(u64::MAX - 10, 0), u64::MAX);
    }

    #[test]
    fn pool_op_as_sched_adjust_global() {
        use xen_abi::domctl::XEN_SCHEDULER_CREDIT2;
        let (put, get) = (XEN_SYSCTL_SCHEDOP_putinfo, XEN_SYSCTL_SCHEDOP_getinfo);
        let mut p = PoolParams::DEFAULT;
        // getinfo writes the parameters over whatever the union held.
        let mut op = pool(0, XEN_SCHEDULER_CREDIT, get, 7, 7, 7);
        assert_eq!(pool_op(&mut op, &mut p), Ok(()));
        assert_eq!(op.credit(), XenSysctlCreditSchedule { tslice_ms: 30, ratelimit_us: 1000, vcpu_migr_delay_us: 0 });
        // The command first, then the pool, then the scheduler, then the values.
        assert_eq!(pool_op(&mut pool(1, XEN_SCHEDULER_CREDIT2, 2, 0, 0, 0), &mut p), Err(Errno::EINVAL));
        assert_eq!(pool_op(&mut pool(1, XEN_SCHEDULER_CREDIT2, get, 0, 0, 0), &mut p), Err(Errno::ESRCH));
        assert_eq!(pool_op(&mut pool(u32::MAX, XEN_SCHEDULER_CREDIT, get, 0, 0, 0), &mut p), Err(Errno::ESRCH));
        assert_eq!(pool_op(&mut pool(0, XEN_SCHEDULER_CREDIT2, get, 0, 0, 0), &mut p), Err(Errno::EINVAL));
        assert_eq!(pool_op(&mut pool(0, XEN_SCHEDULER_CREDIT, put, 0, 0, 0), &mut p), Err(Errno::EINVAL));
        assert_eq!(p, PoolParams::DEFAULT, "a refused putinfo changes nothing");
        // putinfo sets and reads back.
        let mut op = pool(0, XEN_SCHEDULER_CREDIT, put, 5, 0, 100_000);
        assert_eq!(pool_op(&mut op, &mut p), Ok(()));
        assert_eq!(p, PoolParams { tslice_ms: 5, ratelimit_us: 0, migr_delay_us: 100_000 });
        assert_eq!(op.credit(), XenSysctlCreditSchedule { tslice_ms: 5, ratelimit_us: 0, vcpu_migr_delay_us: 100_000 });
    }

    #[test]
    fn putinfo_keeps_what_is_zero_or_unchanged() {
        let mut p = DomParams::default();
        assert_eq!(p, DomParams { weight: 256, cap: 0 });
        p.put(512, 50);
        assert_eq!(p, DomParams { weight: 512, cap: 50 });
        p.put(0, CAP_UNCHANGED);
        assert_eq!(p, DomParams { weight: 512, cap: 50 });
        p.put(65535, 0);
        assert_eq!(p, DomParams { weight: 65535, cap: 0 });
    }

    #[test]
    fn soft_affinity_is_a_preference_only_within_hard() {
        let online = CpuMask::first(4);
        let mut v = VcpuSched::default();
        // Default: every CPU, no preference.
        assert_eq!(v.preferred(online), None);
        assert!(v.prefers(3, online));
        assert!(!v.better_elsewhere(3, CpuMask(0b0001), online));
        // Soft {1}: CPU 1 preferred; another CPU leaves it to CPU 1 only while 1 is idle.
        assert_eq!(v.set_soft(CpuMask(0b0010), online), CpuMask(0b0010));
        assert_eq!(v.preferred(online), Some(CpuMask(0b0010)));
        assert!(v.prefers(1, online) && !v.prefers(0, online));
        assert!(v.better_elsewhere(0, CpuMask(0b0010), online));
        assert!(!v.better_elsewhere(0, CpuMask(0b0100), online));
        assert!(!v.better_elsewhere(1, CpuMask(0b0001), online));
        // Soft disjoint from hard, or covering all of hard: no preference (Xen's
        // has_soft_affinity), and the effective soft mask given back is soft ∧ hard.
        v.set_hard(CpuMask(0b1100), online).unwrap();
        assert_eq!(v.preferred(online), None);
        assert!(!v.better_elsewhere(2, CpuMask(0b0010), online));
        assert_eq!(v.set_soft(CpuMask::ALL, online), CpuMask(0b1100));
        assert_eq!(v.preferred(online), None);
        assert_eq!(v.set_soft(CpuMask(0b0100), online), CpuMask(0b0100));
        assert!(v.better_elsewhere(3, CpuMask(0b0101), online));
        // Offline CPUs are no preference.
        assert_eq!(v.set_soft(CpuMask(0b1_0000_0100), online), CpuMask(0b0100));
    }

    proptest! {
        /// The CPU a vCPU would be left for is always one it may run on and prefers,
        /// and the preferred CPU itself never leaves it (no two CPUs pass it back and
        /// forth).
        #[test]
        fn better_elsewhere_never_passes_back(hard in 1u64..16, soft in 0u64..16, idle in 0u64..16, cpu in 0usize..4) {
            let online = CpuMask::first(4);
            let mut v = VcpuSched::default();
            prop_assume!(v.set_hard(CpuMask(hard), online).is_some());
            v.set_soft(CpuMask(soft), online);
            let idle = CpuMask(idle & !(1 << cpu));
            if v.better_elsewhere(cpu, idle, online) {
                let target = v.preferred(online).unwrap().and(idle);
                prop_assert!(!target.is_empty());
                for c in 0..4 {
                    if target.contains(c) {
                        prop_assert!(v.may_run_on(c) && v.prefers(c, online));
                        prop_assert!(!v.better_elsewhere(c, CpuMask(online.0 & !(1 << c)), online));
                    }
                }
            }
        }
    }

    #[test]
    fn xenctl_bitmap_round_trip_and_trailing_bits() {
        assert_eq!(CpuMask::from_xenctl(&[0b10], 2), CpuMask(0b10));
        // Bits past nr_bits in the last byte are ignored (Xen masks them).
        assert_eq!(CpuMask::from_xenctl(&[0xff], 2), CpuMask(0b11));
        assert_eq!(CpuMask::from_xenctl(&[0xff, 0x01], 9), CpuMask(0x1ff));
        assert_eq!(CpuMask::from_xenctl(&[], 0), CpuMask(0));
        // Given back in the guest's length, zero past the CPUs the hypervisor knows.
        // Whole bytes, as Xen's bitmap_long_to_byte: every CPU set reads 0xff.
        assert_eq!(CpuMask::ALL.to_xenctl(16, 2), (vec![0xff], 1));
        assert_eq!(CpuMask(0b10).to_xenctl(8, 2), (vec![0b10], 0));
        assert_eq!(CpuMask(0b10).to_xenctl(0, 2), (vec![], 0));
        assert_eq!(CpuMask(!0).to_xenctl(128, 64), (vec![0xff; 8], 8));
        // A guest's huge bitmap: the zero fill is counted, never allocated (the
        // control-domain fuzzer had the hypervisor allocate 512 MiB for it).
        assert_eq!(CpuMask(0b10).to_xenctl(0xffff_fff8, 2), (vec![0b10], 0x1fff_fffe));
        // Xen's byte count wraps in unsigned int: 2^32 - 1 bits are no bytes at all.
        assert_eq!((xenctl_bytes(u32::MAX), xenctl_bytes(0xffff_fff8), xenctl_bytes(9)), (0, 0x1fff_ffff, 2));
        assert_eq!(CpuMask(0b10).to_xenctl(u32::MAX, 2), (vec![], 0));
    }

    #[test]
    fn reported_cpu_follows_affinity() {
        let mut v = VcpuSched::default();
        let online = CpuMask::first(2);
        assert_eq!(v.reported_cpu(None, online), 0);
        assert_eq!(v.reported_cpu(Some(1), online), 1);
        v.set_hard(CpuMask(0b10), online);
        assert_eq!(v.reported_cpu(None, online), 1);
        v.cpu = 1;
        v.set_hard(CpuMask::ALL, online);
        assert_eq!(v.reported_cpu(None, online), 1);
    }

    #[test]
    fn empty_effective_affinity_is_refused() {
        let mut v = VcpuSched::default();
        assert_eq!(v.set_hard(CpuMask(0b100), CpuMask::first(2)), None);
        assert_eq!(v.hard, CpuMask::ALL);
        assert_eq!(v.set_hard(CpuMask(0b110), CpuMask::first(2)), Some(CpuMask(0b10)));
        assert!(v.may_run_on(1) && !v.may_run_on(0));
    }

    /// Runs `vcpus` (weight, cap, hard mask) always runnable on `nr_cpus` CPUs for
    /// `periods` accounting periods with 10 ms slices, each CPU picking as `pv::sched`
    /// does (allowed, not parked, credit first, round robin among equals); returns each
    /// vCPU's running time.
    fn simulate(vcpus: &[(u16, u16, u64)], nr_cpus: usize, periods: u32) -> Vec<u64> {
        let mut st: Vec<VcpuSched> = vcpus.iter().map(|&(_, _, m)| VcpuSched { hard: CpuMask(m), ..Default::default() }).collect();
        let mut ran = vec![0u64; vcpus.len()];
        let mut rr = 0usize;
        let slice = 10_000_000u64;
        for _ in 0..periods {
            for _ in 0..PERIOD_NS / slice {
                let mut busy = vec![false; vcpus.len()];
                let n = vcpus.len();
                for cpu in 0..nr_cpus {
                    let pick = (0..n)
                        .filter(|&i| !busy[i] && st[i].may_run_on(cpu))
                        .min_by_key(|&i| (st[i].priority(), (i + n - rr % n) % n));
                    if let Some(i) = pick {
                        busy[i] = true;
                        ran[i] += slice;
                        st[i].burn(ran[i], vcpus[i].1 != 0);
                    }
                }
                rr += 1;
            }
            let mut acc: Vec<Account<'_>> = st
                .iter_mut()
                .enumerate()
                .map(|(i, s)| Account { params: DomParams { weight: vcpus[i].0, cap: vcpus[i].1 }, domain: i as u16, runnable: true, sched: s })
                .collect();
            account(&mut acc, nr_cpus);
        }
        ran
    }

    #[test]
    fn two_pinned_to_one_cpu_share_it_by_weight() {
        let ran = simulate(&[(256, 0, 0b10), (512, 0, 0b10)], 2, 100);
        let ratio = ran[1] as f64 / ran[0] as f64;
        assert!((1.8..2.2).contains(&ratio), "{ran:?} ratio {ratio}");
        // The CPU is never idle while they wait.
        assert_eq!(ran[0] + ran[1], 100 * PERIOD_NS);
    }

    #[test]
    fn equal_weights_share_equally() {
        let ran = simulate(&[(256, 0, 1), (256, 0, 1)], 1, 100);
        assert!(ran[0].abs_diff(ran[1]) <= 2 * PERIOD_NS, "{ran:?}");
    }

    #[test]
    fn cap_limits_a_domain_to_its_percent() {
        // Alone on a CPU, capped at 20%: about a fifth of the time.
        let ran = simulate(&[(256, 20, 1)], 1, 300);
        let share = ran[0] as f64 / (300 * PERIOD_NS) as f64;
        assert!((0.15..0.25).contains(&share), "share {share}");
    }

    #[test]
    fn unpinned_vcpus_use_every_cpu() {
        let ran = simulate(&[(256, 0, u64::MAX), (256, 0, u64::MAX)], 2, 10);
        assert_eq!(ran, [10 * PERIOD_NS, 10 * PERIOD_NS]);
    }

    #[test]
    fn a_vcpu_that_blocked_with_credit_left_takes_no_share() {
        let mut busy = VcpuSched { hard: CpuMask(0b10), ..Default::default() };
        let mut light = VcpuSched { credit: 1_000_000, ran: true, ..Default::default() };
        let mut acc = [
            Account { params: DomParams::default(), domain: 1, runnable: true, sched: &mut busy },
            Account { params: DomParams::default(), domain: 0, runnable: false, sched: &mut light },
        ];
        account(&mut acc, 2);
        assert_eq!(busy.credit, PERIOD_NS as i64, "CPU 1's whole period");
        assert_eq!(light.credit, 1_000_000);
    }

    #[test]
    fn idle_vcpus_keep_their_credit_bounded() {
        let mut s = VcpuSched { credit: 5 * PERIOD_NS as i64, ..Default::default() };
        let mut acc = [Account { params: DomParams::default(), domain: 1, runnable: false, sched: &mut s }];
        account(&mut acc, 2);
        assert_eq!(s.credit, PERIOD_NS as i64);
    }

    proptest! {
        /// Any weights and pinnings: credit stays within one period each way and
        /// nothing uncapped is parked; two vCPUs pinned to one CPU share it in
        /// proportion to their weights (within a quarter).
        #[test]
        fn credit_bounded_and_shares_follow_weights(
            ws in proptest::collection::vec((1u16..=65535, 1u64..4), 1..5),
            w1 in 64u16..=1024, w2 in 64u16..=1024,
        ) {
            let vcpus: Vec<(u16, u16, u64)> = ws.iter().map(|&(w, m)| (w, 0, m)).collect();
            let ran = simulate(&vcpus, 2, 5);
            let mut st: Vec<VcpuSched> = vcpus.iter().map(|&(_, _, m)| VcpuSched { hard: CpuMask(m), ..Default::default() }).collect();
            for (i, s) in st.iter_mut().enumerate() {
                s.burn(ran[i], false);
            }
            let mut acc: Vec<Account<'_>> = st.iter_mut().enumerate().map(|(i, s)| Account { params: DomParams { weight: vcpus[i].0, cap: 0 }, domain: i as u16, runnable: true, sched: s }).collect();
            account(&mut acc, 2);
            for a in &acc {
                prop_assert!(a.sched.credit.abs() <= PERIOD_NS as i64);
                prop_assert!(!a.sched.parked);
            }
            prop_assume!(w1.max(w2) <= 3 * w1.min(w2));
            let ran = simulate(&[(w1, 0, 1), (w2, 0, 1)], 1, 300);
            let got = ran[1] as f64 / ran[0] as f64;
            let want = f64::from(w2) / f64::from(w1);
            prop_assert!((got / want - 1.0).abs() < 0.25, "weights {} {} ran {:?}", w1, w2, ran);
        }

        #[test]
        fn xenctl_bytes_round_trip(m in any::<u64>(), nr_cpus in 1usize..=64) {
            let mask = CpuMask(m).and(CpuMask::first(nr_cpus));
            let (bytes, _) = mask.to_xenctl(64, nr_cpus);
            prop_assert_eq!(CpuMask::from_xenctl(&bytes, 64), mask);
        }
    }
}
