//! Per-frame bookkeeping (Xen's `struct page_info` and `frame_table`): owner, general
//! reference count, type and type count, validated and pinned flags.

use xen_abi::{DomId, Mfn};

/// Who a machine frame belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Owner {
    /// Free (or never handed out): no references can be taken.
    #[default]
    None,
    /// The hypervisor's own frames (text, frame table, the M2P, page tables...):
    /// never mappable by a guest (`dom_xen`).
    Xen,
    /// Not RAM (MMIO, holes): `dom_io`. Guests without I/O capabilities (all of them,
    /// here) cannot map these.
    Io,
    /// Allocated to a domain.
    Dom(DomId),
}

/// The use a frame is currently put to (`PGT_*`). A frame has exactly one type; it can
/// change only while the type count is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageType {
    /// `PGT_none`
    #[default]
    None,
    /// `PGT_l1_page_table`
    L1,
    /// `PGT_l2_page_table`
    L2,
    /// `PGT_l3_page_table`
    L3,
    /// `PGT_l4_page_table`
    L4,
    /// `PGT_seg_desc_page` (GDT/LDT frames).
    SegDesc,
    /// `PGT_writable_page`: mapped writable somewhere.
    Writable,
}

impl PageType {
    /// The page-table level (1..=4), or `None` for other types.
    pub const fn level(self) -> Option<u8> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            _ => None,
        }
    }

    /// The page-table type of `level` (1..=4).
    pub const fn table(level: u8) -> Option<PageType> {
        match level {
            1 => Some(PageType::L1),
            2 => Some(PageType::L2),
            3 => Some(PageType::L3),
            4 => Some(PageType::L4),
            _ => None,
        }
    }

    /// True for L1..L4.
    pub const fn is_page_table(self) -> bool {
        self.level().is_some()
    }
}

/// One machine frame's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    pub(crate) owner: Owner,
    /// General references (`PGC_count_mask`), including the allocation reference.
    pub(crate) count: u32,
    /// The allocation reference (`PGC_allocated`) is held.
    pub(crate) allocated: bool,
    /// A hypervisor frame shared with the owner (`PGC_xen_heap`): it returns to
    /// [`Owner::Xen`] instead of being freed.
    pub(crate) xen_heap: bool,
    pub(crate) ty: PageType,
    pub(crate) type_count: u32,
    /// Contents checked for `ty` (`PGT_validated`).
    pub(crate) validated: bool,
    /// `PGT_pinned`: holds one general and one type reference.
    pub(crate) pinned: bool,
    /// `linear_pt_count`: > 0 = this table has that many linear entries to other tables
    /// of its own level; < 0 = that many such entries elsewhere point at this table.
    pub(crate) linear_pt_count: i32,
}

impl PageInfo {
    /// A free frame, for initialising a frame table.
    pub const FREE: PageInfo = PageInfo {
        owner: Owner::None,
        count: 0,
        allocated: false,
        xen_heap: false,
        ty: PageType::None,
        type_count: 0,
        validated: false,
        pinned: false,
        linear_pt_count: 0,
    };

    /// The frame's owner.
    pub fn owner(&self) -> Owner {
        self.owner
    }
    /// General reference count.
    pub fn count(&self) -> u32 {
        self.count
    }
    /// Current type (meaningful while `type_count() > 0`; kept when it drops to 0).
    pub fn page_type(&self) -> PageType {
        self.ty
    }
    /// Type reference count.
    pub fn type_count(&self) -> u32 {
        self.type_count
    }
    /// `PGT_validated`
    pub fn validated(&self) -> bool {
        self.validated
    }
    /// `PGT_pinned`
    pub fn pinned(&self) -> bool {
        self.pinned
    }
    /// The allocation reference is held.
    pub fn allocated(&self) -> bool {
        self.allocated
    }
    /// Free: no owner and no references.
    pub fn is_free(&self) -> bool {
        self.owner == Owner::None && self.count == 0
    }
}

/// Counts refuse to go past this (Xen keeps one spare reference the same way).
pub(crate) const COUNT_MAX: u32 = u32::MAX - 1;

/// The frame table: one [`PageInfo`] per machine frame, indexed by MFN, over storage the
/// caller provides (a `Vec` on the host; a boot-time region on bare metal).
#[derive(Debug)]
pub struct FrameTable<S> {
    pub(crate) pages: S,
    /// Xen's `iomem_caps` of the one domain that has any (the hardware domain): it may
    /// map I/O frames (non-RAM, the first MiB) except the `denied` MFN ranges
    /// (the local APIC, IO-APIC and MSI window, as `dom0_setup_permissions` keeps).
    pub(crate) io: IoCaps,
}

/// Which domain may map I/O memory, and which I/O frames it may not.
#[derive(Debug, Default)]
pub struct IoCaps {
    pub dom: Option<DomId>,
    /// First MFN past what the CPU can address (`1 << (paddr_bits - 12)`): Xen's dom0
    /// `iomem_caps` end there.
    pub limit: u64,
    pub denied: alloc::vec::Vec<(u64, u64)>,
}

impl IoCaps {
    /// Whether `dom` may map frame `mfn` (an I/O frame) — `iomem_access_permitted`.
    pub fn permits(&self, dom: DomId, mfn: Mfn) -> bool {
        self.dom == Some(dom) && mfn.0 < self.limit && !self.denied.iter().any(|&(first, last)| (first..=last).contains(&mfn.0))
    }
}

impl<S: AsRef<[PageInfo]> + AsMut<[PageInfo]>> FrameTable<S> {
    /// Wraps `pages` (every entry should start as [`PageInfo::FREE`], then be marked
    /// with [`Self::set_owner_at_boot`]).
    pub fn new(pages: S) -> Self {
        Self { pages, io: IoCaps::default() }
    }

    /// Gives `dom` Xen's I/O-memory capabilities (the hardware domain): MFNs below
    /// `limit`, less `denied` MFN ranges (inclusive).
    pub fn grant_io(&mut self, dom: DomId, limit: u64, denied: alloc::vec::Vec<(u64, u64)>) {
        self.io = IoCaps { dom: Some(dom), limit, denied };
    }

    /// `l1_disallow_mask(d)`: a domain with I/O capabilities may also use the cache
    /// attribute bits (PWT, PCD, PAT) in its L1 entries.
    pub(crate) fn l1_disallow_mask(&self, dom: DomId) -> u64 {
        use super::pagetable::{L1_DISALLOW_MASK, PAGE_CACHE_ATTRS};
        if self.io.dom == Some(dom) {
            L1_DISALLOW_MASK & !PAGE_CACHE_ATTRS
        } else {
            L1_DISALLOW_MASK
        }
    }

    /// Number of frames covered (MFNs `0..len`).
    pub fn len(&self) -> usize {
        self.pages.as_ref().len()
    }

    /// True if the table covers no frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of `mfn`, or `None` beyond the table (`!mfn_valid`).
    pub fn page(&self, mfn: Mfn) -> Option<&PageInfo> {
        let i = usize::try_from(mfn.0).ok()?;
        self.pages.as_ref().get(i)
    }

    pub(crate) fn page_mut(&mut self, mfn: Mfn) -> Option<&mut PageInfo> {
        let i = usize::try_from(mfn.0).ok()?;
        self.pages.as_mut().get_mut(i)
    }

    /// Every frame with its MFN.
    pub fn iter(&self) -> impl Iterator<Item = (Mfn, &PageInfo)> {
        self.pages.as_ref().iter().enumerate().map(|(i, p)| (Mfn(i as u64), p))
    }

    /// Boot-time classification of an unreferenced frame: [`Owner::Xen`] for the
    /// hypervisor's own frames (the M2P among them), [`Owner::Io`] for non-RAM,
    /// [`Owner::None`] for free RAM. Refused (false) if the frame is referenced or
    /// beyond the table.
    pub fn set_owner_at_boot(&mut self, mfn: Mfn, owner: Owner) -> bool {
        if matches!(owner, Owner::Dom(_)) {
            return false;
        }
        match self.page_mut(mfn) {
            Some(p) if p.count == 0 && p.type_count == 0 => {
                *p = PageInfo { owner, ..PageInfo::FREE };
                true
            }
            _ => false,
        }
    }

    /// `get_page(page, d)` / `get_page_from_mfn(mfn, d)`: take a general reference on a
    /// frame `dom` owns. False if beyond the table, not `dom`'s, unallocated or at the
    /// count limit.
    pub(crate) fn get_page(&mut self, mfn: Mfn, dom: DomId) -> bool {
        match self.page_mut(mfn) {
            Some(p) if p.owner == Owner::Dom(dom) && p.count > 0 && p.count < COUNT_MAX => {
                p.count += 1;
                true
            }
            _ => false,
        }
    }

    /// `put_page`: drop a general reference; the last one frees the frame (or hands a
    /// shared hypervisor frame back to Xen).
    pub(crate) fn put_page(&mut self, mfn: Mfn) {
        let Some(p) = self.page_mut(mfn) else { return };
        if p.count == 0 {
            // Unbalanced put: a bug in this module, never guest-reachable. Ignore
            // rather than wrap.
            debug_assert!(false, "put_page on a frame with no references");
            return;
        }
        p.count -= 1;
        if p.count == 0 {
            let owner = if p.xen_heap { Owner::Xen } else { Owner::None };
            *p = PageInfo { owner, ..PageInfo::FREE };
        }
    }
}
