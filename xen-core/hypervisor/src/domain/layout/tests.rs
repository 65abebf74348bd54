//! Tests for the initial-domain arrangement: the vector real Xen 4.17 printed for
//! pv-guest, vectors derived by hand from `dom0_construct_pv`, the error paths, and a
//! property test against a literal transcription of Xen's page-table loop.

use super::*;
use proptest::prelude::*;

const BASE: u64 = 0xffff_ffff_8000_0000;

/// pv-guest's parameters (VIRT_BASE = PADDR_OFFSET = link base; image
/// ffffffff80000000->ffffffff80017001; hypercall page in the image).
fn pv_guest() -> DomainParams {
    DomainParams {
        virt_base: BASE,
        elf_paddr_offset: BASE,
        virt_offset: 0,
        virt_kstart: BASE,
        virt_kend: BASE + 0x17001,
        virt_entry: BASE,
        virt_hypercall: Some(BASE + 0x5000),
        ..DomainParams::default()
    }
}

fn r(start: u64, end: u64) -> Region {
    Region::new(start, end)
}

#[test]
fn start_info_size_matches_xen() {
    assert_eq!(START_INFO_SIZE, 1168);
    // Xen's "Start info" line ends 0x4b8 = 1208 bytes in: start_info + vga info.
    assert_eq!(START_INFO_SIZE + DOM0_VGA_CONSOLE_INFO_SIZE, 0x4b8);
}

/// Real Xen 4.17, `dom0_mem=64M`, pv-guest (target/logs/reference.log):
/// ```text
/// (XEN)  Dom0 alloc.:   000000001ec00000->000000001f000000 (15360 pages to be allocated)
/// (XEN)  Loaded kernel: ffffffff80000000->ffffffff80017001
/// (XEN)  Phys-Mach map: ffffffff80018000->ffffffff80038000
/// (XEN)  Start info:    ffffffff80038000->ffffffff800384b8
/// (XEN)  Page tables:   ffffffff80039000->ffffffff8003e000
/// (XEN)  Boot stack:    ffffffff8003e000->ffffffff8003f000
/// (XEN)  TOTAL:         ffffffff80000000->ffffffff80400000
/// (XEN)  ENTRY ADDRESS: ffffffff80000000
/// ```
/// nr_pages is 16384 (64 MiB): the P2M is 0x20000 bytes = 16384 entries, and the
/// 4 MiB (1024-page) initial allocation leaves "15360 pages to be allocated".
#[test]
fn real_xen_vector_pv_guest_64m() {
    let l = dom0_layout(&pv_guest(), 16384, 0, 1).unwrap();
    assert_eq!(l.kernel, r(0xffff_ffff_8000_0000, 0xffff_ffff_8001_7001));
    assert_eq!(l.initrd, None);
    assert_eq!(l.phys_mach, r(0xffff_ffff_8001_8000, 0xffff_ffff_8003_8000));
    assert_eq!(
        l.start_info,
        r(0xffff_ffff_8003_8000, 0xffff_ffff_8003_84b8)
    );
    assert_eq!(
        l.page_tables,
        r(0xffff_ffff_8003_9000, 0xffff_ffff_8003_e000)
    );
    assert_eq!(
        l.boot_stack,
        r(0xffff_ffff_8003_e000, 0xffff_ffff_8003_f000)
    );
    assert_eq!(l.total(), r(0xffff_ffff_8000_0000, 0xffff_ffff_8040_0000));
    assert_eq!(l.entry, 0xffff_ffff_8000_0000);
    assert_eq!(l.nr_pt_frames, 5);
    assert_eq!(
        l.pt_frames(),
        PtFrames {
            l4: 1,
            l3: 1,
            l2: 1,
            l1: 2
        }
    );
    // Dom0 alloc.: 0x1ec00000->0x1f000000 is 4 MiB = 2^10 pages; 16384 - 1024 = 15360.
    assert_eq!(l.alloc_order, 10);
    assert_eq!(16384 - (1u64 << l.alloc_order), 15360);
    assert_eq!(l.mapped_pages(), 1024);
    assert!(l.p2m_in_initial_mapping);
    assert_eq!(l.start_info_flags(), Sif::PRIVILEGED | Sif::INITDOMAIN);
    assert_eq!(l.mod_start(), 0);
    assert_eq!(l.first_p2m_pfn(), None);
    assert_eq!(l.p2m_frames_4k(), 0);
    assert_eq!(l.pfn_of(l.boot_stack.start), Some(0x3e));
    let levels: Vec<_> = l.pt_frame_levels().collect();
    assert_eq!(
        levels,
        [
            PtLevel::L4,
            PtLevel::L1,
            PtLevel::L2,
            PtLevel::L3,
            PtLevel::L1
        ]
    );
    let text = l.to_string();
    let expected = "VIRTUAL MEMORY ARRANGEMENT:\n \
        Loaded kernel: ffffffff80000000->ffffffff80017001\n \
        Phys-Mach map: ffffffff80018000->ffffffff80038000\n \
        Start info:    ffffffff80038000->ffffffff800384b8\n \
        Page tables:   ffffffff80039000->ffffffff8003e000\n \
        Boot stack:    ffffffff8003e000->ffffffff8003f000\n \
        TOTAL:         ffffffff80000000->ffffffff80400000\n \
        ENTRY ADDRESS: ffffffff80000000\n";
    assert_eq!(text, expected);
}

#[test]
fn vcpus_do_not_change_the_arrangement() {
    assert_eq!(
        dom0_layout(&pv_guest(), 16384, 0, 1),
        dom0_layout(&pv_guest(), 16384, 0, 8)
    );
}

/// Mapped initrd of 0x123456 bytes: it follows the kernel, the P2M follows it.
#[test]
fn mapped_initrd() {
    let l = dom0_layout(&pv_guest(), 16384, 0x12_3456, 1).unwrap();
    assert_eq!(l.initrd, Some(r(BASE + 0x1_8000, BASE + 0x13_b456)));
    assert_eq!(l.initrd_pfn, Some(0x18));
    assert_eq!(l.mod_start(), BASE + 0x1_8000);
    assert_eq!(l.phys_mach, r(BASE + 0x13_c000, BASE + 0x15_c000));
    assert_eq!(l.start_info, r(BASE + 0x15_c000, BASE + 0x15_c4b8));
    assert_eq!(l.page_tables, r(BASE + 0x15_d000, BASE + 0x16_2000));
    assert_eq!(l.boot_stack, r(BASE + 0x16_2000, BASE + 0x16_3000));
    assert_eq!(l.total(), r(BASE, BASE + 0x40_0000));
    // count = 4 MiB - PAGE_ALIGN(initrd) = 0x2dc000 -> order 10.
    assert_eq!(l.alloc_order, 10);
    assert!(!l.start_info_flags().contains(Sif::MOD_START_PFN));
}

/// A kernel with MOD_START_PFN: the initrd stays unmapped, after the allocation.
#[test]
fn unmapped_initrd() {
    let p = DomainParams {
        unmapped_initrd: true,
        ..pv_guest()
    };
    let l = dom0_layout(&p, 16384, 0x12_3456, 1).unwrap();
    let plain = dom0_layout(&pv_guest(), 16384, 0, 1).unwrap();
    assert_eq!(l.initrd, None);
    assert_eq!(
        (l.phys_mach, l.page_tables, l.total()),
        (plain.phys_mach, plain.page_tables, plain.total())
    );
    assert_eq!(l.initrd_pfn, Some(1024));
    assert_eq!(l.mod_start(), 1024);
    assert!(l.start_info_flags().contains(Sif::MOD_START_PFN));
    // Without an initrd, MOD_START_PFN changes nothing.
    let l = dom0_layout(&p, 16384, 0, 1).unwrap();
    assert_eq!(
        (l.initrd_pfn, l.mod_start(), l.start_info_flags()),
        (None, 0, Sif::PRIVILEGED | Sif::INITDOMAIN)
    );
}

/// 768 MiB: a 1.5 MiB P2M still fits below 4 MiB with five tables.
#[test]
fn larger_memory_768m() {
    let l = dom0_layout(&pv_guest(), 196_608, 0, 1).unwrap();
    assert_eq!(l.phys_mach, r(BASE + 0x1_8000, BASE + 0x19_8000));
    assert_eq!(l.start_info, r(BASE + 0x19_8000, BASE + 0x19_84b8));
    assert_eq!(l.page_tables, r(BASE + 0x19_9000, BASE + 0x19_e000));
    assert_eq!(l.boot_stack, r(BASE + 0x19_e000, BASE + 0x19_f000));
    assert_eq!(l.total(), r(BASE, BASE + 0x40_0000));
    assert_eq!(l.nr_pt_frames, 5);
}

/// 4 GiB: an 8 MiB P2M; the mapping grows to 12 MiB and needs six L1s.
#[test]
fn larger_memory_4g_needs_more_page_tables() {
    let l = dom0_layout(&pv_guest(), 1 << 20, 0, 1).unwrap();
    assert_eq!(l.phys_mach, r(BASE + 0x1_8000, BASE + 0x81_8000));
    assert_eq!(l.start_info, r(BASE + 0x81_8000, BASE + 0x81_84b8));
    assert_eq!(l.page_tables, r(BASE + 0x81_9000, BASE + 0x82_2000));
    assert_eq!(l.boot_stack, r(BASE + 0x82_2000, BASE + 0x82_3000));
    assert_eq!(l.total(), r(BASE, BASE + 0xc0_0000));
    assert_eq!(l.nr_pt_frames, 9);
    assert_eq!(
        l.pt_frames(),
        PtFrames {
            l4: 1,
            l3: 1,
            l2: 1,
            l1: 6
        }
    );
    assert_eq!(l.alloc_order, 12);
}

/// The boot stack ends less than 512 KiB below a 4 MiB boundary: another 4 MiB is
/// added, which needs two more L1s, which moves the stack by two pages.
#[test]
fn padding_rule_adds_4m_and_more_tables() {
    let nr_pages = 0x38_1000 / 8; // P2M ends at BASE + 0x399000
    let l = dom0_layout(&pv_guest(), nr_pages, 0, 1).unwrap();
    assert_eq!(l.phys_mach, r(BASE + 0x1_8000, BASE + 0x39_9000));
    assert_eq!(l.page_tables, r(BASE + 0x39_a000, BASE + 0x3a_1000));
    assert_eq!(l.boot_stack, r(BASE + 0x3a_1000, BASE + 0x3a_2000));
    assert_eq!(l.total(), r(BASE, BASE + 0x80_0000));
    assert_eq!(l.nr_pt_frames, 7);
    assert_eq!(l.alloc_order, 11);
}

/// Derived by hand from dom0_build.c for a Debian-like Linux kernel: VIRT_BASE
/// ffffffff80000000, PADDR_OFFSET 0, p_paddr 16 MiB (image ffffffff81000000->
/// ffffffff8302c000), INIT_P2M 512 GiB, MOD_START_PFN, 768 MiB, 20 MiB initrd:
/// ```text
///  Loaded kernel: ffffffff81000000->ffffffff8302c000
///  Phys-Mach map: 0000008000000000->0000008000180000
///  Start info:    ffffffff8302c000->ffffffff8302c4b8
///  Page tables:   ffffffff8302d000->ffffffff8304a000
///  Boot stack:    ffffffff8304a000->ffffffff8304b000
///  TOTAL:         ffffffff80000000->ffffffff83400000
/// ```
/// (v_end = 52 MiB past v_start: 26 L1s + L2 + L3 + L4 = 29 tables; the initrd is
/// unmapped at PFN 2^14, the P2M frames follow at PFN 16384 + 5120.)
#[test]
fn derived_vector_linux_init_p2m() {
    let p = DomainParams {
        virt_base: BASE,
        elf_paddr_offset: 0,
        virt_offset: BASE,
        virt_kstart: BASE + 0x100_0000,
        virt_kend: 0xffff_ffff_8302_c000,
        virt_entry: 0xffff_ffff_82a3_c1d0,
        p2m_base: Some(0x80_0000_0000),
        unmapped_initrd: true,
        ..DomainParams::default()
    };
    let l = dom0_layout(&p, 196_608, 20 << 20, 2).unwrap();
    assert_eq!(l.kernel, r(0xffff_ffff_8100_0000, 0xffff_ffff_8302_c000));
    assert_eq!(l.initrd, None);
    assert!(!l.p2m_in_initial_mapping);
    assert_eq!(l.phys_mach, r(0x80_0000_0000, 0x80_0018_0000));
    assert_eq!(
        l.start_info,
        r(0xffff_ffff_8302_c000, 0xffff_ffff_8302_c4b8)
    );
    assert_eq!(
        l.page_tables,
        r(0xffff_ffff_8302_d000, 0xffff_ffff_8304_a000)
    );
    assert_eq!(
        l.boot_stack,
        r(0xffff_ffff_8304_a000, 0xffff_ffff_8304_b000)
    );
    assert_eq!(l.total(), r(BASE, 0xffff_ffff_8340_0000));
    assert_eq!(l.nr_pt_frames, 29);
    assert_eq!(
        l.pt_frames(),
        PtFrames {
            l4: 1,
            l3: 1,
            l2: 1,
            l1: 26
        }
    );
    assert_eq!(l.alloc_order, 14);
    assert_eq!(l.initrd_pfn, Some(16384));
    assert_eq!(l.mod_start(), 16384);
    assert!(l.start_info_flags().contains(Sif::MOD_START_PFN));
    assert_eq!(l.first_p2m_pfn(), Some(16384 + 5120));
    // 384 list pages + a new L3 (L4 slot 1), L2 and L1.
    assert_eq!(l.p2m_frames_4k(), 387);
}

/// Linux without INIT_P2M and with a mapped initrd (older kernels).
#[test]
fn derived_vector_linux_legacy() {
    let p = DomainParams {
        virt_base: BASE,
        virt_offset: BASE,
        virt_kstart: BASE + 0x100_0000,
        virt_kend: 0xffff_ffff_8302_c000,
        virt_entry: BASE + 0x100_0000,
        ..DomainParams::default()
    };
    let l = dom0_layout(&p, 196_608, 20 << 20, 1).unwrap();
    assert_eq!(
        l.initrd,
        Some(r(0xffff_ffff_8302_c000, 0xffff_ffff_8442_c000))
    );
    assert_eq!(l.phys_mach, r(0xffff_ffff_8442_c000, 0xffff_ffff_845a_c000));
    assert_eq!(
        l.start_info,
        r(0xffff_ffff_845a_c000, 0xffff_ffff_845a_c4b8)
    );
    // v_end = ffffffff84800000 (72 MiB): 36 L1s + 3 = 39 tables.
    assert_eq!(
        l.page_tables,
        r(0xffff_ffff_845a_d000, 0xffff_ffff_845d_4000)
    );
    assert_eq!(
        l.boot_stack,
        r(0xffff_ffff_845d_4000, 0xffff_ffff_845d_5000)
    );
    assert_eq!(l.total(), r(BASE, 0xffff_ffff_8480_0000));
    assert_eq!(l.nr_pt_frames, 39);
    // count = 72 MiB - 20 MiB = 52 MiB -> order 14.
    assert_eq!(l.alloc_order, 14);
    assert_eq!(l.initrd_pfn, Some(0x302c));
}

/// XTF-style: VIRT_BASE 0, image at 1 MiB.
#[test]
fn low_virt_base() {
    let p = DomainParams {
        virt_kstart: 0x10_0000,
        virt_kend: 0x11_0000,
        virt_entry: 0x10_0000,
        virt_hypercall: Some(0x10_1000),
        ..DomainParams::default()
    };
    let l = dom0_layout(&p, 16384, 0, 1).unwrap();
    assert_eq!(l.phys_mach, r(0x11_0000, 0x13_0000));
    assert_eq!(l.page_tables, r(0x13_1000, 0x13_6000));
    assert_eq!(l.total(), r(0, 0x40_0000));
    assert_eq!(l.pfn_of(0x10_0000), Some(0x100));
}

/// A mapping crossing a 1 GiB boundary needs a second L2, taken right after the L1
/// for the first block past the boundary.
#[test]
fn crossing_1g_needs_second_l2() {
    let p = DomainParams {
        virt_base: 0x3fe0_0000,
        virt_kstart: 0x3fe0_0000,
        virt_kend: 0x3fe1_0000,
        virt_entry: 0x3fe0_0000,
        ..DomainParams::default()
    };
    // P2M 0x3fe10000->0x3ff90000; the stack ends 0x67000 short of 1 GiB, so v_end
    // gets the extra 4 MiB: [0x3fe00000, 0x40400000) = 3 L1s over 2 GiB slots.
    let l = dom0_layout(&p, 196_608, 0, 1).unwrap();
    assert_eq!(l.page_tables, r(0x3ff9_1000, 0x3ff9_8000));
    assert_eq!(l.total(), r(0x3fe0_0000, 0x4040_0000));
    assert_eq!(
        l.pt_frames(),
        PtFrames {
            l4: 1,
            l3: 1,
            l2: 2,
            l1: 3
        }
    );
    let levels: Vec<_> = l.pt_frame_levels().collect();
    use PtLevel::*;
    assert_eq!(levels, [L4, L1, L2, L3, L1, L2, L1]);
}

// ---------------------------------------------------------------------------------
// Failures.

#[test]
fn too_small_for_kernel_image() {
    assert_eq!(
        dom0_layout(&pv_guest(), 1000, 0, 1),
        Err(LayoutError::TooSmall {
            needed: 1024,
            nr_pages: 1000
        })
    );
    assert!(dom0_layout(&pv_guest(), 1024, 0, 1).is_ok());
    // A mapped 1-byte initrd: order stays 10 (count = 4 MiB - 4 KiB) plus one page.
    assert_eq!(
        dom0_layout(&pv_guest(), 1024, 1, 1),
        Err(LayoutError::TooSmall {
            needed: 1025,
            nr_pages: 1024
        })
    );
}

#[test]
fn input_checks() {
    assert_eq!(dom0_layout(&pv_guest(), 0, 0, 1), Err(LayoutError::NoPages));
    assert_eq!(
        dom0_layout(&pv_guest(), 16384, 0, 0),
        Err(LayoutError::NoVcpus)
    );
    let bad = DomainParams {
        virt_kend: BASE - 1,
        ..pv_guest()
    };
    assert_eq!(dom0_layout(&bad, 16384, 0, 1), Err(LayoutError::BadParams));
    let top = DomainParams {
        virt_base: 0xffff_ffff_ffe0_0000,
        virt_kstart: 0xffff_ffff_ffe0_0000,
        virt_kend: 0xffff_ffff_fff0_0000,
        virt_entry: 0xffff_ffff_ffe0_0000,
        ..DomainParams::default()
    };
    assert_eq!(
        dom0_layout(&top, 16384, 0, 1),
        Err(LayoutError::AddressOverflow)
    );
    assert_eq!(
        dom0_layout(&pv_guest(), u64::MAX, 0, 1),
        Err(LayoutError::AddressOverflow)
    );
}

#[test]
fn overlapping_xen_is_refused() {
    let a = 0xffff_8400_0000_0000;
    let p = DomainParams {
        virt_base: a,
        virt_kstart: a,
        virt_kend: a + 0x1000,
        virt_entry: a,
        ..DomainParams::default()
    };
    assert_eq!(dom0_layout(&p, 16384, 0, 1), Err(LayoutError::OverlapsXen));
    // Right after Xen's range is fine.
    let a = HYPERVISOR_VIRT_END;
    let p = DomainParams {
        virt_base: a,
        virt_kstart: a,
        virt_kend: a + 0x1000,
        virt_entry: a,
        ..DomainParams::default()
    };
    assert!(dom0_layout(&p, 16384, 0, 1).is_ok());
}

#[test]
fn hypercall_page_outside_mapping() {
    let p = DomainParams {
        virt_hypercall: Some(BASE + 0x40_0000),
        ..pv_guest()
    };
    assert_eq!(
        dom0_layout(&p, 16384, 0, 1),
        Err(LayoutError::HypercallPageOutside(BASE + 0x40_0000))
    );
    // Xen only wants it in [v_start, v_end), not in the image.
    let p = DomainParams {
        virt_hypercall: Some(BASE + 0x3f_f000),
        ..pv_guest()
    };
    assert!(dom0_layout(&p, 16384, 0, 1).is_ok());
}

#[test]
fn init_p2m_checks() {
    let with = |base| DomainParams {
        p2m_base: Some(base),
        ..pv_guest()
    };
    // Xen's test is inclusive at both ends.
    assert_eq!(
        dom0_layout(&with(BASE + 0x40_0000), 196_608, 0, 1),
        Err(LayoutError::P2mOverlapsInitialMapping)
    );
    assert_eq!(
        dom0_layout(&with(BASE - 0x18_0000), 196_608, 0, 1),
        Err(LayoutError::P2mOverlapsInitialMapping)
    );
    assert!(dom0_layout(&with(BASE - 0x18_1000), 196_608, 0, 1).is_ok());
    assert!(dom0_layout(&with(BASE + 0x40_1000), 196_608, 0, 1).is_ok());
    // Non-canonical, Xen's slots, wrapping.
    for base in [
        0x7fff_ffff_f000,
        HYPERVISOR_VIRT_START,
        0xffff_87ff_ffff_f000,
        u64::MAX - 0xfff,
    ] {
        assert_eq!(
            dom0_layout(&with(base), 196_608, 0, 1),
            Err(LayoutError::P2mBadAddress(base))
        );
    }
    // Allocation: 1024 pages + 3 list pages + 3 > 1026.
    assert_eq!(
        dom0_layout(&with(0x80_0000_0000), 1026, 0, 1),
        Err(LayoutError::P2mTooSmall)
    );
    assert!(dom0_layout(&with(0x80_0000_0000), 1100, 0, 1).is_ok());
}

#[test]
fn p2m_next_to_the_mapping_shares_tables() {
    // P2M right after v_end in the same 1 GiB and 512 GiB slots: only L1s are new.
    let p = DomainParams {
        p2m_base: Some(BASE + 0x40_1000),
        ..pv_guest()
    };
    let l = dom0_layout(&p, 196_608, 0, 1).unwrap();
    assert_eq!(l.phys_mach, r(BASE + 0x40_1000, BASE + 0x58_1000));
    // 384 pages; 2 MiB blocks touched: [0x400000, 0x600000) only, not shared.
    assert_eq!(l.p2m_frames_4k(), 384 + 1);
    // With INIT_P2M the list is not in the initial mapping: it shrinks.
    assert_eq!(l.start_info.start, BASE + 0x1_8000);
}

#[test]
fn errors_display() {
    for e in [
        LayoutError::NoPages,
        LayoutError::TooSmall {
            needed: 2,
            nr_pages: 1,
        },
        LayoutError::P2mTooSmall,
        LayoutError::HypercallPageOutside(5),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

// ---------------------------------------------------------------------------------
// Against a literal transcription of Xen's loop.

/// `dom0_construct_pv`'s loop, step by step, in C's wrapping arithmetic.
fn xen_loop(v_start: u64, vpt_start: u64) -> (u64, u64) {
    let mut nr_pt_pages = 2u64;
    loop {
        let vpt_end = vpt_start.wrapping_add(nr_pt_pages * 4096);
        let vstack_end = vpt_end.wrapping_add(4096);
        let mut v_end = vstack_end.wrapping_add((1 << 22) - 1) & !((1u64 << 22) - 1);
        if v_end.wrapping_sub(vstack_end) < (512 << 10) {
            v_end = v_end.wrapping_add(1 << 22);
        }
        let nr_ = |l: u64, h: u64, s: u32| {
            ((h.wrapping_add((1 << s) - 1) & !((1u64 << s) - 1))
                .wrapping_sub(l & !((1u64 << s) - 1)))
                >> s
        };
        if 1 + nr_(v_start, v_end, 39) + nr_(v_start, v_end, 30) + nr_(v_start, v_end, 21)
            <= nr_pt_pages
        {
            return (nr_pt_pages, v_end);
        }
        nr_pt_pages += 1;
    }
}

proptest! {
    #[test]
    fn matches_xen_loop(
        base_sel in 0usize..4,
        kstart_off in 0u64..0x100_0000,
        klen in 1u64..0x400_0000,
        nr_pages in 1024u64..(1 << 22),
        initrd_len in 0u64..0x200_0000,
        unmapped in any::<bool>(),
    ) {
        let v_start = [BASE, 0, 0x3fe0_0000, 0xffff_ff7f_ffc0_0000][base_sel];
        let p = DomainParams {
            virt_base: v_start,
            virt_kstart: v_start + kstart_off,
            virt_kend: v_start + kstart_off + klen,
            virt_entry: v_start + kstart_off,
            unmapped_initrd: unmapped,
            ..DomainParams::default()
        };
        match dom0_layout(&p, nr_pages, initrd_len, 1) {
            Ok(l) => {
                let (n, v_end) = xen_loop(v_start, l.page_tables.start);
                prop_assert_eq!(l.nr_pt_frames, n);
                prop_assert_eq!(l.v_end, v_end);
                prop_assert_eq!(l.pt_frames().total(), n);
                prop_assert_eq!(l.pt_frame_levels().count() as u64, n);
                // Order and alignment of the regions.
                let pg = |a: u64| a.is_multiple_of(4096);
                prop_assert!(pg(l.phys_mach.start) && pg(l.start_info.start) && pg(l.page_tables.start));
                prop_assert!(l.kernel.end <= l.phys_mach.start);
                prop_assert!(l.phys_mach.end <= l.start_info.start);
                prop_assert!(l.start_info.end <= l.page_tables.start);
                prop_assert_eq!(l.page_tables.end, l.boot_stack.start);
                prop_assert!(l.v_end - l.boot_stack.end >= 512 << 10);
                prop_assert_eq!(l.v_end % (4 << 20), 0);
                prop_assert!((1u64 << l.alloc_order) + initrd_len.div_ceil(4096) <= nr_pages);
            }
            Err(e) => prop_assert!(matches!(e, LayoutError::TooSmall { .. }), "{:?}", e),
        }
    }

    #[test]
    fn arbitrary_params_never_panic(
        virt_base in any::<u64>(),
        kstart in any::<u64>(),
        kend in any::<u64>(),
        p2m in proptest::option::of(any::<u64>()),
        hc in proptest::option::of(any::<u64>()),
        nr_pages in any::<u64>(),
        initrd_len in any::<u64>(),
        unmapped in any::<bool>(),
    ) {
        let p = DomainParams {
            virt_base,
            virt_kstart: kstart,
            virt_kend: kend,
            virt_entry: kstart,
            virt_hypercall: hc,
            p2m_base: p2m,
            unmapped_initrd: unmapped,
            ..DomainParams::default()
        };
        // Huge spans would make the (correct) loop long; bound them like any real
        // builder input, but keep the addresses arbitrary.
        let p = DomainParams { virt_kend: p.virt_kend.min(p.virt_kstart.saturating_add(1 << 32)), ..p };
        if let Ok(l) = dom0_layout(&p, nr_pages, initrd_len, 1) {
            let _ = (l.to_string(), l.p2m_frames_4k(), l.first_p2m_pfn(), l.mod_start());
            // The frame-level walk is linear in the table count; walk the small ones.
            if l.nr_pt_frames < 1 << 16 {
                prop_assert_eq!(l.pt_frame_levels().count() as u64, l.nr_pt_frames);
            }
        }
    }
}
