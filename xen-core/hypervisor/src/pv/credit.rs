//! The credit policy (`domain::credit`) on the domain table: accounting before each
//! pick, what a CPU may run, and the control domain's operations on it
//! (`XEN_DOMCTL_scheduler_op` for `XEN_SCHEDULER_CREDIT`, `XEN_DOMCTL_setvcpuaffinity`
//! and `getvcpuaffinity` for hard and soft affinity, `XEN_SYSCTL_sched_id`,
//! `XEN_SYSCTL_scheduler_op` for Pool-0's time slice and rate limit).

use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::smp;
use crate::domain::credit::{self as policy, Account, CpuMask};
use crate::pv::domain::Domain;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::vcpu::RUNSTATE_running;

/// System time of the next accounting.
static NEXT_ACCOUNTING: AtomicU64 = AtomicU64::new(0);
/// Some vCPU is parked (capped, out of credit): a CPU must wake at the next accounting.
static ANY_PARKED: AtomicBool = AtomicBool::new(false);

/// Pool-0's parameters (`XEN_SYSCTL_scheduler_op`): time slice, rate limit, migration
/// delay, packed into one word (`PoolParams::pack`), so that every pick on every CPU
/// reads them without a lock. `POOL_WRITER` orders the rare writers.
static POOL: AtomicU64 = AtomicU64::new(policy::PoolParams::DEFAULT.pack());
static POOL_WRITER: spin::Mutex<()> = spin::Mutex::new(());

/// Pool-0's parameters now.
pub fn pool_params() -> policy::PoolParams {
    policy::PoolParams::unpack(POOL.load(Ordering::Relaxed))
}

/// Pool-0's parameters from the boot command line (before any domain runs).
pub fn set_boot_params(p: policy::PoolParams) {
    let _writer = POOL_WRITER.lock();
    POOL.store(p.pack(), Ordering::Relaxed);
}

/// `XEN_SYSCTL_scheduler_op` (Xen's `sched_adjust_global`): Pool-0's credit parameters
/// (`domain::credit::pool_op` says what is refused).
pub fn pool_op(op: &mut xen_abi::sysctl::XenSysctlSchedulerOp) -> Result<(), Errno> {
    let _writer = POOL_WRITER.lock();
    let before = pool_params();
    let mut p = before;
    policy::pool_op(op, &mut p)?;
    POOL.store(p.pack(), Ordering::Relaxed);
    // Xen's messages when the rate limit is switched on or off.
    if before.ratelimit_us == 0 && p.ratelimit_us != 0 {
        crate::println!("Enabling context switch rate limiting");
    } else if before.ratelimit_us != 0 && p.ratelimit_us == 0 {
        crate::println!("Disabling context switch rate limiting");
    }
    Ok(())
}

/// The online CPUs.
fn online() -> CpuMask {
    CpuMask::first(smp::online())
}

/// Before each pick: burns what every vCPU ran since the last time, and once a period
/// hands out new credit. `runnable` is the scheduler's test. No allocation outside the
/// once-a-period part (this runs at every return to a guest).
pub fn account(
    doms: &mut hashbrown::HashMap<u16, spin::Mutex<Domain>>,
    running: &[Option<(u16, usize)>],
    now: u64,
    runnable: fn(&Domain, usize) -> bool,
) {
    let period_due = now >= NEXT_ACCOUNTING.load(Ordering::Relaxed);
    for d in doms.values_mut().map(spin::Mutex::get_mut).filter(|d| d.alive()) {
        let capped = d.sched.cap != 0;
        for (v, vc) in d.vcpus.iter_mut().enumerate() {
            let total = vc.runstate.snapshot(now).time[RUNSTATE_running as usize];
            vc.sched.burn(total, capped);
            if let Some(c) = running.iter().position(|r| *r == Some((d.id, v))) {
                vc.sched.cpu = c;
            }
        }
    }
    if !period_due {
        return;
    }
    NEXT_ACCOUNTING.store(now + policy::PERIOD_NS, Ordering::Relaxed);
    let mut all: Vec<&mut Domain> = doms.values_mut().map(spin::Mutex::get_mut).filter(|d| d.alive()).collect();
    let flags: Vec<Vec<bool>> = all.iter().map(|d| (0..d.vcpus.len()).map(|v| runnable(d, v)).collect()).collect();
    let mut acc: Vec<Account<'_>> = Vec::new();
    for (d, flags) in all.iter_mut().zip(&flags) {
        let (params, domain) = (d.sched, d.id);
        for (vc, &runnable) in d.vcpus.iter_mut().zip(flags) {
            acc.push(Account { params, domain, runnable, sched: &mut vc.sched });
        }
    }
    policy::account(&mut acc, smp::online());
    ANY_PARKED.store(acc.iter().any(|a| a.sched.parked), Ordering::Relaxed);
}

/// The CPU `getvcpuinfo` reports for vCPU `v` of `d` (`running_on`: where it runs now).
pub fn reported_cpu(d: &Domain, v: usize, running_on: Option<usize>) -> usize {
    d.vcpus.get(v).map_or(0, |vc| vc.sched.reported_cpu(running_on, online()))
}

/// Whether vCPU `v` of `d` may run on `cpu` now (its hard affinity; not parked).
pub fn may_run_on(d: &Domain, v: usize, cpu: usize) -> bool {
    d.vcpus.get(v).is_some_and(|vc| vc.sched.may_run_on(cpu))
}

/// Whether vCPU `v` of `d` should be left for another CPU than `cpu`: `cpu` is not in
/// its soft affinity while a CPU there is idle (`idle`, without `cpu`).
pub fn better_elsewhere(d: &Domain, v: usize, cpu: usize, idle: CpuMask) -> bool {
    d.vcpus.get(v).is_some_and(|vc| vc.sched.better_elsewhere(cpu, idle, online()))
}

/// Whether `cpu` is in vCPU `v` of `d`'s soft affinity (any CPU, with no preference).
pub fn prefers(d: &Domain, v: usize, cpu: usize) -> bool {
    d.vcpus.get(v).is_some_and(|vc| vc.sched.prefers(cpu, online()))
}

/// The pick order's first key: vCPUs with credit first.
pub fn priority(d: &Domain, v: usize) -> policy::Priority {
    d.vcpus.get(v).map_or(policy::Priority::Over, |vc| vc.sched.priority())
}

/// When this CPU must look again for the credit's sake: the end of a capped vCPU's
/// credit while it runs, the next accounting while anything is parked.
pub fn deadline(d: Option<(&Domain, usize)>, now: u64) -> Option<u64> {
    let limit = d.and_then(|(d, v)| d.vcpus.get(v)?.sched.run_limit_ns(d.sched.cap != 0)).map(|l| now + l.max(100_000));
    let parked = ANY_PARKED.load(Ordering::Relaxed).then(|| NEXT_ACCOUNTING.load(Ordering::Relaxed));
    [limit, parked].into_iter().flatten().min()
}

/// `XEN_DOMCTL_scheduler_op` (Xen's `sched_adjust` and `csched_dom_cntl`): only the
/// credit scheduler's id is ours (-EINVAL otherwise); putinfo sets weight and cap (0 and
/// 0xffff leave them), getinfo reports them; anything else is -EINVAL.
pub fn scheduler_op(d: &mut Domain, op: &mut XenDomctl) -> Result<(), Errno> {
    let mut s: XenDomctlSchedulerOp = op.payload().ok_or(Errno::EINVAL)?;
    if s.sched_id != XEN_SCHEDULER_CREDIT {
        return Err(Errno::EINVAL);
    }
    match s.cmd {
        XEN_DOMCTL_SCHEDOP_getinfo => {
            s.set_credit(XenDomctlSchedCredit { weight: d.sched.weight, cap: d.sched.cap });
            op.set_payload(&s);
        }
        XEN_DOMCTL_SCHEDOP_putinfo => {
            let c = s.credit();
            d.sched.put(c.weight, c.cap);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// Reads a `xenctl_bitmap` of CPUs from the guest (at most the bytes the hypervisor's
/// CPUs need).
fn read_mask(guest: &GuestView, b: &XenctlBitmap) -> Result<CpuMask, Errno> {
    read_bitmap(guest, b, smp::online())
}

/// Xen's `xenctl_bitmap_to_bitmap` into a bitmap of `our_bits` bits: the guest's bytes
/// (`(nr_bits + 7) / 8` in 32 bits, so it wraps) up to ours are read, and bits past
/// `nr_bits` cleared in the guest's own last byte only.
pub(crate) fn read_bitmap(guest: &GuestView, b: &XenctlBitmap, our_bits: usize) -> Result<CpuMask, Errno> {
    let ours = our_bits.div_ceil(8);
    let n = (policy::xenctl_bytes(b.nr_bits) as usize).min(ours);
    let mut bytes = alloc::vec![0u8; n];
    if n > 0 {
        guest.copy_from(b.bitmap, &mut bytes)?;
    }
    // Trailing bits are cut only in the guest's own last byte.
    let nr_bits = if n * 8 < b.nr_bits as usize { (n * 8) as u32 } else { b.nr_bits };
    Ok(CpuMask::from_xenctl(&bytes, nr_bits))
}

/// `XEN_DOMCTL_setvcpuaffinity` / `getvcpuaffinity` (Xen's `vcpu_affinity_domctl`):
/// vCPU past the maximum -EINVAL, not created -ESRCH, no flag or a null bitmap for a
/// flag -EINVAL, a hard mask with no online CPU -EINVAL; set writes back the effective
/// masks (hard ∧ online, soft ∧ hard ∧ online), get the masks as they are.
pub fn vcpu_affinity(d: &mut Domain, guest: &GuestView, op: &XenDomctl, max_vcpus: u32, created: bool) -> Result<(), Errno> {
    let a: XenDomctlVcpuaffinity = op.payload().ok_or(Errno::EINVAL)?;
    if a.vcpu >= max_vcpus {
        return Err(Errno::EINVAL);
    }
    let vc = d.vcpus.get_mut(a.vcpu as usize).filter(|_| created).ok_or(Errno::ESRCH)?;
    let hard = a.flags & XEN_VCPUAFFINITY_HARD != 0;
    let soft = a.flags & XEN_VCPUAFFINITY_SOFT != 0;
    if a.flags == 0 || (hard && a.cpumap_hard.bitmap == 0) || (soft && a.cpumap_soft.bitmap == 0) {
        return Err(Errno::EINVAL);
    }
    let online = online();
    if op.cmd == XEN_DOMCTL_getvcpuaffinity {
        if hard {
            crate::pv::hypercall::sysctl::write_cpu_bitmap(guest, &a.cpumap_hard, vc.sched.hard)?;
        }
        if soft {
            crate::pv::hypercall::sysctl::write_cpu_bitmap(guest, &a.cpumap_soft, vc.sched.soft)?;
        }
        return Ok(());
    }
    let old = vc.sched.hard;
    if hard {
        let m = read_mask(guest, &a.cpumap_hard)?;
        let eff = vc.sched.set_hard(m, online).ok_or(Errno::EINVAL)?;
        crate::pv::hypercall::sysctl::write_cpu_bitmap(guest, &a.cpumap_hard, eff)?;
    }
    if soft {
        let m = match read_mask(guest, &a.cpumap_soft) {
            Ok(m) => m,
            Err(e) => {
                vc.sched.hard = old;
                return Err(e);
            }
        };
        let eff = vc.sched.set_soft(m, online);
        crate::pv::hypercall::sysctl::write_cpu_bitmap(guest, &a.cpumap_soft, eff)?;
    }
    Ok(())
}
