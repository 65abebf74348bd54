//! x86-64 page-table entry bits and the rules Xen applies to the entries a 64-bit PV
//! guest may write (Xen's `asm/page.h`, `asm/x86_64/page.h`, the `L*_DISALLOW_MASK`s in
//! `arch/x86/mm.c` and `adjust_guest_l*e` in `arch/x86/pv/mm.h`).
//!
//! Xen keeps PTE flags as a 24-bit value (bits 11:0 and 63:52 of the entry); here every
//! mask is a plain 64-bit PTE mask, which is the same rule written differently.

use xen_abi::arch_x86_64::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use xen_abi::Mfn;

/// Entries per page-table page.
pub const ENTRIES: usize = 512;

/// `_PAGE_PRESENT`
pub const PAGE_PRESENT: u64 = 1 << 0;
/// `_PAGE_RW`
pub const PAGE_RW: u64 = 1 << 1;
/// `_PAGE_USER`
pub const PAGE_USER: u64 = 1 << 2;
/// `_PAGE_PWT`
pub const PAGE_PWT: u64 = 1 << 3;
/// `_PAGE_PCD`
pub const PAGE_PCD: u64 = 1 << 4;
/// `_PAGE_ACCESSED`
pub const PAGE_ACCESSED: u64 = 1 << 5;
/// `_PAGE_DIRTY`
pub const PAGE_DIRTY: u64 = 1 << 6;
/// `_PAGE_PSE` (L2/L3: superpage).
pub const PAGE_PSE: u64 = 1 << 7;
/// `_PAGE_PAT` (L1: the PAT index bit; same bit as PSE).
pub const PAGE_PAT: u64 = 1 << 7;
/// `_PAGE_GLOBAL`
pub const PAGE_GLOBAL: u64 = 1 << 8;
/// `_PAGE_AVAIL`: bits 9-11, free for software.
pub const PAGE_AVAIL: u64 = 0x7 << 9;
/// The machine-address field, bits 51:12 (`PADDR_MASK & PAGE_MASK`).
pub const PAGE_ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// `_PAGE_AVAIL_HIGH`: bits 62:52, free for software.
pub const PAGE_AVAIL_HIGH: u64 = 0x7FF << 52;
/// `_PAGE_GUEST_KERNEL` (bit 52): Xen's tag for kernel-only L1 mappings of a 64-bit PV
/// guest (whose kernel runs in ring 3, so every entry carries `_PAGE_USER`).
pub const PAGE_GUEST_KERNEL: u64 = 1 << 52;
/// `_PAGE_GNTTAB` (bit 62): reserved for grant mappings; a guest may not set it in an L1.
pub const PAGE_GNTTAB: u64 = 1 << 62;
/// `_PAGE_NX`
pub const PAGE_NX: u64 = 1 << 63;
/// Every bit that is a flag rather than part of the address.
pub const PAGE_FLAGS_MASK: u64 = !PAGE_ADDR_MASK;
/// `PAGE_CACHE_ATTRS`: PWT, PCD and (L1) PAT.
pub const PAGE_CACHE_ATTRS: u64 = PAGE_PWT | PAGE_PCD | PAGE_PAT;

/// `base_disallow_mask` (`arch_init_memory`): everything but P, RW, US, A, D, AVAIL,
/// AVAIL_HIGH and NX. That is PWT, PCD, PSE/PAT and G.
pub const BASE_DISALLOW_MASK: u64 = PAGE_FLAGS_MASK
    & !(PAGE_PRESENT
        | PAGE_RW
        | PAGE_USER
        | PAGE_ACCESSED
        | PAGE_DIRTY
        | PAGE_AVAIL
        | PAGE_AVAIL_HIGH
        | PAGE_NX);
/// `l1_disallow_mask(d)` for a PV domain without I/O capabilities (the only kind this
/// module supports): `(base | _PAGE_GNTTAB) & ~_PAGE_GLOBAL`, cache attributes included.
pub const L1_DISALLOW_MASK: u64 = (BASE_DISALLOW_MASK | PAGE_GNTTAB) & !PAGE_GLOBAL;
/// `L2_DISALLOW_MASK` (PSE is refused: no superpages for PV, XSA-148).
pub const L2_DISALLOW_MASK: u64 = BASE_DISALLOW_MASK;
/// `l3_disallow_mask(d)` for a 64-bit PV domain.
pub const L3_DISALLOW_MASK: u64 = BASE_DISALLOW_MASK;
/// `L4_DISALLOW_MASK`
pub const L4_DISALLOW_MASK: u64 = BASE_DISALLOW_MASK;

/// `FASTPATH_FLAG_WHITELIST` (`mm.c`): flags a guest may change in a present entry
/// without the entry being re-validated (XSA-182: RW and the address are not among them).
pub const FASTPATH_FLAG_WHITELIST: u64 = PAGE_NX
    | PAGE_AVAIL_HIGH
    | PAGE_AVAIL
    | PAGE_GLOBAL
    | PAGE_DIRTY
    | PAGE_ACCESSED
    | PAGE_USER;

/// `ROOT_PAGETABLE_FIRST_XEN_SLOT`: L4 slot of `HYPERVISOR_VIRT_START` (256).
pub const FIRST_XEN_L4_SLOT: usize = table_offset(HYPERVISOR_VIRT_START, 4);
/// `ROOT_PAGETABLE_LAST_XEN_SLOT`: last L4 slot below `HYPERVISOR_VIRT_END` (271).
pub const LAST_XEN_L4_SLOT: usize = table_offset(HYPERVISOR_VIRT_END - 1, 4);

/// True if `pte` has `_PAGE_PRESENT`.
pub const fn present(pte: u64) -> bool {
    pte & PAGE_PRESENT != 0
}

/// The frame an entry points at (`l?e_get_mfn`).
pub const fn pte_mfn(pte: u64) -> Mfn {
    Mfn((pte & PAGE_ADDR_MASK) >> 12)
}

/// Builds an entry from a frame and flags (`l?e_from_mfn`).
pub const fn pte_from(mfn: Mfn, flags: u64) -> u64 {
    ((mfn.0 << 12) & PAGE_ADDR_MASK) | (flags & PAGE_FLAGS_MASK)
}

/// `l?e_has_changed(old, new, ~FASTPATH_FLAG_WHITELIST)`: do the two entries differ in
/// the address or in any flag outside the fast-path whitelist?
pub const fn needs_revalidation(old: u64, new: u64) -> bool {
    (old ^ new) & (PAGE_ADDR_MASK | (PAGE_FLAGS_MASK & !FASTPATH_FLAG_WHITELIST)) != 0
}

/// `is_guest_l4_slot` for a 64-bit PV domain: slots 256..=271 are Xen's.
pub const fn is_guest_l4_slot(slot: usize) -> bool {
    slot < FIRST_XEN_L4_SLOT || slot > LAST_XEN_L4_SLOT
}

/// `__addr_ok(va)` on x86-64: below the canonical hole, or at/after
/// `HYPERVISOR_VIRT_END` (so neither non-canonical nor in Xen's range).
pub const fn addr_ok(va: u64) -> bool {
    va < (1 << 47) || va >= HYPERVISOR_VIRT_END
}

/// Canonical 48-bit virtual address (`is_canonical_address`).
pub const fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_FFFF
}

/// Index of `va` in the table at `level` (1..=4).
pub const fn table_offset(va: u64, level: u8) -> usize {
    ((va >> (12 + 9 * (level as u32 - 1))) & 0x1FF) as usize
}

/// `adjust_guest_l1e` for a 64-bit PV guest: the kernel runs in ring 3, so every
/// present entry gets `_PAGE_USER`; entries the guest wrote without it are kernel-only
/// and get `_PAGE_GUEST_KERNEL`; user entries become global.
pub const fn adjust_guest_l1e(pte: u64) -> u64 {
    if !present(pte) {
        return pte;
    }
    let mut pte = pte;
    if pte & PAGE_USER == 0 {
        pte |= PAGE_GUEST_KERNEL | PAGE_USER;
    }
    if pte & PAGE_GUEST_KERNEL == 0 {
        pte |= PAGE_GLOBAL | PAGE_USER;
    }
    pte
}

/// `adjust_guest_l2e`/`l3e`/`l4e` for a 64-bit PV guest: present entries get
/// `_PAGE_USER`.
pub const fn adjust_guest_upper(pte: u64) -> u64 {
    if present(pte) {
        pte | PAGE_USER
    } else {
        pte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_xen() {
        // base_disallow_mask in 24-bit flag form is ~0x7FFE67 & 0xFFFFFF minus NX:
        // PWT, PCD, PSE/PAT, GLOBAL.
        assert_eq!(BASE_DISALLOW_MASK, PAGE_PWT | PAGE_PCD | PAGE_PSE | PAGE_GLOBAL);
        assert_eq!(L1_DISALLOW_MASK, PAGE_PWT | PAGE_PCD | PAGE_PAT | PAGE_GNTTAB);
        assert_eq!(PAGE_AVAIL_HIGH & PAGE_GNTTAB, PAGE_GNTTAB);
        assert_eq!(pte_mfn(0x8000_0000_1234_5067), Mfn(0x12345));
        assert_eq!(pte_from(Mfn(0x12345), 0x67), 0x1234_5067);
        assert!(!needs_revalidation(0x1000 | 0x21, 0x1000 | 0x61 | PAGE_NX));
        assert!(needs_revalidation(0x1000 | 0x21, 0x1000 | 0x23));
        assert!(needs_revalidation(0x1000 | 0x21, 0x2000 | 0x21));
        assert_eq!((FIRST_XEN_L4_SLOT, LAST_XEN_L4_SLOT), (256, 271));
        assert!(is_guest_l4_slot(255) && !is_guest_l4_slot(256));
        assert!(!is_guest_l4_slot(271) && is_guest_l4_slot(272));
        assert!(addr_ok(0x7fff_ffff_ffff) && !addr_ok(0x8000_0000_0000));
        assert!(!addr_ok(0xffff_8000_0000_0000) && addr_ok(0xffff_8800_0000_0000));
        assert_eq!(table_offset(0xffff_ffff_8000_0000, 4), 511);
        assert_eq!(table_offset(0xffff_ffff_8000_0000, 3), 510);
        assert_eq!(adjust_guest_l1e(0x1003), 0x1003 | PAGE_USER | PAGE_GUEST_KERNEL);
        assert_eq!(adjust_guest_l1e(0x1007), 0x1007 | PAGE_GLOBAL);
        assert_eq!(adjust_guest_l1e(0x1006), 0x1006);
    }
}
