//! Type references, validation and devalidation of page tables, and the references
//! page-table entries hold (`_get_page_type`, `_put_page_type`, `promote_l*_table`,
//! `demote_l*_table`, `get_page_from_l*e`, `put_page_from_l*e` and the linear-page-table
//! helpers of `xen/arch/x86/mm.c`).

use xen_abi::{DomId, Errno, Mfn};

use super::page_info::{FrameTable, Owner, PageInfo, PageType, COUNT_MAX};
use super::pagetable::{
    adjust_guest_l1e, adjust_guest_upper, is_guest_l4_slot, present, pte_mfn, ENTRIES,
    L1_DISALLOW_MASK, L2_DISALLOW_MASK, L3_DISALLOW_MASK, L4_DISALLOW_MASK, PAGE_ADDR_MASK,
    PAGE_RW,
};
use super::Frames;

/// Xen's `opt_pv_linear_pt` default (`pv-linear-pt=true`).
pub(crate) const LINEAR_PT_ENABLED: bool = true;

/// The flags a present entry of a level-`level` table may not carry.
pub(crate) const fn disallow_mask(level: u8) -> u64 {
    match level {
        1 => L1_DISALLOW_MASK,
        2 => L2_DISALLOW_MASK,
        3 => L3_DISALLOW_MASK,
        _ => L4_DISALLOW_MASK,
    }
}

/// Slots of a level-`level` table that belong to the guest.
pub(crate) const fn is_guest_slot(level: u8, slot: usize) -> bool {
    level != 4 || is_guest_l4_slot(slot)
}

impl<S: AsRef<[PageInfo]> + AsMut<[PageInfo]>> FrameTable<S> {
    fn owner_dom(&self, mfn: Mfn) -> Option<DomId> {
        match self.page(mfn)?.owner {
            Owner::Dom(d) => Some(d),
            _ => None,
        }
    }

    /// `_get_page_type`: take a type reference of type `ty` on `mfn` (the caller holds a
    /// general reference). Validates the contents on the first reference of a
    /// page-table or descriptor type. Errors: `-EINVAL` for a type conflict or
    /// overflow, or whatever validation of the contents returns.
    pub(crate) fn get_page_type<F: Frames>(
        &mut self,
        hw: &mut F,
        mfn: Mfn,
        ty: PageType,
    ) -> Result<(), Errno> {
        let Some(p) = self.page_mut(mfn) else { return Err(Errno::EINVAL) };
        if p.type_count >= COUNT_MAX || ty == PageType::None {
            return Err(Errno::EINVAL);
        }
        if p.type_count == 0 {
            if p.ty != ty {
                let old = p.ty;
                p.ty = ty;
                // Only writable pages need no scan of their contents.
                p.validated = ty == PageType::Writable;
                if old != PageType::None {
                    if let Owner::Dom(d) = p.owner {
                        hw.flush_tlbs(d);
                    }
                }
            }
        } else if p.ty != ty || !p.validated {
            // A different type is in use; or this frame is being validated further up
            // the current recursion (a cycle in the guest's tables).
            return Err(Errno::EINVAL);
        }
        p.type_count += 1;
        if p.validated {
            return Ok(());
        }
        match self.validate(hw, mfn, ty) {
            Ok(()) => {
                if let Some(p) = self.page_mut(mfn) {
                    p.validated = true;
                }
                Ok(())
            }
            Err(e) => {
                if let Some(p) = self.page_mut(mfn) {
                    p.ty = PageType::None;
                    p.type_count = 0;
                    p.validated = false;
                }
                Err(e)
            }
        }
    }

    /// `_put_page_type`: drop a type reference. `ptpg` is the page table whose entry
    /// held it, if any (for linear-page-table accounting). The last reference to a
    /// validated page table devalidates it, dropping what its entries held.
    pub(crate) fn put_page_type<F: Frames>(&mut self, hw: &mut F, mfn: Mfn, ptpg: Option<Mfn>) {
        let container_ty = ptpg.and_then(|t| self.page(t)).map(|t| t.ty);
        let Some(p) = self.page_mut(mfn) else { return };
        if p.type_count == 0 {
            debug_assert!(false, "put_page_type without a type reference");
            return;
        }
        p.type_count -= 1;
        let ty = p.ty;
        let linear = container_ty == Some(ty) && ty.is_page_table();
        if linear {
            // dec_linear_uses
            p.linear_pt_count = p.linear_pt_count.saturating_add(1).min(0);
        }
        let devalidate = p.type_count == 0 && ty.is_page_table() && p.validated;
        if devalidate {
            p.validated = false;
        }
        if linear {
            if let Some(t) = ptpg.and_then(|t| self.page_mut(t)) {
                // dec_linear_entries
                t.linear_pt_count = t.linear_pt_count.saturating_sub(1).max(0);
            }
        }
        if devalidate {
            self.devalidate(hw, mfn, ty);
        }
    }

    /// `get_page_and_type_from_mfn`: general plus type reference on a frame `dom`
    /// owns. `-EINVAL` if the frame is not `dom`'s; else `get_page_type`'s error.
    pub(crate) fn get_page_and_type<F: Frames>(
        &mut self,
        hw: &mut F,
        mfn: Mfn,
        ty: PageType,
        dom: DomId,
    ) -> Result<(), Errno> {
        if !self.get_page(mfn, dom) {
            return Err(Errno::EINVAL);
        }
        let r = self.get_page_type(hw, mfn, ty);
        if r.is_err() {
            self.put_page(mfn);
        }
        r
    }

    /// `put_page_and_type`
    pub(crate) fn put_page_and_type<F: Frames>(&mut self, hw: &mut F, mfn: Mfn) {
        self.put_page_type(hw, mfn, None);
        self.put_page(mfn);
    }

    /// `validate_page` / `promote_l*_table`: check every present entry of `mfn` for type
    /// `ty` and take the references they need; on failure, drop the ones taken.
    fn validate<F: Frames>(&mut self, hw: &mut F, mfn: Mfn, ty: PageType) -> Result<(), Errno> {
        if ty == PageType::SegDesc {
            return if hw.validate_segdesc_frame(mfn) { Ok(()) } else { Err(Errno::EINVAL) };
        }
        let Some(level) = ty.level() else { return Err(Errno::EINVAL) };
        let Some(dom) = self.owner_dom(mfn) else { return Err(Errno::EINVAL) };
        for i in 0..ENTRIES {
            if !is_guest_slot(level, i) {
                continue;
            }
            let e = hw.read_entry(mfn, i);
            if !present(e) {
                continue;
            }
            let r = if level == 1 {
                self.get_page_from_l1e(hw, e, dom)
            } else {
                self.get_page_from_upper(hw, e, level, mfn, dom)
            };
            if let Err(err) = r {
                for j in (0..i).rev() {
                    if is_guest_slot(level, j) {
                        let e = hw.read_entry(mfn, j);
                        self.put_page_from_entry(hw, e, level, mfn);
                    }
                }
                return Err(err);
            }
            let adjusted = if level == 1 { adjust_guest_l1e(e) } else { adjust_guest_upper(e) };
            if adjusted != e {
                hw.write_entry(mfn, i, adjusted);
            }
        }
        if level == 4 {
            hw.fill_xen_l4_slots(mfn);
        }
        Ok(())
    }

    /// `devalidate_page` / `demote_l*_table`: drop the references held by every guest
    /// entry of page table `mfn` of type `ty`.
    pub(crate) fn devalidate<F: Frames>(&mut self, hw: &mut F, mfn: Mfn, ty: PageType) {
        let Some(level) = ty.level() else { return };
        for i in 0..ENTRIES {
            if is_guest_slot(level, i) {
                let e = hw.read_entry(mfn, i);
                self.put_page_from_entry(hw, e, level, mfn);
            }
        }
    }

    /// `put_page_from_l1e` or `put_page_from_l{2,3,4}e` for an entry of a level-`level`
    /// table at `table`.
    pub(crate) fn put_page_from_entry<F: Frames>(
        &mut self,
        hw: &mut F,
        e: u64,
        level: u8,
        table: Mfn,
    ) {
        if level == 1 {
            self.put_page_from_l1e(hw, e);
        } else {
            self.put_page_from_upper(hw, e, table);
        }
    }

    /// `get_page_from_l1e` (l1e_owner == pg_owner == `dom`, no I/O capabilities).
    /// Errors: bad flags `-EINVAL`; a frame beyond RAM or I/O memory `-EPERM` (`-EINVAL`
    /// for the all-ones address); a frame that is free, the hypervisor's or another
    /// domain's, or a writable mapping of a frame that cannot take the writable type
    /// (a page table, descriptor page, read-only shared page) `-EBUSY`.
    pub(crate) fn get_page_from_l1e<F: Frames>(
        &mut self,
        hw: &mut F,
        e: u64,
        dom: DomId,
    ) -> Result<(), Errno> {
        self.get_page_from_l1e_of(hw, e, dom, dom)
    }

    /// `get_page_from_l1e(l1e, l1e_owner = dom, pg_owner)`: as above, but the frame
    /// mapped must be `pg_owner`'s (a privileged domain mapping another domain's frame
    /// with `mmu_update(..., foreigndom)`; the caller checked the privilege).
    pub(crate) fn get_page_from_l1e_of<F: Frames>(
        &mut self,
        hw: &mut F,
        e: u64,
        dom: DomId,
        pg_owner: DomId,
    ) -> Result<(), Errno> {
        if e & self.l1_disallow_mask(dom) != 0 {
            return Err(Errno::EINVAL);
        }
        let mfn = pte_mfn(e);
        let Some(p) = self.page_mut(mfn).filter(|p| p.owner != Owner::Io) else {
            // Not RAM: mappable (without references) only with iomem_access_permitted().
            if mfn != pte_mfn(PAGE_ADDR_MASK) && self.io.permits(dom, mfn) {
                return Ok(());
            }
            return Err(if mfn == pte_mfn(PAGE_ADDR_MASK) { Errno::EINVAL } else { Errno::EPERM });
        };
        // page_get_owner_and_reference(), then the owner check ("could_not_pin").
        if p.count == 0 || p.count >= COUNT_MAX || p.owner != Owner::Dom(pg_owner) {
            return Err(Errno::EBUSY);
        }
        p.count += 1;
        if e & PAGE_RW != 0 && self.get_page_type(hw, mfn, PageType::Writable).is_err() {
            self.put_page(mfn);
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// `put_page_from_l1e`
    pub(crate) fn put_page_from_l1e<F: Frames>(&mut self, hw: &mut F, e: u64) {
        if !present(e) {
            return;
        }
        let mfn = pte_mfn(e);
        match self.page(mfn) {
            None => return,
            Some(p) if p.owner == Owner::Io => return,
            Some(_) => {}
        }
        if e & PAGE_RW != 0 {
            self.put_page_type(hw, mfn, None);
        }
        self.put_page(mfn);
    }

    /// `get_page_from_l{2,3,4}e` for entry `e` of the level-`level` table at `table`:
    /// flags (`-EINVAL`), then a general and an L(level-1) type reference on the target
    /// (`-EINVAL` if not `dom`'s or of another type, or the target's validation error),
    /// falling back to a read-only linear reference on a table of the same level.
    pub(crate) fn get_page_from_upper<F: Frames>(
        &mut self,
        hw: &mut F,
        e: u64,
        level: u8,
        table: Mfn,
        dom: DomId,
    ) -> Result<(), Errno> {
        if e & disallow_mask(level) != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(target_ty) = PageType::table(level - 1) else { return Err(Errno::EINVAL) };
        match self.get_page_and_type(hw, pte_mfn(e), target_ty, dom) {
            Err(Errno::EINVAL) if self.get_linear_pagetable(e, level, table, dom) => Ok(()),
            r => r,
        }
    }

    /// `get_l{2,3,4}_linear_pagetable`: entry `e` of the level-`level` table at `table`
    /// points at a table of the same level. Allowed read-only; to the table itself it
    /// takes no references; to another table only if that one is validated, has no
    /// linear entries itself, and `table` is not itself mapped linearly (XSA-240).
    fn get_linear_pagetable(&mut self, e: u64, level: u8, table: Mfn, dom: DomId) -> bool {
        if !LINEAR_PT_ENABLED || e & PAGE_RW != 0 {
            return false;
        }
        let mfn = pte_mfn(e);
        if mfn == table {
            return true;
        }
        let Some(ty) = PageType::table(level) else { return false };
        match self.page(table) {
            Some(t) if t.owner == Owner::Dom(dom) && t.linear_pt_count >= 0 => {}
            _ => return false,
        }
        if !self.get_page(mfn, dom) {
            return false;
        }
        let ok = match self.page(mfn) {
            Some(p) => {
                p.linear_pt_count <= 0
                    && p.linear_pt_count > i32::MIN
                    && p.ty == ty
                    && p.validated
                    && p.type_count > 0
                    && p.type_count < COUNT_MAX
            }
            None => false,
        };
        let table_ok = self.page(table).is_some_and(|t| t.linear_pt_count < i32::MAX);
        if !ok || !table_ok {
            self.put_page(mfn);
            return false;
        }
        if let Some(t) = self.page_mut(table) {
            t.linear_pt_count += 1;
        }
        if let Some(p) = self.page_mut(mfn) {
            p.linear_pt_count -= 1;
            p.type_count += 1;
        }
        true
    }

    /// `put_page_from_l{2,3,4}e`: drop the type and general reference the entry held
    /// (none for an entry pointing at its own table).
    pub(crate) fn put_page_from_upper<F: Frames>(&mut self, hw: &mut F, e: u64, table: Mfn) {
        if !present(e) {
            return;
        }
        let mfn = pte_mfn(e);
        if mfn == table || self.page(mfn).is_none() {
            return;
        }
        self.put_page_type(hw, mfn, Some(table));
        self.put_page(mfn);
    }
}
