//! The guest-visible PV MMU operations (one request each: the hypercall layer loops,
//! copies requests from guest memory and reports `pdone`) and the helpers the domain
//! builder and domain teardown need.

use xen_abi::xen::{
    MmuUpdate, MmuextOp, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE, MMUEXT_FLUSH_CACHE,
    MMUEXT_FLUSH_CACHE_GLOBAL, MMUEXT_INVLPG_ALL, MMUEXT_INVLPG_LOCAL, MMUEXT_INVLPG_MULTI,
    MMUEXT_MARK_SUPER, MMUEXT_NEW_BASEPTR, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE, MMUEXT_SET_LDT,
    MMUEXT_TLB_FLUSH_ALL, MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_TLB_FLUSH_MULTI, MMUEXT_UNMARK_SUPER,
    MMUEXT_UNPIN_TABLE, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_NO_TRANSLATE,
    MMU_PT_UPDATE_PRESERVE_AD, UVMF_ALL, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_LOCAL,
    UVMF_TLB_FLUSH,
};
use xen_abi::{DomId, Errno, Mfn};

use super::page_info::{FrameTable, Owner, PageInfo, PageType};
use super::pagetable::{
    addr_ok, adjust_guest_l1e, adjust_guest_upper, is_canonical, is_guest_l4_slot,
    needs_revalidation, present, pte_mfn, table_offset, ENTRIES, PAGE_ACCESSED,
    PAGE_DIRTY, PAGE_PRESENT, PAGE_PSE, PAGE_RW, PAGE_USER,
};
use super::refs::disallow_mask;
use super::Frames;

/// `MMUEXT_SET_LDT`: most LDT entries Xen accepts.
const LDT_MAX_ENTS: u32 = 8192;

/// The per-vCPU MMU state the arch layer keeps: `guest_table`, `guest_table_user` and
/// the LDT set with `MMUEXT_SET_LDT`. Each base pointer holds a general and an L4 type
/// reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuMm {
    /// Kernel page-table base (`MMUEXT_NEW_BASEPTR`).
    pub kernel_l4: Option<Mfn>,
    /// User page-table base (`MMUEXT_NEW_USER_BASEPTR`; `None` = none).
    pub user_l4: Option<Mfn>,
    /// LDT linear base (0 when `ldt_ents` is 0).
    pub ldt_base: u64,
    /// LDT entry count.
    pub ldt_ents: u32,
}

/// A TLB flush the arch layer must perform after a successful operation. The
/// `vcpumask` fields are guest pointers to a bitmap of vCPUs (`unsigned long` words);
/// if it cannot be read the arch layer returns `-EFAULT` for `update_va_mapping` and
/// `-EINVAL` for `mmuext_op` (Xen's `vcpumask_to_pcpumask`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flush {
    /// Nothing.
    #[default]
    None,
    /// Full flush of this CPU's TLB.
    TlbLocal,
    /// `invlpg va` on this CPU.
    InvlpgLocal(u64),
    /// Full flush on the CPUs of the vCPUs in the bitmap.
    TlbMulti {
        /// Guest pointer to the vCPU bitmap.
        vcpumask: u64,
    },
    /// `invlpg va` on the CPUs of the vCPUs in the bitmap.
    InvlpgMulti {
        /// Address to invalidate.
        va: u64,
        /// Guest pointer to the vCPU bitmap.
        vcpumask: u64,
    },
    /// Full flush on every CPU the domain has run on.
    TlbAll,
    /// `invlpg va` on every CPU the domain has run on.
    InvlpgAll(u64),
}

/// What a successful `mmuext_op` asks of the arch layer besides a flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextEffect {
    /// TLB flush to perform.
    pub flush: Flush,
    /// The vCPU's base pointer changed (or was re-set): reload CR3 from
    /// [`VcpuMm::kernel_l4`] / [`VcpuMm::user_l4`] as appropriate, destroying any
    /// shadow LDT mappings first (`pv_destroy_ldt`, then `write_ptbase`).
    pub reload_cr3: bool,
    /// The vCPU's LDT changed: destroy shadow LDT mappings (dropping their descriptor
    /// type references with [`FrameTable::put_segdesc_page`]), flush the local TLB if
    /// any were mapped, and load the new LDT from [`VcpuMm::ldt_base`]/`ldt_ents`.
    pub reload_ldt: bool,
}

/// Outcome of [`FrameTable::release_domain`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// Frames that became free (or went back to the hypervisor).
    pub freed: usize,
    /// Frames still owned by the domain afterwards (references leaked: a bug).
    pub leaked: usize,
}

/// Why [`FrameTable::get_frame_ref`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameRefError {
    /// Not a frame the domain owns (free, the hypervisor's, another domain's, I/O,
    /// beyond RAM): Xen's `get_page_from_gfn` finds no page.
    NotOwned,
    /// Owned, but it cannot take the writable type: a page table, a descriptor page,
    /// a read-only shared frame (Xen's `get_page_type(page, PGT_writable_page)` fails).
    NotWritable,
}

/// A reference the hypervisor holds on a guest frame it reads or writes itself (the
/// two sides of a grant copy, a registered `vcpu_info`): a general reference, plus a
/// writable type reference when it writes. Taken by [`FrameTable::get_frame_ref`],
/// dropped by [`FrameTable::put_frame_ref`]; while held, the frame can neither be
/// freed nor become a page table or descriptor page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a held frame reference must be given back with put_frame_ref"]
pub struct FrameRef {
    mfn: Mfn,
    writable: bool,
}

impl FrameRef {
    /// The frame held.
    pub fn mfn(self) -> Mfn {
        self.mfn
    }

    /// Whether the writable type is held (the hypervisor may write the frame).
    pub fn writable(self) -> bool {
        self.writable
    }
}

fn flush_request(flags: u64, va: u64) -> Flush {
    let mask = flags & !UVMF_FLUSHTYPE_MASK;
    match flags & UVMF_FLUSHTYPE_MASK {
        UVMF_TLB_FLUSH => match mask {
            UVMF_LOCAL => Flush::TlbLocal,
            UVMF_ALL => Flush::TlbAll,
            vcpumask => Flush::TlbMulti { vcpumask },
        },
        UVMF_INVLPG => match mask {
            UVMF_LOCAL => Flush::InvlpgLocal(va),
            UVMF_ALL => Flush::InvlpgAll(va),
            vcpumask => Flush::InvlpgMulti { va, vcpumask },
        },
        _ => Flush::None,
    }
}

impl<S: AsRef<[PageInfo]> + AsMut<[PageInfo]>> FrameTable<S> {
    fn write<F: Frames>(hw: &mut F, mfn: Mfn, idx: usize, val: u64, preserve_ad: bool) {
        if preserve_ad {
            hw.write_entry_preserve_ad(mfn, idx, val);
        } else {
            hw.write_entry(mfn, idx, val);
        }
    }

    /// `mod_l1_entry`: entry `idx` of L1 `table` (typed, locked by the caller) := `new`,
    /// a mapping of a frame of `pg_owner`.
    #[allow(clippy::too_many_arguments)]
    fn mod_l1_entry<F: Frames>(
        &mut self,
        hw: &mut F,
        table: Mfn,
        idx: usize,
        new: u64,
        dom: DomId,
        pg_owner: DomId,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let old = hw.read_entry(table, idx);
        if present(new) {
            if new & self.l1_disallow_mask(dom) != 0 {
                return Err(Errno::EINVAL);
            }
            // Fast path: same frame, same RW/present/cache bits: same references.
            if !needs_revalidation(old, new) {
                Self::write(hw, table, idx, adjust_guest_l1e(new), preserve_ad);
                return Ok(());
            }
            self.get_page_from_l1e_of(hw, new, dom, pg_owner)?;
            Self::write(hw, table, idx, adjust_guest_l1e(new), preserve_ad);
        } else {
            Self::write(hw, table, idx, new, preserve_ad);
        }
        self.put_page_from_l1e(hw, old);
        Ok(())
    }

    /// `mod_l{2,3,4}_entry`: entry `idx` of the level-`level` table `table` := `new`.
    #[allow(clippy::too_many_arguments)]
    fn mod_upper_entry<F: Frames>(
        &mut self,
        hw: &mut F,
        table: Mfn,
        idx: usize,
        new: u64,
        level: u8,
        dom: DomId,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        if level == 4 && !is_guest_l4_slot(idx) {
            return Err(Errno::EINVAL);
        }
        let old = hw.read_entry(table, idx);
        if present(new) {
            if new & disallow_mask(level) != 0 {
                return Err(Errno::EINVAL);
            }
            if !needs_revalidation(old, new) {
                Self::write(hw, table, idx, adjust_guest_upper(new), preserve_ad);
                return Ok(());
            }
            self.get_page_from_upper(hw, new, level, table, dom)?;
            Self::write(hw, table, idx, adjust_guest_upper(new), preserve_ad);
        } else {
            Self::write(hw, table, idx, new, preserve_ad);
        }
        self.put_page_from_upper(hw, old, table);
        Ok(())
    }

    /// `page_lock`: a validated frame with a type reference gets one more for the
    /// duration of an update. False otherwise.
    fn lock_page(&mut self, mfn: Mfn) -> bool {
        match self.page_mut(mfn) {
            Some(p) if p.validated && p.type_count > 0 && p.type_count < u32::MAX - 1 => {
                p.type_count += 1;
                true
            }
            _ => false,
        }
    }

    /// One `mmu_update` request from `dom` (page tables and data pages both `dom`'s).
    ///
    /// `MMU_NORMAL_PT_UPDATE` / `MMU_PT_UPDATE_PRESERVE_AD` / `MMU_PT_UPDATE_NO_TRANSLATE`
    /// (the same as normal for PV): `ptr` is the machine address of an entry in a frame
    /// of `dom`; a validated page table gets a checked update at its level, a writable
    /// (or untyped) frame a plain write. `MMU_MACHPHYS_UPDATE`: M2P entry of a frame of
    /// `dom` := `val`. Other commands: `-ENOSYS`.
    pub fn mmu_update_one<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        req: MmuUpdate,
    ) -> Result<(), Errno> {
        self.mmu_update_one_foreign(hw, dom, dom, req)
    }

    /// One `mmu_update` request from `dom` with `foreigndom` = `pg_owner` (Xen's
    /// `do_mmu_update` with `pt_owner` = `dom`): the page table is `dom`'s; an L1 entry
    /// written maps a frame of `pg_owner`, upper-level updates are refused (`-EINVAL`)
    /// unless `pg_owner` is `dom`, and `MMU_MACHPHYS_UPDATE` names a frame of
    /// `pg_owner`. The caller checked that `dom` may act on `pg_owner`.
    pub fn mmu_update_one_foreign<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        pg_owner: DomId,
        req: MmuUpdate,
    ) -> Result<(), Errno> {
        let cmd = req.cmd();
        match cmd {
            MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE => {
                let ptr = req.ptr - cmd;
                let mfn = Mfn::containing(ptr);
                let idx = ((ptr & 0xFFF) >> 3) as usize;
                let preserve_ad = cmd == MMU_PT_UPDATE_PRESERVE_AD;
                if !self.get_page(mfn, dom) {
                    return Err(Errno::EINVAL);
                }
                let rc = if self.lock_page(mfn) {
                    let ty = self.page(mfn).map_or(PageType::None, |p| p.ty);
                    let rc = match ty {
                        PageType::L1 => self.mod_l1_entry(hw, mfn, idx, req.val, dom, pg_owner, preserve_ad),
                        PageType::L2 | PageType::L3 | PageType::L4 if pg_owner != dom => Err(Errno::EINVAL),
                        PageType::L2 | PageType::L3 | PageType::L4 => {
                            let level = ty.level().unwrap_or(4);
                            self.mod_upper_entry(hw, mfn, idx, req.val, level, dom, preserve_ad)
                        }
                        PageType::Writable => {
                            hw.write_entry(mfn, idx, req.val);
                            Ok(())
                        }
                        _ => Err(Errno::EINVAL),
                    };
                    self.put_page_type(hw, mfn, None);
                    rc
                } else if self.get_page_type(hw, mfn, PageType::Writable).is_ok() {
                    hw.write_entry(mfn, idx, req.val);
                    self.put_page_type(hw, mfn, None);
                    Ok(())
                } else {
                    Err(Errno::EINVAL)
                };
                self.put_page(mfn);
                rc
            }
            MMU_MACHPHYS_UPDATE => {
                let mfn = Mfn::containing(req.ptr);
                if !self.get_page(mfn, pg_owner) {
                    return Err(Errno::EINVAL);
                }
                hw.set_m2p(mfn, req.val);
                self.put_page(mfn);
                Ok(())
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// Reads entry `idx` of `mfn` if it is a frame of `dom`.
    fn read_owned<F: Frames>(&self, hw: &F, dom: DomId, mfn: Mfn, idx: usize) -> Option<u64> {
        match self.page(mfn) {
            Some(p) if p.owner == Owner::Dom(dom) => Some(hw.read_entry(mfn, idx)),
            _ => None,
        }
    }

    /// `update_va_mapping`: the L1 entry mapping `va` in the tables rooted at `l4`
    /// (the vCPU's current base) := `val`, with the checks of an L1 update. `-EINVAL`
    /// if `va` is non-canonical or in Xen's range, if any level on the way is missing
    /// (or the L2 entry is a superpage), or if the frame found is not a validated L1.
    /// On success, returns the flush `flags` ask for.
    pub fn update_va_mapping<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        l4: Mfn,
        va: u64,
        val: u64,
        flags: u64,
    ) -> Result<Flush, Errno> {
        if !addr_ok(va) {
            return Err(Errno::EINVAL);
        }
        // map_guest_l1e(): walk L4 -> L3 -> L2 as the hardware (Xen's linear map) would.
        let l4e = self.read_owned(hw, dom, l4, table_offset(va, 4)).ok_or(Errno::EINVAL)?;
        if !present(l4e) {
            return Err(Errno::EINVAL);
        }
        let l3e =
            self.read_owned(hw, dom, pte_mfn(l4e), table_offset(va, 3)).ok_or(Errno::EINVAL)?;
        if l3e & (PAGE_PRESENT | PAGE_PSE) != PAGE_PRESENT {
            return Err(Errno::EINVAL);
        }
        let l2e =
            self.read_owned(hw, dom, pte_mfn(l3e), table_offset(va, 2)).ok_or(Errno::EINVAL)?;
        if l2e & (PAGE_PRESENT | PAGE_PSE) != PAGE_PRESENT {
            return Err(Errno::EINVAL);
        }
        let l1 = pte_mfn(l2e);
        if !self.get_page(l1, dom) {
            return Err(Errno::EINVAL);
        }
        let rc = if self.page(l1).is_some_and(|p| p.ty == PageType::L1) && self.lock_page(l1) {
            let rc = self.mod_l1_entry(hw, l1, table_offset(va, 1), val, dom, dom, false);
            self.put_page_type(hw, l1, None);
            rc
        } else {
            Err(Errno::EINVAL)
        };
        self.put_page(l1);
        rc.map(|()| flush_request(flags, va))
    }

    /// `MMUEXT_PIN_L{1,2,3,4}_TABLE` on a frame of `dom`: take a type reference of
    /// `ty` (validating the table) and mark it pinned. `-EINVAL` if not `dom`'s or
    /// already pinned; else the validation error.
    pub fn pin_table<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        mfn: Mfn,
        ty: PageType,
    ) -> Result<(), Errno> {
        if !ty.is_page_table() {
            return Err(Errno::EINVAL);
        }
        self.get_page_and_type(hw, mfn, ty, dom)?;
        match self.page_mut(mfn) {
            Some(p) if !p.pinned => {
                p.pinned = true;
                Ok(())
            }
            _ => {
                self.put_page_and_type(hw, mfn);
                Err(Errno::EINVAL)
            }
        }
    }

    /// `MMUEXT_UNPIN_TABLE`: `-EINVAL` if not `dom`'s or not pinned.
    pub fn unpin_table<F: Frames>(&mut self, hw: &mut F, dom: DomId, mfn: Mfn) -> Result<(), Errno> {
        if !self.get_page(mfn, dom) {
            return Err(Errno::EINVAL);
        }
        let was_pinned = match self.page_mut(mfn) {
            Some(p) if p.pinned => {
                p.pinned = false;
                true
            }
            _ => false,
        };
        if was_pinned {
            self.put_page_and_type(hw, mfn);
        }
        self.put_page(mfn);
        if was_pinned {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// `MMUEXT_NEW_BASEPTR` (`new_guest_cr3`): the vCPU's kernel base := `mfn`, an L4 of
    /// `dom` (type reference taken, validating it if needed); the old base's
    /// references are dropped. Re-setting the current base is a no-op.
    pub fn new_baseptr<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        vcpu: &mut VcpuMm,
        mfn: Mfn,
    ) -> Result<(), Errno> {
        if vcpu.kernel_l4 == Some(mfn) {
            return Ok(());
        }
        self.get_page_and_type(hw, mfn, PageType::L4, dom)?;
        if let Some(old) = vcpu.kernel_l4.replace(mfn) {
            self.put_page_and_type(hw, old);
        }
        Ok(())
    }

    /// `MMUEXT_NEW_USER_BASEPTR`: the vCPU's user base := `mfn` (0 = none).
    pub fn new_user_baseptr<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        vcpu: &mut VcpuMm,
        mfn: u64,
    ) -> Result<(), Errno> {
        let new = (mfn != 0).then_some(Mfn(mfn));
        if vcpu.user_l4 == new {
            return Ok(());
        }
        if let Some(m) = new {
            self.get_page_and_type(hw, m, PageType::L4, dom)?;
        }
        if let Some(old) = core::mem::replace(&mut vcpu.user_l4, new) {
            self.put_page_and_type(hw, old);
        }
        Ok(())
    }

    fn clear_page<F: Frames>(&mut self, hw: &mut F, dom: DomId, mfn: Mfn) -> Result<(), Errno> {
        self.get_page_and_type(hw, mfn, PageType::Writable, dom).map_err(|_| Errno::EINVAL)?;
        for i in 0..ENTRIES {
            hw.write_entry(mfn, i, 0);
        }
        self.put_page_and_type(hw, mfn);
        Ok(())
    }

    fn copy_page<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        dst: Mfn,
        src: Mfn,
    ) -> Result<(), Errno> {
        if !self.get_page(src, dom) {
            return Err(Errno::EINVAL);
        }
        if self.get_page_and_type(hw, dst, PageType::Writable, dom).is_err() {
            self.put_page(src);
            return Err(Errno::EINVAL);
        }
        for i in 0..ENTRIES {
            let v = hw.read_entry(src, i);
            hw.write_entry(dst, i, v);
        }
        self.put_page_and_type(hw, dst);
        self.put_page(src);
        Ok(())
    }

    /// One `mmuext_op` from `dom` running on the vCPU whose state is `vcpu`
    /// (pg_owner == the caller: `foreigndom` is not supported).
    pub fn mmuext_op_one<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        vcpu: &mut VcpuMm,
        op: &MmuextOp,
    ) -> Result<MmuextEffect, Errno> {
        let mut effect = MmuextEffect::default();
        match op.cmd {
            MMUEXT_PIN_L1_TABLE | MMUEXT_PIN_L2_TABLE | MMUEXT_PIN_L3_TABLE
            | MMUEXT_PIN_L4_TABLE => {
                let level = (op.cmd - MMUEXT_PIN_L1_TABLE + 1) as u8;
                let ty = PageType::table(level).ok_or(Errno::EINVAL)?;
                self.pin_table(hw, dom, Mfn(op.mfn()), ty)?;
            }
            MMUEXT_UNPIN_TABLE => self.unpin_table(hw, dom, Mfn(op.mfn()))?,
            MMUEXT_NEW_BASEPTR => {
                self.new_baseptr(hw, dom, vcpu, Mfn(op.mfn()))?;
                effect.reload_cr3 = true;
            }
            MMUEXT_NEW_USER_BASEPTR => {
                let before = vcpu.user_l4;
                self.new_user_baseptr(hw, dom, vcpu, op.mfn())?;
                effect.reload_cr3 = vcpu.user_l4 != before;
            }
            MMUEXT_TLB_FLUSH_LOCAL => effect.flush = Flush::TlbLocal,
            MMUEXT_INVLPG_LOCAL => {
                // paging_invlpg() ignores non-canonical addresses.
                let va = op.linear_addr();
                if is_canonical(va) {
                    effect.flush = Flush::InvlpgLocal(va);
                }
            }
            MMUEXT_TLB_FLUSH_MULTI => effect.flush = Flush::TlbMulti { vcpumask: op.vcpumask() },
            MMUEXT_INVLPG_MULTI => {
                // Xen reads the mask first (-EINVAL on a fault) and then skips the
                // flush for a bad address; here a bad address skips both.
                let va = op.linear_addr();
                if addr_ok(va) {
                    effect.flush = Flush::InvlpgMulti { va, vcpumask: op.vcpumask() };
                }
            }
            MMUEXT_TLB_FLUSH_ALL => effect.flush = Flush::TlbAll,
            MMUEXT_INVLPG_ALL => {
                let va = op.linear_addr();
                if addr_ok(va) {
                    effect.flush = Flush::InvlpgAll(va);
                }
            }
            // cache_flush_permitted() needs I/O capabilities, which no domain has here.
            MMUEXT_FLUSH_CACHE => return Err(Errno::EACCES),
            MMUEXT_FLUSH_CACHE_GLOBAL => return Err(Errno::EINVAL),
            MMUEXT_SET_LDT => {
                let ents = op.nr_ents();
                let base = if ents != 0 { op.linear_addr() } else { 0 };
                if base & 0xFFF != 0 || !addr_ok(base) || ents > LDT_MAX_ENTS {
                    return Err(Errno::EINVAL);
                }
                if vcpu.ldt_ents != ents || vcpu.ldt_base != base {
                    vcpu.ldt_base = base;
                    vcpu.ldt_ents = ents;
                    effect.reload_ldt = true;
                }
            }
            MMUEXT_CLEAR_PAGE => self.clear_page(hw, dom, Mfn(op.mfn()))?,
            MMUEXT_COPY_PAGE => self.copy_page(hw, dom, Mfn(op.mfn()), Mfn(op.src_mfn()))?,
            MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => return Err(Errno::EOPNOTSUPP),
            _ => return Err(Errno::ENOSYS),
        }
        Ok(effect)
    }

    /// One `mmuext_op` from a privileged domain with `foreigndom` = `pg_owner`, another
    /// domain (the toolstack pinning a new domain's tables): the pins and the unpin act
    /// on `pg_owner`'s frames; every other command is Xen's `-EPERM` for
    /// `currd != pg_owner`. The caller checked the privilege.
    pub fn mmuext_op_foreign<F: Frames>(
        &mut self,
        hw: &mut F,
        pg_owner: DomId,
        op: &MmuextOp,
    ) -> Result<(), Errno> {
        match op.cmd {
            MMUEXT_PIN_L1_TABLE | MMUEXT_PIN_L2_TABLE | MMUEXT_PIN_L3_TABLE
            | MMUEXT_PIN_L4_TABLE => {
                let level = (op.cmd - MMUEXT_PIN_L1_TABLE + 1) as u8;
                let ty = PageType::table(level).ok_or(Errno::EINVAL)?;
                self.pin_table(hw, pg_owner, Mfn(op.mfn()), ty)
            }
            MMUEXT_UNPIN_TABLE => self.unpin_table(hw, pg_owner, Mfn(op.mfn())),
            MMUEXT_NEW_BASEPTR | MMUEXT_NEW_USER_BASEPTR | MMUEXT_SET_LDT | MMUEXT_CLEAR_PAGE
            | MMUEXT_COPY_PAGE => Err(Errno::EPERM),
            MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => Err(Errno::EOPNOTSUPP),
            // Flushes do not look at the foreign domain (the caller flushes this CPU).
            MMUEXT_TLB_FLUSH_LOCAL | MMUEXT_INVLPG_LOCAL | MMUEXT_TLB_FLUSH_MULTI
            | MMUEXT_INVLPG_MULTI | MMUEXT_TLB_FLUSH_ALL | MMUEXT_INVLPG_ALL => Ok(()),
            MMUEXT_FLUSH_CACHE => Err(Errno::EACCES),
            MMUEXT_FLUSH_CACHE_GLOBAL => Err(Errno::EINVAL),
            _ => Err(Errno::ENOSYS),
        }
    }

    // ------------------------------------------------------------ builder and teardown

    /// Hands free frame `mfn` to `dom` (the allocation reference). `-EINVAL` beyond the
    /// table, `-EBUSY` if the frame is not free.
    pub fn assign_frame(&mut self, dom: DomId, mfn: Mfn) -> Result<(), Errno> {
        if !dom.is_ordinary() {
            return Err(Errno::EINVAL);
        }
        let p = self.page_mut(mfn).ok_or(Errno::EINVAL)?;
        if !p.is_free() || p.type_count != 0 {
            return Err(Errno::EBUSY);
        }
        *p = PageInfo { owner: Owner::Dom(dom), count: 1, allocated: true, ..PageInfo::FREE };
        Ok(())
    }

    /// `share_xen_page_with_guest`: lends hypervisor frame `mfn` (e.g. `shared_info`) to
    /// `dom`. A permanent type reference keeps it `Writable` (guest may map it RW) or
    /// untyped (read-only mappings only); either way it can never become a page table.
    /// It returns to the hypervisor when the domain is released.
    pub fn share_xen_frame(&mut self, dom: DomId, mfn: Mfn, writable: bool) -> Result<(), Errno> {
        if !dom.is_ordinary() {
            return Err(Errno::EINVAL);
        }
        let p = self.page_mut(mfn).ok_or(Errno::EINVAL)?;
        if p.owner != Owner::Xen || p.count != 0 || p.type_count != 0 {
            return Err(Errno::EBUSY);
        }
        *p = PageInfo {
            owner: Owner::Dom(dom),
            count: 1,
            allocated: true,
            xen_heap: true,
            ty: if writable { PageType::Writable } else { PageType::None },
            type_count: 1,
            validated: true,
            ..PageInfo::FREE
        };
        Ok(())
    }

    /// Takes a descriptor-page type reference (plus a general one) for a GDT/LDT
    /// mapping the arch layer installs; validated with [`Frames::validate_segdesc_frame`].
    pub fn get_segdesc_page<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        mfn: Mfn,
    ) -> Result<(), Errno> {
        self.get_page_and_type(hw, mfn, PageType::SegDesc, dom)
    }

    /// Drops a reference taken with [`Self::get_segdesc_page`].
    pub fn put_segdesc_page<F: Frames>(&mut self, hw: &mut F, mfn: Mfn) {
        if self.page(mfn).is_some_and(|p| p.ty == PageType::SegDesc && p.type_count > 0) {
            self.put_page_and_type(hw, mfn);
        }
    }

    /// Xen's `get_page_from_gfn` + (for `writable`) `get_page_type(PGT_writable_page)`,
    /// as `gnttab_copy_claim_buf` and `map_vcpu_info` take them: a general reference on
    /// a frame `dom` owns and, to write it, the writable type.
    pub fn get_frame_ref<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        mfn: Mfn,
        writable: bool,
    ) -> Result<FrameRef, FrameRefError> {
        if self.page(mfn).is_some_and(|p| p.owner == Owner::Io) || !self.get_page(mfn, dom) {
            return Err(FrameRefError::NotOwned);
        }
        if writable && self.get_page_type(hw, mfn, PageType::Writable).is_err() {
            self.put_page(mfn);
            return Err(FrameRefError::NotWritable);
        }
        Ok(FrameRef { mfn, writable })
    }

    /// Gives back a reference taken with [`Self::get_frame_ref`]. True if that was the
    /// frame's last reference (it is free now; the caller returns it to the allocator).
    pub fn put_frame_ref<F: Frames>(&mut self, hw: &mut F, r: FrameRef) -> bool {
        if r.writable {
            self.put_page_type(hw, r.mfn, None);
        }
        self.put_page(r.mfn);
        self.page(r.mfn).is_some_and(|p| p.is_free())
    }

    /// `guest_remove_page` (decrease_reservation): unpins the frame and drops its
    /// allocation reference; it is freed once nothing references it. `-EINVAL` if not
    /// `dom`'s, already released, or a shared hypervisor frame.
    pub fn release_frame<F: Frames>(&mut self, hw: &mut F, dom: DomId, mfn: Mfn) -> Result<(), Errno> {
        match self.page(mfn) {
            Some(p) if p.owner == Owner::Dom(dom) && p.allocated && !p.xen_heap => {}
            _ => return Err(Errno::EINVAL),
        }
        if !self.get_page(mfn, dom) {
            return Err(Errno::EINVAL);
        }
        if self.page(mfn).is_some_and(|p| p.pinned) {
            if let Some(p) = self.page_mut(mfn) {
                p.pinned = false;
            }
            self.put_page_and_type(hw, mfn);
        }
        if let Some(p) = self.page_mut(mfn) {
            p.allocated = false;
        }
        self.put_page(mfn);
        self.put_page(mfn);
        Ok(())
    }

    fn frames_of(&self, dom: DomId) -> impl Iterator<Item = Mfn> + '_ {
        self.iter().filter(move |(_, p)| p.owner == Owner::Dom(dom)).map(|(m, _)| m)
    }

    /// Releases everything `dom` holds (`domain_relinquish_resources`): the vCPUs' base
    /// pointers, pins, the references held by its page tables (top level first, like
    /// Xen's `relinquish_memory`, which also breaks reference cycles) and the
    /// allocation references. Afterwards every frame of `dom` should be free (shared
    /// hypervisor frames back with the hypervisor); the report says how many are not.
    pub fn release_domain<F: Frames>(
        &mut self,
        hw: &mut F,
        dom: DomId,
        vcpus: &mut [VcpuMm],
    ) -> ReleaseReport {
        let before = self.frames_of(dom).count();
        for v in vcpus.iter_mut() {
            for base in [v.kernel_l4.take(), v.user_l4.take()].into_iter().flatten() {
                if self.page(base).is_some_and(|p| p.type_count > 0 && p.count > 0) {
                    self.put_page_and_type(hw, base);
                }
            }
            v.ldt_base = 0;
            v.ldt_ents = 0;
        }
        let n = self.len() as u64;
        for m in (0..n).map(Mfn) {
            if self.page(m).is_some_and(|p| p.owner == Owner::Dom(dom) && p.pinned) {
                if let Some(p) = self.page_mut(m) {
                    p.pinned = false;
                }
                self.put_page_and_type(hw, m);
            }
        }
        for ty in [PageType::L4, PageType::L3, PageType::L2, PageType::L1] {
            for m in (0..n).map(Mfn) {
                let take = self.page(m).is_some_and(|p| {
                    p.owner == Owner::Dom(dom) && p.ty == ty && p.validated && p.count > 0
                });
                if take {
                    // Hold a reference so the frame survives its own devalidation.
                    if let Some(p) = self.page_mut(m) {
                        p.count += 1;
                        p.validated = false;
                    }
                    self.devalidate(hw, m, ty);
                    self.put_page(m);
                }
            }
        }
        for m in (0..n).map(Mfn) {
            let (alloc, xen_heap) = match self.page(m) {
                Some(p) if p.owner == Owner::Dom(dom) => (p.allocated, p.xen_heap),
                _ => continue,
            };
            if let Some(p) = self.page_mut(m) {
                if xen_heap && p.type_count > 0 {
                    // The sharing type reference.
                    p.type_count -= 1;
                }
                p.allocated = false;
            }
            if alloc {
                self.put_page(m);
            }
        }
        let leaked = self.frames_of(dom).count();
        ReleaseReport { freed: before - leaked, leaked }
    }
}

// ---------------------------------------------------------------- grant mappings

impl<S: AsRef<[PageInfo]> + AsMut<[PageInfo]>> FrameTable<S> {
    /// `create_grant_pv_mapping` for `GNTMAP_host_map`: points entry `idx` of `mapper`'s
    /// validated L1 `l1` at `frame`, which `granter` owns. The references taken have the
    /// same shape as an ordinary L1 entry's (general, plus writable type for a writable
    /// mapping), so a later PTE write or teardown releases them like any other entry.
    /// Errors: the L1 is not `mapper`'s validated L1 `-EINVAL`; the frame is not
    /// `granter`'s `-EINVAL`; a writable mapping of a frame that can't be writable
    /// (page table, descriptor page) `-EBUSY`.
    #[allow(clippy::too_many_arguments)]
    pub fn grant_map<F: Frames>(
        &mut self,
        hw: &mut F,
        mapper: DomId,
        granter: DomId,
        l1: Mfn,
        idx: usize,
        frame: Mfn,
        writable: bool,
    ) -> Result<(), Errno> {
        let l1_ok = self.page(l1).is_some_and(|p| {
            p.owner == Owner::Dom(mapper) && p.ty == PageType::L1 && p.validated && p.type_count > 0
        });
        if !l1_ok || idx >= ENTRIES {
            return Err(Errno::EINVAL);
        }
        let Some(p) = self.page_mut(frame) else { return Err(Errno::EINVAL) };
        if p.owner != Owner::Dom(granter) || p.count == 0 {
            return Err(Errno::EINVAL);
        }
        p.count += 1;
        if writable && self.get_page_type(hw, frame, PageType::Writable).is_err() {
            self.put_page(frame);
            return Err(Errno::EBUSY);
        }
        let flags = PAGE_PRESENT | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY | if writable { PAGE_RW } else { 0 };
        let old = hw.read_entry(l1, idx);
        hw.write_entry(l1, idx, (frame.0 << 12) | flags);
        self.put_page_from_l1e(hw, old);
        Ok(())
    }

    /// Undoes [`Self::grant_map`]: the entry must still map `frame`, in a table that is
    /// still a validated L1 — one that lost its type already gave back what its entries
    /// held, so its stale entry must not release the granter's frame again (Xen's
    /// "Grant PTE is not an L1 page table").
    pub fn grant_unmap<F: Frames>(&mut self, hw: &mut F, mapper: DomId, l1: Mfn, idx: usize, frame: Mfn) -> Result<(), Errno> {
        let l1_ok = self.page(l1).is_some_and(|p| {
            p.owner == Owner::Dom(mapper) && p.ty == PageType::L1 && p.validated && p.type_count > 0
        });
        if !l1_ok || idx >= ENTRIES {
            return Err(Errno::EINVAL);
        }
        let e = hw.read_entry(l1, idx);
        if !present(e) || pte_mfn(e) != frame {
            return Err(Errno::EINVAL);
        }
        hw.write_entry(l1, idx, 0);
        self.put_page_from_l1e(hw, e);
        Ok(())
    }
}
