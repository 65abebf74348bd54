//! The initial-domain builder (Xen's `dom0_construct_pv`): frames, the kernel ELF, the
//! P2M list, start_info, the bootstrap page tables (mapped read-only), the boot stack,
//! the hypercall page and shared_info, in the arrangement `domain::layout` computes.

use super::Domain;
use crate::pv::mmu::m2p;
use crate::arch::x86_64::paging::{PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{mem, phys};
use crate::domain::elf::{ElfError, GuestImage};
use crate::domain::layout::{dom0_layout, Dom0Layout, LayoutError, PtLevel};
use alloc::vec::Vec;
use core::fmt;
use xen_abi::hypercall::HYPERVISOR_iret;
use xen_abi::xen::{SharedInfo, Sif, StartInfo, START_INFO_MAGIC_X86_64, XEN_LEGACY_MAX_VCPUS};
use zerocopy::{FromZeros, IntoBytes};

/// Flags of every bootstrap mapping, as Xen's dom0 builder uses (L1_PROT etc.).
const PROT: u64 = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_US;

#[derive(Debug)]
pub enum BuildError {
    Elf(ElfError),
    Layout(LayoutError),
    NotDom0Capable,
    OutOfMemory { wanted: u64, free: u64 },
    /// A segment or the initrd falls outside the initial mapping.
    OutsideMapping(u64),
    /// The PV MMU refused the initial page tables or frames.
    Mm(xen_abi::errno::Errno),
    /// A compressed kernel that could not be unpacked (or no room to unpack it).
    Unpack(kernel_image::KernelError),
    NoRoomToUnpack { bytes: usize },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "kernel image: {e}"),
            Self::Layout(e) => write!(f, "layout: {e}"),
            Self::NotDom0Capable => f.write_str("Kernel does not support Dom0 operation"),
            Self::OutOfMemory { wanted, free } => write!(f, "need {wanted} pages, {free} free"),
            Self::OutsideMapping(va) => write!(f, "address {va:#x} outside the initial mapping"),
            Self::Mm(e) => write!(f, "page tables refused: {e:?}"),
            Self::Unpack(e) => write!(f, "kernel image: {e}"),
            Self::NoRoomToUnpack { bytes } => write!(f, "no {bytes} contiguous bytes free to unpack the kernel"),
        }
    }
}

#[derive(Debug)]
pub struct DomainInput<'a> {
    pub id: u16,
    pub name: &'a str,
    /// `SIF_PRIVILEGED`.
    pub privileged: bool,
    /// The initial domain of a single-domain boot (`SIF_INITDOMAIN`, console_io to the
    /// console, its end is the machine's).
    pub hardware: bool,
    pub kernel: &'a [u8],
    pub cmdline: &'a str,
    /// Initrd bytes (the second module), if any.
    pub initrd: Option<&'a [u8]>,
    pub nr_pages: u64,
    /// vCPUs it has (vCPU 0 starts; the guest brings up the others).
    pub vcpus: u32,
}

/// The built domain and the registers it starts with.
#[derive(Debug)]
pub struct Built {
    pub domain: Domain,
    pub regs: Regs,
    pub layout: Dom0Layout,
}

/// Writes `data` at guest virtual `va` of the initial mapping.
fn write_va(layout: &Dom0Layout, p2m: &[u64], va: u64, data: &[u8]) -> Result<(), BuildError> {
    let mut done = 0;
    while done < data.len() {
        let cur = va + done as u64;
        let pfn = layout.pfn_of(cur).ok_or(BuildError::OutsideMapping(cur))?;
        let n = (4096 - (cur & 0xfff) as usize).min(data.len() - done);
        phys::write_bytes((p2m[pfn as usize] << 12) | (cur & 0xfff), &data[done..done + n]);
        done += n;
    }
    Ok(())
}

fn mfn_of(layout: &Dom0Layout, p2m: &[u64], va: u64) -> Result<u64, BuildError> {
    let pfn = layout.pfn_of(va).ok_or(BuildError::OutsideMapping(va))?;
    Ok(p2m[pfn as usize])
}

/// Xen's 64-bit PV hypercall page: 128 stubs of 32 bytes.
pub(crate) fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xccu8; 4096];
    for (i, stub) in page.chunks_exact_mut(32).enumerate() {
        let nr = (i as u32).to_le_bytes();
        if i as u64 == HYPERVISOR_iret {
            // Jumped to, never returns: push rcx; push r11; push rax; mov $23, eax;
            // syscall -- completing the guest's frame into an `iret_context`.
            stub[..11].copy_from_slice(&[0x51, 0x41, 0x53, 0x50, 0xb8, nr[0], nr[1], nr[2], nr[3], 0x0f, 0x05]);
        } else {
            // push rcx; push r11; mov $i, eax; syscall; pop r11; pop rcx; ret
            stub[..14].copy_from_slice(&[
                0x51, 0x41, 0x53, 0xb8, nr[0], nr[1], nr[2], nr[3], 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3,
            ]);
        }
    }
    page
}

/// Builds the bootstrap page tables in the frames of `layout.page_tables`, in the
/// order Xen takes them, and returns the L4's MFN.
fn build_page_tables(layout: &Dom0Layout, p2m: &[u64]) -> Result<u64, BuildError> {
    let pt = layout.page_tables;
    let mut frames = Vec::new();
    let mut va = pt.start;
    for level in layout.pt_frame_levels() {
        frames.push((level, mfn_of(layout, p2m, va)?));
        va += 4096;
    }
    let l4 = frames.first().map(|f| f.1).ok_or(BuildError::OutsideMapping(pt.start))?;
    let mut l3s = frames.iter().filter(|f| f.0 == PtLevel::L3).map(|f| f.1);
    let mut l2s = frames.iter().filter(|f| f.0 == PtLevel::L2).map(|f| f.1);
    let mut l1s = frames.iter().filter(|f| f.0 == PtLevel::L1).map(|f| f.1);
    let (mut cur_l3, mut cur_l2, mut cur_l1) = (None, None, None);
    let mut va = layout.v_start;
    while va < layout.v_end {
        let (i4, i3, i2, i1) = (
            ((va >> 39) & 0x1ff) as usize,
            ((va >> 30) & 0x1ff) as usize,
            ((va >> 21) & 0x1ff) as usize,
            ((va >> 12) & 0x1ff) as usize,
        );
        if cur_l3.is_none() || (i3 == 0 && i2 == 0 && i1 == 0) {
            let f = l3s.next().ok_or(BuildError::OutsideMapping(va))?;
            phys::write_entry(l4, i4, (f << 12) | PROT);
            cur_l3 = Some(f);
        }
        if cur_l2.is_none() || (i2 == 0 && i1 == 0) {
            let f = l2s.next().ok_or(BuildError::OutsideMapping(va))?;
            phys::write_entry(cur_l3.unwrap_or(0), i3, (f << 12) | PROT);
            cur_l2 = Some(f);
        }
        if cur_l1.is_none() || i1 == 0 {
            let f = l1s.next().ok_or(BuildError::OutsideMapping(va))?;
            phys::write_entry(cur_l2.unwrap_or(0), i2, (f << 12) | PROT);
            cur_l1 = Some(f);
        }
        let mfn = mfn_of(layout, p2m, va)?;
        // The page tables themselves are mapped read-only, as Xen requires.
        let prot = if pt.contains(va) { PROT & !PTE_RW } else { PROT };
        phys::write_entry(cur_l1.unwrap_or(0), i1, (mfn << 12) | prot);
        va += 4096;
    }
    m2p::install_xen_slots(l4);
    Ok(l4)
}

/// `INIT_P2M` (Xen's `setup_pv_physmap`): maps the P2M list at the kernel's chosen
/// address, outside the initial mapping, with page-table and data frames taken in
/// order from the pfns after the initial allocation and the initrd; the list's tail
/// past the last entry is all ones, as Xen leaves it. 4 KiB mappings only (our PV MMU,
/// like a shadowed Xen, takes no superpages). Returns `(first_p2m_pfn, nr_p2m_frames)`.
fn map_separate_p2m(layout: &Dom0Layout, p2m: &[u64], l4: u64, list: &[u8]) -> Result<(u64, u64), BuildError> {
    let first = layout.first_p2m_pfn().ok_or(BuildError::OutsideMapping(layout.phys_mach.start))?;
    let mut next = first;
    let mut take = || -> Result<u64, BuildError> {
        let mfn = *p2m.get(next as usize).ok_or(BuildError::OutsideMapping(layout.phys_mach.start))?;
        next += 1;
        Ok(mfn)
    };
    let mut va = layout.phys_mach.start & !0xfff;
    let mut offset = 0usize;
    while va < layout.phys_mach.end {
        let mut table = l4;
        for shift in [39u32, 30, 21] {
            let index = ((va >> shift) & 0x1ff) as usize;
            let entry = phys::read_entry(table, index);
            table = if entry & PTE_P != 0 {
                (entry & 0x000f_ffff_ffff_f000) >> 12
            } else {
                let t = take()?;
                phys::zero_frame(t);
                phys::write_entry(table, index, (t << 12) | PROT);
                t
            };
        }
        let data = take()?;
        let mut page = [0xffu8; 4096];
        let n = list.len().saturating_sub(offset).min(4096);
        page[..n].copy_from_slice(&list[offset..offset + n]);
        phys::write_bytes(data << 12, &page);
        phys::write_entry(table, ((va >> 12) & 0x1ff) as usize, (data << 12) | PROT);
        offset += 4096;
        va += 4096;
    }
    Ok((first, next - first))
}

/// Frames a compressed kernel needs while it is unpacked (the ELF and the XZ
/// dictionary); 0 for an ELF. Taken before the domain's memory, as Xen's dom0 builder
/// unpacks (`bzimage_parse`) before allocating.
pub fn unpack_pages(kernel: &[u8]) -> u64 {
    match kernel_image::locate(kernel) {
        Ok(k) if k.format != kernel_image::Format::Elf => {
            (k.unpacked_len as u64).div_ceil(4096) + (kernel_image::scratch_len(&k) as u64).div_ceil(4096)
        }
        _ => 0,
    }
}

pub fn build_domain(input: &DomainInput<'_>) -> Result<Built, BuildError> {
    // A bzImage or compressed kernel is unpacked into borrowed frames, freed once its
    // segments are in the domain's memory.
    let k = kernel_image::locate(input.kernel).map_err(BuildError::Unpack)?;
    let mut unpacked = None;
    if k.format != kernel_image::Format::Elf {
        let mut out = mem::ScratchFrames::new(k.unpacked_len).ok_or(BuildError::NoRoomToUnpack { bytes: k.unpacked_len })?;
        let scratch_len = kernel_image::scratch_len(&k);
        let mut scratch = mem::ScratchFrames::new(scratch_len).ok_or(BuildError::NoRoomToUnpack { bytes: scratch_len })?;
        let started = crate::arch::x86_64::clock::now_ns();
        let n = kernel_image::unpack(&k, out.bytes(), &mut scratch.bytes()[..scratch_len]).map_err(BuildError::Unpack)?;
        drop(scratch);
        let ms = (crate::arch::x86_64::clock::now_ns() - started) / 1_000_000;
        crate::println!("Unpacked the {} kernel: {} -> {n} bytes in {ms} ms", k.format, k.payload.len());
        unpacked = Some((out, n));
    }
    let kernel: &[u8] = match unpacked.as_mut() {
        Some((out, n)) => &out.bytes()[..*n],
        None => input.kernel,
    };
    let input = &DomainInput { kernel, ..*input };
    let img = GuestImage::parse(input.kernel).map_err(BuildError::Elf)?;
    if input.hardware && !img.params.dom0_capable() {
        return Err(BuildError::NotDom0Capable);
    }
    let initrd_len = input.initrd.map_or(0, |i| i.len() as u64);
    let layout = dom0_layout(&img.params, input.nr_pages, initrd_len, 1).map_err(BuildError::Layout)?;

    // Frames: pfn -> mfn, each zeroed, recorded in the M2P.
    let free = mem::with_frames(|a| a.free_frames());
    if input.nr_pages + 1 > free {
        return Err(BuildError::OutOfMemory { wanted: input.nr_pages + 1, free });
    }
    let mut p2m = Vec::with_capacity(input.nr_pages as usize);
    for pfn in 0..input.nr_pages {
        let mfn = mem::alloc_frame().ok_or(BuildError::OutOfMemory { wanted: input.nr_pages, free })?;
        phys::zero_frame(mfn);
        m2p::set(mfn, pfn);
        p2m.push(mfn);
    }

    img.load(
        input.kernel,
        |va, bytes| write_va(&layout, &p2m, va, bytes),
        |va, len| {
            // Frames start zeroed; only check the range is inside the mapping.
            layout.pfn_of(va).and(layout.pfn_of(va + len - 1)).map(|_| ()).ok_or(BuildError::OutsideMapping(va))
        },
    )
    .map_err(|e| match e {
        crate::domain::elf::LoadError::Image(e) => BuildError::Elf(e),
        crate::domain::elf::LoadError::Dest(e) => e,
    })?;

    if let Some(initrd) = input.initrd {
        match layout.initrd {
            Some(r) => write_va(&layout, &p2m, r.start, initrd)?,
            None => {
                let first = layout.initrd_pfn.unwrap_or(0);
                for (i, chunk) in initrd.chunks(4096).enumerate() {
                    let pfn = (first + i as u64) as usize;
                    let mfn = *p2m.get(pfn).ok_or(BuildError::OutsideMapping(first))?;
                    phys::write_bytes(mfn << 12, chunk);
                }
            }
        }
    }

    let p2m_bytes: Vec<u8> = p2m.iter().flat_map(|m| m.to_le_bytes()).collect();
    let l4 = build_page_tables(&layout, &p2m)?;
    let p2m_frames = if layout.p2m_in_initial_mapping {
        write_va(&layout, &p2m, layout.phys_mach.start, &p2m_bytes)?;
        None
    } else {
        Some(map_separate_p2m(&layout, &p2m, l4, &p2m_bytes)?)
    };

    let shared_info_mfn = mem::alloc_frame().ok_or(BuildError::OutOfMemory { wanted: 1, free: 0 })?;
    let mut si = SharedInfo::new_zeroed();
    for v in si.vcpu_info.iter_mut().take(XEN_LEGACY_MAX_VCPUS) {
        v.evtchn_upcall_mask = 1;
    }
    si.arch.max_pfn = input.nr_pages;
    phys::write_bytes(shared_info_mfn << 12, si.as_bytes());

    let mut start = StartInfo::new_zeroed();
    start.set_magic(START_INFO_MAGIC_X86_64);
    start.nr_pages = input.nr_pages;
    start.shared_info = shared_info_mfn << 12;
    // Xen's dom0 flags for the hardware domain; otherwise only what applies.
    let flags = if input.hardware {
        layout.start_info_flags()
    } else {
        let mut f = layout.start_info_flags() & Sif::MOD_START_PFN;
        f.set(Sif::PRIVILEGED, input.privileged);
        f
    };
    start.flags = flags.bits();
    start.pt_base = layout.page_tables.start;
    start.nr_pt_frames = layout.nr_pt_frames;
    start.mfn_list = layout.phys_mach.start;
    if let Some((first, n)) = p2m_frames {
        start.first_p2m_pfn = first;
        start.nr_p2m_frames = n;
    }
    start.mod_start = layout.mod_start();
    start.mod_len = initrd_len;
    let cmd = input.cmdline.as_bytes();
    let n = cmd.len().min(start.cmd_line.len() - 1);
    start.cmd_line[..n].copy_from_slice(&cmd[..n]);
    write_va(&layout, &p2m, layout.start_info.start, start.as_bytes())?;

    if let Some(hp) = layout.hypercall_page {
        write_va(&layout, &p2m, hp & !0xfff, &hypercall_page())?;
    }

    // Hand the frames to the domain and validate + pin the bootstrap tables, as Xen
    // does: from here on the PV MMU's rules hold for them.
    let dom = xen_abi::DomId(input.id);
    let p2m_for_si = p2m.clone();
    let mut vcpus = super::new_vcpus(input.vcpus.max(1), shared_info_mfn);
    let vcpu = &mut vcpus[0];
    vcpu.kernel_l4 = l4;
    vcpu.initialised = true;
    vcpu.online = true;
    vcpu.runstate.enter(xen_abi::vcpu::RUNSTATE_runnable, crate::arch::x86_64::clock::now_ns());
    crate::pv::mmu::with(|t, hw| {
        for &mfn in &p2m {
            t.assign_frame(dom, xen_abi::Mfn(mfn))?;
        }
        t.pin_table(hw, dom, xen_abi::Mfn(l4), crate::mm::PageType::L4)?;
        let mut vm = crate::mm::VcpuMm::default();
        t.new_baseptr(hw, dom, &mut vm, xen_abi::Mfn(l4))?;
        vcpu.set_mm(vm);
        Ok(())
    })
    .map_err(BuildError::Mm)?;
    crate::pv::mmu::share_with(input.id, shared_info_mfn, true).map_err(BuildError::Mm)?;

    let regs = Regs {
        rip: layout.entry,
        cs: 0xe033,
        ss: 0xe02b,
        rsp: layout.boot_stack.end,
        rsi: layout.start_info.start,
        rflags: 1 << 9,
        ..Regs::default()
    };
    vcpu.saved = regs;
    let domain = Domain {
        id: input.id,
        name: alloc::string::String::from(input.name),
        privileged: input.privileged,
        hardware: input.hardware,
        ending: None,
        max_pages: input.nr_pages,
        p2m,
        shared_info_mfn,
        vcpus,
        cur_vcpu: 0,
        // Real Xen's initial domain emulates writable page tables without asking; a
        // domU must enable VMASST_TYPE_writable_pagetables (seen on Xen 4.17).
        vm_assist: if input.hardware { 1 << xen_abi::xen::VMASST_TYPE_writable_pagetables } else { 0 },
        evtchn: Default::default(),
        grant_frames: Vec::new(),
        maptrack: Vec::new(),
        given_back: hashbrown::HashSet::new(),
        maptrack_free: alloc::collections::BinaryHeap::new(),
        maptrack_vcpus: 0,
        grant_pins: Vec::new(),
        console_line: Vec::new(),
        start_info_maddr: (mfn_of(&layout, &p2m_for_si, layout.start_info.start)? << 12) | (layout.start_info.start & 0xfff),
        pci_cf8: 0,
        console_ring: None,
        ctl: Default::default(),
        sched: Default::default(),
    };
    Ok(Built { domain, regs, layout })
}
