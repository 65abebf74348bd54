//! A PV domain and its vCPU as the hypervisor keeps them.

pub mod build;
pub mod destroy;
pub mod set;
pub mod xenstore_setup;

use crate::arch::x86_64::cpu::FpuArea;
use crate::arch::x86_64::trap::Regs;
use crate::mm::VcpuMm;
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::arch_x86_64::TrapInfo;

/// `Domain::ending` for a crash (= `SHUTDOWN_crash`).
pub const END_CRASH: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Runnable,
    /// `SCHEDOP_block`: until an event upcall is deliverable.
    Blocked,
    /// `SCHEDOP_poll`: until one of `Vcpu::poll_ports` is pending, an upcall is
    /// deliverable, or system time `timeout` (0 = none).
    Polling { timeout: u64 },
}

/// Xen's periodic timer for a new PV vCPU (`MILLISECS(10)`, arch/x86/pv/domain.c).
pub const PV_PERIODIC_DEFAULT_NS: u64 = 10_000_000;

/// The state of a PV vCPU that is not in the register frame.
#[derive(Debug)]
pub struct Vcpu {
    /// Its number in the domain (`vcpu_id`).
    pub id: u32,
    /// Its context was loaded (`is_initialised`): by the builder, `setvcpucontext` or
    /// `VCPUOP_initialise`.
    pub initialised: bool,
    /// Up (not `_VPF_down`): `VCPUOP_up`/`down`, or `VGCF_online` in its context.
    pub online: bool,
    /// Time in each `RUNSTATE_*` and where the guest wants to see it.
    pub runstate: crate::domain::runstate::Runstate,
    /// Registers while another vCPU runs (the frame on the hypervisor stack otherwise).
    pub saved: Regs,
    pub run: RunState,
    /// The ports of the current `SCHEDOP_poll`.
    pub poll_ports: Vec<u32>,
    pub fpu: FpuArea,
    /// Checked descriptors of the guest's GDT, loaded when this vCPU runs.
    pub gdt_shadow: Vec<u64>,
    /// Guest kernel mode (true) or guest user mode; both run in ring 3.
    pub kernel_mode: bool,
    /// L4 MFNs of the kernel and user address spaces (`NEW_BASEPTR`, `NEW_USER_BASEPTR`).
    pub kernel_l4: u64,
    pub user_l4: u64,
    /// Kernel stack for entries from user mode (`stack_switch`).
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    /// `set_trap_table`, indexed by vector; address 0 = no handler.
    pub trap_table: [TrapInfo; 256],
    pub event_callback: u64,
    pub failsafe_callback: u64,
    pub syscall_callback: u64,
    pub syscall_masks_events: bool,
    /// FS base, and the GS bases of kernel and user mode (`set_segment_base`).
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
    /// Machine address of this vCPU's `vcpu_info` (shared_info slot 0 until
    /// `VCPUOP_register_vcpu_info` moves it).
    pub vcpu_info_maddr: u64,
    /// The writable reference on the registered `vcpu_info` frame, dropped when the
    /// domain is destroyed (Xen's `unmap_vcpu_info`).
    pub vcpu_info_ref: Option<crate::mm::FrameRef>,
    /// Single-shot timer deadline in system time (ns), if armed.
    pub timer_deadline: Option<u64>,
    /// The periodic timer (`VCPUOP_set_periodic_timer`; 0 = stopped; Xen starts a PV
    /// vCPU with 10 ms) and when it last fired. As in Xen it runs only while the vCPU
    /// runs.
    pub periodic_period: u64,
    pub periodic_last: u64,
    /// `fpu_taskswitch(1)` set CR0.TS for the guest.
    pub fpu_ts: bool,
    /// Page-table bases and LDT as the PV MMU tracks them (kernel_l4/user_l4 mirror it).
    pub mm: VcpuMm,
    /// Frames of the guest's GDT (`set_gdt`), whose checked copy is loaded.
    pub gdt_frames: Vec<u64>,
    /// The pages of its LDT mapped so far (on their first fault), by page of the LDT;
    /// each holds a descriptor-page type reference until the LDT changes or the domain
    /// goes (Xen's shadow LDT mappings).
    pub ldt_pages: crate::mm::LdtPages,
    /// Virtual I/O privilege level (`PHYSDEVOP_set_iopl`).
    pub iopl: u32,
    /// The guest's I/O bitmap (`PHYSDEVOP_set_iobitmap`): its guest virtual address, read
    /// through the kernel's page tables on each I/O instruction, and the ports it covers.
    pub iobmp: u64,
    pub iobmp_limit: u32,
    /// The guest-controllable CR4 bits it set (`emul_priv::CR4_GUEST_MASK`).
    pub cr4_guest: u64,
    /// Debug registers as the guest set them (`set_debugreg`, `mov %dbN`).
    pub debugreg: [u64; 8],
    /// The MSRs the guest may write and read back (`crate::msr_policy`).
    pub msrs: crate::msr_policy::VcpuMsrs,
    /// Affinity and credit (`pv::credit`).
    pub sched: crate::domain::credit::VcpuSched,
}

impl Vcpu {
    pub fn new(id: u32, kernel_l4: u64, vcpu_info_maddr: u64) -> Self {
        Vcpu {
            id,
            initialised: false,
            online: false,
            runstate: crate::domain::runstate::Runstate::new(crate::arch::x86_64::clock::now_ns()),
            saved: Regs::default(),
            run: RunState::Runnable,
            poll_ports: Vec::new(),
            fpu: FpuArea::initial(),
            gdt_shadow: Vec::new(),
            kernel_mode: true,
            kernel_l4,
            user_l4: 0,
            kernel_ss: 0,
            kernel_sp: 0,
            trap_table: [TrapInfo::default(); 256],
            event_callback: 0,
            failsafe_callback: 0,
            syscall_callback: 0,
            syscall_masks_events: false,
            fs_base: 0,
            gs_base_kernel: 0,
            gs_base_user: 0,
            vcpu_info_maddr,
            vcpu_info_ref: None,
            timer_deadline: None,
            periodic_period: PV_PERIODIC_DEFAULT_NS,
            periodic_last: 0,
            fpu_ts: false,
            mm: VcpuMm::default(),
            gdt_frames: Vec::new(),
            ldt_pages: [None; crate::mm::LDT_PAGES],
            iopl: 0,
            iobmp: 0,
            iobmp_limit: 0,
            cr4_guest: 0,
            debugreg: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            msrs: Default::default(),
            sched: Default::default(),
        }
    }

    /// Takes the MMU's view of the bases after an `mmuext_op`.
    pub fn set_mm(&mut self, mm: VcpuMm) {
        self.mm = mm;
        self.kernel_l4 = mm.kernel_l4.map_or(0, |m| m.0);
        self.user_l4 = mm.user_l4.map_or(0, |m| m.0);
    }

    /// Whether this vCPU waits in `SCHEDOP_poll` for `port`.
    pub fn polls(&self, port: u32) -> bool {
        matches!(self.run, RunState::Polling { .. }) && self.poll_ports.contains(&port)
    }

    /// When this vCPU needs the CPU back at the latest: its timer or its poll timeout.
    pub fn wake_deadline(&self) -> Option<u64> {
        let poll = match self.run {
            RunState::Polling { timeout, .. } if timeout != 0 => Some(timeout),
            _ => None,
        };
        [self.timer_deadline, poll].into_iter().flatten().min()
    }

    /// The L4 the CPU should run with in the current guest mode.
    pub fn current_l4(&self) -> u64 {
        if self.kernel_mode || self.user_l4 == 0 {
            self.kernel_l4
        } else {
            self.user_l4
        }
    }
}

/// A grant this domain mapped (`GNTTABOP_map_grant_ref`), by handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantMapping {
    pub granter: u16,
    pub gref: u32,
    pub frame: u64,
    pub host_addr: u64,
    /// The L1 entry holding the mapping.
    pub l1: u64,
    pub index: usize,
    pub writable: bool,
    /// Mapped by the machine address of the PTE (`GNTMAP_contains_pte`, what Linux's
    /// gntdev does in a PV dom0): `host_addr` is that address, not a virtual one.
    pub by_pte: bool,
}

/// Mappings of one grant entry (Xen's `GNTPIN_hstr`/`GNTPIN_hstw` counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantPin {
    pub read_only: u32,
    pub writable: u32,
}

#[derive(Debug)]
pub struct Domain {
    pub id: u16,
    pub name: String,
    pub privileged: bool,
    /// The initial domain of a single-domain boot: its end is the machine's.
    pub hardware: bool,
    /// Set when the domain shut down or crashed (the reason); it is destroyed before the
    /// next return to a guest.
    pub ending: Option<u32>,
    /// pfn -> mfn for every page the domain owns.
    pub p2m: Vec<u64>,
    /// Frames given back with decrease_reservation while still referenced (mapped, or
    /// held by the hypervisor): they go back to the allocator once free. A set, so the
    /// last unmap of one finds it by frame number without a scan.
    pub given_back: hashbrown::HashSet<u64>,
    pub max_pages: u64,
    pub shared_info_mfn: u64,
    /// Every vCPU, by `vcpu_id`; `cur_vcpu` is the one running, or the one that ran
    /// last when another domain runs.
    pub vcpus: Vec<Vcpu>,
    pub cur_vcpu: usize,
    /// vm_assist bits the guest turned on.
    pub vm_assist: u64,
    pub evtchn: crate::pv::event::EventChannels,
    /// Grant-table frames (`GNTTABOP_setup_table`), shared read/write with the domain.
    pub grant_frames: Vec<u64>,
    /// Grants this domain has mapped, indexed by handle.
    pub maptrack: Vec<Option<GrantMapping>>,
    /// Unused maptrack handles, lowest first; its capacity always covers every handle,
    /// so freeing one never allocates.
    pub maptrack_free: alloc::collections::BinaryHeap<core::cmp::Reverse<u32>>,
    /// The vCPUs (bit per id, the last bit for ids 63 and up) that have asked for a
    /// maptrack handle: each keeps one back as the tail of its free list, as in Xen.
    pub maptrack_vcpus: u64,
    /// How many mappings of each of this domain's grant entries exist, by reference
    /// (Xen's active entries' pin counts): the entry's GTF_reading/GTF_writing.
    pub grant_pins: Vec<GrantPin>,
    /// Partial console_io line of a domU (printed with a `(dN) ` prefix per line).
    pub console_line: Vec<u8>,
    /// Machine address of this domain's start_info page.
    pub start_info_maddr: u64,
    /// The last address written to port 0xcf8 (PCI configuration address), which Xen
    /// keeps per domain instead of passing it to the hardware.
    pub pci_cf8: u32,
    /// The console ring and port of a manifest domain (`console_ring`).
    pub console_ring: Option<crate::pv::console_ring::ConsoleRing>,
    /// The toolstack's side (`domctl`): pause count, vCPU state, shutdown, E820.
    pub ctl: crate::domain::control::ControlState,
    /// Credit weight and cap (`XEN_DOMCTL_scheduler_op`, `pv::credit`).
    pub sched: crate::domain::credit::DomParams,
}

/// `vcpu_info` of vCPU `n` inside shared_info (only the first `XEN_LEGACY_MAX_VCPUS` have
/// one there; the others must register theirs).
pub fn shared_vcpu_info(shared_info_mfn: u64, n: u32) -> Option<u64> {
    use xen_abi::xen::{SharedInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS};
    ((n as usize) < XEN_LEGACY_MAX_VCPUS).then(|| {
        (shared_info_mfn << 12)
            + core::mem::offset_of!(SharedInfo, vcpu_info) as u64
            + u64::from(n) * core::mem::size_of::<VcpuInfo>() as u64
    })
}

/// `n` vCPUs of a new domain, each with its shared_info `vcpu_info`; none loaded yet.
pub fn new_vcpus(n: u32, shared_info_mfn: u64) -> Vec<Vcpu> {
    (0..n).map(|i| Vcpu::new(i, 0, shared_vcpu_info(shared_info_mfn, i).unwrap_or(0))).collect()
}

impl Domain {
    pub fn alive(&self) -> bool {
        self.ending.is_none()
    }

    /// vCPU `n` of this domain (`-ENOENT` when there is none, as Xen's `domain_vcpu`).
    pub fn vcpu_mut(&mut self, n: u64) -> Result<&mut Vcpu, xen_abi::errno::Errno> {
        usize::try_from(n).ok().and_then(|n| self.vcpus.get_mut(n)).ok_or(xen_abi::errno::Errno::ENOENT)
    }

    /// How many vCPUs are up.
    pub fn online_vcpus(&self) -> u32 {
        self.vcpus.iter().filter(|v| v.initialised && v.online).count() as u32
    }

    /// Whether `mfn` is one of this domain's pages: the frame table's owner, never the
    /// M2P or p2m, which the guest itself rewrites (`MMU_MACHPHYS_UPDATE`).
    pub fn owns(&self, mfn: u64) -> bool {
        let me = crate::mm::Owner::Dom(xen_abi::DomId(self.id));
        crate::pv::mmu::with(|t, _| t.page(xen_abi::Mfn(mfn)).is_some_and(|p| p.owner() == me))
    }
}
