//! The hypervisor's virtual address space: Xen's 64-bit layout, so that guests see the
//! hypervisor hole (L4 slots 256..=271) where Xen's guests expect it.

/// Where the image is linked (Xen's `XEN_VIRT_START`, L4 slot 261): virtual = this + physical.
pub const XEN_VIRT_START: u64 = 0xffff_82d0_4000_0000;
/// Each CPU's view of the LDT of the vCPU it runs (in Xen's per-domain slot 260, where
/// Xen keeps its per-vCPU GDT/LDT views): `LDT_VIRT_SIZE` bytes per CPU, mapped a page
/// at a time as the guest's LDT pages are.
pub const LDT_VIRT_START: u64 = 0xffff_8200_0000_0000;
/// One CPU's LDT window: the largest LDT, 8192 descriptors.
pub const LDT_VIRT_SIZE: u64 = 16 * PAGE_SIZE;
/// The direct map of all machine memory (Xen's `DIRECTMAP_VIRT_START`, slot 262).
pub const DIRECTMAP_VIRT_START: u64 = 0xffff_8300_0000_0000;
/// Direct-map size: slots 262..=271, 5 TiB.
pub const DIRECTMAP_SIZE: u64 = 10 << 39;

pub const PAGE_SIZE: u64 = 4096;

/// L4 slot of a virtual address.
pub const fn l4_slot(va: u64) -> usize {
    ((va >> 39) & 0x1ff) as usize
}

/// The direct-map address of a physical address.
pub const fn phys_to_virt(paddr: u64) -> u64 {
    DIRECTMAP_VIRT_START + paddr
}
