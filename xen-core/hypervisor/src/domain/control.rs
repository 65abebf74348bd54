//! What the control domain's toolstack can set and see of a domain it builds (Xen's
//! `domctl` side of `struct domain`): the controller pause count, the vCPU's
//! initialisation, the shut-down state that stays until the toolstack destroys the
//! domain, the E820 it set, and the argument checks of `createdomain`,
//! `setvcpucontext`, `max_mem` and `set_memory_map`, with Xen 4.17's errno values.
//! Portable and host-tested; `pv::domctl` applies them to live domains.

use alloc::vec::Vec;
use xen_abi::arch_x86_64::VcpuGuestContext;
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::memory::E820Entry;

/// Xen's `DOMID_FIRST_RESERVED`: ordinary domain ids are below it.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;

/// vCPUs a domain may have here (the first 32 have their `vcpu_info` in shared_info,
/// the others must register one before they are initialised, as on Xen).
pub const MAX_VCPUS: u32 = 128;

/// Xen's limit on the toolstack's pause count (`_domain_pause_by_systemcontroller`).
const MAX_CONTROLLER_PAUSES: u32 = 255;

/// `E820MAX` (`XENMEM_set_memory_map`).
pub const E820MAX: u32 = 128;

/// Xen's defaults for `opt_max_grant_frames` / `opt_max_maptrack_frames`.
const MAX_GRANT_FRAMES: i32 = 64;
const MAX_MAPTRACK_FRAMES: i32 = 1024;

/// `NR_EVENT_CHANNELS` of the 2-level ABI for a 64-bit guest.
const MAX_EVTCHN_PORTS: u32 = 4096;

/// The toolstack's view of one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlState {
    /// Built by `XEN_DOMCTL_createdomain` (a toolstack owns its end): a shutdown leaves
    /// it in place until `destroydomain`. Boot-time domains end at their shutdown.
    pub toolstack: bool,
    /// `controller_pause_count`: starts at 1; the toolstack's first unpause runs it.
    pub pause_count: u32,
    /// `creation_finished`: the first unpause happened.
    pub creation_finished: bool,
    /// `XEN_DOMCTL_max_vcpus` created the vCPUs (each is loaded by `setvcpucontext`
    /// or `VCPUOP_initialise`, and up or down, in the domain's vCPU state).
    pub vcpu_created: bool,
    /// The domain shut down with this reason and waits for the toolstack.
    pub shutdown: Option<u32>,
    /// `destroydomain` ran: it goes before the next guest runs.
    pub killed: bool,
    /// `XEN_DOMCTL_createdomain`'s `max_vcpus`.
    pub max_vcpus: u32,
    /// The domain's handle (UUID).
    pub handle: [u8; 16],
    /// The E820 `XENMEM_set_memory_map` gave it (`XENMEM_memory_map` answers it).
    pub e820: Option<Vec<E820Entry>>,
    /// Pages still claimed by `XENMEM_claim_pages` (`outstanding_pages`): each page the
    /// domain is given lowers it, until it is spent or cancelled.
    pub claim: u64,
    /// The CPU policy its toolstack set (`XEN_DOMCTL_set_cpu_policy`); `None`: the PV
    /// domain policy.
    pub cpu_policy: Option<alloc::boxed::Box<crate::cpuid_policy::CpuPolicy>>,
}

impl ControlState {
    /// A domain just made by `createdomain`: paused once by the controller, no vCPU yet.
    pub fn created(max_vcpus: u32, handle: [u8; 16]) -> Self {
        ControlState { toolstack: true, pause_count: 1, max_vcpus, handle, ..Default::default() }
    }

    /// Whether the scheduler may run the domain's vCPUs (those loaded, up and not
    /// blocked): not paused by the toolstack, not shut down or dying.
    pub fn can_run(&self) -> bool {
        self.pause_count == 0 && self.shutdown.is_none() && !self.killed
    }

    /// `domain_pause_by_systemcontroller`.
    pub fn pause(&mut self) -> Result<(), Errno> {
        if self.pause_count >= MAX_CONTROLLER_PAUSES {
            return Err(Errno::EOVERFLOW);
        }
        self.pause_count += 1;
        Ok(())
    }

    /// `domain_unpause_by_systemcontroller`: `-EINVAL` when not paused.
    pub fn unpause(&mut self) -> Result<(), Errno> {
        if self.pause_count == 0 {
            return Err(Errno::EINVAL);
        }
        self.pause_count -= 1;
        if self.pause_count == 0 {
            self.creation_finished = true;
        }
        Ok(())
    }

    /// `XEN_DOMCTL_max_vcpus`: must equal `createdomain`'s `max_vcpus` (`-EINVAL`).
    pub fn set_max_vcpus(&mut self, max: u32) -> Result<(), Errno> {
        if max != self.max_vcpus {
            return Err(Errno::EINVAL);
        }
        self.vcpu_created = max > 0;
        Ok(())
    }

    /// The `XEN_DOMINF_*` flags this state contributes to `getdomaininfo`.
    pub fn dominf_flags(&self) -> u32 {
        let mut f = 0;
        if self.pause_count > 0 {
            f |= XEN_DOMINF_paused;
        }
        if self.killed {
            f |= XEN_DOMINF_dying;
        }
        if let Some(reason) = self.shutdown {
            f |= XEN_DOMINF_shutdown | ((reason & XEN_DOMINF_shutdownmask) << XEN_DOMINF_shutdownshift);
        }
        f
    }
}

/// Xen's `createdomain` id choice: a requested id in `1..DOMID_FIRST_RESERVED` must be
/// free (`-EEXIST`); otherwise the first free id after the last one handed out,
/// wrapping past the reserved ids to 1 (`-ENOMEM` when none is free).
pub fn choose_domid(requested: u16, rover: &mut u16, in_use: impl Fn(u16) -> bool) -> Result<u16, Errno> {
    if requested > 0 && requested < DOMID_FIRST_RESERVED {
        return if in_use(requested) { Err(Errno::EEXIST) } else { Ok(requested) };
    }
    let mut dom = rover.wrapping_add(1);
    while dom != *rover {
        if dom >= DOMID_FIRST_RESERVED || dom == 0 {
            dom = 1;
            if dom == *rover {
                break;
            }
        }
        if !in_use(dom) {
            *rover = dom;
            return Ok(dom);
        }
        dom += 1;
    }
    Err(Errno::ENOMEM)
}

/// `sanitise_domain_config` + `arch_sanitise_domain_config` + the grant-table and
/// event-channel limits of `domain_create`, for what this hypervisor builds: 64-bit PV
/// domains with one vCPU, grant tables v1. Every refusal is `-EINVAL`, as in Xen
/// (HVM, HAP, an IOMMU, vmtrace and vPMU are unavailable here, as on a Xen without
/// them).
pub fn check_createdomain(c: &XenDomctlCreatedomain) -> Result<(), Errno> {
    let known = XEN_DOMCTL_CDF_hvm
        | XEN_DOMCTL_CDF_hap
        | XEN_DOMCTL_CDF_s3_integrity
        | XEN_DOMCTL_CDF_oos_off
        | XEN_DOMCTL_CDF_xs_domain
        | XEN_DOMCTL_CDF_iommu
        | XEN_DOMCTL_CDF_nested_virt
        | XEN_DOMCTL_CDF_vpmu;
    let unavailable = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap | XEN_DOMCTL_CDF_iommu | XEN_DOMCTL_CDF_nested_virt | XEN_DOMCTL_CDF_vpmu;
    let bad = c.flags & !known != 0
        || c.flags & unavailable != 0
        || c.grant_opts & !XEN_DOMCTL_GRANT_version_mask != 0
        || c.iommu_opts != 0
        || c.vmtrace_size != 0
        || c.max_vcpus < 1
        || c.max_vcpus > MAX_VCPUS
        || c.arch.emulation_flags & !XEN_X86_EMU_PIT != 0
        || c.arch.misc_flags & !XEN_X86_MSR_RELAXED != 0
        || c.max_evtchn_port >= MAX_EVTCHN_PORTS
        || c.max_grant_frames == 0
        || c.max_grant_frames > MAX_GRANT_FRAMES
        || c.max_grant_frames < -1
        || c.max_maptrack_frames > MAX_MAPTRACK_FRAMES
        || c.max_maptrack_frames < -1
        // Grant table version 1 only (`opt_gnttab_max_version`).
        || !matches!(c.grant_opts & XEN_DOMCTL_GRANT_version_mask, 0 | 1);
    if bad {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `XEN_DOMCTL_max_mem`: KiB to pages, as Xen caps it.
pub fn max_mem_pages(max_memkb: u64) -> u64 {
    max_memkb >> 2
}

/// `XENMEM_claim_pages` (Xen's `domain_set_outstanding_pages`): the domain's new claim
/// for a request of `pages` in total, given what it claims now, owns (`tot`) and may own
/// (`max`), the free pages and everyone's outstanding claims. 0 cancels the claim; one
/// claim at a time (`-EINVAL`); a total not above what it owns, or above `max`,
/// `-EINVAL`; more than what is free and unclaimed `-ENOMEM`. The claim is what the
/// total asks beyond the pages owned.
pub fn claim_pages(pages: u64, claim: u64, tot: u64, max: u64, free: u64, outstanding: u64) -> Result<u64, Errno> {
    if pages == 0 {
        return Ok(0);
    }
    if claim != 0 || pages <= tot || pages > max {
        return Err(Errno::EINVAL);
    }
    let want = pages - tot;
    if want > free.saturating_sub(outstanding) {
        return Err(Errno::ENOMEM);
    }
    Ok(want)
}

/// `XEN_DOMCTL_settscinfo` for a domain other than the caller (Xen's `tsc_set_info`):
/// the PV hardware domain keeps the native TSC whatever the mode; otherwise modes 0
/// (default: native on a host whose TSC is safe, which is what xen-core gives) and 2
/// (never emulate) are taken, 1 (always emulate) would need TSC emulation, which
/// xen-core does not have (`-EOPNOTSUPP`), and any other `-EINVAL` (3 was PVRDTSCP,
/// removed).
pub fn check_tsc_mode(mode: u32, hardware: bool) -> Result<(), Errno> {
    match mode {
        _ if hardware => Ok(()),
        0 | 2 => Ok(()),
        1 => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// Xen's `MAX_NUMNODES` (Debian's build: `CONFIG_NR_NUMA_NODES` 64): the bits of a node
/// map the hypervisor reads from a `xenctl_bitmap`.
pub const MAX_NUMNODES: usize = 64;

/// `XEN_DOMCTL_setnodeaffinity` on a one-node machine (Xen's
/// `domain_set_node_affinity`): the nodes asked, as read from the `xenctl_bitmap`, must
/// include node 0, else `-EINVAL`.
pub fn check_node_affinity(nodes: u64) -> Result<(), Errno> {
    if nodes & 1 != 0 {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// What `XENMEM_acquire_resource` does for a PV domain, once the arguments, the domain
/// and the caller's privilege are checked ([`check_acquire_args`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// A null frame list: how many frames the resource has, written to `nr_frames`.
    Size(u32),
    /// The MFNs of grant table frames `first..first + count` (the table grown to hold
    /// them) into the frame list.
    GrantFrames { first: u32, count: u32 },
}

/// `acquire_resource`'s checks before the domain is looked up: `pad` must be 0 and
/// `frame` and `frame + nr_frames` must fit in 32 bits (`-EINVAL`).
pub fn check_acquire_args(pad: u32, frame: u64, nr_frames: u32) -> Result<(), Errno> {
    if pad != 0 || frame >> 32 != 0 || (frame + u64::from(nr_frames)) >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `acquire_resource` after the domain and privilege checks, for a 64-bit PV domain
/// whose grant table may grow to `max_grant_frames` (version 1 only: no status frames).
/// The resource's size (`resource_max_frames`): the shared grant table frames; no
/// status frames, ioreq servers (HVM only) or vmtrace buffers, so those are `-EINVAL`;
/// an unknown type is Xen's `-EOPNOTSUPP`, which `resource_max_frames` returns as an
/// unsigned count, so a size query answers that number (as Xen 4.17 does) and a map is
/// refused with `-EOPNOTSUPP`. A null list needs `nr_frames` and the continuation 0; a
/// map needs frames past the start extent and at most `UINT_MAX >> MEMOP_EXTENT_SHIFT`;
/// the grant frames asked must lie below the table's limit (`-EINVAL`).
pub fn acquire_plan(ty: u16, id: u32, frame: u64, nr_frames: u32, null_list: bool, start: u64, max_grant_frames: u32) -> Result<Acquire, Errno> {
    use xen_abi::memory::*;
    let eopnotsupp = Errno::EOPNOTSUPP.neg() as u32;
    let max = match ty {
        XENMEM_resource_grant_table => match id {
            XENMEM_resource_grant_table_id_shared => max_grant_frames,
            _ => 0,
        },
        XENMEM_resource_ioreq_server | XENMEM_resource_vmtrace_buf => 0,
        _ => eopnotsupp,
    };
    if max == 0 {
        return Err(Errno::EINVAL);
    }
    if null_list {
        if nr_frames != 0 || start != 0 {
            return Err(Errno::EINVAL);
        }
        return Ok(Acquire::Size(max));
    }
    if start >= u64::from(nr_frames) || nr_frames > u32::MAX >> 6 {
        return Err(Errno::EINVAL);
    }
    if ty != XENMEM_resource_grant_table {
        return Err(Errno::EOPNOTSUPP);
    }
    let first = frame + start;
    let count = u64::from(nr_frames) - start;
    if first + count > u64::from(max_grant_frames) {
        return Err(Errno::EINVAL);
    }
    Ok(Acquire::GrantFrames { first: first as u32, count: count as u32 })
}

/// `XEN_DOMCTL_set_address_size` for a 64-bit PV domain: 64 is what it is; 32 would
/// switch to a compat guest, which this hypervisor does not build (Xen without
/// `CONFIG_PV32`: `-EOPNOTSUPP`); anything else `-EINVAL`.
pub fn check_address_size(bits: u32) -> Result<(), Errno> {
    match bits {
        64 => Ok(()),
        32 => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

const fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Highest LDT entry count (`arch_set_info_guest`).
const LDT_MAX_ENTS: u64 = 8192;
/// GDT frames a vCPU context can name.
const GDT_MAX_FRAMES: u64 = 16;

/// `arch_set_info_guest`'s argument checks for a 64-bit PV vCPU (`-EINVAL` each):
/// canonical addresses, an aligned LDT of at most 8192 entries, at most 16 GDT
/// frames, vm_assist bits within `vm_assist_valid`, a kernel base given.
pub fn check_vcpu_context(c: &VcpuGuestContext, vm_assist_valid: u64) -> Result<(), Errno> {
    let addrs = [
        c.user_regs.rip,
        c.user_regs.rsp,
        c.kernel_sp,
        c.fs_base,
        c.gs_base_kernel,
        c.gs_base_user,
        c.event_callback_eip,
        c.syscall_callback_eip,
        c.failsafe_callback_eip,
    ];
    let bad = addrs.iter().any(|&a| !canonical(a))
        || (c.ldt_ents != 0 && !canonical(c.ldt_base))
        || c.trap_ctxt.iter().any(|t| !canonical(t.address))
        || c.ldt_base & 0xfff != 0
        || c.ldt_ents > LDT_MAX_ENTS
        || c.gdt_ents.div_ceil(512) > GDT_MAX_FRAMES
        || c.vm_assist & !vm_assist_valid != 0
        || c.ctrlreg[3] >> 12 == 0;
    if bad {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `XENMEM_set_memory_map`: at most `E820MAX` entries (`-EINVAL`).
pub fn check_memory_map(nr_entries: u32) -> Result<(), Errno> {
    if nr_entries > E820MAX {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

#[cfg(test)]
mod toolstack_tests {
    use super::*;

    #[test]
    fn claims_follow_domain_set_outstanding_pages() {
        // (pages, claim, tot, max, free, outstanding)
        assert_eq!(claim_pages(0, 5, 1, 10, 100, 5), Ok(0));
        assert_eq!(claim_pages(8, 0, 2, 10, 100, 0), Ok(6));
        assert_eq!(claim_pages(8, 3, 2, 10, 100, 3), Err(Errno::EINVAL));
        assert_eq!(claim_pages(2, 0, 2, 10, 100, 0), Err(Errno::EINVAL));
        assert_eq!(claim_pages(11, 0, 2, 10, 100, 0), Err(Errno::EINVAL));
        assert_eq!(claim_pages(10, 0, 0, 10, 15, 6), Err(Errno::ENOMEM));
        assert_eq!(claim_pages(10, 0, 0, 10, 16, 6), Ok(10));
        assert_eq!(claim_pages(u64::MAX, 0, 0, u64::MAX, 16, 600), Err(Errno::ENOMEM));
    }

    #[test]
    fn acquire_resource_grant_table_only() {
        use xen_abi::memory::*;
        let gt = XENMEM_resource_grant_table;
        assert_eq!(check_acquire_args(1, 0, 1), Err(Errno::EINVAL));
        assert_eq!(check_acquire_args(0, 1 << 32, 1), Err(Errno::EINVAL));
        assert_eq!(check_acquire_args(0, u64::from(u32::MAX), 1), Err(Errno::EINVAL));
        assert_eq!(check_acquire_args(0, 3, 4), Ok(()));
        assert_eq!(acquire_plan(gt, 0, 0, 0, true, 0, 64), Ok(Acquire::Size(64)));
        assert_eq!(acquire_plan(gt, 0, 0, 1, true, 0, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(gt, 0, 0, 1, false, 0, 64), Ok(Acquire::GrantFrames { first: 0, count: 1 }));
        assert_eq!(acquire_plan(gt, 0, 60, 4, false, 1, 64), Ok(Acquire::GrantFrames { first: 61, count: 3 }));
        assert_eq!(acquire_plan(gt, 0, 61, 4, false, 0, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(gt, 0, 0, 2, false, 2, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(gt, XENMEM_resource_grant_table_id_status, 0, 1, false, 0, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(XENMEM_resource_ioreq_server, 0, 0, 1, false, 0, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(XENMEM_resource_vmtrace_buf, 0, 0, 0, true, 0, 64), Err(Errno::EINVAL));
        assert_eq!(acquire_plan(9, 0, 0, 0, true, 0, 64), Ok(Acquire::Size(-95i32 as u32)));
        assert_eq!(acquire_plan(9, 0, 0, 1, false, 0, 64), Err(Errno::EOPNOTSUPP));
        assert_eq!(acquire_plan(gt, 0, 0, u32::MAX, false, 0, 64), Err(Errno::EINVAL));
    }

    #[test]
    fn tsc_modes_and_node_affinity() {
        assert_eq!(check_tsc_mode(0, false), Ok(()));
        assert_eq!(check_tsc_mode(2, false), Ok(()));
        assert_eq!(check_tsc_mode(1, false), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_tsc_mode(3, false), Err(Errno::EINVAL));
        assert_eq!(check_tsc_mode(77, true), Ok(()));
        // The node map as `xenctl_bitmap_to_bitmap` reads it: node 0 must be in it.
        use crate::domain::credit::CpuMask;
        let nodes = |bytes: &[u8], nr_bits: u32| check_node_affinity(CpuMask::from_xenctl(bytes, nr_bits).0);
        assert_eq!(nodes(&[0xff], 64), Ok(()));
        assert_eq!(nodes(&[0b10], 8), Err(Errno::EINVAL));
        assert_eq!(nodes(&[0xff], 0), Err(Errno::EINVAL));
        // (2^32 - 1 + 7) / 8 wraps to no bytes in Xen's 32-bit arithmetic: an empty map.
        assert_eq!(nodes(&[0xff], u32::MAX), Err(Errno::EINVAL));
        assert_eq!(nodes(&[0x01], 1), Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_create() -> XenDomctlCreatedomain {
        XenDomctlCreatedomain {
            max_vcpus: 1,
            max_evtchn_port: 1023,
            max_grant_frames: 64,
            max_maptrack_frames: 1024,
            grant_opts: 1,
            ..Default::default()
        }
    }

    #[test]
    fn createdomain_arguments() {
        assert_eq!(check_createdomain(&ok_create()), Ok(()));
        let bad: [fn(&mut XenDomctlCreatedomain); 10] = [
            |c| c.flags = XEN_DOMCTL_CDF_hvm,
            |c| c.flags = 1 << 20,
            |c| c.max_vcpus = 0,
            |c| c.max_vcpus = MAX_VCPUS + 1,
            |c| c.grant_opts = 2,
            |c| c.grant_opts = 1 << 4,
            |c| c.max_grant_frames = 0,
            |c| c.max_maptrack_frames = 1025,
            |c| c.iommu_opts = 1,
            |c| c.max_evtchn_port = 4096,
        ];
        for f in bad {
            let mut c = ok_create();
            f(&mut c);
            assert_eq!(check_createdomain(&c), Err(Errno::EINVAL), "{c:?}");
        }
        let mut c = ok_create();
        c.max_grant_frames = -1;
        c.flags = XEN_DOMCTL_CDF_oos_off;
        assert_eq!(check_createdomain(&c), Ok(()));
    }

    #[test]
    fn domid_rover_as_xen() {
        let mut rover = 0;
        let used = |d: u16| d == 0 || d == 2;
        assert_eq!(choose_domid(0, &mut rover, used), Ok(1));
        assert_eq!(choose_domid(0, &mut rover, used), Ok(3));
        assert_eq!(rover, 3);
        assert_eq!(choose_domid(2, &mut rover, used), Err(Errno::EEXIST));
        assert_eq!(choose_domid(5, &mut rover, used), Ok(5));
        // DOMID_SELF and the like mean "choose".
        assert_eq!(choose_domid(0x7ff0, &mut rover, used), Ok(4));
        // Wraps past the reserved ids.
        let mut rover = DOMID_FIRST_RESERVED - 1;
        assert_eq!(choose_domid(0, &mut rover, used), Ok(1));
        let mut rover = 5;
        assert_eq!(choose_domid(0, &mut rover, |_| true), Err(Errno::ENOMEM));
    }

    #[test]
    fn pause_counts_as_xen() {
        let mut s = ControlState::created(1, [0; 16]);
        assert!(!s.can_run());
        s.set_max_vcpus(1).unwrap();
        assert_eq!(s.set_max_vcpus(2), Err(Errno::EINVAL));
        assert!(!s.can_run());
        assert_eq!(s.dominf_flags(), XEN_DOMINF_paused);
        s.unpause().unwrap();
        assert!(s.can_run() && s.creation_finished);
        assert_eq!(s.unpause(), Err(Errno::EINVAL));
        for _ in 0..255 {
            s.pause().unwrap();
        }
        assert_eq!(s.pause(), Err(Errno::EOVERFLOW));
        s.pause_count = 0;
        s.shutdown = Some(3);
        assert!(!s.can_run());
        assert_eq!(s.dominf_flags(), XEN_DOMINF_shutdown | (3 << 16));
        s.killed = true;
        assert_eq!(s.dominf_flags() & XEN_DOMINF_dying, XEN_DOMINF_dying);
        // A boot-time domain runs without a toolstack.
        assert!(ControlState::default().can_run());
    }

    #[test]
    fn vcpu_context_checks() {
        let mut c = VcpuGuestContext::default();
        c.ctrlreg[3] = 0x1234 << 12;
        c.user_regs.rip = 0xffff_ffff_8000_0000;
        assert_eq!(check_vcpu_context(&c, 0), Ok(()));
        let bad: [fn(&mut VcpuGuestContext); 7] = [
            |c| c.user_regs.rip = 0x0000_8000_0000_0000,
            |c| c.trap_ctxt[14].address = 0x1234_5678_9abc_def0,
            |c| c.ldt_base = 0x10,
            |c| c.ldt_ents = 8193,
            |c| c.gdt_ents = 16 * 512 + 1,
            |c| c.vm_assist = 1 << 2,
            |c| c.ctrlreg[3] = 0,
        ];
        for f in bad {
            let mut x = c;
            f(&mut x);
            assert_eq!(check_vcpu_context(&x, 0), Err(Errno::EINVAL));
        }
        let mut x = c;
        x.vm_assist = 1 << 2;
        assert_eq!(check_vcpu_context(&x, 1 << 2), Ok(()));
    }

    #[test]
    fn sizes() {
        assert_eq!(max_mem_pages(64 << 10), 16384);
        assert_eq!(check_address_size(64), Ok(()));
        assert_eq!(check_address_size(32), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_address_size(48), Err(Errno::EINVAL));
        assert_eq!(check_memory_map(128), Ok(()));
        assert_eq!(check_memory_map(129), Err(Errno::EINVAL));
    }
}
