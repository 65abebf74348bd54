//! The machine-to-phys table: one u64 per machine frame (the frame's PFN in its domain,
//! or INVALID), mapped read-only for guests at Xen's RO_MPT_VIRT_START (L4 slot 256),
//! and the hypervisor's L4 slots every guest L4 carries.

use crate::arch::x86_64::layout::l4_slot;
use crate::arch::x86_64::paging::{PTE_A, PTE_ADDR_MASK, PTE_NX, PTE_P, PTE_RW, PTE_US};
use crate::arch::x86_64::{mem, phys};
use core::sync::atomic::{AtomicU64, Ordering};

/// Xen's `RO_MPT_VIRT_START`.
pub const RO_MPT_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// Xen's `INVALID_M2P_ENTRY`.
pub const INVALID_M2P_ENTRY: u64 = !0;
/// The hypervisor's L4 slots (Xen's ROOT_PAGETABLE_FIRST/LAST_XEN_SLOT).
pub const FIRST_XEN_SLOT: usize = 256;
pub const LAST_XEN_SLOT: usize = 271;

static M2P_BASE_MFN: AtomicU64 = AtomicU64::new(0);
static M2P_ENTRIES: AtomicU64 = AtomicU64::new(0);
static IDLE_PML4: AtomicU64 = AtomicU64::new(0);

/// Entries in the table (= machine frames covered).
pub fn entries() -> u64 {
    M2P_ENTRIES.load(Ordering::Relaxed)
}

fn table_alloc() -> u64 {
    let mfn = mem::alloc_frame().expect("out of memory for the M2P mapping");
    phys::zero_frame(mfn);
    mfn
}

/// Allocates the table for `max_mfn` frames and maps it into the hypervisor's PML4.
pub fn init(idle_pml4: u64, max_mfn: u64) {
    IDLE_PML4.store(idle_pml4, Ordering::Relaxed);
    let frames = (max_mfn * 8).div_ceil(4096);
    let base = mem::with_frames(|a| a.alloc_contiguous(frames, 1)).expect("out of memory for the M2P");
    for i in 0..frames * 512 {
        phys::write_entry(base + i / 512, (i % 512) as usize, INVALID_M2P_ENTRY);
    }
    // Read-only and user-accessible at every level, so guests can read it and only the
    // hypervisor (through the direct map) writes it.
    let up = PTE_P | PTE_US | PTE_A;
    let next = |table: u64, idx: usize| -> u64 {
        let e = phys::read_entry(table, idx);
        if e & PTE_P != 0 {
            return (e & PTE_ADDR_MASK) >> 12;
        }
        let t = table_alloc();
        phys::write_entry(table, idx, (t << 12) | up);
        t
    };
    for i in 0..frames {
        let va = RO_MPT_VIRT_START + i * 4096;
        let l3 = next(idle_pml4, l4_slot(va));
        let l2 = next(l3, ((va >> 30) & 0x1ff) as usize);
        let l1 = next(l2, ((va >> 21) & 0x1ff) as usize);
        phys::write_entry(l1, ((va >> 12) & 0x1ff) as usize, ((base + i) << 12) | up | PTE_NX);
    }
    debug_assert_eq!(PTE_RW & up, 0);
    M2P_BASE_MFN.store(base, Ordering::Relaxed);
    M2P_ENTRIES.store(max_mfn, Ordering::Relaxed);
}

/// First machine frame of the (contiguous) table.
pub fn base_mfn() -> u64 {
    M2P_BASE_MFN.load(Ordering::Relaxed)
}

pub fn set(mfn: u64, pfn: u64) {
    if mfn < entries() {
        let base = M2P_BASE_MFN.load(Ordering::Relaxed);
        phys::write_entry(base + mfn / 512, (mfn % 512) as usize, pfn);
    }
}

pub fn get(mfn: u64) -> u64 {
    if mfn >= entries() {
        return INVALID_M2P_ENTRY;
    }
    let base = M2P_BASE_MFN.load(Ordering::Relaxed);
    phys::read_entry(base + mfn / 512, (mfn % 512) as usize)
}

/// Copies the hypervisor's L4 slots into a guest L4 (Xen's init_xen_l4_slots).
pub fn install_xen_slots(l4_mfn: u64) {
    let idle = IDLE_PML4.load(Ordering::Relaxed);
    for slot in FIRST_XEN_SLOT..=LAST_XEN_SLOT {
        phys::write_entry(l4_mfn, slot, phys::read_entry(idle, slot));
    }
}
