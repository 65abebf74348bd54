//! The control domain's side of building and running other domains (Xen's
//! `common/domctl.c`, the domain-building parts of `arch/x86/domctl.c`, and the
//! `foreigndom` paths of memory and MMU hypercalls) at the 4.17 interface versions:
//!
//! - [`domctl`]: createdomain, max_vcpus, max_mem, set_address_size, pause/unpause,
//!   destroydomain, set/getvcpucontext, getvcpuinfo, hypercall_init; scheduler_op and
//!   set/getvcpuaffinity (in `pv::credit`); getdomaininfo and the rest go to `hc_sysctl`.
//! - [`memory`]: `XENMEM_populate_physmap` and `XENMEM_set_memory_map` for another
//!   domain, `XENMEM_memory_map` answering what the toolstack set.
//! - [`foreign`]: `mmu_update`/`mmuext_op` with a foreign domain (privcmd's
//!   `MMAPBATCH_V2` mapping a new domain's frames, pinning its L4).
//! - [`lifecycle`]: a toolstack-built domain that shuts down stays (state shutdown) until
//!   destroyed; `VIRQ_DOM_EXC` to the control domain; frames of a dead domain that the
//!   control domain still maps are freed at the last unmap.
//!
//! Only a privileged domain may do any of this; every op looks the target up first
//! (`-ESRCH`), then checks privilege (`-EPERM`), as Xen's dummy XSM policy does.

pub mod foreign;
pub mod lifecycle;
pub mod memory;
pub mod vcpu;

use super::domain::Domain;
use super::hypercall::HcResult;
use super::sched::Domains;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{mem, phys};
use crate::domain::control::{self as ctl, ControlState};
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::xen::{SharedInfo, XEN_LEGACY_MAX_VCPUS};
use zerocopy::{FromZeros, IntoBytes};

/// The last domain id `createdomain` handed out (Xen's `rover`). One CPU, and the
/// domain table's lock is held around every hypercall.
static ROVER: spin::Mutex<u16> = spin::Mutex::new(0);

/// `HYPERVISOR_domctl`.
pub fn domctl(doms: &mut Domains, guest: &GuestView, arg: u64) -> HcResult {
    let mut op: XenDomctl = guest.read(arg)?;
    let ours = matches!(
        op.cmd,
        XEN_DOMCTL_createdomain
            | XEN_DOMCTL_max_vcpus
            | XEN_DOMCTL_max_mem
            | XEN_DOMCTL_set_address_size
            | XEN_DOMCTL_pausedomain
            | XEN_DOMCTL_unpausedomain
            | XEN_DOMCTL_destroydomain
            | XEN_DOMCTL_setvcpucontext
            | XEN_DOMCTL_getvcpucontext
            | XEN_DOMCTL_getvcpuinfo
            | XEN_DOMCTL_hypercall_init
            | XEN_DOMCTL_scheduler_op
            | XEN_DOMCTL_setvcpuaffinity
            | XEN_DOMCTL_getvcpuaffinity
            | XEN_DOMCTL_setnodeaffinity
            | XEN_DOMCTL_getnodeaffinity
            | XEN_DOMCTL_settscinfo
            | XEN_DOMCTL_get_address_size
            | XEN_DOMCTL_get_cpu_policy
            | XEN_DOMCTL_set_cpu_policy
    );
    if !ours {
        return super::hypercall::sysctl::domctl(doms, guest, arg);
    }
    if op.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    let me = doms.current_id();
    if op.cmd != XEN_DOMCTL_createdomain && doms.get(op.domain).is_none() {
        return Err(Errno::ESRCH);
    }
    if !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    let copy_back = match op.cmd {
        XEN_DOMCTL_createdomain => {
            let c: XenDomctlCreatedomain = op.payload().ok_or(Errno::EINVAL)?;
            op.domain = create(doms, op.domain, &c)?;
            true
        }
        XEN_DOMCTL_getvcpucontext => {
            vcpu::get_context(doms, guest, &mut op)?;
            true
        }
        XEN_DOMCTL_getvcpuinfo => {
            vcpu::get_info(doms, &mut op)?;
            true
        }
        XEN_DOMCTL_scheduler_op => {
            let d = doms.get_mut(op.domain).ok_or(Errno::ESRCH)?;
            crate::pv::credit::scheduler_op(d, &mut op)?;
            true
        }
        // One node (0): a mask must include it; the domain's affinity is always it.
        XEN_DOMCTL_setnodeaffinity => {
            let n: XenDomctlNodeaffinity = op.payload().ok_or(Errno::EINVAL)?;
            let nodes = crate::pv::credit::read_bitmap(guest, &n.nodemap, ctl::MAX_NUMNODES)?;
            ctl::check_node_affinity(nodes.0)?;
            false
        }
        XEN_DOMCTL_getnodeaffinity => {
            let n: XenDomctlNodeaffinity = op.payload().ok_or(Errno::EINVAL)?;
            super::hypercall::sysctl::write_cpu_bitmap(guest, &n.nodemap, crate::domain::credit::CpuMask(1))?;
            false
        }
        XEN_DOMCTL_get_cpu_policy => {
            let d = doms.get(op.domain).ok_or(Errno::ESRCH)?;
            let p = crate::pv::trap::emulate::domain_policy(d);
            let msrs = crate::pv::trap::emulate::policy_msrs(&p, true);
            let mut cp: XenDomctlCpuPolicy = op.payload().ok_or(Errno::EINVAL)?;
            super::hypercall::sysctl::copy_policy_out(guest, &p, &msrs, cp.leaves, &mut cp.nr_leaves, cp.msrs, &mut cp.nr_msrs)?;
            op.set_payload(&cp);
            true
        }
        XEN_DOMCTL_set_cpu_policy => {
            if op.domain == me {
                return Err(Errno::EINVAL);
            }
            let d = doms.get_mut(op.domain).ok_or(Errno::ESRCH)?;
            if d.ctl.creation_finished {
                return Err(Errno::EEXIST);
            }
            let mut cp: XenDomctlCpuPolicy = op.payload().ok_or(Errno::EINVAL)?;
            match set_cpu_policy(d, guest, &cp) {
                Ok(p) => d.ctl.cpu_policy = Some(alloc::boxed::Box::new(p)),
                Err(e) => {
                    cp.err_leaf = e.leaf;
                    cp.err_subleaf = e.subleaf;
                    cp.err_msr = e.msr;
                    op.set_payload(&cp);
                    guest.write(arg, &op)?;
                    return Err(e.errno);
                }
            }
            false
        }
        XEN_DOMCTL_get_address_size => {
            op.set_payload(&XenDomctlAddressSize { size: 64 });
            true
        }
        XEN_DOMCTL_setvcpuaffinity | XEN_DOMCTL_getvcpuaffinity => {
            let d = doms.get_mut(op.domain).ok_or(Errno::ESRCH)?;
            let n = op.payload::<XenDomctlVcpuaffinity>().ok_or(Errno::EINVAL)?.vcpu;
            let (max, created, _, _) = vcpu::vcpu_state(d, n);
            crate::pv::credit::vcpu_affinity(d, guest, &op, max, created)?;
            false
        }
        _ => {
            let target = op.domain;
            let d = doms.get_mut(target).ok_or(Errno::ESRCH)?;
            let is_current = target == me;
            match op.cmd {
                XEN_DOMCTL_max_vcpus => {
                    let m: XenDomctlMaxVcpus = op.payload().ok_or(Errno::EINVAL)?;
                    if is_current {
                        return Err(Errno::EINVAL);
                    }
                    d.ctl.set_max_vcpus(m.max)?;
                }
                XEN_DOMCTL_max_mem => {
                    let m: XenDomctlMaxMem = op.payload().ok_or(Errno::EINVAL)?;
                    d.max_pages = ctl::max_mem_pages(m.max_memkb);
                }
                XEN_DOMCTL_set_address_size => {
                    let s: XenDomctlAddressSize = op.payload().ok_or(Errno::EINVAL)?;
                    ctl::check_address_size(s.size)?;
                }
                XEN_DOMCTL_pausedomain => {
                    if is_current {
                        return Err(Errno::EINVAL);
                    }
                    d.ctl.pause()?;
                }
                XEN_DOMCTL_unpausedomain => d.ctl.unpause()?,
                XEN_DOMCTL_destroydomain => {
                    if is_current {
                        return Err(Errno::EINVAL);
                    }
                    lifecycle::kill(d);
                }
                XEN_DOMCTL_setvcpucontext => {
                    if is_current {
                        return Err(Errno::EINVAL);
                    }
                    vcpu::set_context(d, guest, &op)?;
                }
                XEN_DOMCTL_settscinfo => {
                    if is_current {
                        return Err(Errno::EINVAL);
                    }
                    let t: XenDomctlTscInfo = op.payload().ok_or(Errno::EINVAL)?;
                    ctl::check_tsc_mode(t.tsc_mode, d.hardware)?;
                }
                XEN_DOMCTL_hypercall_init => {
                    let h: XenDomctlHypercallInit = op.payload().ok_or(Errno::EINVAL)?;
                    vcpu::hypercall_init(d, h.gmfn)?;
                }
                _ => return Err(Errno::ENOSYS),
            }
            false
        }
    };
    if copy_back {
        guest.write(arg, &op)?;
    }
    Ok(0)
}

/// `update_domain_cpu_policy`: the domain's policy with the toolstack's leaves (at most
/// `CPUID_MAX_SERIALISED_LEAVES`, else `-E2BIG`) and MSRs (at most
/// `MSR_MAX_SERIALISED_ENTRIES`) merged, checked against the PV maximum and
/// recalculated. The error says where it failed (`!0` elsewhere).
fn set_cpu_policy(d: &Domain, guest: &GuestView, cp: &XenDomctlCpuPolicy) -> Result<crate::cpuid_policy::CpuPolicy, crate::cpuid_policy::PolicyError> {
    use crate::cpuid_policy::*;
    let plain = |errno| PolicyError { errno, leaf: !0, subleaf: !0, msr: !0 };
    let mut p = crate::pv::trap::emulate::domain_policy(d);
    if cp.nr_leaves > 0 {
        if cp.nr_leaves > CPUID_MAX_SERIALISED_LEAVES {
            return Err(plain(Errno::E2BIG));
        }
        let size = core::mem::size_of::<XenCpuidLeaf>() as u64;
        for i in 0..u64::from(cp.nr_leaves) {
            let l: XenCpuidLeaf = guest.read(cp.leaves.wrapping_add(i * size)).map_err(plain)?;
            p.merge_leaf(l.leaf, l.subleaf, [l.a, l.b, l.c, l.d])?;
        }
        p.recalc_synth();
    }
    if cp.nr_msrs > 0 {
        if cp.nr_msrs > MSR_MAX_SERIALISED_ENTRIES {
            return Err(plain(Errno::E2BIG));
        }
        let size = core::mem::size_of::<XenMsrEntry>() as u64;
        for i in 0..u64::from(cp.nr_msrs) {
            let m: XenMsrEntry = guest.read(cp.msrs.wrapping_add(i * size)).map_err(plain)?;
            check_msr_entry(m.idx, m.flags, m.val)?;
        }
    }
    crate::pv::trap::emulate::set_domain_policy(p)
}

/// `XEN_DOMCTL_createdomain`: a 64-bit PV domain with no memory and no vCPU context,
/// paused once by the controller, with its own shared_info frame (every vCPU's event
/// upcall masked until the guest unmasks it).
fn create(doms: &mut Domains, requested: u16, c: &XenDomctlCreatedomain) -> Result<u16, Errno> {
    ctl::check_createdomain(c)?;
    let id = {
        let mut rover = ROVER.lock();
        ctl::choose_domid(requested, &mut rover, |id| doms.slot_taken(id) || lifecycle::has_zombies(id))?
    };
    let shared_info_mfn = mem::alloc_frame().ok_or(Errno::ENOMEM)?;
    let mut si = SharedInfo::new_zeroed();
    for v in si.vcpu_info.iter_mut().take(XEN_LEGACY_MAX_VCPUS) {
        v.evtchn_upcall_mask = 1;
    }
    phys::write_bytes(shared_info_mfn << 12, si.as_bytes());
    if let Err(e) = super::mmu::share_with(id, shared_info_mfn, true) {
        mem::with_frames(|a| a.free(shared_info_mfn));
        return Err(e);
    }
    doms.add(Domain {
        id,
        name: alloc::format!("d{id}"),
        privileged: false,
        hardware: false,
        ending: None,
        p2m: alloc::vec::Vec::new(),
        given_back: Default::default(),
        max_pages: 0,
        shared_info_mfn,
        vcpus: crate::pv::domain::new_vcpus(c.max_vcpus, shared_info_mfn),
        cur_vcpu: 0,
        vm_assist: 0,
        evtchn: Default::default(),
        grant_frames: alloc::vec::Vec::new(),
        maptrack: alloc::vec::Vec::new(),
        maptrack_free: alloc::collections::BinaryHeap::new(),
        maptrack_vcpus: 0,
        grant_pins: alloc::vec::Vec::new(),
        console_line: alloc::vec::Vec::new(),
        start_info_maddr: 0,
        pci_cf8: 0,
        console_ring: None,
        ctl: ControlState::created(c.max_vcpus, c.handle),
        sched: Default::default(),
    });
    crate::println!("d{id}: created by d{} for its toolstack", doms.current_id());
    Ok(id)
}

/// `getdomaininfo`'s view of the toolstack's state: pause, dying, shutdown, the vCPU
/// count and the handle.
pub fn adjust_info(d: &Domain, info: &mut XenDomctlGetdomaininfo) {
    info.flags |= d.ctl.dominf_flags();
    info.handle = d.ctl.handle;
    if d.ctl.toolstack {
        info.max_vcpu_id = d.ctl.max_vcpus.saturating_sub(1);
        info.nr_online_vcpus = d.online_vcpus();
    }
}
