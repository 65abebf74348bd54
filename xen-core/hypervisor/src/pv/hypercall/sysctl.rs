//! `sysctl` and the read side of `domctl` for the control domain (what `xl list`, `xl
//! info` and `xl dmesg` ask): interface version 0x15, Xen's privilege rule (the control
//! domain only, -EPERM otherwise), -EACCES for another interface version, -ENOSYS for
//! sub-ops not built yet. The domain-building domctls come with the toolstack on xen-core.

use crate::pv::domain::{Domain, RunState};
use super::HcResult;
use crate::pv::sched::Domains;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{clock, cpu, mem};
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::sysctl::*;
use zerocopy::IntoBytes;

/// Xen's `getdomaininfo` for one of our domains.
pub fn domain_info(d: &Domain, running: bool) -> XenDomctlGetdomaininfo {
    let blocked = !matches!(d.vcpus[d.cur_vcpu].run, RunState::Runnable);
    let mut flags = if blocked { XEN_DOMINF_blocked } else { 0 };
    if running {
        flags |= XEN_DOMINF_running;
    }
    if let Some(reason) = d.ending {
        flags |= XEN_DOMINF_shutdown | (reason << XEN_DOMINF_shutdownshift);
    }
    let mut info = XenDomctlGetdomaininfo {
        domain: d.id,
        flags,
        tot_pages: d.p2m.iter().filter(|&&m| m != crate::pv::mmu::m2p::INVALID_M2P_ENTRY).count() as u64,
        max_pages: d.max_pages,
        shared_info_frame: d.shared_info_mfn,
        // Every vCPU of a boot-time domain (dom0: one per CPU or dom0_max_vcpus); a
        // toolstack's domain's come from `adjust_info`.
        nr_online_vcpus: d.online_vcpus().max(1),
        max_vcpu_id: d.vcpus.len().saturating_sub(1) as u32,
        // Xen's `getdomaininfo`: every vCPU's time running, in ns (`xl list`'s Time).
        cpu_time: {
            let now = clock::now_ns();
            d.vcpus.iter().map(|v| v.runstate.snapshot(now).time[0]).fold(0, u64::saturating_add)
        },
        ..Default::default()
    };
    crate::pv::domctl::adjust_info(d, &mut info);
    info
}

fn physinfo() -> XenSysctlPhysinfo {
    let (_, _, c1, d1) = cpu::cpuid(1, 0);
    let (_, _, ce1, de1) = cpu::cpuid(0x8000_0001, 0);
    let (a_d1, _, _, _) = cpu::cpuid(0xd, 1);
    let (_, b7, c7, _) = cpu::cpuid(7, 0);
    let (_, _, _, de7) = cpu::cpuid(0x8000_0007, 0);
    let max_mfn = crate::pv::mmu::m2p::entries().saturating_sub(1);
    XenSysctlPhysinfo {
        // Every CPU it brought up, each a core of one socket.
        threads_per_core: 1,
        cores_per_socket: crate::arch::x86_64::smp::online() as u32,
        nr_cpus: crate::arch::x86_64::smp::online() as u32,
        max_cpu_id: crate::arch::x86_64::smp::online().saturating_sub(1) as u32,
        nr_nodes: 1,
        max_node_id: 0,
        cpu_khz: (clock::tsc_hz() / 1000) as u32,
        capabilities: XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_gnttab_v1,
        total_pages: crate::pv::mmu::m2p::entries(),
        free_pages: mem::with_frames(|a| a.free_frames()),
        outstanding_pages: *crate::pv::domctl::memory::OUTSTANDING.lock(),
        max_mfn,
        hw_cap: [d1, c1, de1, ce1, a_d1, b7, c7, de7],
        ..Default::default()
    }
}

/// Xen's checks before any sysctl/domctl: the control domain only, then the interface
/// version this hypervisor speaks.
fn admitted(doms: &mut Domains, version: u32, wanted: u32) -> Result<(), Errno> {
    if !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    if version != wanted {
        return Err(Errno::EACCES);
    }
    Ok(())
}

pub fn sysctl(doms: &mut Domains, guest: &GuestView, arg: u64) -> HcResult {
    let mut op: XenSysctl = guest.read(arg)?;
    admitted(doms, op.interface_version, XEN_SYSCTL_INTERFACE_VERSION)?;
    match op.cmd {
        XEN_SYSCTL_physinfo => {
            op.set_payload(&physinfo());
        }
        // The one scheduler: credit.
        XEN_SYSCTL_sched_id => {
            op.set_payload(&XenSysctlSchedId { sched_id: XEN_SCHEDULER_CREDIT });
        }
        // Pool-0's credit parameters (time slice, rate limit, migration delay).
        XEN_SYSCTL_scheduler_op => {
            let mut s: XenSysctlSchedulerOp = op.payload().ok_or(Errno::EINVAL)?;
            crate::pv::credit::pool_op(&mut s)?;
            op.set_payload(&s);
        }
        XEN_SYSCTL_getdomaininfolist => {
            let mut l: XenSysctlGetdomaininfolist = op.payload().ok_or(Errno::EINVAL)?;
            let running = doms.current_id();
            let size = core::mem::size_of::<XenDomctlGetdomaininfo>() as u64;
            let mut n = 0u32;
            for id in doms.ids().into_iter().filter(|&i| i >= l.first_domain) {
                if n >= l.max_domains {
                    break;
                }
                let Some(d) = doms.get(id) else { continue };
                guest.write(l.buffer.wrapping_add(u64::from(n) * size), &domain_info(d, id == running))?;
                n += 1;
            }
            l.num_domains = n;
            op.set_payload(&l);
        }
        XEN_SYSCTL_readconsole => {
            let mut r: XenSysctlReadconsole = op.payload().ok_or(Errno::EINVAL)?;
            let mut chunk = [0u8; 1024];
            let (mut done, mut index) = (0u32, r.index);
            let mut ring = crate::console::CONRING.lock();
            loop {
                let want = (r.count - done).min(chunk.len() as u32) as usize;
                let first = done == 0;
                // Incremental reads continue from `index`; a plain read starts at the
                // consumer, then goes on from where the first chunk stopped.
                let (n, next) = ring.read(&mut chunk[..want], r.incremental != 0 || !first, index, false);
                if n == 0 {
                    break;
                }
                guest.copy_to(r.buffer.wrapping_add(u64::from(done)), &chunk[..n])?;
                done += n as u32;
                index = next;
                if done >= r.count {
                    break;
                }
            }
            if r.clear != 0 {
                ring.read(&mut [], false, 0, true);
            }
            drop(ring);
            r.count = done;
            if r.incremental != 0 {
                r.index = index;
            }
            op.set_payload(&r);
        }
        XEN_SYSCTL_cpupool_op => {
            let mut c: XenSysctlCpupoolOp = op.payload().ok_or(Errno::EINVAL)?;
            let me = doms.current_id();
            let ids = doms.ids();
            let machine = crate::domain::cpupool::Machine {
                online_cpus: crate::arch::x86_64::smp::online(),
                n_dom: ids.len() as u32,
                lookup: |id: u32| u16::try_from(id).ok().filter(|id| ids.contains(id)).map(|id| id == me),
            };
            match crate::domain::cpupool::op(&c, &machine, XEN_SCHEDULER_CREDIT)? {
                crate::domain::cpupool::Answer::Info { id, sched_id, n_dom, cpus } => {
                    c.cpupool_id = id;
                    c.sched_id = sched_id;
                    c.n_dom = n_dom;
                    write_cpu_bitmap(guest, &c.cpumap, cpus)?;
                }
                crate::domain::cpupool::Answer::Free(cpus) => write_cpu_bitmap(guest, &c.cpumap, cpus)?,
                crate::domain::cpupool::Answer::Done => {}
            }
            op.set_payload(&c);
        }
        // Every online CPU present, core N of socket 0 on node 0 (as physinfo has them).
        XEN_SYSCTL_cputopoinfo => {
            let mut t: XenSysctlCputopoinfo = op.payload().ok_or(Errno::EINVAL)?;
            let ours = crate::arch::x86_64::smp::online() as u32;
            let n = if t.cputopo == 0 { ours } else { ours.min(t.num_cpus) };
            if t.cputopo != 0 {
                let size = core::mem::size_of::<XenSysctlCputopo>() as u64;
                for i in 0..n {
                    let topo = XenSysctlCputopo { core: i, socket: 0, node: 0 };
                    guest.write(t.cputopo.wrapping_add(u64::from(i) * size), &topo)?;
                }
            }
            t.num_cpus = n;
            op.set_payload(&t);
        }
        // One node, 0: all memory, distance 10 to itself (Xen's without an SLIT).
        XEN_SYSCTL_numainfo => {
            let mut ni: XenSysctlNumainfo = op.payload().ok_or(Errno::EINVAL)?;
            let n = if ni.meminfo == 0 && ni.distance == 0 { 1 } else { ni.num_nodes.min(1) };
            if n == 1 && ni.meminfo != 0 {
                let m = XenSysctlMeminfo {
                    memsize: crate::pv::mmu::m2p::entries() << 12,
                    memfree: mem::with_frames(|a| a.free_frames()) << 12,
                };
                guest.write(ni.meminfo, &m)?;
            }
            if n == 1 && ni.distance != 0 {
                guest.write(ni.distance, &10u32)?;
            }
            ni.num_nodes = n;
            op.set_payload(&ni);
        }
        XEN_SYSCTL_get_cpu_featureset => {
            let mut fs: XenSysctlCpuFeatureset = op.payload().ok_or(Errno::EINVAL)?;
            let words = xen_abi::cpufeatureset::FSCAPINTS as u32;
            if fs.features == 0 {
                fs.nr_features = words;
            } else {
                let nr = fs.nr_features.min(words);
                let policy = match fs.index {
                    XEN_SYSCTL_cpu_featureset_raw => 0,
                    XEN_SYSCTL_cpu_featureset_host => 1,
                    XEN_SYSCTL_cpu_featureset_pv => 4,
                    XEN_SYSCTL_cpu_featureset_pv_max => 2,
                    XEN_SYSCTL_cpu_featureset_hvm | XEN_SYSCTL_cpu_featureset_hvm_max => return Err(Errno::EOPNOTSUPP),
                    _ => return Err(Errno::EINVAL),
                };
                let p = crate::pv::trap::emulate::system_policy(policy).ok_or(Errno::EOPNOTSUPP)?;
                let set = p.featureset();
                guest.copy_to(fs.features, set[..nr as usize].as_bytes())?;
                fs.nr_features = nr;
                if nr < words {
                    op.set_payload(&fs);
                    guest.write(arg, &op)?;
                    return Err(Errno::ENOBUFS);
                }
            }
            op.set_payload(&fs);
        }
        XEN_SYSCTL_get_cpu_policy => {
            let mut cp: XenSysctlCpuPolicy = op.payload().ok_or(Errno::EINVAL)?;
            if cp._rsvd != 0 || cp.index > XEN_SYSCTL_cpu_policy_hvm_default {
                return Err(Errno::EINVAL);
            }
            let p = crate::pv::trap::emulate::system_policy(cp.index).ok_or(Errno::EOPNOTSUPP)?;
            let pv = matches!(cp.index, XEN_SYSCTL_cpu_policy_pv_max | XEN_SYSCTL_cpu_policy_pv_default);
            let msrs = crate::pv::trap::emulate::policy_msrs(&p, pv);
            copy_policy_out(guest, &p, &msrs, cp.leaves, &mut cp.nr_leaves, cp.msrs, &mut cp.nr_msrs)?;
            op.set_payload(&cp);
        }
        _ => return Err(Errno::ENOSYS),
    }
    guest.write(arg, &op)?;
    Ok(0)
}

/// `x86_cpuid_copy_to_buffer` and `x86_msr_copy_to_buffer` into a caller's buffers: a
/// null buffer asks for the most entries there can be; a buffer too small takes what
/// fits, then `-ENOBUFS`; else the count written.
pub fn copy_policy_out(
    guest: &GuestView,
    p: &crate::cpuid_policy::CpuPolicy,
    msrs: &[(u32, u64)],
    leaves_h: u64,
    nr_leaves: &mut u32,
    msrs_h: u64,
    nr_msrs: &mut u32,
) -> Result<(), Errno> {
    use crate::cpuid_policy::{CPUID_MAX_SERIALISED_LEAVES, MSR_MAX_SERIALISED_ENTRIES};
    if leaves_h == 0 {
        *nr_leaves = CPUID_MAX_SERIALISED_LEAVES;
    } else {
        let size = core::mem::size_of::<XenCpuidLeaf>() as u64;
        let leaves = p.serialise();
        for (i, (leaf, subleaf, [a, b, c, d])) in leaves.iter().copied().enumerate() {
            if i as u32 == *nr_leaves {
                return Err(Errno::ENOBUFS);
            }
            guest.write(leaves_h.wrapping_add(i as u64 * size), &XenCpuidLeaf { leaf, subleaf, a, b, c, d })?;
        }
        *nr_leaves = leaves.len() as u32;
    }
    if msrs_h == 0 {
        *nr_msrs = MSR_MAX_SERIALISED_ENTRIES;
    } else {
        let size = core::mem::size_of::<XenMsrEntry>() as u64;
        for (i, &(idx, val)) in msrs.iter().enumerate() {
            if i as u32 == *nr_msrs {
                return Err(Errno::ENOBUFS);
            }
            guest.write(msrs_h.wrapping_add(i as u64 * size), &XenMsrEntry { idx, flags: 0, val })?;
        }
        *nr_msrs = msrs.len() as u32;
    }
    Ok(())
}

/// Xen's `bitmap_to_xenctl_bitmap` of a CPU mask into a guest's `xenctl_bitmap`: the
/// mask's bytes, then zeroes to the end of the guest's bitmap, written a page at a time
/// (never allocated whole; the first fault ends it with -EFAULT, as Xen).
pub fn write_cpu_bitmap(guest: &GuestView, b: &XenctlBitmap, cpus: crate::domain::credit::CpuMask) -> Result<(), Errno> {
    let (bytes, mut zeroes) = cpus.to_xenctl(b.nr_bits, crate::arch::x86_64::smp::online());
    if !bytes.is_empty() {
        guest.copy_to(b.bitmap, &bytes)?;
    }
    let zero = [0u8; 4096];
    let mut at = b.bitmap.wrapping_add(bytes.len() as u64);
    while zeroes > 0 {
        let n = zeroes.min(zero.len() as u64);
        guest.copy_to(at, &zero[..n as usize])?;
        at = at.wrapping_add(n);
        zeroes -= n;
    }
    Ok(())
}

pub fn domctl(doms: &mut Domains, guest: &GuestView, arg: u64) -> HcResult {
    let mut op: XenDomctl = guest.read(arg)?;
    admitted(doms, op.interface_version, XEN_DOMCTL_INTERFACE_VERSION)?;
    match op.cmd {
        // The domain asked for, or (as Xen 4.17 still does) the next one above it.
        XEN_DOMCTL_getdomaininfo => {
            if op.domain >= xen_abi::xen::DOMID_FIRST_RESERVED.0 {
                return Err(Errno::EINVAL);
            }
            let running = doms.current_id();
            let id = doms.ids().into_iter().find(|&i| i >= op.domain).ok_or(Errno::ESRCH)?;
            let d = doms.get(id).ok_or(Errno::ESRCH)?;
            let info = domain_info(d, id == running);
            op.domain = id;
            op.set_payload(&info);
        }
        _ => return Err(Errno::ENOSYS),
    }
    guest.write(arg, &op)?;
    Ok(0)
}
