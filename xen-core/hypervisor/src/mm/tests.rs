//! Host tests for the PV MMU with a fake machine: a few dozen frames, two domains.

use super::pagetable::*;
use super::*;
use proptest::prelude::*;
use xen_abi::xen::*;
use xen_abi::Errno;

const NFRAMES: usize = 48;
const A: DomId = DomId(1);
const B: DomId = DomId(2);
/// Hypervisor frame holding (a piece of) the M2P.
const M2P: Mfn = Mfn(1);
/// Another hypervisor frame, lent to A as its shared_info.
const SHARED: Mfn = Mfn(3);
/// Not RAM.
const IO: Mfn = Mfn(2);
/// A's tables.
const L4: Mfn = Mfn(8);
const L3: Mfn = Mfn(9);
const L2: Mfn = Mfn(10);
const L1: Mfn = Mfn(11);
/// A's first data frame (12..20 are mapped at VA 0..8 pages).
const DATA: u64 = 12;
/// A's spare frames 20..24 (unmapped); B owns 24..32.
const SPARE: Mfn = Mfn(20);
const B_FRAME: Mfn = Mfn(24);
const XEN_SLOT_MARK: u64 = 0x0bad_0000_0000_0067;

const PT_FLAGS: u64 = PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
const RO: u64 = PAGE_PRESENT | PAGE_ACCESSED;
const RW: u64 = PAGE_PRESENT | PAGE_RW | PAGE_ACCESSED;

#[derive(Debug)]
struct FakeHw {
    mem: Vec<[u64; ENTRIES]>,
    m2p: Vec<u64>,
    flushes: usize,
}

impl Frames for FakeHw {
    fn read_entry(&self, mfn: Mfn, idx: usize) -> u64 {
        self.mem[mfn.0 as usize][idx]
    }
    fn write_entry(&mut self, mfn: Mfn, idx: usize, val: u64) {
        self.mem[mfn.0 as usize][idx] = val;
    }
    fn fill_xen_l4_slots(&mut self, mfn: Mfn) {
        for s in FIRST_XEN_L4_SLOT..=LAST_XEN_L4_SLOT {
            self.mem[mfn.0 as usize][s] = XEN_SLOT_MARK | ((s as u64) << 12);
        }
    }
    fn set_m2p(&mut self, mfn: Mfn, pfn: u64) {
        self.m2p[mfn.0 as usize] = pfn;
    }
    fn flush_tlbs(&mut self, _dom: DomId) {
        self.flushes += 1;
    }
    fn validate_segdesc_frame(&mut self, mfn: Mfn) -> bool {
        self.mem[mfn.0 as usize].iter_mut().all(|d| match crate::segdesc::check_descriptor(*d) {
            Some(checked) => {
                *d = checked;
                true
            }
            None => false,
        })
    }
}

struct Env {
    ft: FrameTable<Vec<PageInfo>>,
    hw: FakeHw,
    va: VcpuMm,
}

fn pte(mfn: Mfn, flags: u64) -> u64 {
    pte_from(mfn, flags)
}

fn ptr(mfn: Mfn, idx: usize) -> u64 {
    mfn.addr() + idx as u64 * 8
}

fn upd(mfn: Mfn, idx: usize, val: u64) -> MmuUpdate {
    MmuUpdate { ptr: ptr(mfn, idx), val }
}

fn ext(cmd: u32, arg1: u64, arg2: u64) -> MmuextOp {
    MmuextOp { cmd, arg1, arg2, ..Default::default() }
}

impl Env {
    /// Frames assigned, nothing typed.
    fn bare() -> Env {
        let mut ft = FrameTable::new(vec![PageInfo::FREE; NFRAMES]);
        for m in [0, 1, 3] {
            assert!(ft.set_owner_at_boot(Mfn(m), Owner::Xen));
        }
        assert!(ft.set_owner_at_boot(IO, Owner::Io));
        for m in 8..24 {
            ft.assign_frame(A, Mfn(m)).unwrap();
        }
        for m in 24..32 {
            ft.assign_frame(B, Mfn(m)).unwrap();
        }
        let hw = FakeHw { mem: vec![[0; ENTRIES]; NFRAMES], m2p: vec![0; NFRAMES], flushes: 0 };
        Env { ft, hw, va: VcpuMm::default() }
    }

    /// A's 4-level hierarchy mapping 8 data pages RW at VA 0 and its four tables
    /// read-only at VA 8..12 pages, written as a domain builder does, then pinned and
    /// installed as the kernel base.
    fn built() -> Env {
        let mut e = Env::bare();
        e.write_initial_tables();
        e.ft.pin_table(&mut e.hw, A, L4, PageType::L4).unwrap();
        e.ft.new_baseptr(&mut e.hw, A, &mut e.va, L4).unwrap();
        e.audit();
        e
    }

    fn write_initial_tables(&mut self) {
        let m = &mut self.hw.mem;
        m[L4.0 as usize][0] = pte(L3, PT_FLAGS);
        m[L3.0 as usize][0] = pte(L2, PT_FLAGS);
        m[L2.0 as usize][0] = pte(L1, PT_FLAGS);
        for (i, e) in m[L1.0 as usize][..8].iter_mut().enumerate() {
            *e = pte(Mfn(DATA + i as u64), RW);
        }
        for (i, t) in [L4, L3, L2, L1].into_iter().enumerate() {
            m[L1.0 as usize][8 + i] = pte(t, RO);
        }
    }

    fn mmu(&mut self, u: MmuUpdate) -> Result<(), Errno> {
        let r = self.ft.mmu_update_one(&mut self.hw, A, u);
        self.audit();
        r
    }

    fn op(&mut self, o: MmuextOp) -> Result<MmuextEffect, Errno> {
        let r = self.ft.mmuext_op_one(&mut self.hw, A, &mut self.va, &o);
        self.audit();
        r
    }

    fn uvm(&mut self, va: u64, val: u64, flags: u64) -> Result<Flush, Errno> {
        let l4 = self.va.kernel_l4.unwrap_or(Mfn(0));
        let r = self.ft.update_va_mapping(&mut self.hw, A, l4, va, val, flags);
        self.audit();
        r
    }

    fn p(&self, m: Mfn) -> PageInfo {
        *self.ft.page(m).unwrap()
    }

    /// Recomputes every count from the tables and checks the invariants.
    fn audit(&self) {
        audit(&self.ft, &self.hw, core::slice::from_ref(&self.va));
    }
}

fn audit(ft: &FrameTable<Vec<PageInfo>>, hw: &FakeHw, vcpus: &[VcpuMm]) {
    audit_with_grants(ft, hw, vcpus, &[]);
}

/// A grant mapping the test made: the mapper's L1 slot and the granter's frame.
type GrantPte = (Mfn, usize, Mfn);

/// `audit`, where the L1 slots in `grants` may map the frame they name although
/// another domain owns it.
fn audit_with_grants(ft: &FrameTable<Vec<PageInfo>>, hw: &FakeHw, vcpus: &[VcpuMm], grants: &[GrantPte]) {
    let n = ft.len();
    let mut count = vec![0u32; n];
    let mut tcount = vec![0u32; n];
    let mut linear = vec![0i32; n];
    for (m, p) in ft.iter() {
        let i = m.0 as usize;
        count[i] += p.allocated as u32 + p.pinned as u32;
        tcount[i] += p.pinned as u32 + (p.xen_heap && p.allocated) as u32;
        if p.pinned {
            assert!(p.validated && p.ty.is_page_table(), "pinned frame {m:?} not a validated table: {p:?}");
        }
        assert!(p.type_count <= p.count, "type_count > count on {m:?}: {p:?}");
        if p.ty.is_page_table() && p.type_count > 0 {
            assert!(p.validated, "typed page table {m:?} not validated: {p:?}");
        }
        if p.count == 0 {
            assert!(matches!(p.owner, Owner::None | Owner::Xen | Owner::Io), "{m:?}: {p:?}");
            assert_eq!(p.type_count, 0);
        }
    }
    for v in vcpus {
        for b in [v.kernel_l4, v.user_l4].into_iter().flatten() {
            count[b.0 as usize] += 1;
            tcount[b.0 as usize] += 1;
            assert_eq!(ft.page(b).unwrap().ty, PageType::L4);
        }
    }
    for (m, p) in ft.iter() {
        let Some(level) = p.ty.level() else { continue };
        if !p.validated {
            continue;
        }
        let Owner::Dom(d) = p.owner else { panic!("validated table {m:?} without a domain") };
        for s in 0..ENTRIES {
            let e = hw.mem[m.0 as usize][s];
            if level == 4 && !is_guest_l4_slot(s) {
                assert_eq!(e, XEN_SLOT_MARK | ((s as u64) << 12), "Xen slot {s} of {m:?}");
                continue;
            }
            if !present(e) {
                continue;
            }
            let t = pte_mfn(e);
            let tp = ft.page(t);
            if level == 1 {
                assert_eq!(e & L1_DISALLOW_MASK, 0);
                assert_ne!(e & PAGE_USER, 0, "unadjusted L1e");
                let tp = tp.unwrap_or_else(|| panic!("L1e of {m:?} beyond RAM"));
                if !grants.contains(&(m, s, t)) {
                    assert_eq!(tp.owner, Owner::Dom(d), "L1e of {m:?} maps a foreign frame");
                }
                count[t.0 as usize] += 1;
                if e & PAGE_RW != 0 {
                    assert_eq!(tp.ty, PageType::Writable, "RW mapping of {t:?} ({tp:?}) in {m:?}");
                    tcount[t.0 as usize] += 1;
                }
            } else {
                assert_eq!(e & BASE_DISALLOW_MASK, 0);
                if t == m {
                    assert_eq!(e & PAGE_RW, 0, "RW self-map");
                    continue;
                }
                let tp = tp.unwrap();
                assert_eq!(tp.owner, Owner::Dom(d));
                assert!(tp.validated, "L{level}e of {m:?} points at unvalidated {t:?}");
                if tp.ty == p.ty {
                    assert_eq!(e & PAGE_RW, 0, "RW linear entry");
                    linear[m.0 as usize] += 1;
                    linear[t.0 as usize] -= 1;
                } else {
                    assert_eq!(tp.ty.level(), Some(level - 1));
                }
                count[t.0 as usize] += 1;
                tcount[t.0 as usize] += 1;
            }
        }
    }
    for (m, p) in ft.iter() {
        let i = m.0 as usize;
        assert_eq!(p.count, count[i], "general count of {m:?}: {p:?}");
        assert_eq!(p.type_count, tcount[i], "type count of {m:?}: {p:?}");
        assert_eq!(p.linear_pt_count, linear[i], "linear count of {m:?}: {p:?}");
    }
}

fn assert_all_free(e: &Env) {
    for (m, p) in e.ft.iter() {
        let expect = match m.0 {
            0 | 1 | 3 => Owner::Xen,
            2 => Owner::Io,
            _ => Owner::None,
        };
        assert_eq!(p.owner, expect, "{m:?}: {p:?}");
        assert_eq!((p.count, p.type_count, p.pinned, p.validated), (0, 0, false, false), "{m:?}");
    }
}

// ------------------------------------------------------------------ building

#[test]
fn builds_and_pins_a_valid_hierarchy() {
    let e = Env::built();
    // alloc + pin + kernel base + RO mapping at VA 8 pages.
    assert_eq!((e.p(L4).count, e.p(L4).type_count), (4, 2));
    for t in [L3, L2, L1] {
        assert_eq!((e.p(t).count, e.p(t).type_count), (3, 1), "{t:?}");
        assert!(e.p(t).validated && !e.p(t).pinned);
    }
    assert!(e.p(L4).pinned);
    for i in 0..8 {
        let d = e.p(Mfn(DATA + i));
        assert_eq!((d.ty, d.count, d.type_count), (PageType::Writable, 2, 1));
    }
    // Xen's slots were filled; entries got _PAGE_USER (kernel entries also bit 52).
    assert_eq!(e.hw.mem[L4.0 as usize][256], XEN_SLOT_MARK | (256 << 12));
    assert_eq!(e.hw.mem[L1.0 as usize][0], pte(Mfn(DATA), RW | PAGE_USER | PAGE_GUEST_KERNEL));
    assert_eq!(e.hw.mem[L2.0 as usize][0], pte(L1, PT_FLAGS));
}

#[test]
fn guest_written_xen_slots_are_ignored_and_overwritten() {
    let mut e = Env::bare();
    e.write_initial_tables();
    // Garbage (a writable mapping of B's frame) in a Xen slot is not validated.
    e.hw.mem[L4.0 as usize][260] = pte(B_FRAME, PT_FLAGS);
    e.ft.pin_table(&mut e.hw, A, L4, PageType::L4).unwrap();
    assert_eq!(e.hw.mem[L4.0 as usize][260], XEN_SLOT_MARK | (260 << 12));
    e.audit();
}

#[test]
fn assign_refuses_used_frames() {
    let mut e = Env::bare();
    assert_eq!(e.ft.assign_frame(B, Mfn(8)), Err(Errno::EBUSY));
    assert_eq!(e.ft.assign_frame(B, M2P), Err(Errno::EBUSY));
    assert_eq!(e.ft.assign_frame(B, Mfn(NFRAMES as u64)), Err(Errno::EINVAL));
    assert_eq!(e.ft.assign_frame(DomId::SELF, Mfn(40)), Err(Errno::EINVAL));
    e.ft.assign_frame(B, Mfn(40)).unwrap();
}

// ------------------------------------------------------------------ refusals

#[test]
fn writable_mapping_of_a_page_table_is_ebusy() {
    let mut e = Env::built();
    for t in [L4, L3, L2, L1] {
        assert_eq!(e.mmu(upd(L1, 20, pte(t, RW))), Err(Errno::EBUSY), "{t:?}");
    }
    // Read-only is fine, and so is turning an existing RO mapping... RW is not (XSA-182).
    e.mmu(upd(L1, 20, pte(L2, RO))).unwrap();
    assert_eq!(e.mmu(upd(L1, 20, pte(L2, RW))), Err(Errno::EBUSY));
    assert_eq!(e.mmu(upd(L1, 9, pte(L3, RW | PAGE_DIRTY))), Err(Errno::EBUSY));
    // Whitelisted flags change on the fast path.
    e.mmu(upd(L1, 20, pte(L2, RO | PAGE_NX | PAGE_DIRTY))).unwrap();
    assert_eq!(e.p(L2).count, 4);
    // Same through the page-table validation path: an L1 that maps itself RW.
    e.hw.mem[SPARE.0 as usize][0] = pte(SPARE, RW);
    assert_eq!(e.ft.pin_table(&mut e.hw, A, SPARE, PageType::L1), Err(Errno::EBUSY));
    e.audit();
}

#[test]
fn mapping_another_domains_frame_is_refused() {
    let mut e = Env::built();
    assert_eq!(e.mmu(upd(L1, 20, pte(B_FRAME, RO))), Err(Errno::EBUSY));
    assert_eq!(e.mmu(upd(L1, 20, pte(B_FRAME, RW))), Err(Errno::EBUSY));
    // As a page table (B's frame as A's L1): not A's, -EINVAL.
    assert_eq!(e.mmu(upd(L2, 1, pte(B_FRAME, PT_FLAGS))), Err(Errno::EINVAL));
    // Free frames are nobody's.
    assert_eq!(e.mmu(upd(L1, 20, pte(Mfn(40), RO))), Err(Errno::EBUSY));
    // Updating B's frames at all.
    assert_eq!(e.mmu(upd(B_FRAME, 0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.p(B_FRAME).count, 1);
}

#[test]
fn mapping_beyond_ram_or_io_is_refused() {
    let mut e = Env::built();
    let far = Mfn(NFRAMES as u64 + 5);
    assert_eq!(e.mmu(upd(L1, 20, pte(far, RO))), Err(Errno::EPERM));
    assert_eq!(e.mmu(upd(L1, 20, pte(IO, RO))), Err(Errno::EPERM));
    assert_eq!(e.mmu(upd(L1, 20, PAGE_ADDR_MASK | RO)), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L2, 1, pte(far, PT_FLAGS))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L4, 1, pte(far, PT_FLAGS))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(far, 0, 0)), Err(Errno::EINVAL));
}

#[test]
fn hypervisor_frames_are_never_mappable() {
    let mut e = Env::built();
    assert_eq!(e.mmu(upd(L1, 20, pte(M2P, RO))), Err(Errno::EBUSY));
    assert_eq!(e.mmu(upd(L1, 20, pte(M2P, RW))), Err(Errno::EBUSY));
    assert_eq!(e.mmu(upd(L2, 1, pte(M2P, PT_FLAGS))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(M2P, 0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.mmu(MmuUpdate { ptr: M2P.addr() | MMU_MACHPHYS_UPDATE, val: 5 }), Err(Errno::EINVAL));
    // A lent hypervisor frame can be mapped by the borrower (RW if lent writable) but
    // never become a page table.
    e.ft.share_xen_frame(A, SHARED, true).unwrap();
    e.mmu(upd(L1, 20, pte(SHARED, RW))).unwrap();
    assert_eq!(e.op(ext(MMUEXT_PIN_L1_TABLE, SHARED.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.ft.release_frame(&mut e.hw, A, SHARED), Err(Errno::EINVAL));
}

#[test]
fn read_only_shared_frame_cannot_be_mapped_writable() {
    let mut e = Env::built();
    e.ft.share_xen_frame(A, SHARED, false).unwrap();
    e.audit();
    assert_eq!(e.mmu(upd(L1, 20, pte(SHARED, RW))), Err(Errno::EBUSY));
    e.mmu(upd(L1, 20, pte(SHARED, RO))).unwrap();
    assert_eq!(e.ft.share_xen_frame(B, SHARED, false), Err(Errno::EBUSY));
}

#[test]
fn reserved_flags_are_einval() {
    let mut e = Env::built();
    // No superpages (XSA-148), no PWT/PCD/G in L2-L4, bit 7 in L4.
    assert_eq!(e.mmu(upd(L2, 1, pte(SPARE, PT_FLAGS | PAGE_PSE))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L3, 1, pte(SPARE, PT_FLAGS | PAGE_PSE))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L4, 1, pte(SPARE, PT_FLAGS | PAGE_PSE))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L2, 1, pte(SPARE, PT_FLAGS | PAGE_GLOBAL))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L3, 1, pte(SPARE, PT_FLAGS | PAGE_PCD))), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L4, 1, pte(SPARE, PT_FLAGS | PAGE_PWT))), Err(Errno::EINVAL));
    // L1: cache attributes need I/O caps; bit 62 is the grant flag.
    for bad in [PAGE_PAT, PAGE_PCD, PAGE_PWT, PAGE_GNTTAB] {
        assert_eq!(e.mmu(upd(L1, 20, pte(SPARE, RW | bad))), Err(Errno::EINVAL), "{bad:#x}");
    }
    // Allowed: G, NX and software bits in an L1; software bits in upper levels.
    e.mmu(upd(L1, 20, pte(SPARE, RW | PAGE_GLOBAL | PAGE_NX | PAGE_AVAIL | (1 << 55)))).unwrap();
    e.mmu(upd(L2, 0, pte(L1, PT_FLAGS | PAGE_NX | PAGE_GNTTAB | PAGE_AVAIL))).unwrap();
    // A superpage in an L2 written by a builder fails validation too.
    let mut e = Env::bare();
    e.write_initial_tables();
    e.hw.mem[L2.0 as usize][1] = pte(SPARE, PT_FLAGS | PAGE_PSE);
    assert_eq!(e.ft.pin_table(&mut e.hw, A, L4, PageType::L4), Err(Errno::EINVAL));
    e.audit();
}

#[test]
fn type_change_while_in_use_is_refused() {
    let mut e = Env::built();
    let data = Mfn(DATA);
    // Mapped writable: cannot become any kind of table.
    for cmd in [MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE] {
        assert_eq!(e.op(ext(cmd, data.0, 0)), Err(Errno::EINVAL));
    }
    assert_eq!(e.mmu(upd(L2, 1, pte(data, PT_FLAGS))), Err(Errno::EINVAL));
    // An L1 in use cannot be used as an L2 or L3, nor become a base pointer.
    assert_eq!(e.op(ext(MMUEXT_PIN_L2_TABLE, L1.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.mmu(upd(L4, 1, pte(L1, PT_FLAGS))), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_NEW_BASEPTR, L1.0, 0)), Err(Errno::EINVAL));
    // Once the writable mapping is gone, the frame can become a table (with a flush).
    e.mmu(upd(L1, 0, 0)).unwrap();
    let flushes = e.hw.flushes;
    e.op(ext(MMUEXT_PIN_L1_TABLE, data.0, 0)).unwrap();
    assert!(e.hw.flushes > flushes, "type change without a TLB flush");
    assert_eq!(e.p(data).ty, PageType::L1);
    // ...and then cannot be mapped writable again.
    assert_eq!(e.mmu(upd(L1, 0, pte(data, RW))), Err(Errno::EBUSY));
}

#[test]
fn pin_twice_and_unpin_unpinned_are_einval() {
    let mut e = Env::built();
    let before = e.p(L4);
    assert_eq!(e.op(ext(MMUEXT_PIN_L4_TABLE, L4.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.p(L4), before);
    assert_eq!(e.op(ext(MMUEXT_UNPIN_TABLE, L3.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_UNPIN_TABLE, B_FRAME.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_PIN_L1_TABLE, B_FRAME.0, 0)), Err(Errno::EINVAL));
    e.op(ext(MMUEXT_PIN_L3_TABLE, L3.0, 0)).unwrap();
    assert_eq!(e.op(ext(MMUEXT_PIN_L3_TABLE, L3.0, 0)), Err(Errno::EINVAL));
    e.op(ext(MMUEXT_UNPIN_TABLE, L3.0, 0)).unwrap();
    assert_eq!(e.op(ext(MMUEXT_UNPIN_TABLE, L3.0, 0)), Err(Errno::EINVAL));
}

#[test]
fn l4_update_in_a_xen_slot_is_einval() {
    let mut e = Env::built();
    for s in [256, 260, 271] {
        assert_eq!(e.mmu(upd(L4, s, 0)), Err(Errno::EINVAL));
        assert_eq!(e.mmu(upd(L4, s, pte(SPARE, PT_FLAGS))), Err(Errno::EINVAL));
    }
    e.mmu(upd(L4, 272, 0)).unwrap();
    e.mmu(upd(L4, 255, 0)).unwrap();
}

#[test]
fn update_va_mapping_walks_and_checks() {
    let mut e = Env::built();
    // VA 20 pages: L1 slot 20, no mapping yet.
    let va = 20 << 12;
    assert_eq!(e.uvm(va, pte(SPARE, RW), UVMF_INVLPG | UVMF_LOCAL), Ok(Flush::InvlpgLocal(va)));
    assert_eq!(e.p(SPARE).ty, PageType::Writable);
    assert_eq!(e.uvm(va, pte(SPARE, RO), UVMF_TLB_FLUSH | UVMF_ALL), Ok(Flush::TlbAll));
    assert_eq!(e.p(SPARE).type_count, 0);
    assert_eq!(e.uvm(va, 0, UVMF_TLB_FLUSH | 0x1000), Ok(Flush::TlbMulti { vcpumask: 0x1000 }));
    assert_eq!(e.uvm(va, 0, UVMF_INVLPG | UVMF_ALL), Ok(Flush::InvlpgAll(va)));
    assert_eq!(e.uvm(va, 0, UVMF_NONE), Ok(Flush::None));
    assert_eq!(e.uvm(va, 0, 3), Ok(Flush::None));
    // Same refusals as mmu_update.
    assert_eq!(e.uvm(va, pte(L3, RW), UVMF_INVLPG), Err(Errno::EBUSY));
    assert_eq!(e.uvm(va, pte(B_FRAME, RO), UVMF_INVLPG), Err(Errno::EBUSY));
    // No L1 (or L2, L3) for the address: -EINVAL.
    assert_eq!(e.uvm(1 << 21, pte(SPARE, RO), 0), Err(Errno::EINVAL));
    assert_eq!(e.uvm(1 << 30, pte(SPARE, RO), 0), Err(Errno::EINVAL));
    assert_eq!(e.uvm(1 << 39, pte(SPARE, RO), 0), Err(Errno::EINVAL));
    // Xen's range and non-canonical addresses.
    assert_eq!(e.uvm(0xffff_8000_0000_0000, 0, 0), Err(Errno::EINVAL));
    assert_eq!(e.uvm(0x0000_8000_0000_0000, 0, 0), Err(Errno::EINVAL));
    // An L2 entry pointing at an L2 (linear): the frame found is not an L1.
    e.mmu(upd(L3, 1, pte(L3, RO))).unwrap();
    assert_eq!(e.uvm((1 << 30) | (1 << 21), 0, 0), Err(Errno::EINVAL));
    // No base at all.
    e.va.kernel_l4 = None;
    assert_eq!(e.ft.update_va_mapping(&mut e.hw, A, Mfn(0), va, 0, 0), Err(Errno::EINVAL));
    e.va.kernel_l4 = Some(L4);
}

#[test]
fn unknown_commands() {
    let mut e = Env::built();
    for cmd in 4..8 {
        assert_eq!(e.mmu(MmuUpdate { ptr: ptr(L1, 20) | cmd, val: 0 }), Err(Errno::ENOSYS));
    }
    for cmd in [14, 21, 22, 1000, u32::MAX] {
        assert_eq!(e.op(ext(cmd, L1.0, 0)), Err(Errno::ENOSYS), "{cmd}");
    }
    assert_eq!(e.op(ext(MMUEXT_MARK_SUPER, L1.0, 0)), Err(Errno::EOPNOTSUPP));
    assert_eq!(e.op(ext(MMUEXT_UNMARK_SUPER, L1.0, 0)), Err(Errno::EOPNOTSUPP));
    assert_eq!(e.op(ext(MMUEXT_FLUSH_CACHE, 0, 0)), Err(Errno::EACCES));
    assert_eq!(e.op(ext(MMUEXT_FLUSH_CACHE_GLOBAL, 0, 0)), Err(Errno::EINVAL));
}

#[test]
fn flush_ops_return_requests() {
    let mut e = Env::built();
    let f = |e: &mut Env, cmd, a1, a2| e.op(ext(cmd, a1, a2)).unwrap().flush;
    assert_eq!(f(&mut e, MMUEXT_TLB_FLUSH_LOCAL, 0, 0), Flush::TlbLocal);
    assert_eq!(f(&mut e, MMUEXT_INVLPG_LOCAL, 0x5000, 0), Flush::InvlpgLocal(0x5000));
    assert_eq!(f(&mut e, MMUEXT_INVLPG_LOCAL, 0x8000_0000_0000, 0), Flush::None);
    assert_eq!(f(&mut e, MMUEXT_TLB_FLUSH_MULTI, 0, 0x99), Flush::TlbMulti { vcpumask: 0x99 });
    assert_eq!(
        f(&mut e, MMUEXT_INVLPG_MULTI, 0x5000, 0x99),
        Flush::InvlpgMulti { va: 0x5000, vcpumask: 0x99 }
    );
    assert_eq!(f(&mut e, MMUEXT_TLB_FLUSH_ALL, 0, 0), Flush::TlbAll);
    assert_eq!(f(&mut e, MMUEXT_INVLPG_ALL, 0x5000, 0), Flush::InvlpgAll(0x5000));
    assert_eq!(f(&mut e, MMUEXT_INVLPG_ALL, 0xffff_8000_0000_1000, 0), Flush::None);
}

#[test]
fn set_ldt_checks_arguments() {
    let mut e = Env::built();
    assert_eq!(e.op(ext(MMUEXT_SET_LDT, 0x1234, 1)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_SET_LDT, 0x1000, 8193)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_SET_LDT, 0xffff_8000_0000_0000, 1)), Err(Errno::EINVAL));
    let r = e.op(ext(MMUEXT_SET_LDT, 0x1000, 8192)).unwrap();
    assert!(r.reload_ldt);
    assert_eq!((e.va.ldt_base, e.va.ldt_ents), (0x1000, 8192));
    assert!(!e.op(ext(MMUEXT_SET_LDT, 0x1000, 8192)).unwrap().reload_ldt);
    // Zero entries: the base is ignored (even a misaligned one).
    assert!(e.op(ext(MMUEXT_SET_LDT, 0x1234, 0)).unwrap().reload_ldt);
    assert_eq!((e.va.ldt_base, e.va.ldt_ents), (0, 0));
}

#[test]
fn segdesc_typing_uses_the_arch_check() {
    let mut e = Env::built();
    // A TSS descriptor is refused (nothing kept); a page of zeros is fine.
    e.hw.mem[SPARE.0 as usize][3] = 0x0000_8900_0000_0067;
    assert_eq!(e.ft.get_segdesc_page(&mut e.hw, A, SPARE), Err(Errno::EINVAL));
    assert_eq!(e.p(SPARE).count, 1);
    e.hw.mem[SPARE.0 as usize][3] = 0;
    assert_eq!(e.ft.get_segdesc_page(&mut e.hw, A, SPARE), Ok(()));
    e.ft.put_segdesc_page(&mut e.hw, SPARE);
    assert_eq!(e.ft.get_segdesc_page(&mut e.hw, A, L1), Err(Errno::EINVAL));
}

#[test]
fn ldt_fault_classification() {
    let vm = VcpuMm { ldt_base: 0x10000, ldt_ents: 600, ..Default::default() };
    assert_eq!(ldt_fault(&vm, 0x18), LdtFault::Map { page: 0, linear: 0x10018 });
    assert_eq!(ldt_fault(&vm, 0x1008), LdtFault::Map { page: 1, linear: 0x11008 });
    // Past the entries (the CPU's limit check makes this a #GP first; never mapped).
    assert_eq!(ldt_fault(&vm, 600 * 8), LdtFault::PageFault { linear: 0x10000 + 600 * 8 });
    // An LDT ending past canonical space: #GP with the selector's index and TI.
    let top = VcpuMm { ldt_base: 0x7fff_ffff_f000, ldt_ents: 8192, ..Default::default() };
    assert_eq!(ldt_fault(&top, 0xff8), LdtFault::Map { page: 0, linear: 0x7fff_ffff_fff8 });
    assert_eq!(ldt_fault(&top, 0x1008), LdtFault::GeneralProtection(0x100c));
}

#[test]
fn ldt_pages_are_typed_when_mapped_and_released() {
    let mut e = Env::built();
    let map = |e: &mut Env, l1e| e.ft.map_ldt_page(&mut e.hw, A, l1e);
    // Not present, another domain's frame, a page table, a frame mapped writable.
    assert_eq!(map(&mut e, pte(SPARE, RO) & !PAGE_PRESENT), None);
    assert_eq!(map(&mut e, pte(B_FRAME, RO)), None);
    assert_eq!(map(&mut e, pte(L1, RO)), None);
    assert_eq!(map(&mut e, pte(Mfn(DATA), RO)), None);
    // A refused descriptor (a TSS) refuses the page; those before it are written back
    // checked, as Xen does.
    e.hw.mem[SPARE.0 as usize][0] = 0x00cf_9200_0000_ffff;
    e.hw.mem[SPARE.0 as usize][1] = 0x0000_8900_0000_0067;
    assert_eq!(map(&mut e, pte(SPARE, RO)), None);
    assert_eq!(e.hw.mem[SPARE.0 as usize][0], 0x00cf_f200_0000_ffff);
    assert_eq!(e.p(SPARE).count, 1);
    e.hw.mem[SPARE.0 as usize][1] = 0;
    let mut pages: LdtPages = [None; LDT_PAGES];
    pages[3] = map(&mut e, pte(SPARE, RO));
    assert_eq!(pages[3], Some(SPARE));
    assert_eq!((e.p(SPARE).page_type(), e.p(SPARE).type_count(), e.p(SPARE).count), (PageType::SegDesc, 1, 2));
    // While it is an LDT page, no writable mapping of it.
    // (Straight to the table: the audit counts only what page tables hold.)
    assert!(e.ft.update_va_mapping(&mut e.hw, A, L4, 0, pte(SPARE, RW), 0).is_err());
    assert!(e.ft.release_ldt_pages(&mut e.hw, &mut pages));
    assert_eq!(pages, [None; LDT_PAGES]);
    assert_eq!((e.p(SPARE).type_count(), e.p(SPARE).count), (0, 1));
    assert!(!e.ft.release_ldt_pages(&mut e.hw, &mut pages));
    assert_eq!(e.uvm(0, pte(SPARE, RW), 0), Ok(Flush::None));
}

// ------------------------------------------------------------------ success paths

#[test]
fn refcounts_return_to_zero_after_unmapping_and_unpinning() {
    let mut e = Env::built();
    // Unmap everything the L1 maps.
    for i in 0..12 {
        e.mmu(upd(L1, i, 0)).unwrap();
    }
    for i in 0..8 {
        let d = e.p(Mfn(DATA + i));
        assert_eq!((d.count, d.type_count), (1, 0));
    }
    // Cut the L2 -> L1 link: L1 loses its only type ref and is devalidated.
    e.mmu(upd(L2, 0, 0)).unwrap();
    assert_eq!((e.p(L1).count, e.p(L1).type_count, e.p(L1).validated), (1, 0, false));
    // Drop the base pointer and the pin: everything falls back to the allocation ref.
    let mut user = e.va;
    e.ft.new_user_baseptr(&mut e.hw, A, &mut user, 0).unwrap();
    e.op(ext(MMUEXT_UNPIN_TABLE, L4.0, 0)).unwrap();
    assert_eq!(e.p(L4).type_count, 1);
    let old = e.va.kernel_l4.take().unwrap();
    e.ft.put_page_and_type(&mut e.hw, old);
    e.audit();
    for m in 8..24 {
        let p = e.p(Mfn(m));
        // Writable frames stay validated (nothing to check); tables are devalidated.
        let validated = p.ty == PageType::Writable;
        assert_eq!((p.count, p.type_count, p.validated, p.pinned), (1, 0, validated, false), "{m}");
    }
}

#[test]
fn new_baseptr_switches_references() {
    let mut e = Env::built();
    // A second L4 sharing the L3.
    let l4b = Mfn(21);
    e.hw.mem[l4b.0 as usize][0] = pte(L3, PT_FLAGS);
    let r = e.op(ext(MMUEXT_NEW_BASEPTR, l4b.0, 0)).unwrap();
    assert!(r.reload_cr3);
    assert_eq!(e.va.kernel_l4, Some(l4b));
    assert_eq!((e.p(l4b).count, e.p(l4b).type_count), (2, 1));
    assert_eq!((e.p(L4).count, e.p(L4).type_count), (3, 1));
    assert_eq!(e.p(L3).type_count, 2);
    // User base: install, replace with none.
    e.op(ext(MMUEXT_NEW_USER_BASEPTR, L4.0, 0)).unwrap();
    assert_eq!(e.p(L4).type_count, 2);
    e.op(ext(MMUEXT_NEW_USER_BASEPTR, 0, 0)).unwrap();
    assert_eq!(e.va.user_l4, None);
    assert_eq!(e.p(L4).type_count, 1);
    // Refused: other domain's frame, a frame in use as another type.
    assert_eq!(e.op(ext(MMUEXT_NEW_BASEPTR, B_FRAME.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_NEW_USER_BASEPTR, Mfn(DATA).0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.va.kernel_l4, Some(l4b));
}

#[test]
fn plain_writes_to_writable_frames() {
    let mut e = Env::built();
    e.mmu(upd(SPARE, 7, 0xdead_beef)).unwrap();
    assert_eq!(e.hw.mem[SPARE.0 as usize][7], 0xdead_beef);
    assert_eq!(e.p(SPARE).ty, PageType::Writable);
    e.mmu(upd(Mfn(DATA), 3, 42)).unwrap();
    assert_eq!(e.hw.mem[DATA as usize][3], 42);
    // An unreferenced ex-page-table is untyped again: plain write allowed.
    e.mmu(upd(L2, 0, 0)).unwrap();
    e.mmu(upd(L1, 0, 0x1234)).unwrap();
    assert_eq!(e.hw.mem[L1.0 as usize][0], 0x1234);
}

#[test]
fn preserve_ad_keeps_accessed_and_dirty() {
    let mut e = Env::built();
    let i = 2;
    e.hw.mem[L1.0 as usize][i] |= PAGE_DIRTY; // set by "hardware"
    let cmd = MMU_PT_UPDATE_PRESERVE_AD;
    e.mmu(MmuUpdate { ptr: ptr(L1, i) | cmd, val: pte(Mfn(DATA + 2), PAGE_PRESENT | PAGE_RW) })
        .unwrap();
    assert_ne!(e.hw.mem[L1.0 as usize][i] & PAGE_DIRTY, 0);
    e.mmu(MmuUpdate {
        ptr: ptr(L1, i) | MMU_PT_UPDATE_NO_TRANSLATE,
        val: pte(Mfn(DATA + 2), PAGE_PRESENT | PAGE_RW),
    })
    .unwrap();
    assert_eq!(e.hw.mem[L1.0 as usize][i] & PAGE_DIRTY, 0);
}

#[test]
fn machphys_update_sets_the_m2p_of_owned_frames() {
    let mut e = Env::built();
    e.mmu(MmuUpdate { ptr: SPARE.addr() | 0x18 | MMU_MACHPHYS_UPDATE, val: 77 }).unwrap();
    assert_eq!(e.hw.m2p[SPARE.0 as usize], 77);
    assert_eq!(
        e.mmu(MmuUpdate { ptr: B_FRAME.addr() | MMU_MACHPHYS_UPDATE, val: 1 }),
        Err(Errno::EINVAL)
    );
    assert_eq!(e.hw.m2p[B_FRAME.0 as usize], 0);
}

#[test]
fn linear_page_tables_read_only_same_level() {
    let mut e = Env::built();
    // Self-map of the L4, read-only: allowed, takes no references.
    let before = e.p(L4);
    e.mmu(upd(L4, 300, pte(L4, RO | PAGE_USER))).unwrap();
    assert_eq!(e.p(L4).count, before.count);
    assert_eq!(e.p(L4).type_count, before.type_count);
    // Writable self-map: refused.
    assert_eq!(e.mmu(upd(L4, 301, pte(L4, RW))), Err(Errno::EINVAL));
    // A second L4 mapping the first read-only: type and general ref on the first.
    let l4b = Mfn(21);
    e.op(ext(MMUEXT_PIN_L4_TABLE, l4b.0, 0)).unwrap();
    e.mmu(upd(l4b, 5, pte(L4, RO))).unwrap();
    assert_eq!(e.p(L4).type_count, before.type_count + 1);
    assert_eq!((e.p(l4b).linear_pt_count, e.p(L4).linear_pt_count), (1, -1));
    // XSA-240: a table used linearly cannot get linear entries, and vice versa.
    assert_eq!(e.mmu(upd(L4, 6, pte(l4b, RO))), Err(Errno::EINVAL));
    let l4c = Mfn(22);
    e.op(ext(MMUEXT_PIN_L4_TABLE, l4c.0, 0)).unwrap();
    assert_eq!(e.mmu(upd(l4c, 5, pte(l4b, RO))), Err(Errno::EINVAL));
    // An empty untyped frame simply becomes an L3.
    e.mmu(upd(l4b, 6, pte(Mfn(23), RO))).unwrap();
    assert_eq!(e.p(Mfn(23)).ty, PageType::L3);
    // Linear to an L4 that is no longer validated (unpinned, unreferenced): refused
    // (and it does not validate as an L3 either: its Xen slots hold Xen's entries).
    e.op(ext(MMUEXT_UNPIN_TABLE, l4c.0, 0)).unwrap();
    assert_eq!(e.mmu(upd(l4b, 7, pte(l4c, RO))), Err(Errno::EINVAL));
    // Dropping the linear entry restores everything.
    e.mmu(upd(l4b, 5, 0)).unwrap();
    assert_eq!((e.p(l4b).linear_pt_count, e.p(L4).linear_pt_count), (0, 0));
    assert_eq!(e.p(L4).type_count, before.type_count);
    // Linear at L2 and L3 too.
    e.mmu(upd(L3, 7, pte(L3, RO))).unwrap();
    e.mmu(upd(L2, 7, pte(L2, RO))).unwrap();
    // When the linear reference is the last one, dropping it devalidates the target.
    e.mmu(upd(l4b, 5, pte(L4, RO))).unwrap();
    e.op(ext(MMUEXT_UNPIN_TABLE, L4.0, 0)).unwrap();
    e.op(ext(MMUEXT_NEW_BASEPTR, l4c.0, 0)).unwrap();
    assert_eq!(e.p(L4).type_count, 1);
    e.mmu(upd(l4b, 5, 0)).unwrap();
    assert!(!e.p(L4).validated);
    assert_eq!(e.p(L3).type_count, 0);
}

#[test]
fn validation_failure_rolls_back() {
    let mut e = Env::bare();
    e.write_initial_tables();
    // Slot 0 fine; slot 3 maps B's frame: L1 validation fails and undoes slots 0..3.
    e.hw.mem[L1.0 as usize][20] = pte(B_FRAME, RO);
    assert_eq!(e.ft.pin_table(&mut e.hw, A, L4, PageType::L4), Err(Errno::EBUSY));
    e.audit();
    for m in 8..24 {
        let p = e.p(Mfn(m));
        assert_eq!((p.count, p.type_count), (1, 0), "{m}");
    }
    // Fix it; now it pins.
    e.hw.mem[L1.0 as usize][20] = 0;
    e.ft.pin_table(&mut e.hw, A, L4, PageType::L4).unwrap();
    e.audit();
}

#[test]
fn cyclic_tables_are_refused() {
    let mut e = Env::bare();
    // L4 -> L3 whose entry points back at the L4 as an L2.
    e.hw.mem[L4.0 as usize][0] = pte(L3, PT_FLAGS);
    e.hw.mem[L3.0 as usize][0] = pte(L4, PT_FLAGS);
    assert_eq!(e.ft.pin_table(&mut e.hw, A, L4, PageType::L4), Err(Errno::EINVAL));
    e.audit();
}

#[test]
fn clear_and_copy_page() {
    let mut e = Env::built();
    e.hw.mem[SPARE.0 as usize] = [7; ENTRIES];
    e.op(ext(MMUEXT_COPY_PAGE, 21, SPARE.0)).unwrap();
    assert_eq!(e.hw.mem[21], [7; ENTRIES]);
    e.op(ext(MMUEXT_CLEAR_PAGE, SPARE.0, 0)).unwrap();
    assert_eq!(e.hw.mem[SPARE.0 as usize], [0; ENTRIES]);
    assert_eq!(e.op(ext(MMUEXT_CLEAR_PAGE, L1.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_COPY_PAGE, L2.0, SPARE.0)), Err(Errno::EINVAL));
    assert_eq!(e.op(ext(MMUEXT_COPY_PAGE, SPARE.0, B_FRAME.0)), Err(Errno::EINVAL));
}

// ------------------------------------------------------------------ teardown

#[test]
fn teardown_frees_every_frame() {
    let mut e = Env::built();
    // Make it messy: linear entries, a self-map, a pinned L1 mapping itself read-only,
    // a user base, a lent hypervisor frame mapped RW, a released-but-referenced frame.
    e.mmu(upd(L4, 300, pte(L4, RO))).unwrap();
    e.hw.mem[SPARE.0 as usize][0] = pte(SPARE, RO);
    e.op(ext(MMUEXT_PIN_L1_TABLE, SPARE.0, 0)).unwrap();
    e.mmu(upd(L2, 1, pte(SPARE, PT_FLAGS))).unwrap();
    e.op(ext(MMUEXT_PIN_L4_TABLE, 21, 0)).unwrap();
    e.mmu(upd(Mfn(21), 2, pte(L4, RO))).unwrap();
    e.op(ext(MMUEXT_NEW_USER_BASEPTR, 21, 0)).unwrap();
    e.ft.share_xen_frame(A, SHARED, true).unwrap();
    e.mmu(upd(L1, 30, pte(SHARED, RW))).unwrap();
    e.ft.release_frame(&mut e.hw, A, Mfn(DATA + 1)).unwrap();
    e.audit();
    assert_eq!(e.p(Mfn(DATA + 1)).owner, Owner::Dom(A), "still mapped");
    // B too.
    let mut vb = [VcpuMm::default()];
    e.hw.mem[B_FRAME.0 as usize + 1][0] = pte(B_FRAME, RW);
    e.ft.pin_table(&mut e.hw, B, Mfn(B_FRAME.0 + 1), PageType::L1).unwrap();

    let mut va = [e.va];
    let r = e.ft.release_domain(&mut e.hw, A, &mut va);
    assert_eq!(r, ReleaseReport { freed: 17, leaked: 0 });
    assert_eq!(va[0], VcpuMm::default());
    let r = e.ft.release_domain(&mut e.hw, B, &mut vb);
    assert_eq!(r, ReleaseReport { freed: 8, leaked: 0 });
    assert_all_free(&e);
}

#[test]
fn release_frame_frees_once_unreferenced() {
    let mut e = Env::built();
    e.ft.release_frame(&mut e.hw, A, SPARE).unwrap();
    assert!(e.p(SPARE).is_free());
    assert_eq!(e.ft.release_frame(&mut e.hw, A, SPARE), Err(Errno::EINVAL));
    let data = Mfn(DATA);
    e.ft.release_frame(&mut e.hw, A, data).unwrap();
    assert_eq!(e.ft.release_frame(&mut e.hw, A, data), Err(Errno::EINVAL));
    e.audit();
    e.mmu(upd(L1, 0, 0)).unwrap();
    assert!(e.p(data).is_free());
    // Gone from A: can't be mapped again.
    assert_eq!(e.mmu(upd(L1, 0, pte(data, RO))), Err(Errno::EBUSY));
}

// ------------------------------------------------------------------ property test

#[derive(Clone, Debug)]
enum Op {
    Mmu { mfn: u64, idx: usize, cmd: u64, val: u64 },
    Ext { cmd: u32, mfn: u64, arg2: u64 },
    Uvm { va: u64, val: u64, flags: u64 },
    Release { mfn: u64 },
}

fn any_mfn() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 8u64..24, 1 => 0u64..NFRAMES as u64 + 4, 1 => any::<u64>()]
}

fn any_idx() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..4, 1 => Just(255usize), 1 => Just(256usize), 1 => 0usize..ENTRIES]
}

fn any_pte() -> impl Strategy<Value = u64> {
    let flags = prop_oneof![
        Just(0u64),
        Just(RO),
        Just(RW),
        Just(PT_FLAGS),
        Just(PAGE_PRESENT | PAGE_USER),
        Just(PT_FLAGS | PAGE_PSE),
        Just(RW | PAGE_GLOBAL),
        Just(RO | PAGE_NX | PAGE_DIRTY),
        Just(RW | PAGE_PCD),
        any::<u64>().prop_map(|v| v & PAGE_FLAGS_MASK),
    ];
    prop_oneof![
        9 => (any_mfn(), flags).prop_map(|(m, f)| pte_from(Mfn(m), f)),
        1 => any::<u64>(),
    ]
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any_mfn(), any_idx(), prop_oneof![6 => Just(0u64), 1 => 0u64..8], any_pte())
            .prop_map(|(mfn, idx, cmd, val)| Op::Mmu { mfn, idx, cmd, val }),
        4 => (prop_oneof![6 => 0u32..6, 1 => 0u32..22, 1 => any::<u32>()], any_mfn(), any::<u64>())
            .prop_map(|(cmd, mfn, arg2)| Op::Ext { cmd, mfn, arg2 }),
        2 => (prop_oneof![4 => 0u64..(64 << 12), 1 => any::<u64>()], any_pte(), any::<u64>())
            .prop_map(|(va, val, flags)| Op::Uvm { va, val, flags }),
        1 => any_mfn().prop_map(|mfn| Op::Release { mfn }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_invariants(start_built in any::<bool>(),
                                         ops in prop::collection::vec(any_op(), 1..60)) {
        let mut e = if start_built { Env::built() } else { Env::bare() };
        if !start_built {
            e.write_initial_tables();
        }
        for op in ops {
            match op {
                Op::Mmu { mfn, idx, cmd, val } => {
                    let ptr = (mfn << 12).wrapping_add(idx as u64 * 8) | cmd;
                    let _ = e.ft.mmu_update_one(&mut e.hw, A, MmuUpdate { ptr, val });
                }
                Op::Ext { cmd, mfn, arg2 } => {
                    // For SET_LDT/INVLPG, arg1 is an address: reuse mfn as one too.
                    let arg1 = if cmd == MMUEXT_SET_LDT || cmd == MMUEXT_INVLPG_LOCAL { mfn << 12 } else { mfn };
                    let _ = e.ft.mmuext_op_one(&mut e.hw, A, &mut e.va, &ext(cmd, arg1, arg2));
                }
                Op::Uvm { va, val, flags } => {
                    if let Some(l4) = e.va.kernel_l4 {
                        let _ = e.ft.update_va_mapping(&mut e.hw, A, l4, va, val, flags);
                    }
                }
                Op::Release { mfn } => {
                    let _ = e.ft.release_frame(&mut e.hw, A, Mfn(mfn));
                }
            }
            e.audit();
        }
        // B was never touched.
        for m in 24..32 {
            let p = e.p(Mfn(m));
            prop_assert_eq!((p.owner, p.count, p.type_count), (Owner::Dom(B), 1, 0));
        }
        let mut v = [e.va];
        let r = e.ft.release_domain(&mut e.hw, A, &mut v);
        prop_assert_eq!(r.leaked, 0);
        let mut vb = [VcpuMm::default()];
        e.ft.release_domain(&mut e.hw, B, &mut vb);
        assert_all_free(&e);
    }
}

#[test]
fn grant_mappings_hold_the_granters_frame_and_release_it() {
    let mut e = Env::built();
    let before = *e.ft.page(B_FRAME).unwrap();
    // A maps B's frame writable through a grant at L1 slot 20.
    e.ft.grant_map(&mut e.hw, A, B, L1, 20, B_FRAME, true).unwrap();
    assert_eq!(e.hw.mem[L1.0 as usize][20] & PAGE_ADDR_MASK, B_FRAME.addr());
    let mapped = *e.ft.page(B_FRAME).unwrap();
    assert_eq!(mapped.count(), before.count() + 1);
    assert_eq!(mapped.page_type(), PageType::Writable);
    // While mapped writable, B can't turn the frame into a page table.
    assert!(e.ft.pin_table(&mut e.hw, B, B_FRAME, PageType::L1).is_err());
    // The wrong frame, the wrong L1 or a frame B doesn't own are refused.
    assert_eq!(e.ft.grant_unmap(&mut e.hw, A, L1, 20, Mfn(25)), Err(Errno::EINVAL));
    assert_eq!(e.ft.grant_map(&mut e.hw, A, B, L2, 20, B_FRAME, false), Err(Errno::EINVAL));
    assert_eq!(e.ft.grant_map(&mut e.hw, A, B, L1, 21, Mfn(DATA), false), Err(Errno::EINVAL));
    // A writable grant of one of A's own page tables is refused.
    assert_eq!(e.ft.grant_map(&mut e.hw, A, A, L1, 21, L2, true), Err(Errno::EBUSY));
    e.ft.grant_unmap(&mut e.hw, A, L1, 20, B_FRAME).unwrap();
    assert_eq!(e.hw.mem[L1.0 as usize][20], 0);
    let after = *e.ft.page(B_FRAME).unwrap();
    assert_eq!((after.count(), after.type_count()), (before.count(), before.type_count()));
    e.audit();
}

#[test]
fn a_grant_mapping_zapped_by_a_pte_write_releases_its_references() {
    let mut e = Env::built();
    let before = *e.ft.page(B_FRAME).unwrap();
    e.ft.grant_map(&mut e.hw, A, B, L1, 20, B_FRAME, false).unwrap();
    e.mmu(upd(L1, 20, 0)).unwrap();
    assert_eq!(e.ft.page(B_FRAME).unwrap().count(), before.count());
    assert_eq!(e.ft.grant_unmap(&mut e.hw, A, L1, 20, B_FRAME), Err(Errno::EINVAL));
    e.audit();
}

#[test]
fn a_grant_mapping_in_a_table_that_lost_its_type_is_not_released_twice() {
    // Found by the concurrent property test: the L1 holding a grant mapping stops
    // being a page table (its L4 slot is cleared, so the whole chain loses its type and
    // every entry's references go); unmapping the grant afterwards must not release
    // the granter's frame a second time (Xen: "Grant PTE is not an L1 page table").
    let mut e = Env::built();
    let before = *e.ft.page(B_FRAME).unwrap();
    e.ft.grant_map(&mut e.hw, A, B, L1, 20, B_FRAME, true).unwrap();
    e.ft.mmu_update_one(&mut e.hw, A, upd(L4, 0, 0)).unwrap();
    assert!(!e.p(L1).validated);
    let after_zap = *e.ft.page(B_FRAME).unwrap();
    assert_eq!((after_zap.count(), after_zap.type_count()), (before.count(), before.type_count()));
    assert_eq!(e.ft.grant_unmap(&mut e.hw, A, L1, 20, B_FRAME), Err(Errno::EINVAL));
    let p = *e.ft.page(B_FRAME).unwrap();
    assert_eq!((p.count(), p.type_count()), (before.count(), before.type_count()));
}

#[test]
fn frame_refs_for_hypervisor_writes_follow_xens_rules() {
    let mut e = Env::built();
    // gnttab_copy_claim_buf / map_vcpu_info: a page table refuses the writable type...
    for t in [L1, L2, L3, L4] {
        assert_eq!(e.ft.get_frame_ref(&mut e.hw, A, t, true), Err(FrameRefError::NotWritable));
    }
    // ...but may be read (general reference only).
    let r = e.ft.get_frame_ref(&mut e.hw, A, L1, false).unwrap();
    assert!(!r.writable());
    assert!(!e.ft.put_frame_ref(&mut e.hw, r));
    e.audit();
    // Frames A does not own: B's, the hypervisor's, I/O, beyond the table.
    for m in [B_FRAME, M2P, IO, Mfn(NFRAMES as u64 + 5)] {
        for w in [false, true] {
            assert_eq!(e.ft.get_frame_ref(&mut e.hw, A, m, w), Err(FrameRefError::NotOwned), "{m:?}");
        }
    }
    // A held writable reference: the frame can't become a page table, and survives
    // being given back (decrease_reservation) until the reference goes.
    let r = e.ft.get_frame_ref(&mut e.hw, A, SPARE, true).unwrap();
    assert_eq!(r.mfn(), SPARE);
    assert_eq!(e.ft.pin_table(&mut e.hw, A, SPARE, PageType::L1), Err(Errno::EINVAL));
    e.ft.release_frame(&mut e.hw, A, SPARE).unwrap();
    assert!(!e.ft.page(SPARE).unwrap().is_free());
    assert!(e.ft.put_frame_ref(&mut e.hw, r), "last reference frees the frame");
    assert!(e.ft.page(SPARE).unwrap().is_free());
    e.audit();
}

// ------------------------------------------------------------------ foreign domains

#[test]
fn foreign_l1_mapping_holds_the_other_domains_frame() {
    let mut e = Env::built();
    // A (the toolstack) maps B's frame through its own L1 with foreigndom = B.
    e.ft.mmu_update_one_foreign(&mut e.hw, A, B, upd(L1, 20, pte(B_FRAME, RW))).unwrap();
    let p = e.p(B_FRAME);
    assert_eq!((p.count, p.ty, p.type_count), (2, PageType::Writable, 1));
    // A's own frame is not B's: refused as for any other domain's frame.
    assert_eq!(e.ft.mmu_update_one_foreign(&mut e.hw, A, B, upd(L1, 21, pte(Mfn(DATA), RO))), Err(Errno::EBUSY));
    // Upper levels never take another domain's frames.
    assert_eq!(e.ft.mmu_update_one_foreign(&mut e.hw, A, B, upd(L2, 1, pte(B_FRAME, PT_FLAGS))), Err(Errno::EINVAL));
    // B's M2P entries through foreigndom; A's frames are not B's.
    e.ft.mmu_update_one_foreign(&mut e.hw, A, B, MmuUpdate { ptr: B_FRAME.addr() | MMU_MACHPHYS_UPDATE, val: 7 }).unwrap();
    assert_eq!(e.hw.m2p[B_FRAME.0 as usize], 7);
    assert_eq!(
        e.ft.mmu_update_one_foreign(&mut e.hw, A, B, MmuUpdate { ptr: Mfn(DATA).addr() | MMU_MACHPHYS_UPDATE, val: 7 }),
        Err(Errno::EINVAL)
    );
    // B goes away while A still maps its frame: the frame outlives B until A unmaps it.
    let mut none: [VcpuMm; 0] = [];
    let r = e.ft.release_domain(&mut e.hw, B, &mut none);
    assert_eq!(r.leaked, 1);
    assert_eq!(e.p(B_FRAME).owner, Owner::Dom(B));
    e.ft.mmu_update_one(&mut e.hw, A, upd(L1, 20, 0)).unwrap();
    assert!(e.p(B_FRAME).is_free());
}

#[test]
fn foreign_pins_act_on_the_other_domains_tables() {
    let mut e = Env::bare();
    // B's one-level "hierarchy": an L1 mapping one of B's frames read-only.
    let l1 = Mfn(25);
    e.hw.mem[l1.0 as usize][0] = pte(Mfn(26), RO);
    e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_PIN_L1_TABLE, l1.0, 0)).unwrap();
    assert!(e.p(l1).pinned && e.p(l1).validated);
    assert_eq!(e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_PIN_L1_TABLE, l1.0, 0)), Err(Errno::EINVAL));
    // A's frames are not B's to pin.
    assert_eq!(e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_PIN_L1_TABLE, SPARE.0, 0)), Err(Errno::EINVAL));
    assert_eq!(e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_NEW_BASEPTR, l1.0, 0)), Err(Errno::EPERM));
    assert_eq!(e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0)), Ok(()));
    e.ft.mmuext_op_foreign(&mut e.hw, B, &ext(MMUEXT_UNPIN_TABLE, l1.0, 0)).unwrap();
    assert!(!e.p(l1).pinned);
    assert_eq!(e.p(Mfn(26)).count, 1);
}

// ------------------------------------------------------------------ concurrent operations

/// B's tables (its frames are 24..32): the same shape as A's, one level each, with its
/// data frames 28..32 mapped at VA 0.
const B_L4: Mfn = Mfn(24);
const B_L1: Mfn = Mfn(27);

/// The frame table as the hypervisor shares it between CPUs: one lock, each operation
/// whole under it (`pv::mmu::with`).
struct SharedMm {
    ft: FrameTable<Vec<PageInfo>>,
    hw: FakeHw,
    va: [VcpuMm; 2],
    grants: Vec<GrantPte>,
}

#[derive(Clone, Debug)]
enum ConcOp {
    Own(Op),
    /// Map the other domain's data frame `frame % 4` at slot `idx` of this domain's L1.
    GrantMap { idx: usize, frame: u64, writable: bool },
    /// Undo this domain's `n % len`th grant mapping.
    GrantUnmap { n: usize },
}

fn any_conc_op() -> impl Strategy<Value = ConcOp> {
    prop_oneof![
        6 => any_op().prop_map(ConcOp::Own),
        2 => (prop_oneof![3 => 16usize..24, 1 => 0usize..ENTRIES], any::<u64>(), any::<bool>())
            .prop_map(|(idx, frame, writable)| ConcOp::GrantMap { idx, frame, writable }),
        1 => any::<usize>().prop_map(|n| ConcOp::GrantUnmap { n }),
    ]
}

/// Moves an MFN the generator biased to A's frames (8..24) onto B's (24..32).
fn for_b(m: u64) -> u64 {
    if (8..24).contains(&m) { 24 + (m - 8) % 8 } else { m }
}

impl SharedMm {
    fn new() -> SharedMm {
        let Env { mut ft, mut hw, va } = Env::built();
        let m = &mut hw.mem;
        m[B_L4.0 as usize][0] = pte(Mfn(25), PT_FLAGS);
        m[25][0] = pte(Mfn(26), PT_FLAGS);
        m[26][0] = pte(B_L1, PT_FLAGS);
        for (i, e) in m[B_L1.0 as usize][..4].iter_mut().enumerate() {
            *e = pte(Mfn(28 + i as u64), RW);
        }
        let mut vb = VcpuMm::default();
        ft.pin_table(&mut hw, B, B_L4, PageType::L4).unwrap();
        ft.new_baseptr(&mut hw, B, &mut vb, B_L4).unwrap();
        SharedMm { ft, hw, va: [va, vb], grants: Vec::new() }
    }

    fn audit(&self) {
        audit_with_grants(&self.ft, &self.hw, &self.va, &self.grants);
    }

    /// One operation of domain `who` (0: A, 1: B), whole, as one hypercall's piece.
    fn apply(&mut self, who: usize, op: &ConcOp) {
        let (me, other, l1, other_data) = if who == 0 { (A, B, L1, 28) } else { (B, A, B_L1, DATA) };
        let m = |x: u64| if who == 0 { x } else { for_b(x) };
        let SharedMm { ft, hw, va, grants } = self;
        match *op {
            ConcOp::Own(Op::Mmu { mfn, idx, cmd, val }) => {
                let ptr = (m(mfn) << 12).wrapping_add(idx as u64 * 8) | cmd;
                let val = if val & PAGE_PRESENT != 0 { pte_from(Mfn(m(pte_mfn(val).0)), val & PAGE_FLAGS_MASK) } else { val };
                let _ = ft.mmu_update_one(hw, me, MmuUpdate { ptr, val });
            }
            ConcOp::Own(Op::Ext { cmd, mfn, arg2 }) => {
                let arg1 = if cmd == MMUEXT_SET_LDT || cmd == MMUEXT_INVLPG_LOCAL { mfn << 12 } else { m(mfn) };
                let _ = ft.mmuext_op_one(hw, me, &mut va[who], &ext(cmd, arg1, arg2));
            }
            ConcOp::Own(Op::Uvm { va: at, val, flags }) => {
                if let Some(l4) = va[who].kernel_l4 {
                    let _ = ft.update_va_mapping(hw, me, l4, at, val, flags);
                }
            }
            ConcOp::Own(Op::Release { mfn }) => {
                let _ = ft.release_frame(hw, me, Mfn(m(mfn)));
            }
            ConcOp::GrantMap { idx, frame, writable } => {
                let frame = Mfn(other_data + frame % 4);
                if ft.grant_map(hw, me, other, l1, idx, frame, writable).is_ok() {
                    grants.push((l1, idx, frame));
                }
            }
            ConcOp::GrantUnmap { n } => {
                let mine: Vec<usize> = (0..grants.len()).filter(|&i| grants[i].0 == l1).collect();
                if !mine.is_empty() {
                    let (g_l1, idx, frame) = grants.remove(mine[n % mine.len()]);
                    let _ = ft.grant_unmap(hw, me, g_l1, idx, frame);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Two domains on two CPUs: each thread is one domain's vCPU doing page-table work,
    /// grant mappings of the other's frames and frame releases, interleaved as the
    /// threads happen to run, each operation whole under the one frame-table lock.
    /// After every operation every count matches the tables; at the end, with the
    /// grants unmapped and both domains released, every frame is free.
    #[test]
    fn concurrent_operations_of_two_domains_keep_invariants(
        ops_a in prop::collection::vec(any_conc_op(), 1..80),
        ops_b in prop::collection::vec(any_conc_op(), 1..80),
    ) {
        let shared = std::sync::Mutex::new(SharedMm::new());
        std::thread::scope(|s| {
            for (who, ops) in [(0usize, &ops_a), (1, &ops_b)] {
                let shared = &shared;
                s.spawn(move || {
                    for op in ops {
                        let mut g = shared.lock().unwrap();
                        g.apply(who, op);
                        g.audit();
                        drop(g);
                        std::thread::yield_now();
                    }
                });
            }
        });
        let mut e = shared.into_inner().unwrap();
        for (l1, idx, frame) in core::mem::take(&mut e.grants) {
            let mapper = if l1 == L1 { A } else { B };
            let _ = e.ft.grant_unmap(&mut e.hw, mapper, l1, idx, frame);
        }
        e.audit();
        let [mut va, mut vb] = e.va;
        prop_assert_eq!(e.ft.release_domain(&mut e.hw, A, core::slice::from_mut(&mut va)).leaked, 0);
        prop_assert_eq!(e.ft.release_domain(&mut e.hw, B, core::slice::from_mut(&mut vb)).leaked, 0);
        for (m, p) in e.ft.iter() {
            let expect = match m.0 {
                0 | 1 | 3 => Owner::Xen,
                2 => Owner::Io,
                _ => Owner::None,
            };
            prop_assert_eq!(p.owner, expect, "{:?}: {:?}", m, p);
            prop_assert_eq!((p.count, p.type_count, p.pinned, p.validated), (0, 0, false, false), "{:?}", m);
        }
    }
}

