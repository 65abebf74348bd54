//! `tests=hostile`: forbidden operations, each its own `TEST` line. The expectation of
//! each is exactly what real Xen 4.17 answers (learned by running this suite on it);
//! every test must leave the guest alive, which the next test and the closing
//! `alive_after_hostile` check.
//!
//! Values are hypercall results (negative errno), or for grant-table operations, whose
//! call returns 0 with a per-operation status, the `GNTST_*` status.

// Test failures carry their message in a fixed buffer (no allocator): a large `Err`
// is the point.
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::hypercall::{call, raw_no_args};
use crate::arch::x86_64::mem::{m2p, scratch_addr, scratch_fill, scratch_get, scratch_put};
use crate::evtchn::{self, Sleep, HITS};
use crate::arch::x86_64::mem::WindowPage;
use crate::mm::{pte, table_index, PAGE_SIZE, VMAP_START};
use core::sync::atomic::{AtomicU64, Ordering};
use crate::selftest::{fail, Env, TestResult};
use crate::{hv, paging, shared};
use xen_abi::arch_x86_64::{TrapInfo, FLAT_KERNEL_CS, HYPERVISOR_VIRT_START};
use xen_abi::callback::{CallbackRegister, CALLBACKOP_register, CALLBACKTYPE_syscall};
use xen_abi::event_channel::EVTCHNOP_bind_virq;
use xen_abi::grant_table::*;
use xen_abi::hypercall::*;
use xen_abi::memory::{XenMachphysMfnList, XenMemoryReservation, XENMEM_decrease_reservation, XENMEM_machphys_mfn_list};
use xen_abi::xen::*;
use zerocopy::IntoBytes;

// errno values as Xen returns them.
const EPERM: i64 = -1;
const ESRCH: i64 = -3;
const ENOENT: i64 = -2;
const ENXIO: i64 = -6;
const EFAULT: i64 = -14;
const EBUSY: i64 = -16;
const EEXIST: i64 = -17;
const EINVAL: i64 = -22;
const ENOMEM: i64 = -12;
const ENOSYS: i64 = -38;

/// A non-canonical address.
const NONCANONICAL: u64 = 0xdead_beef_0000_0000;
/// Inside Xen's own range (its direct map, L4 slot 262).
const XEN_VA: u64 = 0xffff_8300_0000_0000;
/// Canonical, guest-owned half, never mapped.
const UNMAPPED: u64 = 0x10_0000;
/// A domain that does not exist.
const NO_DOMAIN: u16 = 77;

/// What the tests work on, set up once.
struct Ctx {
    /// A window page whose L1 exists, mapped to nothing.
    va: u64,
    /// Machine address of its L1 entry.
    l1e: u64,
    l4_mfn: u64,
    /// The window's L3 and L2 tables.
    l3_mfn: u64,
    l2_mfn: u64,
    /// A data frame of ours, mapped writable in the window (filled with 0x41).
    data_mfn: u64,
    /// Grant-table frame 0, mapped.
    grants: WindowPage,
    /// Our domain id (the suite runs as the initial domain: 0).
    self_id: u16,
    /// A frame of Xen's (the first M2P extent, via XENMEM_machphys_mfn_list).
    xen_mfn: u64,
    /// BIG_PAGES pages of ours, virtually contiguous, for long request lists.
    big: u64,
    big_mfns: [u64; BIG_PAGES],
}

const BIG_PAGES: usize = 32;

type Hostile = (&'static str, fn(&Ctx) -> i64, i64);

const HOSTILE: &[Hostile] = &[
    // --- page tables
    // A page table cannot also be mapped writable: its type is not PGT_writable_page.
    ("pt_writable_l4_update_va_mapping", |c| uvm(c.va, pte::make(c.l4_mfn, pte::KERNEL_RW)), EBUSY),
    ("pt_writable_l1_mmu_update", |c| mmu1(c.l1e, pte::make(c.l1e >> 12, pte::KERNEL_RW)), EBUSY),
    ("pt_writable_l3_mmu_update", |c| mmu1(c.l1e, pte::make(c.l3_mfn, pte::KERNEL_RW)), EBUSY),
    // L4 slots 256-271 are Xen's.
    ("l4_xen_slot_256", |c| mmu1((c.l4_mfn << 12) + 256 * 8, pte::make(c.l3_mfn, pte::TABLE)), EINVAL),
    ("l4_xen_slot_271", |c| mmu1((c.l4_mfn << 12) + 271 * 8, pte::make(c.l3_mfn, pte::TABLE)), EINVAL),
    // No superpages for PV: PSE in an L2 entry.
    ("l2_superpage", |c| mmu1((c.l2_mfn << 12) + 511 * 8, pte::make(c.data_mfn & !511, pte::KERNEL_RW | pte::PSE)), EINVAL),
    // --- frames that are not ours
    // An M2P frame: Xen's, shared read-only with privileged guests, never writable.
    ("map_xen_frame_writable", |c| uvm(c.va, pte::make(c.xen_mfn, pte::KERNEL_RW)), EBUSY),
    // Machine address 2^51: no RAM, and no I/O memory the domain may map.
    ("map_frame_beyond_ram", |c| uvm(c.va, pte::make(1 << 39, pte::KERNEL_RO)), EPERM),
    ("map_nonexistent_domain_frame", |c| hv::mmu_update(&[req(c.l1e, pte::make(c.data_mfn, pte::KERNEL_RO))], NO_DOMAIN).0, ESRCH),
    ("m2p_update_xen_frame", |c| mmu1((c.xen_mfn << 12) | MMU_MACHPHYS_UPDATE, 0), EINVAL),
    // --- addresses in the hypervisor's range or non-canonical
    ("update_va_mapping_xen_va", |_| uvm(HYPERVISOR_VIRT_START + 0x1000, 0), EINVAL),
    ("update_va_mapping_noncanonical", |_| uvm(NONCANONICAL, 0), EINVAL),
    ("mmu_update_unaligned_ptr", |c| mmu1(c.l1e + 4, 0), ENOSYS),
    // A page-table entry in frame 2^52 - 1 (every address bit set): no such frame. Found
    // by the fuzzer with two vCPUs: xen-core's frame bound wrapped and it faulted.
    ("mmu_update_ptr_all_ones", |_| mmu1(!7, 0), EINVAL),
    ("mmu_update_ptr_all_ones_preserve_ad", |_| mmu1(!7 | MMU_PT_UPDATE_PRESERVE_AD, 0), EINVAL),
    // --- pinning
    ("pin_data_frame_as_l4", |c| hv::mmuext1(MMUEXT_PIN_L4_TABLE, c.data_mfn, 0), EINVAL),
    ("unpin_not_pinned", |c| hv::mmuext1(MMUEXT_UNPIN_TABLE, c.data_mfn, 0), EINVAL),
    ("new_baseptr_data_frame", |c| hv::mmuext1(MMUEXT_NEW_BASEPTR, c.data_mfn, 0), EINVAL),
    // --- bad pointers and counts
    ("trap_table_noncanonical_ptr", |_| call(HYPERVISOR_set_trap_table, [NONCANONICAL, 0, 0, 0, 0]), EFAULT),
    ("trap_table_xen_ptr", |_| call(HYPERVISOR_set_trap_table, [XEN_VA, 0, 0, 0, 0]), EFAULT),
    ("trap_table_noncanonical_handler", |_| trap_table_bad_handler(), EINVAL),
    ("multicall_huge_count", |_| call(HYPERVISOR_multicall, [UNMAPPED, u64::from(u32::MAX), 0, 0, 0]), EFAULT),
    ("multicall_noncanonical", |_| call(HYPERVISOR_multicall, [NONCANONICAL, 1, 0, 0, 0]), EFAULT),
    ("mmu_update_huge_count", |_| call(HYPERVISOR_mmu_update, [UNMAPPED, 0x7fff_ffff, 0, u64::from(DOMID_SELF.0), 0]), EFAULT),
    ("mmuext_op_huge_count", |_| call(HYPERVISOR_mmuext_op, [UNMAPPED, 0x7fff_ffff, 0, u64::from(DOMID_SELF.0), 0]), EFAULT),
    ("console_io_huge_length", |_| call(HYPERVISOR_console_io, [CONSOLEIO_write.into(), u64::from(u32::MAX), UNMAPPED, 0, 0]), EFAULT),
    ("console_io_noncanonical_buf", |_| call(HYPERVISOR_console_io, [CONSOLEIO_write.into(), 16, NONCANONICAL, 0, 0]), EFAULT),
    ("xen_version_xen_va", |_| call(HYPERVISOR_xen_version, [xen_abi::version::XENVER_extraversion.into(), XEN_VA, 0, 0, 0]), EFAULT),
    ("physdev_op_noncanonical", |_| call(HYPERVISOR_physdev_op, [6, NONCANONICAL, 0, 0, 0]), EFAULT),
    // memory_op reservation calls return the number of extents done: none.
    ("decrease_reservation_noncanonical", |_| decrease_reservation_bad(), 0),
    ("set_segment_base_noncanonical", |_| call(HYPERVISOR_set_segment_base, [xen_abi::arch_x86_64::SEGBASE_FS.into(), NONCANONICAL, 0, 0, 0]), EINVAL),
    ("callback_noncanonical", |_| callback_syscall(NONCANONICAL), EINVAL),
    ("set_gdt_too_many_entries", |_| set_gdt_huge(), EINVAL),
    ("update_descriptor_beyond_ram", |_| call(HYPERVISOR_update_descriptor, [1 << 50, 0, 0, 0, 0]), EINVAL),
    // --- unknown hypercalls and sub-ops
    ("unknown_hypercall_100", |_| raw_no_args(100), ENOSYS),
    ("unknown_hypercall_max", |_| raw_no_args(u64::MAX), ENOSYS), // through syscall
    ("unknown_event_channel_op", |_| call(HYPERVISOR_event_channel_op, [99, UNMAPPED, 0, 0, 0]), ENOSYS),
    ("unknown_memory_op", |_| call(HYPERVISOR_memory_op, [63, UNMAPPED, 0, 0, 0]), ENOSYS),
    ("unknown_vcpu_op", |_| call(HYPERVISOR_vcpu_op, [99, 0, UNMAPPED, 0, 0]), ENOSYS),
    ("unknown_sched_op", |_| call(HYPERVISOR_sched_op, [99, UNMAPPED, 0, 0, 0]), ENOSYS),
    ("unknown_grant_table_op", |_| call(HYPERVISOR_grant_table_op, [99, UNMAPPED, 1, 0, 0]), ENOSYS),
    ("unknown_xen_version", |_| call(HYPERVISOR_xen_version, [99, UNMAPPED, 0, 0, 0]), ENOSYS),
    ("unknown_physdev_op", |_| call(HYPERVISOR_physdev_op, [99, UNMAPPED, 0, 0, 0]), ENOSYS),
    ("unknown_console_io", |_| call(HYPERVISOR_console_io, [99, 0, UNMAPPED, 0, 0]), ENOSYS),
    ("unknown_mmuext_cmd", |_| hv::mmuext1(99, 0, 0), ENOSYS),
    ("unknown_callback_type", |_| callback(99, 0x1000), ENOSYS),
    // --- event channels
    ("evtchn_send_port_4096", |_| hv::send(4096), EINVAL),
    ("evtchn_send_port_max", |_| hv::send(u32::MAX), EINVAL),
    ("evtchn_send_unbound_port", |_| hv::send(4000), EINVAL),
    ("evtchn_close_out_of_range", |_| hv::close(5000), EINVAL),
    ("evtchn_unmask_out_of_range", |_| hv::unmask(4096), EINVAL),
    ("evtchn_bind_virq_twice", |_| bind_virq_twice(), EEXIST),
    ("evtchn_bind_virq_invalid", |_| bind_virq(NR_VIRQS, 0), EINVAL),
    ("evtchn_bind_virq_bad_vcpu", |_| bind_virq(VIRQ_TIMER, 7), ENOENT),
    ("evtchn_alloc_unbound_no_domain", |_| hv::alloc_unbound(NO_DOMAIN, DOMID_SELF.0).err().unwrap_or(0), ESRCH),
    // --- grant tables
    ("grant_setup_table_huge", |_| setup_table(1 << 20, 1), GNTST_general_error as i64),
    ("grant_setup_table_count_2", |_| setup_table(1, 2), EINVAL),
    ("grant_query_size_no_domain", |_| query_size(NO_DOMAIN), GNTST_bad_domain as i64),
    ("grant_copy_bad_ref", |c| grant_copy_bad_ref(c), GNTST_bad_gntref as i64),
    // map_grant_ref takes a real domain id: DOMID_SELF is refused before the ref is looked at.
    ("grant_map_domid_self", |c| grant_map_self(c), GNTST_bad_domain as i64),
    // --- vCPUs and domains
    ("vcpu_op_bad_vcpu", |_| call(HYPERVISOR_vcpu_op, [xen_abi::vcpu::VCPUOP_is_up.into(), 99, 0, 0, 0]), ENOENT),
    ("remote_shutdown_no_domain", |_| remote_shutdown(NO_DOMAIN), ESRCH),
    // Found by the control-domain fuzzer (xen-core allocated 512 MiB and panicked).
    ("vcpu_affinity_bitmap_of_2_32_minus_1_bits", |c| affinity_bitmap_bytes_wrap(c), 0),
    ("node_affinity_bitmap_as_xen_reads_it", |c| node_affinity_bitmap(c), 0),
    ("sysctl_scheduler_op_credit_pool_params", |_| sched_pool_params(), 0),
    // --- a domain of our own, built as a toolstack builds one (findings 5 and 6)
    ("domu_create", |_| domu_create(), 0),
    ("domu_populate_physmap", |_| domu_populate(), DOMU_PAGES as i64),
    // Ownership is the frame's owner, never the M2P (which a guest can rewrite for its
    // own frames only).
    ("m2p_update_other_domains_frame", |_| domu_m2p_claim(), EINVAL),
    ("map_other_domains_frame_as_own", |c| domu_map_as_own(c), EBUSY),
    ("grant_copy_other_domains_frame_as_own", |c| domu_copy_as_own(c), GNTST_bad_page as i64),
    ("decrease_reservation_other_domains_frame_as_own", |_| domu_give_back_as_own(), 0),
    ("m2p_rewrite_own_frame_stays_own", |c| m2p_rewrite_own_frame(c), 0),
    // A frame given back while still mapped: freed when the mapping goes.
    ("decrease_reservation_foreign_mapped_page", |_| domu_give_back_mapped(), 1),
    // Remote shutdown keeps the domain, shut down, for its toolstack; destroying it
    // returns every page (the free count is exact).
    ("remote_shutdown_domu", |_| domu_remote_shutdown(), 0),
    ("remote_shutdown_domu_kept_shut_down", |_| domu_shut_down_and_kept(), 0),
    ("destroydomain_domu", |_| domu_destroy(), 0),
    ("destroyed_domu_every_frame_back", |_| domu_every_frame_back(), 0),
    ("sched_op_shutdown_bad_reason_ptr", |_| call(HYPERVISOR_sched_op, [xen_abi::sched::SCHEDOP_shutdown.into(), NONCANONICAL, 0, 0, 0]), EFAULT),
    // --- grant copy into frames the hypervisor must not write (gnttab_copy_claim_buf:
    // the destination takes the writable type, which a page table refuses)
    ("grant_copy_into_own_l1_by_mfn", |c| copy_into_l1(c, mfn_ptr(c.l1e >> 12, (c.l1e & 0xfff) as u16), 0), GNTST_general_error as i64),
    ("grant_copy_into_own_l4_by_mfn", |c| copy_into_l4(c, mfn_ptr(c.l4_mfn, l4_off(c)), 0), GNTST_general_error as i64),
    ("grant_copy_into_own_l1_self_grant", |c| copy_into_l1_self_grant(c), GNTST_general_error as i64),
    ("grant_copy_into_own_l4_self_grant", |c| copy_into_l4_self_grant(c), GNTST_general_error as i64),
    // Reading our own page table is allowed (the source takes only a general reference).
    ("grant_copy_from_own_l1_self_grant", |c| copy_from_l1_self_grant(c), GNTST_okay as i64),
    ("grant_copy_from_xen_frame", |c| copy8(mfn_ptr(c.xen_mfn, 0), mfn_ptr(c.data_mfn, 0), 0, 8), GNTST_bad_page as i64),
    ("grant_copy_into_xen_frame", |c| copy8(mfn_ptr(c.data_mfn, 0), mfn_ptr(c.xen_mfn, 0), 0, 8), GNTST_bad_page as i64),
    ("grant_copy_beyond_ram", |c| copy8(mfn_ptr(c.data_mfn, 0), mfn_ptr(1 << 39, 0), 0, 8), GNTST_bad_page as i64),
    // Only DOMID_SELF may name a frame, not even our own numeric id.
    ("grant_copy_mfn_own_domid", |c| copy8(mfn_ptr(c.data_mfn, 0), GnttabCopyPtr { domid: c.self_id, ..mfn_ptr(c.data_mfn, 8) }, 0, 8), GNTST_permission_denied as i64),
    // Bounds are checked after both frames are claimed.
    ("grant_copy_beyond_page", |c| copy8(mfn_ptr(c.data_mfn, 4090), mfn_ptr(c.data_mfn, 0), 0, 8), GNTST_bad_copy_arg as i64),
    ("grant_copy_bad_ref_domain", |c| copy8(GnttabCopyPtr { domid: NO_DOMAIN, ..mfn_ptr(9, 0) }, mfn_ptr(c.data_mfn, 0), GNTCOPY_source_gref, 8), GNTST_bad_domain as i64),
    // do_grant_table_op's argument checks: count is an unsigned int, negative as an int
    // -EINVAL (its upper 32 bits ignored: nothing to do); a continuation argument in cmd
    // -EINVAL; single-structure sub-ops take exactly one.
    ("grant_op_count_negative", |_| call(HYPERVISOR_grant_table_op, [GNTTABOP_copy.into(), UNMAPPED, 0x8000_0000, 0, 0]), EINVAL),
    ("grant_op_count_upper_bits_ignored", |_| call(HYPERVISOR_grant_table_op, [GNTTABOP_copy.into(), UNMAPPED, 1 << 32, 0, 0]), 0),
    ("grant_op_cmd_continuation_bits", |_| call(HYPERVISOR_grant_table_op, [u64::from(GNTTABOP_copy) | 0x1000, UNMAPPED, 1, 0, 0]), EINVAL),
    ("grant_setup_table_count_0", |_| setup_table(1, 0), EINVAL),
    ("grant_unknown_op_count_0", |_| call(HYPERVISOR_grant_table_op, [99, UNMAPPED, 0, 0, 0]), ENOSYS),
    // One grant entry mapped read-only 128 times: the 129th is refused (Xen's 8-bit pin
    // counter, GNTPIN_incr2oflow_mask); all unmap, the entry is free again.
    ("grant_map_pin_limit", |c| grant_map_pin_limit(c), GNTST_general_error as i64),
    // Giving back a page we still map: done (Xen's guest_remove_page drops only the
    // allocation reference), and the mapping still reads what we wrote.
    ("decrease_reservation_mapped_page", |_| give_back_mapped_page(), 1),
    // --- long batches: Xen does them in bounded pieces (hypercall continuations); the
    // guest sees one call with every request done and the done count of all pieces
    // (finding 3). Request BATCH_STOP of the mmu_update and mmuext_op batches fails.
    ("mmu_update_long_batch", |c| mmu_update_long(c), BATCH_STOP as i64),
    ("mmuext_op_long_batch", |c| mmuext_op_long(c), BATCH_STOP as i64),
    ("multicall_long_batch", |c| multicall_long(c), 0),
    ("multicall_nested", |_| multicall_nested(), EINVAL),
    ("grant_copy_long_batch", |c| grant_copy_long(c), 0),
    ("decrease_reservation_long_batch", |_| decrease_reservation_long(), LONG_EXTENTS as i64),
    // --- the grant-frame limit (finding 4): Xen's default of 64 frames. The table grows
    // to it (after the tests above, whose reference 5000 must be past its end); a frame
    // list it can't write is reported in the status.
    ("grant_setup_table_65_frames", |_| setup_table(65, 1), GNTST_general_error as i64),
    ("grant_setup_table_64_frames_bad_list", |_| setup_table(64, 1), GNTST_bad_virt_addr as i64),
    ("grant_setup_table_list_in_xen", |_| setup_table_list(1, XEN_VA), EFAULT),
    // The maptrack limit (finding 4): Xen's default of 1024 maptrack frames of 256
    // handles, one kept back as the tail of each vCPU's free list (both of ours have
    // mapped: vCPU 1 maps in its concurrent work, stopped for this test): 262142
    // mappings, the next GNTST_no_space. They stay (the suite's last grant maps are
    // above).
    ("grant_maptrack_limit", |c| maptrack_limit(c), MAPTRACK_USABLE as i64),
    // --- run-state area and periodic timer (finding 7: accepted, and in effect)
    ("runstate_area_kept_up_to_date", |c| runstate_area(c), 0),
    ("stop_periodic_timer_stops_it", |_| periodic_timer_stops(), 0),
    // --- vcpu_info (map_vcpu_info: a writable type reference on the frame)
    ("vcpu_info_misaligned_offset", |c| register_vcpu_info(c.data_mfn, 4), ENXIO),
    ("vcpu_info_offset_past_page", |c| register_vcpu_info(c.data_mfn, 4096 - 32), ENXIO),
    ("vcpu_info_on_own_l1", |c| register_vcpu_info(c.l1e >> 12, 0), EINVAL),
    ("vcpu_info_on_own_l4", |c| register_vcpu_info(c.l4_mfn, 0), EINVAL),
    ("vcpu_info_on_xen_frame", |c| register_vcpu_info(c.xen_mfn, 0), EINVAL),
    // Last: these move our vcpu_info for good. The frame is held by the hypervisor, so
    // giving it back succeeds but the hypervisor keeps its own reference (events still
    // arrive there, which `alive_after_hostile` checks).
    ("vcpu_info_moved_to_data_frame", |_| move_vcpu_info(), 0),
    ("vcpu_info_registered_twice", |c| register_vcpu_info(c.data_mfn, 0), EINVAL),
    ("vcpu_info_frame_given_back", |_| give_back_vcpu_info_frame(), 1),
];

/// Requests in the long mmu_update and mmuext_op batches, and the one that fails.
const LONG_REQS: u64 = 3000;
const BATCH_STOP: u64 = 2500;
/// Entries in the long multicall; the one that is itself a long mmu_update.
const LONG_CALLS: u64 = 1000;
const NESTED_AT: u64 = 500;
/// Copies in the long grant copy; frames in the long decrease_reservation.
const LONG_COPIES: u64 = 1000;
const LONG_EXTENTS: u64 = 600;

/// Word `i` of the big buffer (`BIG_PAGES` pages, virtually contiguous).
fn big_put(c: &Ctx, off: u64, v: u64) {
    WindowPage::new(c.big + (off & !0xfff)).u64((off & 0xfff) as usize).store(v, Ordering::Relaxed);
}

fn big_get(c: &Ctx, off: u64) -> u64 {
    WindowPage::new(c.big + (off & !0xfff)).u64((off & 0xfff) as usize).load(Ordering::Relaxed)
}

/// Where the long mmu_update's requests go: after the multicall list (16 pages).
const REQS_OFF: u64 = 16 * PAGE_SIZE;
/// The done counts.
const DONE_OFF: u64 = 29 * PAGE_SIZE;

/// LONG_REQS mmu_update requests at REQS_OFF writing the window page's L1 entry:
/// request k maps the data frame read-only (k odd) or nothing (k even); request
/// `stop` (if below LONG_REQS) has a misaligned pointer, which Xen refuses (-ENOSYS).
fn fill_mmu_reqs(c: &Ctx, stop: u64) {
    for k in 0..LONG_REQS {
        let val = if k % 2 == 1 { pte::make(c.data_mfn, pte::KERNEL_RO) } else { 0 };
        big_put(c, REQS_OFF + k * 16, if k == stop { c.l1e + 4 } else { c.l1e });
        big_put(c, REQS_OFF + k * 16 + 8, val);
    }
}

/// The window page's L1 entry maps the data frame read-only (what an odd request
/// left); cleared afterwards.
fn window_maps_data(c: &Ctx) -> bool {
    let e = paging::table_entry(c.l1e >> 12, ((c.l1e & 0xfff) / 8) as usize).unwrap_or(0);
    let ok = pte::present(e) && pte::mfn(e) == c.data_mfn && e & pte::RW == 0;
    uvm(c.va, 0);
    ok
}

/// The long mmu_update stopping at BATCH_STOP: the done count if it failed there with
/// -ENOSYS and left the entry as request BATCH_STOP - 1 put it, else what went wrong
/// (the call's error, or -1000 for a wrong entry).
fn mmu_update_long(c: &Ctx) -> i64 {
    fill_mmu_reqs(c, BATCH_STOP);
    big_put(c, DONE_OFF, u64::MAX);
    let r = call(HYPERVISOR_mmu_update, [c.big + REQS_OFF, LONG_REQS, c.big + DONE_OFF, u64::from(DOMID_SELF.0), 0]);
    let done = big_get(c, DONE_OFF) as u32;
    // The last request done (BATCH_STOP - 1, odd) mapped the data frame.
    if !window_maps_data(c) {
        return -1000;
    }
    if r != ENOSYS {
        return r;
    }
    i64::from(done)
}

/// LONG_REQS mmuext ops: TLB_FLUSH_LOCAL, but op BATCH_STOP pins a data frame as an L4
/// (-EINVAL). The done count if it failed there with -EINVAL, else the call's result.
fn mmuext_op_long(c: &Ctx) -> i64 {
    for k in 0..LONG_REQS {
        let (cmd, arg1) = if k == BATCH_STOP { (MMUEXT_PIN_L4_TABLE, c.data_mfn) } else { (MMUEXT_TLB_FLUSH_LOCAL, 0) };
        big_put(c, k * 24, u64::from(cmd));
        big_put(c, k * 24 + 8, arg1);
        big_put(c, k * 24 + 16, 0);
    }
    big_put(c, DONE_OFF, u64::MAX);
    let r = call(HYPERVISOR_mmuext_op, [c.big, LONG_REQS, c.big + DONE_OFF, u64::from(DOMID_SELF.0), 0]);
    if r != EINVAL {
        return r;
    }
    i64::from(big_get(c, DONE_OFF) as u32)
}

/// LONG_CALLS multicall entries of xen_version(XENVER_version), but entry NESTED_AT is
/// the whole long mmu_update (every request valid) and the last one an unknown
/// hypercall. 0 if every result is what Xen gives (the version, 0 with every request
/// done, -ENOSYS), else the multicall's error, or 10000 + the first wrong entry.
fn multicall_long(c: &Ctx) -> i64 {
    fill_mmu_reqs(c, u64::MAX);
    big_put(c, DONE_OFF, u64::MAX);
    for k in 0..LONG_CALLS {
        let e = k * 64;
        let (op, args) = match k {
            NESTED_AT => (HYPERVISOR_mmu_update, [c.big + REQS_OFF, LONG_REQS, c.big + DONE_OFF, u64::from(DOMID_SELF.0), 0]),
            _ if k == LONG_CALLS - 1 => (100, [0; 5]),
            _ => (HYPERVISOR_xen_version, [u64::from(xen_abi::version::XENVER_version), 0, 0, 0, 0]),
        };
        big_put(c, e, op);
        big_put(c, e + 8, u64::MAX);
        for (i, a) in args.iter().enumerate() {
            big_put(c, e + 16 + i as u64 * 8, *a);
        }
    }
    let r = call(HYPERVISOR_multicall, [c.big, LONG_CALLS, 0, 0, 0]);
    if r != 0 {
        return r;
    }
    for k in 0..LONG_CALLS {
        let got = big_get(c, k * 64 + 8) as i64;
        let want = match k {
            NESTED_AT => 0,
            _ if k == LONG_CALLS - 1 => ENOSYS,
            _ => 0x4_0011,
        };
        if got != want {
            return 10_000 + k as i64;
        }
    }
    // Every request of the nested batch done: the last (LONG_REQS - 1, odd) mapped the
    // data frame.
    let mapped = window_maps_data(c);
    if big_get(c, DONE_OFF) as u32 != LONG_REQS as u32 || !mapped {
        return 20_000;
    }
    0
}

/// A multicall inside a multicall: the inner one's result.
fn multicall_nested() -> i64 {
    let inner = [MulticallEntry { op: HYPERVISOR_xen_version, args: [0; 6], ..Default::default() }];
    scratch_put(hv::AUX, &inner);
    let mut outer = [MulticallEntry { op: HYPERVISOR_multicall, args: [scratch_addr(hv::AUX), 1, 0, 0, 0, 0], ..Default::default() }];
    let r = hv::multicall(&mut outer);
    if r != 0 {
        return r;
    }
    outer[0].result as i64
}

/// LONG_COPIES grant copies of 8 bytes each from page 28 of the big buffer (word w:
/// `copied(w)`) into its last page, cycling over their 512 words: 0 if every status is
/// okay and every word arrived, else the call's error or 10000 + the first bad copy
/// (or 20000 + a word not copied).
fn grant_copy_long(c: &Ctx) -> i64 {
    let copied = |w: u64| 0x600d_0000_0000_0000 | w;
    let (src, src_off) = (c.big_mfns[28], 28 * PAGE_SIZE);
    let dest = c.big_mfns[BIG_PAGES - 1];
    let dest_off = (BIG_PAGES as u64 - 1) * PAGE_SIZE;
    for w in 0..512 {
        big_put(c, src_off + w * 8, copied(w));
        big_put(c, dest_off + w * 8, 0);
    }
    let size = core::mem::size_of::<GnttabCopy>() as u64;
    for k in 0..LONG_COPIES {
        let off = ((k % 512) * 8) as u16;
        let op = GnttabCopy { source: mfn_ptr(src, off), dest: mfn_ptr(dest, off), len: 8, status: 99, ..Default::default() };
        for (i, w) in op.as_bytes().chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..w.len()].copy_from_slice(w);
            big_put(c, k * size + i as u64 * 8, u64::from_le_bytes(b));
        }
    }
    let r = call(HYPERVISOR_grant_table_op, [GNTTABOP_copy.into(), c.big, LONG_COPIES, 0, 0]);
    if r != 0 {
        return r;
    }
    for k in 0..LONG_COPIES {
        // status: the i16 at offset 36.
        let status = (big_get(c, k * size + 32) >> 32) as u16 as i16;
        if status != GNTST_okay {
            return 10_000 + k as i64;
        }
    }
    for w in 0..512 {
        if big_get(c, dest_off + w * 8) != copied(w) {
            return 20_000 + w as i64;
        }
    }
    0
}

/// LONG_EXTENTS frames of ours (never mapped) given back in one
/// XENMEM_decrease_reservation: the extents done.
fn decrease_reservation_long() -> i64 {
    let mut n = 0;
    scratch_fill(hv::AUX, 8192, 0);
    while n < LONG_EXTENTS {
        let Ok((_, mfn)) = paging::alloc_frame() else { return -1000 - n as i64 };
        scratch_put(hv::AUX + n as usize * 8, &mfn);
        n += 1;
    }
    let mut r = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: LONG_EXTENTS, domid: DOMID_SELF.0, ..Default::default() };
    hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut r)
}

/// Blocks until VIRQ_TIMER fires at system time `at` (a single-shot timer, which wakes
/// a blocked vCPU; the port bound for the wait): the time it woke (0 if it did not),
/// or the error.
fn sleep_until(at: u64) -> Result<u64, i64> {
    use xen_abi::vcpu::{VcpuSetSingleshotTimer, VCPUOP_set_singleshot_timer};
    let port = hv::bind_virq(VIRQ_TIMER, 0)?;
    evtchn::unmask(port);
    let seen = HITS.count(port);
    let mut t = VcpuSetSingleshotTimer { timeout_abs_ns: at, flags: 0, ..Default::default() };
    let r = hv::vcpu(VCPUOP_set_singleshot_timer, 0, &mut t);
    let fired = r == 0 && evtchn::wait_for(port, seen, u64::MAX, Sleep::Block);
    hv::close(port);
    if r != 0 {
        return Err(r);
    }
    Ok(if fired { shared::now_ns() } else { 0 })
}

/// (state, state_entry_time, time[blocked]) of the run-state copy at `va`.
fn runstate_at(va: u64) -> (u64, u64, u64) {
    let p = WindowPage::new(va & !0xfff);
    let o = (va & 0xfff) as usize;
    let w = |i: usize| p.u64(o + i * 8).load(Ordering::Relaxed);
    (w(0) & 0xffff_ffff, w(1), w(2 + xen_abi::vcpu::RUNSTATE_blocked as usize))
}

fn register_runstate(addr: u64) -> i64 {
    let mut a = xen_abi::vcpu::VcpuRegisterRunstateMemoryArea { addr };
    hv::vcpu(xen_abi::vcpu::VCPUOP_register_runstate_memory_area, 0, &mut a)
}

/// Sleeps and checks the area again: running, with a later entry time and more blocked
/// time. On a loaded host the timer can expire before the vCPU blocks (the deadline is
/// already past when the hypercall lands), so no block happens and nothing changes:
/// each try sleeps longer, and only a hypervisor that never rewrites the area fails
/// them all.
fn runstate_after_sleep(va: u64, entry: u64, blocked: u64) -> i64 {
    let mut last = 0;
    for ms in [5u64, 20, 50, 200] {
        last = match sleep_until(shared::now_ns() + ms * 1_000_000) {
            Err(r) => return r,
            Ok(0) => 1002,
            Ok(_) => {
                let (state2, entry2, blocked2) = runstate_at(va);
                if state2 != xen_abi::vcpu::RUNSTATE_running as u64 {
                    1003
                } else if entry2 <= entry {
                    1004
                } else if blocked2 <= blocked {
                    1005
                } else {
                    return 0;
                }
            }
        };
    }
    last
}

/// VCPUOP_register_runstate_memory_area on a page of ours: written at once (running),
/// and again after the vCPU blocked and woke (its blocked time grown, a later entry
/// time, running again). 0, or the step that went wrong (1000 + ...), or the error.
fn runstate_area(c: &Ctx) -> i64 {
    let va = c.big + 30 * PAGE_SIZE + 64;
    for i in 0..6 {
        big_put(c, 30 * PAGE_SIZE + 64 + i * 8, u64::MAX);
    }
    let r = register_runstate(va);
    if r != 0 {
        return r;
    }
    let (state, entry, blocked) = runstate_at(va);
    let result = if state != xen_abi::vcpu::RUNSTATE_running as u64 || entry == u64::MAX || blocked == u64::MAX {
        1001
    } else {
        runstate_after_sleep(va, entry, blocked)
    };
    // No more updates there (a null area).
    register_runstate(0);
    result
}

/// Runs (never blocks: a periodic timer only runs while its vCPU does, in Xen as
/// here) until `port` fired `want` more times or `ns` of system time passed: how many
/// times it fired.
fn spin_for(port: u32, want: u32, ns: u64) -> u32 {
    let seen = HITS.count(port);
    let end = shared::now_ns() + ns;
    while HITS.count(port) - seen < want && shared::now_ns() < end {
        core::hint::spin_loop();
    }
    HITS.count(port) - seen
}

/// A 2 ms periodic timer on VIRQ_TIMER fires while we run; once
/// VCPUOP_stop_periodic_timer has stopped it, 20 ms of running see no VIRQ_TIMER (the
/// periodic timer would have fired about ten times). 0, or what went wrong.
fn periodic_timer_stops() -> i64 {
    use xen_abi::vcpu::{VcpuSetPeriodicTimer, VCPUOP_set_periodic_timer, VCPUOP_stop_periodic_timer};
    let port = match hv::bind_virq(VIRQ_TIMER, 0) {
        Ok(p) => p,
        Err(r) => return r,
    };
    evtchn::unmask(port);
    let mut p = VcpuSetPeriodicTimer { period_ns: 2_000_000 };
    let r = hv::vcpu(VCPUOP_set_periodic_timer, 0, &mut p);
    let fired = if r == 0 { spin_for(port, 2, 1_000_000_000) } else { 0 };
    let stop = call(HYPERVISOR_vcpu_op, [VCPUOP_stop_periodic_timer.into(), 0, 0, 0, 0]);
    // A timer already firing on another CPU when it was stopped may still deliver one
    // event (seen on Xen 4.17 under load): let 5 ms settle before counting.
    spin_for(port, u32::MAX, 5_000_000);
    let after = spin_for(port, u32::MAX, 20_000_000);
    hv::close(port);
    if r != 0 || stop != 0 {
        return if r != 0 { r } else { stop };
    }
    if fired < 2 {
        return 1001;
    }
    if after != 0 {
        return 2000 + i64::from(after);
    }
    0
}

/// Mappings the maptrack holds with Xen's defaults, both vCPUs having mapped.
const MAPTRACK_USABLE: u64 = 1024 * 256 - 2;
/// L1 tables of ours whose entries take the mappings (by PTE address), and the grant
/// references mapped (128 read-only pins each, from 512: frames 1.. of our table).
const MT_TABLES: u64 = 512;
const MT_FIRST_REF: u64 = 512;
/// Map structures per call.
const MT_CHUNK: u64 = 2048;

/// Fills the maptrack: the data frame granted to ourselves read-only in references
/// MT_FIRST_REF.. (128 pins each), mapped by PTE address into MT_TABLES pinned, empty
/// L1 tables, MT_CHUNK maps per call. How many succeeded before the first
/// GNTST_no_space, or what went wrong (a negative call error, or 1000000 + the status
/// that stopped it, or 2000000 + a set-up step).
fn maptrack_limit(c: &Ctx) -> i64 {
    // Grant frames 1..=4 (the table has 64 by now), mapped writable to fill entries.
    let refs = MAPTRACK_USABLE / 128 + 1;
    let frames = (refs / 512 + 1) as usize;
    scratch_fill(hv::AUX, 8 * (frames + 1), 0);
    let mut t = GnttabSetupTable { dom: DOMID_SELF.0, nr_frames: frames as u32 + 1, frame_list: scratch_addr(hv::AUX), ..Default::default() };
    if hv::grant(GNTTABOP_setup_table, &mut t) != 0 || t.status != GNTST_okay {
        return 2_000_001;
    }
    let Ok(gva) = paging::alloc_window(frames as u64) else { return 2_000_002 };
    for f in 0..frames {
        let mfn: u64 = scratch_get(hv::AUX + (f + 1) * 8);
        if paging::map(gva + f as u64 * PAGE_SIZE, mfn, pte::KERNEL_RW).is_err() {
            return 2_000_003;
        }
    }
    for r in 0..refs {
        let page = WindowPage::new(gva + (r / 512) * PAGE_SIZE);
        let off = ((r % 512) * 8) as usize;
        page.u32(off + 4).store(c.data_mfn as u32, Ordering::Relaxed);
        page.u16(off + 2).store(c.self_id, Ordering::Relaxed);
        page.u16(off).store(GTF_permit_access | GTF_readonly, Ordering::Release);
    }
    // MT_TABLES frames cleared and pinned as L1 tables (one mmuext batch each).
    let mut l1s = [0u64; MT_TABLES as usize];
    for m in l1s.iter_mut() {
        let Ok((_, mfn)) = paging::alloc_frame() else { return 2_000_004 };
        *m = mfn;
    }
    for cmd in [MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE] {
        for (k, m) in l1s.iter().enumerate() {
            big_put(c, k as u64 * 24, u64::from(cmd));
            big_put(c, k as u64 * 24 + 8, *m);
            big_put(c, k as u64 * 24 + 16, 0);
        }
        let r = call(HYPERVISOR_mmuext_op, [c.big, MT_TABLES, 0, u64::from(DOMID_SELF.0), 0]);
        if r != 0 {
            return r;
        }
    }
    let flags = u64::from(GNTMAP_host_map | GNTMAP_readonly | GNTMAP_contains_pte);
    let mut mapped = 0u64;
    for start in (0..MT_TABLES * 512).step_by(MT_CHUNK as usize) {
        for j in 0..MT_CHUNK {
            let g = start + j;
            let at = j * 32;
            big_put(c, at, (l1s[(g / 512) as usize] << 12) + (g % 512) * 8);
            big_put(c, at + 8, flags | ((MT_FIRST_REF + g / 128) << 32));
            // dom, status preset to an impossible value, handle.
            big_put(c, at + 16, u64::from(c.self_id) | (0x7777 << 16));
            big_put(c, at + 24, 0);
        }
        let r = call(HYPERVISOR_grant_table_op, [GNTTABOP_map_grant_ref.into(), c.big, MT_CHUNK, 0, 0]);
        if r != 0 {
            return r;
        }
        for j in 0..MT_CHUNK {
            let status = (big_get(c, j * 32 + 16) >> 16) as u16 as i16;
            if status != GNTST_okay {
                return if status == GNTST_no_space { mapped as i64 } else { 1_000_000 + i64::from(status) };
            }
            mapped += 1;
        }
    }
    mapped as i64
}

/// A frame named directly (`DOMID_SELF`).
fn mfn_ptr(mfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: mfn, domid: DOMID_SELF.0, offset, ..Default::default() }
}

/// A frame named by one of our own grant references.
fn ref_ptr(gref: u32, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: gref.into(), domid: DOMID_SELF.0, offset, ..Default::default() }
}

/// One GNTTABOP_copy: its status, or the call's error.
fn copy8(source: GnttabCopyPtr, dest: GnttabCopyPtr, flags: u16, len: u16) -> i64 {
    let mut op = GnttabCopy { source, dest, len, flags, ..Default::default() };
    let r = hv::grant(GNTTABOP_copy, &mut op);
    if r != 0 {
        r
    } else {
        i64::from(op.status)
    }
}

/// What a refused copy returns when it changed the entry it aimed at anyway.
const CHANGED: i64 = 9999;

/// Our data page's bytes (0x41...) copied over the L1 entry of the window page: the
/// status, or `CHANGED` if the entry differs afterwards.
fn copy_into_l1(c: &Ctx, dest: GnttabCopyPtr, flags: u16) -> i64 {
    let before = paging::lookup(c.va);
    let r = copy8(mfn_ptr(c.data_mfn, 0), dest, flags, 8);
    if paging::lookup(c.va) != before {
        CHANGED
    } else {
        r
    }
}

/// Offset of the L4 entry on the way to the window page.
fn l4_off(c: &Ctx) -> u16 {
    (table_index(c.va, 4) * 8) as u16
}

fn copy_into_l4(c: &Ctx, dest: GnttabCopyPtr, flags: u16) -> i64 {
    let before = paging::walk(c.va)[0];
    let r = copy8(mfn_ptr(c.data_mfn, 0), dest, flags, 8);
    if paging::walk(c.va)[0] != before {
        CHANGED
    } else {
        r
    }
}

/// Grant references (first free ones) we give ourselves on our own tables.
const GREF_L1: u32 = 9;
const GREF_L4: u32 = 10;

/// The grant entry shows no use left (no GTF_reading/GTF_writing).
fn grant_released(c: &Ctx, gref: u32) -> bool {
    c.grants.u16(gref as usize * 8).load(Ordering::Acquire) & (GTF_reading | GTF_writing) == 0
}

fn copy_into_l1_self_grant(c: &Ctx) -> i64 {
    crate::net::grant_entry(&c.grants, GREF_L1, c.l1e >> 12, c.self_id, false);
    let r = copy_into_l1(c, ref_ptr(GREF_L1, (c.l1e & 0xfff) as u16), GNTCOPY_dest_gref);
    if grant_released(c, GREF_L1) {
        r
    } else {
        CHANGED
    }
}

fn copy_into_l4_self_grant(c: &Ctx) -> i64 {
    crate::net::grant_entry(&c.grants, GREF_L4, c.l4_mfn, c.self_id, false);
    let r = copy_into_l4(c, ref_ptr(GREF_L4, l4_off(c)), GNTCOPY_dest_gref);
    if grant_released(c, GREF_L4) {
        r
    } else {
        CHANGED
    }
}

fn copy_from_l1_self_grant(c: &Ctx) -> i64 {
    crate::net::grant_entry(&c.grants, GREF_L1, c.l1e >> 12, c.self_id, true);
    let r = copy8(ref_ptr(GREF_L1, 0), mfn_ptr(c.data_mfn, 2048), GNTCOPY_source_gref, 8);
    if grant_released(c, GREF_L1) {
        r
    } else {
        CHANGED
    }
}

const GREF_PINS: u32 = 11;

fn grant_map_pin_limit(c: &Ctx) -> i64 {
    const N: u64 = 129;
    crate::net::grant_entry(&c.grants, GREF_PINS, c.data_mfn, c.self_id, true);
    let Ok(base) = paging::alloc_window(N) else { return ENOMEM };
    let mut handles = [None; N as usize];
    let mut last = 0;
    for (i, h) in handles.iter_mut().enumerate() {
        let va = base + i as u64 * PAGE_SIZE;
        if let Err(r) = paging::prepare(va) {
            return r;
        }
        let mut op = GnttabMapGrantRef { host_addr: va, flags: GNTMAP_host_map | GNTMAP_readonly, ref_: GREF_PINS, dom: c.self_id, ..Default::default() };
        let r = hv::grant(GNTTABOP_map_grant_ref, &mut op);
        last = if r != 0 { r } else { i64::from(op.status) };
        if last == 0 {
            *h = Some((va, op.handle));
        } else if i as u64 != N - 1 {
            break;
        }
    }
    let mapped = handles.iter().flatten().count();
    let mut unmapped = 0;
    for &(host_addr, handle) in handles.iter().flatten() {
        let mut u = GnttabUnmapGrantRef { host_addr, handle, ..Default::default() };
        if hv::grant(GNTTABOP_unmap_grant_ref, &mut u) == 0 && u.status == 0 {
            unmapped += 1;
        }
    }
    if mapped != N as usize - 1 || unmapped != mapped || !grant_released(c, GREF_PINS) {
        return CHANGED + mapped as i64;
    }
    last
}

fn give_back_mapped_page() -> i64 {
    let (page, _, mfn) = match paging::new_page() {
        Ok(p) => p,
        Err(r) => return r,
    };
    page.u64(0).store(0x7e57, Ordering::Relaxed);
    scratch_put(hv::AUX, &mfn);
    let mut r = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
    let done = hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut r);
    if page.u64(0).load(Ordering::Relaxed) != 0x7e57 {
        return CHANGED;
    }
    done
}

fn register_vcpu_info(mfn: u64, offset: u32) -> i64 {
    let mut a = xen_abi::vcpu::VcpuRegisterVcpuInfo { mfn, offset, rsvd: 0 };
    hv::vcpu(xen_abi::vcpu::VCPUOP_register_vcpu_info, 0, &mut a)
}

/// The frame our vcpu_info moved to.
static VCPU_INFO_MFN: AtomicU64 = AtomicU64::new(0);

/// Moves vCPU 0's vcpu_info to a fresh page of ours (events masked meanwhile: the
/// hypervisor marks everything pending in the new copy).
fn move_vcpu_info() -> i64 {
    let (page, _, mfn) = match paging::new_page() {
        Ok(p) => p,
        Err(r) => return r,
    };
    evtchn::disable();
    let r = register_vcpu_info(mfn, 0);
    if r == 0 {
        shared::set_vcpu_info(page, 0);
        VCPU_INFO_MFN.store(mfn, Ordering::Release);
    }
    evtchn::enable();
    r
}

/// XENMEM_decrease_reservation of the vcpu_info frame: the extents done.
fn give_back_vcpu_info_frame() -> i64 {
    let mfn = VCPU_INFO_MFN.load(Ordering::Acquire);
    if mfn == 0 {
        return EFAULT;
    }
    scratch_put(hv::AUX, &mfn);
    let mut r = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
    hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut r)
}

fn req(ptr: u64, val: u64) -> MmuUpdate {
    MmuUpdate { ptr, val }
}

fn mmu1(ptr: u64, val: u64) -> i64 {
    hv::mmu_update_self(&[req(ptr, val)]).0
}

fn uvm(va: u64, pte: u64) -> i64 {
    hv::update_va_mapping(va, pte, UVMF_INVLPG)
}

fn trap_table_bad_handler() -> i64 {
    // Vector 0x40 is unused by us: even a partial install changes nothing we rely on.
    let table = [
        TrapInfo { vector: 0x40, flags: 3, cs: FLAT_KERNEL_CS, address: NONCANONICAL, ..Default::default() },
        TrapInfo::default(),
    ];
    scratch_put(hv::ARG, &table);
    call(HYPERVISOR_set_trap_table, [scratch_addr(hv::ARG), 0, 0, 0, 0])
}

fn decrease_reservation_bad() -> i64 {
    let mut r = XenMemoryReservation { extent_start: NONCANONICAL, nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
    hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut r)
}

fn callback(type_: u16, address: u64) -> i64 {
    let mut c = CallbackRegister { type_, flags: 0, address, ..Default::default() };
    hv::op(HYPERVISOR_callback_op, CALLBACKOP_register.into(), &mut c)
}

/// The 64-bit user SYSCALL callback: we never run user code, so even an accepted
/// registration would be harmless.
fn callback_syscall(address: u64) -> i64 {
    callback(CALLBACKTYPE_syscall, address)
}

fn set_gdt_huge() -> i64 {
    scratch_fill(hv::ARG, 16 * 8, 0);
    call(HYPERVISOR_set_gdt, [scratch_addr(hv::ARG), 65536, 0, 0, 0])
}

fn bind_virq(virq: u32, vcpu: u32) -> i64 {
    let mut a = xen_abi::event_channel::EvtchnBindVirq { virq, vcpu, port: 0 };
    let r = hv::evtchn(EVTCHNOP_bind_virq, &mut a);
    if r == 0 {
        hv::close(a.port);
    }
    r
}

fn bind_virq_twice() -> i64 {
    let first = match hv::bind_virq(VIRQ_TIMER, 0) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let second = hv::bind_virq(VIRQ_TIMER, 0);
    hv::close(first);
    match second {
        Ok(p) => {
            hv::close(p);
            0
        }
        Err(r) => r,
    }
}

fn setup_table(nr_frames: u32, count: u64) -> i64 {
    // The frame list points at unmapped memory: even an accepted call writes nothing of ours.
    setup_table_count(nr_frames, count, UNMAPPED)
}

fn setup_table_list(nr_frames: u32, frame_list: u64) -> i64 {
    setup_table_count(nr_frames, 1, frame_list)
}

fn setup_table_count(nr_frames: u32, count: u64, frame_list: u64) -> i64 {
    let mut s = GnttabSetupTable { dom: DOMID_SELF.0, nr_frames, frame_list, ..Default::default() };
    scratch_put(hv::ARG, &s);
    scratch_put(hv::ARG + core::mem::size_of::<GnttabSetupTable>(), &s);
    let r = call(HYPERVISOR_grant_table_op, [GNTTABOP_setup_table.into(), scratch_addr(hv::ARG), count, 0, 0]);
    s = scratch_get(hv::ARG);
    if r != 0 {
        r
    } else {
        i64::from(s.status)
    }
}

fn query_size(dom: u16) -> i64 {
    let mut q = GnttabQuerySize { dom, ..Default::default() };
    let r = hv::grant(GNTTABOP_query_size, &mut q);
    if r != 0 {
        r
    } else {
        i64::from(q.status)
    }
}

fn grant_copy_bad_ref(c: &Ctx) -> i64 {
    let mut op = GnttabCopy {
        source: GnttabCopyPtr { u: 5000, domid: DOMID_SELF.0, ..Default::default() },
        dest: GnttabCopyPtr { u: c.data_mfn, domid: DOMID_SELF.0, ..Default::default() },
        len: 8,
        flags: GNTCOPY_source_gref,
        ..Default::default()
    };
    let r = hv::grant(GNTTABOP_copy, &mut op);
    if r != 0 {
        r
    } else {
        i64::from(op.status)
    }
}

fn grant_map_self(c: &Ctx) -> i64 {
    let mut op = GnttabMapGrantRef { host_addr: c.va, flags: GNTMAP_host_map, ref_: 5000, dom: DOMID_SELF.0, ..Default::default() };
    let r = hv::grant(GNTTABOP_map_grant_ref, &mut op);
    if r != 0 {
        r
    } else {
        i64::from(op.status)
    }
}

fn remote_shutdown(dom: u16) -> i64 {
    let mut a = xen_abi::sched::SchedRemoteShutdown { domain_id: dom, reason: xen_abi::sched::SHUTDOWN_poweroff, ..Default::default() };
    hv::sched(xen_abi::sched::SCHEDOP_remote_shutdown, &mut a)
}

fn setup(env: &Env<'_>) -> Result<Ctx, i64> {
    // The suite runs as the initial domain (id 0) on both hypervisors.
    if env.start_info.flags & SIF_INITDOMAIN == 0 {
        return Err(EPERM);
    }
    ctx_for(0)
}

fn ctx_for(self_id: u16) -> Result<Ctx, i64> {
    let va = paging::alloc_window(1)?;
    let l1e = paging::l1_entry_maddr(va)?;
    let w = paging::walk(va);
    let l3_mfn = w[1].ok_or(EFAULT)?.0;
    let l2_mfn = w[2].ok_or(EFAULT)?.0;
    let (data, _, data_mfn) = paging::new_page()?;
    for off in (0..PAGE_SIZE as usize).step_by(8) {
        data.u64(off).store(0x4141_4141_4141_4141, Ordering::Relaxed);
    }
    let grants = crate::net::grant_table().map_err(|_| EFAULT)?;
    scratch_fill(hv::AUX, 8, 0);
    let mut l = XenMachphysMfnList { max_extents: 1, extent_start: scratch_addr(hv::AUX), ..Default::default() };
    let r = hv::op(HYPERVISOR_memory_op, XENMEM_machphys_mfn_list.into(), &mut l);
    if r != 0 || l.nr_extents != 1 {
        return Err(if r != 0 { r } else { EFAULT });
    }
    let xen_mfn: u64 = scratch_get(hv::AUX);
    // It must not be one of ours.
    if m2p(xen_mfn).is_some_and(|pfn| crate::arch::x86_64::mem::p2m(pfn) == Some(xen_mfn)) {
        return Err(EPERM);
    }
    let _ = table_index(VMAP_START, 4);
    let big = paging::alloc_window(BIG_PAGES as u64)?;
    let mut big_mfns = [0; BIG_PAGES];
    for (i, m) in big_mfns.iter_mut().enumerate() {
        *m = paging::alloc_frame()?.1;
        paging::map(big + i as u64 * PAGE_SIZE, *m, pte::KERNEL_RW)?;
    }
    Ok(Ctx { va, l1e, l4_mfn: paging::l4_mfn(), l3_mfn, l2_mfn, data_mfn, grants, self_id, xen_mfn, big, big_mfns })
}

pub fn run(env: &Env<'_>, report: &mut dyn FnMut(&str, TestResult)) {
    let ctx = match setup(env) {
        Ok(c) => c,
        Err(r) => return report("hostile_setup", Err(fail(format_args!("setting up: {r}")))),
    };
    // vCPU 1 works on its own (grant maps, mmu_update, events, hostile calls) while
    // vCPU 0 runs the suite: every answer must stay the same.
    report("hostile_vcpu1_started", crate::churn::start(0x5eed, ctx.self_id, true));
    for &(name, op, want) in HOSTILE {
        if name == "grant_maptrack_limit" && !crate::churn::quiesce_maps() {
            report(name, Err(fail(format_args!("vCPU 1 did not stop mapping"))));
            continue;
        }
        let got = op(&ctx);
        let r = if got == want { Ok(()) } else { Err(fail(format_args!("got {got}, wanted {want}"))) };
        report(name, r);
    }
    report("hostile_vcpu1_concurrent", crate::churn::stop());
    report("alive_after_hostile", alive());
}

/// After all that: hypercalls, events and the page we mapped still work.
fn alive() -> TestResult {
    let v = crate::arch::x86_64::hypercall::xen_version_no_arg(0);
    if v != 0x4_0011 {
        return Err(fail(format_args!("xen_version {v:#x}")));
    }
    let port = hv::bind_ipi(0).map_err(|r| fail(format_args!("bind_ipi: {r}")))?;
    evtchn::unmask(port);
    let seen = HITS.count(port);
    hv::send(port);
    let ok = evtchn::wait_for(port, seen, shared::now_ns() + 1_000_000_000, Sleep::Poll);
    hv::close(port);
    if !ok {
        return Err(fail(format_args!("IPI on port {port} not delivered")));
    }
    Ok(())
}

// ---------------------------------------------------------------- a domain of our own
//
// The initial domain builds a domain as a toolstack does (createdomain, max_vcpus,
// max_mem, populate_physmap), so that what needs a second domain runs on real Xen too:
// SCHEDOP_remote_shutdown of it (finding 5: the domain stays, shut down, until it is
// destroyed, and destroying it returns every frame), and the ownership paths of
// finding 6 (an M2P entry rewritten, a frame given back while still mapped).

use xen_abi::domctl::*;
use xen_abi::sysctl::*;

/// The domain's id (0 = none) and the free pages before it was created.
static DOMU: AtomicU64 = AtomicU64::new(0);
static FREE_BEFORE: AtomicU64 = AtomicU64::new(0);
/// Its frames (populate_physmap writes each extent's frame back for a PV domain).
const DOMU_PAGES: usize = 16;
static DOMU_MFNS: [AtomicU64; DOMU_PAGES] = [const { AtomicU64::new(0) }; DOMU_PAGES];

pub(crate) fn domctl(d: &mut XenDomctl) -> i64 {
    scratch_put(hv::ARG, d);
    let r = call(HYPERVISOR_domctl, [scratch_addr(hv::ARG), 0, 0, 0, 0]);
    *d = scratch_get(hv::ARG);
    r
}

pub(crate) fn sysctl(s: &mut XenSysctl) -> i64 {
    scratch_put(hv::ARG, s);
    let r = call(HYPERVISOR_sysctl, [scratch_addr(hv::ARG), 0, 0, 0, 0]);
    *s = scratch_get(hv::ARG);
    r
}

/// getvcpuaffinity and setvcpuaffinity of our vCPU 0 with a bitmap of 2^32 - 1 bits:
/// Xen counts its bytes in unsigned int, (nr_bits + 7) / 8, which wraps to 0, so get
/// writes nothing and succeeds, and set reads nothing and is refused (no online CPU:
/// -EINVAL). 0, or 1001 (get wrote), 1100 + get's error, 1200 + set's answer negated.
fn affinity_bitmap_bytes_wrap(c: &Ctx) -> i64 {
    const OFF: u64 = 27 * PAGE_SIZE;
    for i in 0..4 {
        big_put(c, OFF + i * 8, u64::MAX);
    }
    let map = XenctlBitmap { bitmap: c.big + OFF, nr_bits: u32::MAX, _pad: 0 };
    let affinity = |cmd| {
        let mut d = XenDomctl::new(cmd, c.self_id);
        d.set_payload(&XenDomctlVcpuaffinity { vcpu: 0, flags: XEN_VCPUAFFINITY_HARD, cpumap_hard: map, ..Default::default() });
        domctl(&mut d)
    };
    let get = affinity(XEN_DOMCTL_getvcpuaffinity);
    let untouched = (0..4).all(|i| big_get(c, OFF + i * 8) == u64::MAX);
    let set = affinity(XEN_DOMCTL_setvcpuaffinity);
    if get != 0 {
        1100 - get
    } else if !untouched {
        1001
    } else if set != EINVAL {
        1200 - set
    } else {
        0
    }
}

/// `XEN_DOMCTL_setnodeaffinity` on itself, a map read as `xenctl_bitmap_to_bitmap` reads
/// it: node 0 in a 1-bit map is accepted; a map of only node 1, and one of 2^32 - 1 bits
/// (whose byte count wraps to 0: an empty map), are -EINVAL.
fn node_affinity_bitmap(c: &Ctx) -> i64 {
    const OFF: u64 = 27 * PAGE_SIZE;
    let set = |byte: u64, nr_bits: u32| {
        big_put(c, OFF, byte);
        let mut d = XenDomctl::new(XEN_DOMCTL_setnodeaffinity, c.self_id);
        d.set_payload(&XenDomctlNodeaffinity { nodemap: XenctlBitmap { bitmap: c.big + OFF, nr_bits, _pad: 0 } });
        domctl(&mut d)
    };
    let node0 = set(0x01, 1);
    let node1 = set(0x02, 8);
    let wrapped = set(u64::MAX, u32::MAX);
    if node0 != 0 {
        1100 - node0
    } else if node1 != EINVAL {
        1200 - node1
    } else if wrapped != EINVAL {
        1300 - wrapped
    } else {
        0
    }
}

/// `XEN_SYSCTL_scheduler_op` on Pool-0 (the hypervisors boot with `sched=credit`): the
/// parameters' defaults (30 ms, 1000 µs, 0), every refusal of `sched_adjust_global` and
/// `csched_sys_cntl` with its errno and nothing changed by it, a good putinfo read back
/// (in its own answer and by getinfo), then the defaults restored. 0, or 100 × the step
/// + 50 (when the call succeeded but the values differ) or minus the errno.
fn sched_pool_params() -> i64 {
    use xen_abi::sysctl::XenSysctlCreditSchedule as P;
    let op = |pool: u32, sched: u32, cmd: u32, p: P| -> (i64, P) {
        let mut o = XenSysctlSchedulerOp { cpupool_id: pool, sched_id: sched, cmd, ..Default::default() };
        o.set_credit(p);
        let mut s = XenSysctl::new(XEN_SYSCTL_scheduler_op);
        s.set_payload(&o);
        let r = sysctl(&mut s);
        (r, s.payload::<XenSysctlSchedulerOp>().map_or(P::default(), |o| o.credit()))
    };
    let p = |tslice_ms, ratelimit_us, vcpu_migr_delay_us| P { tslice_ms, ratelimit_us, vcpu_migr_delay_us };
    let (put, get) = (XEN_SYSCTL_SCHEDOP_putinfo, XEN_SYSCTL_SCHEDOP_getinfo);
    let credit = XEN_SCHEDULER_CREDIT;
    let defaults = p(30, 1000, 0);
    // (pool, scheduler, command, parameters, errno expected)
    let refused: [(u32, u32, u32, P, i64); 12] = [
        (0, credit, put, p(0, 0, 0), EINVAL),
        (0, credit, put, p(1001, 0, 0), EINVAL),
        (0, credit, put, p(30, 30_001, 0), EINVAL),
        (0, credit, put, p(1, 1001, 0), EINVAL),
        (0, credit, put, p(30, 99, 0), EINVAL),
        (0, credit, put, p(1000, 500_001, 0), EINVAL),
        (0, credit, put, p(30, 1000, 100_001), EINVAL),
        (0, XEN_SCHEDULER_CREDIT2, get, defaults, EINVAL),
        (0, XEN_SCHEDULER_CREDIT2, put, p(30, 1000, 0), EINVAL),
        (1, credit, get, defaults, ESRCH),
        (u32::MAX, credit, put, defaults, ESRCH),
        // The command is looked at before the pool.
        (1, credit, 2, defaults, EINVAL),
    ];
    let (r, got) = op(0, credit, get, p(7, 7, 7));
    if r != 0 {
        return 100 - r;
    }
    if got != defaults {
        return 150;
    }
    for (i, &(pool, sched, cmd, params, want)) in refused.iter().enumerate() {
        let step = 200 + 100 * i as i64;
        let (r, _) = op(pool, sched, cmd, params);
        if r != want {
            return step - r;
        }
        if op(0, credit, get, P::default()).1 != defaults {
            return step + 50;
        }
    }
    let good = [p(5, 0, 100_000), p(1000, 500_000, 0), p(1, 100, 0)];
    for (i, &g) in good.iter().enumerate() {
        let step = 2000 + 100 * i as i64;
        let (r, back) = op(0, credit, put, g);
        if r != 0 {
            return step - r;
        }
        if back != g || op(0, credit, get, P::default()).1 != g {
            return step + 50;
        }
    }
    let (r, back) = op(0, credit, put, defaults);
    if r != 0 {
        return 3000 - r;
    }
    if back != defaults {
        return 3050;
    }
    0
}

fn free_pages() -> Result<u64, i64> {
    let mut s = XenSysctl::new(XEN_SYSCTL_physinfo);
    match sysctl(&mut s) {
        0 => Ok(s.payload::<XenSysctlPhysinfo>().map_or(0, |p| p.free_pages)),
        r => Err(r),
    }
}

/// The first domain whose id is `from` or above (`getdomaininfolist`): its info, if any.
fn domain_from(from: u16) -> Result<Option<XenDomctlGetdomaininfo>, i64> {
    scratch_fill(hv::AUX, core::mem::size_of::<XenDomctlGetdomaininfo>(), 0);
    let mut s = XenSysctl::new(XEN_SYSCTL_getdomaininfolist);
    s.set_payload(&XenSysctlGetdomaininfolist { first_domain: from, max_domains: 1, buffer: scratch_addr(hv::AUX), ..Default::default() });
    let r = sysctl(&mut s);
    if r != 0 {
        return Err(r);
    }
    let n = s.payload::<XenSysctlGetdomaininfolist>().map_or(0, |l| l.num_domains);
    Ok((n == 1).then(|| scratch_get(hv::AUX)))
}

/// The id of the first domain whose id is `from` or above, if any.
pub(crate) fn next_domain(from: u16) -> Result<Option<u16>, i64> {
    Ok(domain_from(from)?.map(|i| i.domain))
}

/// Domain `dom`'s flags, or None if it is not there.
pub(crate) fn domain_flags(dom: u16) -> Result<Option<u32>, i64> {
    Ok(domain_from(dom)?.filter(|i| i.domain == dom).map(|i| i.flags))
}

fn domu() -> u16 {
    DOMU.load(Ordering::Acquire) as u16
}

/// `f(domain)` if the domain was created, else -ESRCH (never acting on id 0: that is
/// ourselves).
fn with_domu(f: impl FnOnce(u16) -> i64) -> i64 {
    match domu() {
        0 => ESRCH,
        d => f(d),
    }
}

fn domu_mfn(i: usize) -> u64 {
    DOMU_MFNS[i].load(Ordering::Acquire)
}

/// createdomain (as our `xl`: 1 vCPU, Xen's default limits), then max_vcpus: 0, or the
/// first error.
fn domu_create() -> i64 {
    match free_pages() {
        Ok(f) => FREE_BEFORE.store(f, Ordering::Release),
        Err(r) => return r,
    }
    let mut d = XenDomctl::new(XEN_DOMCTL_createdomain, 0);
    d.set_payload(&XenDomctlCreatedomain {
        max_vcpus: 1,
        max_evtchn_port: 1023,
        max_grant_frames: 64,
        max_maptrack_frames: 1024,
        grant_opts: 1,
        ..Default::default()
    });
    let r = domctl(&mut d);
    if r != 0 {
        return r;
    }
    if d.domain == 0 || d.domain >= 0x7ff0 {
        return 1000;
    }
    DOMU.store(u64::from(d.domain), Ordering::Release);
    let mut v = XenDomctl::new(XEN_DOMCTL_max_vcpus, d.domain);
    v.set_payload(&XenDomctlMaxVcpus { max: 1 });
    domctl(&mut v)
}

/// max_mem, then DOMU_PAGES frames for it with XENMEM_populate_physmap: the extents
/// done (each frame written back into the list).
fn domu_populate() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let mut m = XenDomctl::new(XEN_DOMCTL_max_mem, domu());
    m.set_payload(&XenDomctlMaxMem { max_memkb: 4096 });
    let r = domctl(&mut m);
    if r != 0 {
        return r;
    }
    let gpfns: [u64; DOMU_PAGES] = core::array::from_fn(|i| i as u64);
    scratch_put(hv::AUX, &gpfns);
    let mut res = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: DOMU_PAGES as u64, domid: domu(), ..Default::default() };
    let done = hv::op(HYPERVISOR_memory_op, xen_abi::memory::XENMEM_populate_physmap.into(), &mut res);
    let mfns: [u64; DOMU_PAGES] = scratch_get(hv::AUX);
    for (slot, m) in DOMU_MFNS.iter().zip(mfns) {
        slot.store(m, Ordering::Release);
    }
    done
}

/// MMU_MACHPHYS_UPDATE of the other domain's frame, as if it were ours: Xen refuses a
/// frame the caller does not own (-EINVAL), whatever the M2P said.
fn domu_m2p_claim() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    mmu1((domu_mfn(0) << 12) | MMU_MACHPHYS_UPDATE, 0x100)
}

/// After that attempt the frame is still not ours to map (Xen's get_page_from_l1e:
/// the owner, not the M2P, decides).
fn domu_map_as_own(c: &Ctx) -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let r = uvm(c.va, pte::make(domu_mfn(0), pte::KERNEL_RO));
    if r == 0 {
        uvm(c.va, 0);
    }
    r
}

/// Nor can it be copied from by frame number as ours.
fn domu_copy_as_own(c: &Ctx) -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    copy8(mfn_ptr(domu_mfn(0), 0), mfn_ptr(c.data_mfn, 0), 0, 8)
}

/// Nor given back as ours: decrease_reservation of it for DOMID_SELF does nothing.
fn domu_give_back_as_own() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    scratch_put(hv::AUX, &domu_mfn(2));
    let mut r = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: DOMID_SELF.0, ..Default::default() };
    hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut r)
}

/// Our own data frame's M2P entry rewritten (MMU_MACHPHYS_UPDATE, allowed on a frame
/// we own) to the other domain's first pfn: the frame stays ours for every path that
/// checks ownership (mapped writable, a grant copy into it by frame number), and the
/// other domain's frame stays its own (the copy from it is still GNTST_bad_page). The
/// entry is put back. 0, or the step that went wrong (1000 + ..., or an error).
fn m2p_rewrite_own_frame(c: &Ctx) -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let Some(pfn) = m2p(c.data_mfn) else { return 1001 };
    let r = mmu1((c.data_mfn << 12) | MMU_MACHPHYS_UPDATE, 0);
    if r != 0 {
        return r;
    }
    let mapped = uvm(c.va, pte::make(c.data_mfn, pte::KERNEL_RW));
    uvm(c.va, 0);
    let into = copy8(mfn_ptr(c.data_mfn, 16), mfn_ptr(c.data_mfn, 8), 0, 8);
    let foreign = copy8(mfn_ptr(domu_mfn(0), 0), mfn_ptr(c.data_mfn, 0), 0, 8);
    let back = mmu1((c.data_mfn << 12) | MMU_MACHPHYS_UPDATE, pfn);
    if back != 0 || m2p(c.data_mfn) != Some(pfn) {
        return 1002;
    }
    match (mapped, into, foreign) {
        (0, 0, f) if f == i64::from(GNTST_bad_page) => 0,
        (0, 0, _) => 1003,
        (0, _, _) => 1004,
        (m, _, _) => m,
    }
}

/// A frame of the other domain mapped writable here (mmu_update naming it as
/// foreigndom, as a toolstack maps a guest's memory), written, then given back for it
/// with decrease_reservation while still mapped (done: Xen drops only the allocation
/// reference), still reading what we wrote, then unmapped. The extents done, or what
/// went wrong (an error, or 1000 + the step).
fn domu_give_back_mapped() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let Ok(va) = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)) else { return 1001 };
    let Ok(l1e) = paging::l1_entry_maddr(va) else { return 1002 };
    let mfn = domu_mfn(1);
    let (r, _) = hv::mmu_update(&[req(l1e, pte::make(mfn, pte::KERNEL_RW))], domu());
    if r != 0 {
        return r;
    }
    let page = WindowPage::new(va);
    page.u64(0).store(0xd0_0d1e, Ordering::SeqCst);
    scratch_put(hv::AUX, &mfn);
    let mut res = XenMemoryReservation { extent_start: scratch_addr(hv::AUX), nr_extents: 1, domid: domu(), ..Default::default() };
    let done = hv::op(HYPERVISOR_memory_op, XENMEM_decrease_reservation.into(), &mut res);
    let still = page.u64(0).load(Ordering::SeqCst);
    let (u, _) = hv::mmu_update(&[req(l1e, 0)], DOMID_SELF.0);
    hv::update_va_mapping(va, 0, UVMF_INVLPG);
    if still != 0xd0_0d1e {
        return 1003;
    }
    if u != 0 {
        return 1004;
    }
    done
}

/// SCHEDOP_remote_shutdown of the domain by the control domain.
fn domu_remote_shutdown() -> i64 {
    with_domu(remote_shutdown)
}

/// It is shut down (poweroff) and still there, waiting for its toolstack: 0, or 1000 +
/// its flags (2000 if it is gone).
fn domu_shut_down_and_kept() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let want = XEN_DOMINF_shutdown | (xen_abi::sched::SHUTDOWN_poweroff << XEN_DOMINF_shutdownshift);
    let mask = XEN_DOMINF_shutdown | (XEN_DOMINF_shutdownmask << XEN_DOMINF_shutdownshift);
    // Xen finishes the shutdown once its vCPUs are paused: give it a moment (generous:
    // a loaded CI host runs QEMU slowly; a pass returns at once).
    let end = shared::now_ns() + 20_000_000_000;
    loop {
        match domain_flags(domu()) {
            Err(r) => return r,
            Ok(None) => return 2000,
            Ok(Some(f)) if f & mask == want => return 0,
            Ok(Some(f)) if shared::now_ns() > end => return 1000 + i64::from(f),
            Ok(Some(_)) => {
                hv::sched_yield();
            }
        }
    }
}

fn domu_destroy() -> i64 {
    with_domu(|id| domctl(&mut XenDomctl::new(XEN_DOMCTL_destroydomain, id)))
}

/// Once destroyed, the domain is gone and every page it had (its memory, the frame it
/// gave back while we mapped it, its shared_info and grant frames) is free again: the
/// free page count is back where it was before it was created. 0, or the difference
/// (pages still missing), or 1000000 + ... if the domain is still listed.
fn domu_every_frame_back() -> i64 {
    if domu() == 0 {
        return ESRCH;
    }
    let before = FREE_BEFORE.load(Ordering::Acquire);
    // Xen frees the domain's structures after an RCU grace period: wait for it
    // (generously, for a loaded host; a pass returns at once).
    let end = shared::now_ns() + 30_000_000_000;
    loop {
        let gone = matches!(domain_flags(domu()), Ok(None));
        let now = match free_pages() {
            Ok(f) => f,
            Err(r) => return r,
        };
        if gone && now == before {
            return 0;
        }
        if shared::now_ns() > end {
            return if gone { before as i64 - now as i64 } else { 1_000_000 };
        }
        hv::sched_yield();
    }
}

/// `role=maptrack-fill self=N`: a domU fills its maptrack as `grant_maptrack_limit`
/// does (one vCPU: up to 262143 mappings) and checks the hypervisor answers
/// GNTST_no_space at the end, whether at Xen's limit or earlier because the hypervisor
/// keeps the memory it needs for others; then that it still works. Two of these at once
/// must leave the hypervisor up (the boot tier's `maptrack` scenario).
pub fn fill_role(cmd: &str, report: &mut dyn FnMut(&str, TestResult)) {
    let self_id = crate::roles::num(cmd, "self", 0) as u16;
    let ctx = match ctx_for(self_id) {
        Ok(c) => c,
        Err(r) => return report("maptrack_fill_setup", Err(fail(format_args!("setting up: {r}")))),
    };
    let got = maptrack_limit(&ctx);
    crate::println!("MAPTRACK d{self_id} filled: {got} mappings, then GNTST_no_space");
    let r = if got > 0 && got as u64 <= MAPTRACK_USABLE + 1 {
        Ok(())
    } else {
        Err(fail(format_args!("got {got}: not a count of mappings ended by GNTST_no_space")))
    };
    report("maptrack_fill_ends_in_no_space", r);
    report("maptrack_fill_alive_after", alive());
}
