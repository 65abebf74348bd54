//! `features.h`: `XENFEAT_*` bit numbers reported by `XENVER_get_features`.
#![allow(non_upper_case_globals)]

/// `XENFEAT_writable_page_tables`
pub const XENFEAT_writable_page_tables: u32 = 0;
/// `XENFEAT_writable_descriptor_tables`
pub const XENFEAT_writable_descriptor_tables: u32 = 1;
/// `XENFEAT_auto_translated_physmap`
pub const XENFEAT_auto_translated_physmap: u32 = 2;
/// `XENFEAT_supervisor_mode_kernel`
pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
/// `XENFEAT_pae_pgdir_above_4gb`
pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
/// `XENFEAT_mmu_pt_update_preserve_ad`
pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
/// `XENFEAT_highmem_assist`
pub const XENFEAT_highmem_assist: u32 = 6;
/// `XENFEAT_gnttab_map_avail_bits`
pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
/// `XENFEAT_hvm_callback_vector`
pub const XENFEAT_hvm_callback_vector: u32 = 8;
/// `XENFEAT_hvm_safe_pvclock`
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
/// `XENFEAT_hvm_pirqs`
pub const XENFEAT_hvm_pirqs: u32 = 10;
/// `XENFEAT_dom0`
pub const XENFEAT_dom0: u32 = 11;
/// `XENFEAT_grant_map_identity`: deprecated; the 4.17 header keeps it only inside a
/// comment, so the bit stays reserved.
pub const XENFEAT_grant_map_identity: u32 = 12;
/// `XENFEAT_memory_op_vnode_supported`
pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
/// `XENFEAT_ARM_SMCCC_supported`
pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
/// `XENFEAT_linux_rsdp_unrestricted`
pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
/// `XENFEAT_not_direct_mapped`
pub const XENFEAT_not_direct_mapped: u32 = 16;
/// `XENFEAT_direct_mapped`
pub const XENFEAT_direct_mapped: u32 = 17;
/// `XENFEAT_NR_SUBMAPS`
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

bitflags::bitflags! {
    /// Submap 0 of `XENVER_get_features` as a set: bit `XENFEAT_*` of the numbers above
    /// (all of 4.17's features fit the one submap, `XENFEAT_NR_SUBMAPS` = 1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct XenFeatures: u32 {
        const WRITABLE_PAGE_TABLES = 1 << XENFEAT_writable_page_tables;
        const WRITABLE_DESCRIPTOR_TABLES = 1 << XENFEAT_writable_descriptor_tables;
        const AUTO_TRANSLATED_PHYSMAP = 1 << XENFEAT_auto_translated_physmap;
        const SUPERVISOR_MODE_KERNEL = 1 << XENFEAT_supervisor_mode_kernel;
        const PAE_PGDIR_ABOVE_4GB = 1 << XENFEAT_pae_pgdir_above_4gb;
        const MMU_PT_UPDATE_PRESERVE_AD = 1 << XENFEAT_mmu_pt_update_preserve_ad;
        const HIGHMEM_ASSIST = 1 << XENFEAT_highmem_assist;
        const GNTTAB_MAP_AVAIL_BITS = 1 << XENFEAT_gnttab_map_avail_bits;
        const HVM_CALLBACK_VECTOR = 1 << XENFEAT_hvm_callback_vector;
        const HVM_SAFE_PVCLOCK = 1 << XENFEAT_hvm_safe_pvclock;
        const HVM_PIRQS = 1 << XENFEAT_hvm_pirqs;
        const DOM0 = 1 << XENFEAT_dom0;
        const GRANT_MAP_IDENTITY = 1 << XENFEAT_grant_map_identity;
        const MEMORY_OP_VNODE_SUPPORTED = 1 << XENFEAT_memory_op_vnode_supported;
        const ARM_SMCCC_SUPPORTED = 1 << XENFEAT_ARM_SMCCC_supported;
        const LINUX_RSDP_UNRESTRICTED = 1 << XENFEAT_linux_rsdp_unrestricted;
        const NOT_DIRECT_MAPPED = 1 << XENFEAT_not_direct_mapped;
        const DIRECT_MAPPED = 1 << XENFEAT_direct_mapped;
    }
}

/// The names libelf accepts in the `XEN_ELFNOTE_FEATURES` string, with their bit
/// numbers (a leading `!` in the note marks a feature as required).
pub const ELFNOTE_FEATURE_NAMES: &[(&str, u32)] = &[
    ("writable_page_tables", XENFEAT_writable_page_tables),
    (
        "writable_descriptor_tables",
        XENFEAT_writable_descriptor_tables,
    ),
    ("auto_translated_physmap", XENFEAT_auto_translated_physmap),
    ("supervisor_mode_kernel", XENFEAT_supervisor_mode_kernel),
    ("pae_pgdir_above_4gb", XENFEAT_pae_pgdir_above_4gb),
    ("hvm_callback_vector", XENFEAT_hvm_callback_vector),
    ("dom0", XENFEAT_dom0),
];

/// Looks up a feature name from `XEN_ELFNOTE_FEATURES`.
pub fn feature_by_name(name: &str) -> Option<u32> {
    ELFNOTE_FEATURE_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, b)| b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::feature_by_name("dom0"), Some(11));
        assert_eq!(super::feature_by_name("nope"), None);
    }
}
