//! Page tables through the PV MMU interface: walk the live tables (read-only mapped
//! frames of the initial mapping), build missing levels for the dynamic window
//! (`mmu_update` on the parent entry, after mapping the new table read-only with
//! `update_va_mapping`), map pages, and allocate frames and window addresses.

use crate::arch::x86_64::mem::{self, WindowPage};
use crate::arch::x86_64::sync::SpinLock;
use crate::hv;
use crate::mm::{pte, table_index, FrameAllocator, Layout, VaAllocator, PAGE_SIZE, VIRT_BASE, VMAP_END, VMAP_START};
use xen_abi::xen::{MmuUpdate, StartInfo, MMU_NORMAL_PT_UPDATE, UVMF_INVLPG};

#[derive(Debug)]
struct Mmu {
    layout: Layout,
    l4_mfn: u64,
    /// Free pages of the initial mapping: new page tables (readable where they live).
    table_frames: FrameAllocator,
    /// The pages beyond the initial mapping: data.
    data_frames: FrameAllocator,
    window: VaAllocator,
}

static MMU: SpinLock<Option<Mmu>> = SpinLock::new(None);

/// Errors: a negative errno from Xen, or one of ours.
pub type Result<T> = core::result::Result<T, i64>;
/// Our own failures use -ENOMEM (out of frames/addresses) and -EFAULT (bad layout).
const ENOMEM: i64 = -12;
const EFAULT: i64 = -14;

pub fn init(si: &StartInfo) -> core::result::Result<Layout, &'static str> {
    let layout = Layout::from_boot(mem::initial_rsp(), si.nr_pages).ok_or("initial stack pointer outside the layout")?;
    mem::set_owned_end(layout.mapped_end_va());
    mem::set_free_start(Layout::va_of_pfn(layout.first_free_pfn));
    mem::set_p2m(si.mfn_list, si.nr_pages);
    let l4_pfn = si.pt_base.checked_sub(VIRT_BASE).ok_or("pt_base below VIRT_BASE")? / PAGE_SIZE;
    let l4_mfn = mem::p2m(l4_pfn).ok_or("pt_base outside the P2M")?;
    *MMU.lock() = Some(Mmu {
        layout,
        l4_mfn,
        table_frames: FrameAllocator::new(layout.first_free_pfn, layout.mapped_end_pfn),
        data_frames: FrameAllocator::new(layout.mapped_end_pfn, layout.nr_pages),
        window: VaAllocator::new(VMAP_START, VMAP_END),
    });
    Ok(layout)
}

fn with<R>(f: impl FnOnce(&mut Mmu) -> R) -> R {
    f(MMU.lock().as_mut().expect("paging::init first"))
}

pub fn l4_mfn() -> u64 {
    with(|m| m.l4_mfn)
}

/// Where a page-table frame is readable: its place in the initial mapping.
fn table_va(layout: &Layout, mfn: u64) -> Option<u64> {
    let pfn = mem::m2p(mfn)?;
    (pfn < layout.mapped_end_pfn).then(|| Layout::va_of_pfn(pfn))
}

/// Entry `idx` of page table `mfn` (one of ours, readable in the initial mapping).
pub fn table_entry(mfn: u64, idx: usize) -> Option<u64> {
    with(|m| table_va(&m.layout, mfn)).filter(|_| idx < 512).map(|tva| mem::read_table_entry(tva, idx))
}

/// The entries on the way to `va`: (table mfn, entry) for L4, L3, L2, L1, stopping at
/// the first non-present one.
pub fn walk(va: u64) -> [Option<(u64, u64)>; 4] {
    with(|m| walk_in(m, va))
}

fn walk_in(m: &Mmu, va: u64) -> [Option<(u64, u64)>; 4] {
    let mut out = [None; 4];
    let mut table = m.l4_mfn;
    for (i, level) in (1..=4).rev().enumerate() {
        let Some(tva) = table_va(&m.layout, table) else { break };
        let e = mem::read_table_entry(tva, table_index(va, level));
        out[i] = Some((table, e));
        if !pte::present(e) || (level > 1 && e & pte::PSE != 0) {
            break;
        }
        table = pte::mfn(e);
    }
    out
}

/// The L1 entry mapping `va`, if its tables exist.
pub fn lookup(va: u64) -> Option<u64> {
    walk(va)[3].map(|(_, e)| e)
}

/// The machine address of the L1 entry for `va`, building missing tables.
fn ensure_l1(m: &mut Mmu, va: u64) -> Result<u64> {
    let mut table = m.l4_mfn;
    for level in (2..=4).rev() {
        let tva = table_va(&m.layout, table).ok_or(EFAULT)?;
        let idx = table_index(va, level);
        let e = mem::read_table_entry(tva, idx);
        table = if pte::present(e) {
            pte::mfn(e)
        } else {
            let pfn = m.table_frames.alloc().ok_or(ENOMEM)?;
            let mfn = mem::p2m(pfn).ok_or(EFAULT)?;
            let new_va = Layout::va_of_pfn(pfn);
            mem::zero_owned_page(new_va);
            // A page table may have no writable mapping: drop ours to read-only first.
            let r = hv::update_va_mapping(new_va, pte::make(mfn, pte::KERNEL_RO), UVMF_INVLPG);
            if r != 0 {
                return Err(r);
            }
            let req = MmuUpdate { ptr: ((table << 12) + idx as u64 * 8) | MMU_NORMAL_PT_UPDATE, val: pte::make(mfn, pte::TABLE) };
            let (r, _) = hv::mmu_update_self(&[req]);
            if r != 0 {
                return Err(r);
            }
            mfn
        };
    }
    Ok((table << 12) + table_index(va, 1) as u64 * 8)
}

/// Machine address of the L1 entry that maps window address `va` (tables built).
pub fn l1_entry_maddr(va: u64) -> Result<u64> {
    with(|m| ensure_l1(m, va))
}

/// Maps `mfn` at window address `va` with `update_va_mapping`.
pub fn map(va: u64, mfn: u64, flags: u64) -> Result<()> {
    assert!((VMAP_START..VMAP_END).contains(&va));
    with(|m| ensure_l1(m, va))?;
    match hv::update_va_mapping(va, pte::make(mfn, flags), UVMF_INVLPG) {
        0 => Ok(()),
        r => Err(r),
    }
}

/// Maps `mfn` at window address `va` by writing the L1 entry with `mmu_update`.
pub fn map_with_mmu_update(va: u64, mfn: u64, flags: u64) -> Result<()> {
    assert!((VMAP_START..VMAP_END).contains(&va));
    let ptr = with(|m| ensure_l1(m, va))?;
    match hv::mmu_update_self(&[MmuUpdate { ptr: ptr | MMU_NORMAL_PT_UPDATE, val: pte::make(mfn, flags) }]) {
        (0, _) => {
            // mmu_update does not flush: drop any stale translation.
            hv::mmuext1(xen_abi::xen::MMUEXT_INVLPG_LOCAL, va, 0);
            Ok(())
        }
        (r, _) => Err(r),
    }
}

/// Unmaps window address `va`.
/// Makes sure an L1 table covers `va` (a grant mapping is installed into it).
pub fn prepare(va: u64) -> Result<()> {
    assert!((VMAP_START..VMAP_END).contains(&va));
    with(|m| ensure_l1(m, va)).map(|_| ())
}

pub fn unmap(va: u64) -> Result<()> {
    match hv::update_va_mapping(va, 0, UVMF_INVLPG) {
        0 => Ok(()),
        r => Err(r),
    }
}

pub fn alloc_window(pages: u64) -> Result<u64> {
    with(|m| m.window.alloc(pages)).ok_or(ENOMEM)
}

/// A free data frame: (pfn, mfn).
pub fn alloc_frame() -> Result<(u64, u64)> {
    let pfn = with(|m| m.data_frames.alloc()).ok_or(ENOMEM)?;
    Ok((pfn, mem::p2m(pfn).ok_or(EFAULT)?))
}

pub fn free_frame(pfn: u64) {
    with(|m| m.data_frames.free(pfn));
}

/// Maps machine frame `mfn` (shared_info, a grant frame, a ring) at a new window page.
pub fn map_frame(mfn: u64, flags: u64) -> Result<WindowPage> {
    let va = alloc_window(1)?;
    map(va, mfn, flags)?;
    Ok(WindowPage::new(va))
}

/// A fresh zeroed data page mapped writable in the window: (page, pfn, mfn).
pub fn new_page() -> Result<(WindowPage, u64, u64)> {
    let (pfn, mfn) = alloc_frame()?;
    let page = map_frame(mfn, pte::KERNEL_RW)?;
    for off in (0..PAGE_SIZE as usize).step_by(8) {
        page.u64(off).store(0, core::sync::atomic::Ordering::Relaxed);
    }
    Ok((page, pfn, mfn))
}
