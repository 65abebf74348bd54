//! The 64-bit PV initial domain's start-of-day virtual memory arrangement, computed
//! exactly as Xen 4.17's `dom0_construct_pv` (`xen/arch/x86/pv/dom0_build.c`) does,
//! as a pure function of the kernel's [`DomainParams`], the domain's page count, the
//! initrd length and the vCPU count.
//!
//! One contiguous region starts at `v_start = VIRT_BASE` and maps the domain's first
//! pages 1:1 (`va = v_start + pfn * 4096`), in this order, each page-aligned:
//!
//! ```text
//!  kernel image | initrd (unless left unmapped) | P2M list (unless INIT_P2M) |
//!  start_info (+ cmd_line, + dom0_vga_console_info) | page tables | boot stack |
//!  padding up to a 4 MiB boundary, at least 512 KiB
//! ```
//!
//! Xen prints it as `VIRTUAL MEMORY ARRANGEMENT`; [`Dom0Layout`]'s fields are those
//! lines. The 64-bit compat (32-bit PV) and PV-shim variants are not covered.
#![forbid(unsafe_code)]

use core::fmt;

use xen_abi::arch_x86_64::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use xen_abi::types::PAGE_SHIFT;
use xen_abi::xen::{Sif, StartInfo};

use super::elf::{is_canonical, DomainParams};

const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
const L2_SHIFT: u32 = 21; // L2_PAGETABLE_SHIFT: one L1 maps 2 MiB
const L3_SHIFT: u32 = 30; // L3_PAGETABLE_SHIFT: one L2 maps 1 GiB
const L4_SHIFT: u32 = 39; // L4_PAGETABLE_SHIFT: one L3 maps 512 GiB
/// `v_end` is rounded to 4 MiB (`(1UL << 22)` in `dom0_construct_pv`).
const V_END_ALIGN: u64 = 1 << 22;
/// Minimum padding after the boot stack (`512UL << 10`).
const MIN_PADDING: u64 = 512 << 10;
/// `sizeof(struct start_info)` on x86_64 (1168).
pub const START_INFO_SIZE: u64 = core::mem::size_of::<StartInfo>() as u64;
/// `sizeof(struct dom0_vga_console_info)` (40): the initial domain's `start_info`
/// region also covers this structure, which follows `start_info` in the page.
/// (Not in `xen-abi` yet.)
pub const DOM0_VGA_CONSOLE_INFO_SIZE: u64 = 40;
/// Bytes per P2M entry for a 64-bit guest (`sizeof(unsigned long)`).
pub const P2M_ENTRY_SIZE: u64 = 8;

/// A half-open virtual address range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Region {
    /// `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// Whether the range is empty.
    pub const fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// Whether `va` lies inside.
    pub const fn contains(&self, va: u64) -> bool {
        va >= self.start && va < self.end
    }
}

impl fmt::Display for Region {
    /// As Xen prints it: `ffffffff80000000->ffffffff80017001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}->{:016x}", self.start, self.end)
    }
}

/// Page-table frames of the initial mapping, per level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PtFrames {
    /// Always 1.
    pub l4: u64,
    /// One per 512 GiB slot touched by `[v_start, v_end)`.
    pub l3: u64,
    /// One per 1 GiB slot touched.
    pub l2: u64,
    /// One per 2 MiB slot touched.
    pub l1: u64,
}

impl PtFrames {
    /// The frames needed to map `[v_start, v_end)` with 4 KiB pages: Xen's
    /// `!compat + NR(.., L4_SHIFT) + NR(.., L3_SHIFT) + NR(.., L2_SHIFT)`.
    pub fn for_range(v_start: u64, v_end: u64) -> Self {
        Self {
            l4: 1,
            l3: nr(v_start, v_end, L4_SHIFT),
            l2: nr(v_start, v_end, L3_SHIFT),
            l1: nr(v_start, v_end, L2_SHIFT),
        }
    }
    /// All of them.
    pub fn total(&self) -> u64 {
        self.l4 + self.l3 + self.l2 + self.l1
    }
}

/// A page-table level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtLevel {
    /// Page table (maps 4 KiB pages).
    L1,
    /// Page directory.
    L2,
    /// Page-directory-pointer table.
    L3,
    /// The root.
    L4,
}

/// Xen's `NR(_l, _h, _s)`: how many `2^s`-aligned blocks `[l, h)` touches. The
/// rounding of `h` wraps in C's unsigned arithmetic (for a kernel in the top L4 slot
/// it wraps to 0, and `0 - (l & ~mask)` is then exactly the one slot), so it wraps
/// here too.
fn nr(l: u64, h: u64, s: u32) -> u64 {
    let mask = (1u64 << s) - 1;
    ((h.wrapping_add(mask) & !mask).wrapping_sub(l & !mask)) >> s
}

fn round_pgup(a: u64) -> Option<u64> {
    Some(a.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// Xen's `get_order_from_bytes`: the smallest order with `PAGE_SIZE << order >= n`.
fn order_from_bytes(n: u64) -> u32 {
    let mut pages = n.saturating_sub(1) >> PAGE_SHIFT;
    let mut order = 0;
    while pages != 0 {
        order += 1;
        pages >>= 1;
    }
    order
}

/// Why no layout could be made (each mirrors a `dom0_construct_pv` failure unless
/// marked stricter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `nr_pages` is 0.
    NoPages,
    /// `nr_vcpus` is 0.
    NoVcpus,
    /// The parameters break libelf's invariants (`virt_base <= virt_kstart <=
    /// virt_kend`); [`super::elf::GuestImage::parse`] never returns such.
    BadParams,
    /// Stricter: an address computation went past 2^64 (Xen would wrap).
    AddressOverflow,
    /// "DOM0 image overlaps with Xen private area."
    OverlapsXen,
    /// "Domain 0 allocation is too small for kernel image": the initial mapping
    /// (`2^order` pages) plus the initrd need more than `nr_pages`.
    TooSmall {
        /// Pages the initial allocation and the initrd need.
        needed: u64,
        /// Pages the domain has.
        nr_pages: u64,
    },
    /// "Invalid HYPERCALL_PAGE field in ELF notes.": not inside `[v_start, v_end)`.
    HypercallPageOutside(u64),
    /// "DOM0 P->M table overlaps initial mapping" (`INIT_P2M`).
    P2mOverlapsInitialMapping,
    /// Stricter: the `INIT_P2M` range wraps, is not canonical or touches Xen's slots.
    P2mBadAddress(u64),
    /// "Dom0 allocation too small for initial P->M table" (`INIT_P2M`).
    P2mTooSmall,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPages => f.write_str("domain has no pages"),
            Self::NoVcpus => f.write_str("domain has no vCPUs"),
            Self::BadParams => f.write_str("inconsistent kernel parameters"),
            Self::AddressOverflow => f.write_str("initial mapping runs past the address space"),
            Self::OverlapsXen => f.write_str("DOM0 image overlaps with Xen private area"),
            Self::TooSmall { needed, nr_pages } => write!(
                f,
                "Domain 0 allocation is too small for kernel image ({needed} pages needed, {nr_pages} given)"
            ),
            Self::HypercallPageOutside(a) => {
                write!(f, "Invalid HYPERCALL_PAGE field in ELF notes ({a:#x})")
            }
            Self::P2mOverlapsInitialMapping => f.write_str("DOM0 P->M table overlaps initial mapping"),
            Self::P2mBadAddress(a) => write!(f, "P->M table base {a:#x} unusable"),
            Self::P2mTooSmall => f.write_str("Dom0 allocation too small for initial P->M table"),
        }
    }
}

/// The initial domain's virtual memory arrangement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dom0Layout {
    /// `v_start`: `VIRT_BASE`, the start of the initial mapping (PFN 0).
    pub v_start: u64,
    /// `v_end`: end of the initial mapping (4 MiB-aligned, at least 512 KiB past the
    /// boot stack).
    pub v_end: u64,
    /// "Loaded kernel": `[virt_kstart, virt_kend)`.
    pub kernel: Region,
    /// "Init. ramdisk": the mapped initrd, `None` when there is none or it stays
    /// unmapped (`MOD_START_PFN`).
    pub initrd: Option<Region>,
    /// Initrd length in bytes (0 if none).
    pub initrd_len: u64,
    /// PFN of the initrd's first page (`initrd_pfn`) when there is an initrd: in the
    /// mapping, or right after the initial allocation (`2^alloc_order`) if unmapped.
    pub initrd_pfn: Option<u64>,
    /// "Phys-Mach map": the P2M list, `nr_pages` 8-byte entries; at `INIT_P2M` when
    /// the kernel gave one, else inside the initial mapping.
    pub phys_mach: Region,
    /// Whether the P2M list is inside the initial mapping (no `INIT_P2M`).
    pub p2m_in_initial_mapping: bool,
    /// "Start info": `start_info` (whose `cmd_line` holds the command line) plus the
    /// `dom0_vga_console_info` after it; one page.
    pub start_info: Region,
    /// "Page tables": the bootstrap page tables (`pt_base` = start), mapped read-only.
    pub page_tables: Region,
    /// `nr_pt_frames`.
    pub nr_pt_frames: u64,
    /// "Boot stack": one page; `rsp` starts at its end.
    pub boot_stack: Region,
    /// "ENTRY ADDRESS".
    pub entry: u64,
    /// Where the hypercall page goes, if the kernel asked for one.
    pub hypercall_page: Option<u64>,
    /// Order of the initial contiguous allocation (`get_order_from_bytes` of the
    /// mapping less a mapped initrd).
    pub alloc_order: u32,
    /// The domain's pages.
    pub nr_pages: u64,
}

/// Computes the initial domain's arrangement (`dom0_construct_pv`, 64-bit, not shim).
///
/// `nr_pages` is the domain's size as `dom0_compute_nr_pages` returned it (e.g.
/// 16384 for `dom0_mem=64M`); `initrd_len` is 0 without an initrd; `nr_vcpus` must be
/// at least 1 and does not otherwise change the 64-bit arrangement (in Xen it only
/// enters `dom0_compute_nr_pages`' memory reserve).
pub fn dom0_layout(
    params: &DomainParams,
    nr_pages: u64,
    initrd_len: u64,
    nr_vcpus: u32,
) -> Result<Dom0Layout, LayoutError> {
    use LayoutError::AddressOverflow as Ovf;
    if nr_pages == 0 {
        return Err(LayoutError::NoPages);
    }
    if nr_vcpus == 0 {
        return Err(LayoutError::NoVcpus);
    }
    if params.virt_base > params.virt_kstart || params.virt_kstart > params.virt_kend {
        return Err(LayoutError::BadParams);
    }
    let initrd_pages = initrd_len.div_ceil(PAGE_SIZE); // PFN_UP(initrd_len)
    let initrd_bytes = initrd_pages.checked_mul(PAGE_SIZE).ok_or(Ovf)?; // PAGE_ALIGN

    // v_start = parms.virt_base; vkern_start/end = parms.virt_kstart/kend.
    let v_start = params.virt_base;
    let kernel = Region::new(params.virt_kstart, params.virt_kend);

    // if ( parms.unmapped_initrd ) { vinitrd_start = vinitrd_end = 0;
    //     vphysmap_start = round_pgup(vkern_end); }
    // else { vinitrd_start = round_pgup(vkern_end); vinitrd_end = + initrd_len;
    //     vphysmap_start = round_pgup(vinitrd_end); }
    // (With no initrd and a kernel that may take an unmapped one, nothing is mapped
    // either way; a zero-length mapped "initrd" still makes vinitrd_start non-zero.)
    let kend_pg = round_pgup(kernel.end).ok_or(Ovf)?;
    let (vinitrd_start, vinitrd_end) = if params.unmapped_initrd {
        (0, 0)
    } else {
        (kend_pg, kend_pg.checked_add(initrd_len).ok_or(Ovf)?)
    };
    let vphysmap_start = if params.unmapped_initrd {
        kend_pg
    } else {
        round_pgup(vinitrd_end).ok_or(Ovf)?
    };

    // vphysmap_end = vphysmap_start + nr_pages * sizeof(unsigned long), or
    // vphysmap_start if parms.p2m_base is set (the list then lives elsewhere).
    let p2m_bytes = nr_pages.checked_mul(P2M_ENTRY_SIZE).ok_or(Ovf)?;
    let vphysmap_end = match params.p2m_base {
        Some(_) => vphysmap_start,
        None => vphysmap_start.checked_add(p2m_bytes).ok_or(Ovf)?,
    };

    // vstartinfo_start = round_pgup(vphysmap_end);
    // vstartinfo_end = vstartinfo_start + sizeof(struct start_info);
    // (not shim) vpt_start = round_pgup(vstartinfo_end);
    //            vstartinfo_end += sizeof(struct dom0_vga_console_info);
    let vstartinfo_start = round_pgup(vphysmap_end).ok_or(Ovf)?;
    let vpt_start =
        round_pgup(vstartinfo_start.checked_add(START_INFO_SIZE).ok_or(Ovf)?).ok_or(Ovf)?;
    let vstartinfo_end = vstartinfo_start + START_INFO_SIZE + DOM0_VGA_CONSOLE_INFO_SIZE;

    // for ( nr_pt_pages = 2; ; nr_pt_pages++ ) {
    //     vpt_end = vpt_start + nr_pt_pages * PAGE_SIZE; vstack_start = vpt_end;
    //     vstack_end = vstack_start + PAGE_SIZE;
    //     v_end = (vstack_end + 4M-1) & ~(4M-1);
    //     if ( v_end - vstack_end < 512k ) v_end += 4M;
    //     if ( 1 + NR(v_start, v_end, L4) + NR(.., L3) + NR(.., L2) <= nr_pt_pages ) break;
    // }
    let ends = |n: u64| -> Option<(u64, u64, u64)> {
        let vpt_end = vpt_start.checked_add(n.checked_mul(PAGE_SIZE)?)?;
        let vstack_end = vpt_end.checked_add(PAGE_SIZE)?;
        let mut v_end = vstack_end.checked_add(V_END_ALIGN - 1)? & !(V_END_ALIGN - 1);
        if v_end - vstack_end < MIN_PADDING {
            v_end = v_end.checked_add(V_END_ALIGN)?;
        }
        Some((vpt_end, vstack_end, v_end))
    };
    // The needed count only grows with nr_pt_pages, so instead of stepping by one we
    // jump to it: every n skipped satisfies needed(n) >= needed(previous) > n, hence
    // fails Xen's test, and the first n that passes is the same as Xen's.
    let mut nr_pt_pages: u64 = 2;
    let (vpt_end, vstack_end, v_end) = loop {
        let (vpt_end, vstack_end, v_end) = ends(nr_pt_pages).ok_or(Ovf)?;
        let needed = PtFrames::for_range(v_start, v_end).total();
        if needed <= nr_pt_pages {
            break (vpt_end, vstack_end, v_end);
        }
        nr_pt_pages = needed;
    };
    let vstack_start = vpt_end;

    // count = v_end - v_start; if ( vinitrd_start ) count -= PAGE_ALIGN(initrd_len);
    // order = get_order_from_bytes(count);
    // if ( (1UL << order) + PFN_UP(initrd_len) > nr_pages ) panic(too small)
    let mut count = v_end.checked_sub(v_start).ok_or(Ovf)?;
    if vinitrd_start != 0 {
        count = count.checked_sub(initrd_bytes).ok_or(Ovf)?;
    }
    let alloc_order = order_from_bytes(count);
    let needed = 1u64
        .checked_shl(alloc_order)
        .and_then(|p| p.checked_add(initrd_pages))
        .ok_or(Ovf)?;
    if needed > nr_pages {
        return Err(LayoutError::TooSmall { needed, nr_pages });
    }

    // if ( parms.p2m_base != UNSET_ADDR ) { vphysmap_start = parms.p2m_base;
    //     vphysmap_end = vphysmap_start + nr_pages * sizeof(unsigned long); }
    let phys_mach = match params.p2m_base {
        Some(base) => {
            let end = base
                .checked_add(p2m_bytes)
                .ok_or(LayoutError::P2mBadAddress(base))?;
            Region::new(base, end)
        }
        None => Region::new(vphysmap_start, vphysmap_end),
    };

    // initrd_pfn = vinitrd_start ? (vinitrd_start - v_start) >> PAGE_SHIFT
    //                            : domain_tot_pages(d)  (= 2^order after the allocation)
    let initrd_pfn = (initrd_len != 0).then(|| {
        if vinitrd_start != 0 {
            (vinitrd_start - v_start) >> PAGE_SHIFT
        } else {
            1 << alloc_order
        }
    });

    // Overlap with Xen protected area?
    // (v_start < HYPERVISOR_VIRT_END) && (v_end > HYPERVISOR_VIRT_START)
    if v_start < HYPERVISOR_VIRT_END && v_end > HYPERVISOR_VIRT_START {
        return Err(LayoutError::OverlapsXen);
    }

    // if ( parms.virt_hypercall != UNSET_ADDR ) and it is outside [v_start, v_end):
    // "Invalid HYPERCALL_PAGE field in ELF notes."
    if let Some(hc) = params.virt_hypercall {
        if hc < v_start || hc >= v_end {
            return Err(LayoutError::HypercallPageOutside(hc));
        }
    }

    let layout = Dom0Layout {
        v_start,
        v_end,
        kernel,
        initrd: (vinitrd_end > vinitrd_start).then_some(Region::new(vinitrd_start, vinitrd_end)),
        initrd_len,
        initrd_pfn,
        phys_mach,
        p2m_in_initial_mapping: params.p2m_base.is_none(),
        start_info: Region::new(vstartinfo_start, vstartinfo_end),
        page_tables: Region::new(vpt_start, vpt_end),
        nr_pt_frames: nr_pt_pages,
        boot_stack: Region::new(vstack_start, vstack_end),
        entry: params.virt_entry,
        hypercall_page: params.virt_hypercall,
        alloc_order,
        nr_pages,
    };

    // setup_pv_physmap (INIT_P2M):
    if let Some(base) = params.p2m_base {
        // if ( v_start <= vphysmap_end && vphysmap_start <= v_end ) panic(overlap)
        if v_start <= phys_mach.end && phys_mach.start <= v_end {
            return Err(LayoutError::P2mOverlapsInitialMapping);
        }
        // Stricter: Xen would walk into its own L4 slots or a non-canonical range.
        let last = phys_mach.end.saturating_sub(1).max(phys_mach.start);
        if !is_canonical(phys_mach.start)
            || !is_canonical(last)
            || phys_mach.start >> 63 != last >> 63
            || (phys_mach.start < HYPERVISOR_VIRT_END && last >= HYPERVISOR_VIRT_START)
        {
            return Err(LayoutError::P2mBadAddress(base));
        }
        // First pass of the loop: domain_tot_pages(d) (the initial allocation and the
        // initrd) + (round_pgup(vphysmap_end) - vphysmap_start) / PAGE_SIZE + 3 must
        // not exceed nr_pages. Also (ours) everything with 4 KiB mappings must fit.
        let remaining = (round_pgup(phys_mach.end).ok_or(Ovf)? - phys_mach.start) >> PAGE_SHIFT;
        let first = needed
            .checked_add(remaining)
            .and_then(|n| n.checked_add(3))
            .ok_or(Ovf)?;
        let all = needed.checked_add(layout.p2m_frames_4k()).ok_or(Ovf)?;
        if first > nr_pages || all > nr_pages {
            return Err(LayoutError::P2mTooSmall);
        }
    }
    Ok(layout)
}

impl Dom0Layout {
    /// "TOTAL": `[v_start, v_end)`.
    pub fn total(&self) -> Region {
        Region::new(self.v_start, self.v_end)
    }

    /// Pages in the initial mapping (`(v_end - v_start) >> PAGE_SHIFT`).
    pub fn mapped_pages(&self) -> u64 {
        self.v_end.saturating_sub(self.v_start) >> PAGE_SHIFT
    }

    /// PFN backing virtual address `va` of the initial mapping.
    pub fn pfn_of(&self, va: u64) -> Option<u64> {
        self.total()
            .contains(va)
            .then(|| (va - self.v_start) >> PAGE_SHIFT)
    }

    /// Page-table frames per level (their sum is `nr_pt_frames`).
    pub fn pt_frames(&self) -> PtFrames {
        PtFrames::for_range(self.v_start, self.v_end)
    }

    /// The level of each page-table frame, in the order `dom0_construct_pv` takes
    /// them from `[pt_base, pt_base + nr_pt_frames pages)`: the L4, then for each
    /// 2 MiB block an L1, followed by a new L2 at the first block and each 1 GiB
    /// boundary, followed by a new L3 at the first block and each 512 GiB boundary.
    pub fn pt_frame_levels(&self) -> PtFrameLevels {
        PtFrameLevels {
            first_block: self.v_start & !((1 << L2_SHIFT) - 1),
            block: 0,
            nr_blocks: self.pt_frames().l1,
            stage: 0,
        }
    }

    /// `start_info.flags` Xen sets for the initial domain (`SIF_PRIVILEGED |
    /// SIF_INITDOMAIN`, plus `SIF_MOD_START_PFN` for an unmapped initrd; the
    /// `SIF_PM_MASK` bits are left to the caller).
    pub fn start_info_flags(&self) -> Sif {
        let mut flags = Sif::PRIVILEGED | Sif::INITDOMAIN;
        flags.set(Sif::MOD_START_PFN, self.initrd.is_none() && self.initrd_len != 0);
        flags
    }

    /// `start_info.mod_start`: the initrd's virtual address, or its PFN when
    /// unmapped; 0 without an initrd.
    pub fn mod_start(&self) -> u64 {
        match (self.initrd, self.initrd_pfn) {
            (Some(r), _) => r.start,
            (None, Some(pfn)) => pfn,
            (None, None) => 0,
        }
    }

    /// `start_info.first_p2m_pfn` with `INIT_P2M`: the P2M frames come after the
    /// initial allocation and the initrd.
    pub fn first_p2m_pfn(&self) -> Option<u64> {
        let alloc = 1u64.checked_shl(self.alloc_order)?;
        (!self.p2m_in_initial_mapping)
            .then(|| alloc.saturating_add(self.initrd_len.div_ceil(PAGE_SIZE)))
    }

    /// With `INIT_P2M`, the frames the separately mapped P2M takes when mapped with
    /// 4 KiB pages only (`start_info.nr_p2m_frames` in that case): the list's pages
    /// plus the L3/L2/L1 tables for the slots the initial mapping does not already
    /// provide. Xen may use 2 MiB / 1 GiB superpages for aligned parts, needing fewer
    /// tables. 0 without `INIT_P2M`.
    pub fn p2m_frames_4k(&self) -> u64 {
        if self.p2m_in_initial_mapping
            || self.phys_mach.end <= self.phys_mach.start
            || self.v_end <= self.v_start
        {
            return 0;
        }
        let (ps, pe) = (self.phys_mach.start, self.phys_mach.end);
        let (vs, ve) = (self.v_start, self.v_end);
        let mut frames = nr(ps, pe, PAGE_SHIFT);
        for s in [L4_SHIFT, L3_SHIFT, L2_SHIFT] {
            // Blocks of 2^s the P2M touches, less those the initial mapping touches.
            let (p0, p1) = (ps >> s, (pe - 1) >> s);
            let (v0, v1) = (vs >> s, (ve - 1) >> s);
            let shared = p1.min(v1).saturating_add(1).saturating_sub(p0.max(v0));
            frames += (p1 - p0 + 1).saturating_sub(shared);
        }
        frames
    }
}

/// Iterator over the levels of the bootstrap page-table frames, see
/// [`Dom0Layout::pt_frame_levels`].
#[derive(Clone, Debug)]
pub struct PtFrameLevels {
    first_block: u64,
    block: u64,
    nr_blocks: u64,
    stage: u8,
}

impl Iterator for PtFrameLevels {
    type Item = PtLevel;
    fn next(&mut self) -> Option<PtLevel> {
        loop {
            if self.stage == 0 {
                self.stage = 1;
                return Some(PtLevel::L4);
            }
            if self.block >= self.nr_blocks {
                return None;
            }
            let va = self.first_block.wrapping_add(self.block << L2_SHIFT);
            let first = self.block == 0;
            let stage = self.stage;
            self.stage += 1;
            match stage {
                1 => return Some(PtLevel::L1),
                2 if first || va & ((1 << L3_SHIFT) - 1) == 0 => return Some(PtLevel::L2),
                3 => {
                    self.stage = 1;
                    self.block += 1;
                    if first || va & ((1 << L4_SHIFT) - 1) == 0 {
                        return Some(PtLevel::L3);
                    }
                }
                _ => {}
            }
        }
    }
}

impl fmt::Display for Dom0Layout {
    /// Xen's `VIRTUAL MEMORY ARRANGEMENT` lines (without the `(XEN)` prefix).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VIRTUAL MEMORY ARRANGEMENT:")?;
        writeln!(f, " Loaded kernel: {}", self.kernel)?;
        if let Some(r) = self.initrd {
            writeln!(f, " Init. ramdisk: {r}")?;
        }
        writeln!(f, " Phys-Mach map: {}", self.phys_mach)?;
        writeln!(f, " Start info:    {}", self.start_info)?;
        writeln!(f, " Page tables:   {}", self.page_tables)?;
        writeln!(f, " Boot stack:    {}", self.boot_stack)?;
        writeln!(f, " TOTAL:         {}", self.total())?;
        writeln!(f, " ENTRY ADDRESS: {:016x}", self.entry)
    }
}

#[cfg(test)]
mod tests;
