//! CPU pools as xen-core has them: one pool, Xen's Pool-0 (id 0), holding every online
//! CPU and every domain, run by the credit scheduler; no free CPUs. This is the
//! `XEN_SYSCTL_cpupool_op` contract of Xen 4.17's `cpupool_do_sysctl` for that machine
//! (libxl checks a new domain's pool with `OP_INFO`, `xen-init-dom0` lists the pools
//! into xenstore, `xl info` counts the free CPUs with `OP_FREEINFO`):
//!
//! - `INFO`: the first pool whose id is at least the one asked (so 0 answers Pool-0,
//!   anything above it `-ENOENT`, which ends a caller's listing);
//! - `FREEINFO`: the free CPUs, none;
//! - `MOVEDOMAIN`: the domain is looked up first (none `-ESRCH`, the caller itself
//!   `-EPERM`, as `rcu_lock_remote_domain_by_id`); into Pool-0, where it is, succeeds
//!   with nothing to do; any other pool `-ENOENT`;
//! - `ADDCPU`: a pool other than 0 `-ENOENT`; "any CPU" with no free CPU `-ENODEV`; a
//!   CPU number past the last `-EINVAL`; a CPU already in Pool-0 (every online one)
//!   `-ENODEV`;
//! - `DESTROY`: another pool `-ENOENT`; Pool-0, which has domains and CPUs, `-EBUSY`;
//! - `CREATE` of id 0 (taken) `-EEXIST`; other pools, and `RMCPU` of a CPU of Pool-0,
//!   would need a second pool: `-ENOSYS` (not implemented);
//! - an unknown op `-ENOSYS`.
#![forbid(unsafe_code)]

use super::credit::CpuMask;
use xen_abi::errno::Errno;
use xen_abi::sysctl::*;

/// What a successful op hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `INFO`: the pool's id, scheduler, domain count and CPUs (written to `cpumap`).
    Info { id: u32, sched_id: u32, n_dom: u32, cpus: CpuMask },
    /// `FREEINFO`: the CPUs in no pool (written to `cpumap`).
    Free(CpuMask),
    /// Nothing to write back beyond the header.
    Done,
}

/// The machine an op is answered for: CPUs online, domains alive, and how a domain id
/// resolves (`None`: no such domain; `Some(true)`: the caller itself).
#[allow(missing_debug_implementations)]
pub struct Machine<F: Fn(u32) -> Option<bool>> {
    pub online_cpus: usize,
    pub n_dom: u32,
    pub lookup: F,
}

/// Xen's `cpupool_do_sysctl` on a machine with Pool-0 only.
pub fn op<F: Fn(u32) -> Option<bool>>(o: &XenSysctlCpupoolOp, m: &Machine<F>, sched_id: u32) -> Result<Answer, Errno> {
    let nr_cpus = m.online_cpus as u32;
    match o.op {
        XEN_SYSCTL_CPUPOOL_OP_CREATE => {
            if o.cpupool_id == 0 {
                Err(Errno::EEXIST)
            } else {
                Err(Errno::ENOSYS)
            }
        }
        XEN_SYSCTL_CPUPOOL_OP_DESTROY => {
            if o.cpupool_id != 0 {
                Err(Errno::ENOENT)
            } else {
                Err(Errno::EBUSY)
            }
        }
        XEN_SYSCTL_CPUPOOL_OP_INFO => {
            if o.cpupool_id != 0 {
                return Err(Errno::ENOENT);
            }
            Ok(Answer::Info { id: 0, sched_id, n_dom: m.n_dom, cpus: CpuMask::first(m.online_cpus) })
        }
        XEN_SYSCTL_CPUPOOL_OP_ADDCPU => {
            if o.cpupool_id != 0 {
                return Err(Errno::ENOENT);
            }
            if o.cpu == XEN_SYSCTL_CPUPOOL_PAR_ANY {
                return Err(Errno::ENODEV);
            }
            if o.cpu >= nr_cpus {
                return Err(Errno::EINVAL);
            }
            // Online, but not free: it is in Pool-0 already.
            Err(Errno::ENODEV)
        }
        XEN_SYSCTL_CPUPOOL_OP_RMCPU => {
            if o.cpupool_id != 0 {
                return Err(Errno::ENOENT);
            }
            if o.cpu != XEN_SYSCTL_CPUPOOL_PAR_ANY && o.cpu >= nr_cpus {
                return Err(Errno::EINVAL);
            }
            Err(Errno::ENOSYS)
        }
        XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN => match (m.lookup)(o.domid) {
            None => Err(Errno::ESRCH),
            Some(true) => Err(Errno::EPERM),
            Some(false) if o.cpupool_id == 0 => Ok(Answer::Done),
            Some(false) => Err(Errno::ENOENT),
        },
        XEN_SYSCTL_CPUPOOL_OP_FREEINFO => Ok(Answer::Free(CpuMask(0))),
        _ => Err(Errno::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(lookup: fn(u32) -> Option<bool>) -> Machine<fn(u32) -> Option<bool>> {
        Machine { online_cpus: 2, n_dom: 3, lookup }
    }

    fn req(op: u32, cpupool_id: u32) -> XenSysctlCpupoolOp {
        XenSysctlCpupoolOp { op, cpupool_id, ..Default::default() }
    }

    #[test]
    fn info_answers_pool_0_then_enoent() {
        let m = machine(|_| None);
        assert_eq!(
            op(&req(XEN_SYSCTL_CPUPOOL_OP_INFO, 0), &m, 5),
            Ok(Answer::Info { id: 0, sched_id: 5, n_dom: 3, cpus: CpuMask(0b11) })
        );
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_INFO, 1), &m, 5), Err(Errno::ENOENT));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_INFO, XEN_SYSCTL_CPUPOOL_PAR_ANY), &m, 5), Err(Errno::ENOENT));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_FREEINFO, 7), &m, 5), Ok(Answer::Free(CpuMask(0))));
    }

    #[test]
    fn movedomain_looks_the_domain_up_first() {
        let m = machine(|d| match d {
            0 => Some(true),
            1 => Some(false),
            _ => None,
        });
        let mv = |domid, pool| op(&XenSysctlCpupoolOp { op: XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN, cpupool_id: pool, domid, ..Default::default() }, &m, 5);
        assert_eq!(mv(1, 0), Ok(Answer::Done));
        assert_eq!(mv(1, 3), Err(Errno::ENOENT));
        assert_eq!(mv(0, 0), Err(Errno::EPERM));
        assert_eq!(mv(9, 3), Err(Errno::ESRCH));
        assert_eq!(mv(0x1_0000, 0), Err(Errno::ESRCH));
    }

    #[test]
    fn cpus_cannot_move_and_pool_0_stays() {
        let m = machine(|_| None);
        let cpu = |o, pool, cpu| op(&XenSysctlCpupoolOp { op: o, cpupool_id: pool, cpu, ..Default::default() }, &m, 5);
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_ADDCPU, 1, 0), Err(Errno::ENOENT));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_ADDCPU, 0, XEN_SYSCTL_CPUPOOL_PAR_ANY), Err(Errno::ENODEV));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_ADDCPU, 0, 1), Err(Errno::ENODEV));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_ADDCPU, 0, 2), Err(Errno::EINVAL));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_RMCPU, 2, 0), Err(Errno::ENOENT));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_RMCPU, 0, 7), Err(Errno::EINVAL));
        assert_eq!(cpu(XEN_SYSCTL_CPUPOOL_OP_RMCPU, 0, 1), Err(Errno::ENOSYS));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_DESTROY, 0), &m, 5), Err(Errno::EBUSY));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_DESTROY, 4), &m, 5), Err(Errno::ENOENT));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_CREATE, 0), &m, 5), Err(Errno::EEXIST));
        assert_eq!(op(&req(XEN_SYSCTL_CPUPOOL_OP_CREATE, XEN_SYSCTL_CPUPOOL_PAR_ANY), &m, 5), Err(Errno::ENOSYS));
        assert_eq!(op(&req(99, 0), &m, 5), Err(Errno::ENOSYS));
    }
}
