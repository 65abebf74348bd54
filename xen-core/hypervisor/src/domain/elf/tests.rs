//! Tests for the PV kernel image parser: small ELF images built here, the real
//! pv-guest image when it has been built, and property tests on hostile bytes.

use super::*;
use proptest::prelude::*;
use xen_abi::features::{
    XENFEAT_auto_translated_physmap, XENFEAT_pae_pgdir_above_4gb,
    XENFEAT_writable_descriptor_tables, XENFEAT_writable_page_tables,
};

const BASE: u64 = 0xffff_ffff_8000_0000;

#[derive(Clone)]
struct Seg {
    p_type: u32,
    flags: u32,
    vaddr: u64,
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
    /// Overrides the computed p_offset.
    offset: Option<u64>,
}

#[derive(Clone)]
struct Note {
    name: Vec<u8>,
    ty: u32,
    desc: Vec<u8>,
}

/// Builds a little ELF64 executable: header, program headers, segment data, a note
/// area (in a `PT_NOTE` segment and/or a `SHT_NOTE` section) and section headers.
#[derive(Clone)]
struct Builder {
    entry: u64,
    e_type: u16,
    machine: u16,
    segs: Vec<Seg>,
    notes: Vec<Note>,
    note_segment: bool,
    note_section: bool,
}

fn xen(ty: u32, desc: &[u8]) -> Note {
    Note {
        name: b"Xen\0".to_vec(),
        ty,
        desc: desc.to_vec(),
    }
}
fn xen_str(ty: u32, s: &str) -> Note {
    let mut d = s.as_bytes().to_vec();
    d.push(0);
    xen(ty, &d)
}
fn xen_u64(ty: u32, v: u64) -> Note {
    xen(ty, &v.to_le_bytes())
}
fn xen_u32(ty: u32, v: u32) -> Note {
    xen(ty, &v.to_le_bytes())
}

fn load_seg(flags: u32, addr: u64, filesz: usize, memsz: u64) -> Seg {
    let data = (0..filesz).map(|i| (i % 251) as u8 + 1).collect();
    Seg {
        p_type: PT_LOAD,
        flags,
        vaddr: addr,
        paddr: addr,
        data,
        memsz,
        offset: None,
    }
}

impl Builder {
    /// pv-guest-like: text at BASE (0x2000 bytes), data+bss at BASE+0x2000, with
    /// VIRT_BASE = PADDR_OFFSET = BASE and a hypercall page in the text.
    fn pv() -> Self {
        Self {
            entry: BASE,
            e_type: ET_EXEC,
            machine: EM_X86_64,
            segs: vec![
                load_seg(PF_R | PF_X, BASE, 0x2000, 0x2000),
                load_seg(PF_R | PF_W, BASE + 0x2000, 0x100, 0x3001),
            ],
            notes: vec![
                xen_str(XEN_ELFNOTE_GUEST_OS, "test-os"),
                xen_str(XEN_ELFNOTE_GUEST_VERSION, "0.1"),
                xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0"),
                xen_str(XEN_ELFNOTE_LOADER, "generic"),
                xen_u64(XEN_ELFNOTE_VIRT_BASE, BASE),
                xen_u64(XEN_ELFNOTE_PADDR_OFFSET, BASE),
                xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, BASE + 0x1000),
                xen_str(XEN_ELFNOTE_FEATURES, "!writable_page_tables"),
            ],
            note_segment: true,
            note_section: true,
        }
    }
    fn note(mut self, n: Note) -> Self {
        self.notes.push(n);
        self
    }
    fn without(mut self, ty: u32) -> Self {
        self.notes.retain(|n| n.ty != ty);
        self
    }
    fn with(self, n: Note) -> Self {
        let ty = n.ty;
        self.without(ty).note(n)
    }
    fn build(&self) -> Vec<u8> {
        let nr_ph = self.segs.len() + usize::from(self.note_segment);
        let mut out = vec![0u8; EHDR_SIZE + nr_ph * PHDR_SIZE];
        // Segment data, each 16-aligned.
        let mut offsets = Vec::new();
        for s in &self.segs {
            while !out.len().is_multiple_of(16) {
                out.push(0);
            }
            offsets.push(s.offset.unwrap_or(out.len() as u64));
            out.extend_from_slice(&s.data);
        }
        // Note area.
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        let notes_at = out.len();
        for n in &self.notes {
            out.extend_from_slice(&(n.name.len() as u32).to_le_bytes());
            out.extend_from_slice(&(n.desc.len() as u32).to_le_bytes());
            out.extend_from_slice(&n.ty.to_le_bytes());
            out.extend_from_slice(&n.name);
            out.resize(out.len().next_multiple_of(4), 0);
            out.extend_from_slice(&n.desc);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        let notes_len = out.len() - notes_at;
        // Section headers: null + optional SHT_NOTE.
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let shoff = out.len();
        let nr_sh = if self.note_section { 2 } else { 0 };
        out.resize(shoff + nr_sh * SHDR_SIZE, 0);
        if self.note_section {
            let sh = shoff + SHDR_SIZE;
            out[sh + 4..sh + 8].copy_from_slice(&SHT_NOTE.to_le_bytes());
            out[sh + 24..sh + 32].copy_from_slice(&(notes_at as u64).to_le_bytes());
            out[sh + 32..sh + 40].copy_from_slice(&(notes_len as u64).to_le_bytes());
        }
        // ELF header.
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = ELFCLASS64;
        out[5] = ELFDATA2LSB;
        out[6] = EV_CURRENT;
        out[16..18].copy_from_slice(&self.e_type.to_le_bytes());
        out[18..20].copy_from_slice(&self.machine.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&self.entry.to_le_bytes());
        out[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        out[40..48].copy_from_slice(&(if nr_sh > 0 { shoff as u64 } else { 0 }).to_le_bytes());
        out[52..54].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[56..58].copy_from_slice(&(nr_ph as u16).to_le_bytes());
        out[58..60].copy_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
        out[60..62].copy_from_slice(&(nr_sh as u16).to_le_bytes());
        // Program headers.
        let mut phs: Vec<[u64; 6]> = Vec::new();
        let mut types = Vec::new();
        for (s, &off) in self.segs.iter().zip(&offsets) {
            phs.push([off, s.vaddr, s.paddr, s.data.len() as u64, s.memsz, 0x1000]);
            types.push((s.p_type, s.flags));
        }
        if self.note_segment {
            let a = BASE + 0x10_0000;
            phs.push([notes_at as u64, a, a, notes_len as u64, notes_len as u64, 4]);
            types.push((PT_NOTE, PF_R));
        }
        for (i, (ph, (t, f))) in phs.iter().zip(types).enumerate() {
            let at = EHDR_SIZE + i * PHDR_SIZE;
            out[at..at + 4].copy_from_slice(&t.to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&f.to_le_bytes());
            for (k, v) in ph.iter().enumerate() {
                out[at + 8 + 8 * k..at + 16 + 8 * k].copy_from_slice(&v.to_le_bytes());
            }
        }
        out
    }
    fn parse(&self) -> Result<GuestImage, ElfError> {
        GuestImage::parse(&self.build())
    }
}

fn err(b: Builder) -> ElfError {
    b.parse().expect_err("image should be refused")
}

// ---------------------------------------------------------------------------------
// The happy path and each note.

#[test]
fn parses_pv_style_image() {
    let img = Builder::pv().parse().unwrap();
    let p = img.params;
    assert_eq!(img.segments().len(), 2);
    let s = img.segments()[1];
    assert_eq!(
        (s.index, s.paddr, s.vaddr, s.filesz, s.memsz),
        (1, BASE + 0x2000, BASE + 0x2000, 0x100, 0x3001)
    );
    assert_eq!(s.flags, PF_R | PF_W);
    assert_eq!(s.load_addr, BASE + 0x2000);
    assert_eq!(img.notes.guest_os.unwrap(), "test-os");
    assert_eq!(img.notes.guest_version.unwrap(), "0.1");
    assert_eq!(img.notes.xen_version.unwrap(), "xen-3.0");
    assert_eq!(img.notes.loader.unwrap(), "generic");
    assert!(!img.notes_from_sections);
    assert_eq!(p.virt_base, BASE);
    assert_eq!(p.elf_paddr_offset, BASE);
    assert_eq!(p.virt_offset, 0);
    assert_eq!(p.virt_kstart, BASE);
    assert_eq!(p.virt_kend, BASE + 0x5001);
    assert_eq!(p.virt_entry, BASE);
    assert_eq!(p.virt_hypercall, Some(BASE + 0x1000));
    assert_eq!(p.p2m_base, None);
    assert!(!p.unmapped_initrd);
    assert_eq!(p.f_supported, 1 << XENFEAT_writable_page_tables);
    assert_eq!(p.f_required, 1 << XENFEAT_writable_page_tables);
    assert!(p.dom0_capable());
}

#[test]
fn entry_note_overrides_e_entry() {
    let img = Builder::pv()
        .note(xen_u64(XEN_ELFNOTE_ENTRY, BASE + 0x10))
        .parse()
        .unwrap();
    assert_eq!(img.params.virt_entry, BASE + 0x10);
    assert_eq!(img.e_entry, BASE);
}

#[test]
fn numeric_notes_accept_4_and_8_bytes_and_read_odd_sizes_as_zero() {
    let img = Builder::pv()
        .note(xen_u32(XEN_ELFNOTE_SUSPEND_CANCEL, 1))
        .parse()
        .unwrap();
    assert_eq!(img.notes.suspend_cancel, Some(1));
    assert!(img.params.suspend_cancel);
    let img = Builder::pv()
        .note(xen(XEN_ELFNOTE_HV_START_LOW, &0xf580_0000u32.to_le_bytes()))
        .parse()
        .unwrap();
    assert_eq!(img.params.virt_hv_start_low, Some(0xf580_0000));
    // libelf's elf_note_numeric: a 3-byte descriptor reads as 0 but counts as given.
    let img = Builder::pv()
        .note(xen(XEN_ELFNOTE_MOD_START_PFN, &[1, 0, 0]))
        .parse()
        .unwrap();
    assert_eq!(img.notes.mod_start_pfn, Some(0));
    assert!(!img.params.unmapped_initrd);
    assert_eq!(note_numeric(&[0x34, 0x12]), 0x1234);
    assert_eq!(note_numeric(&[7]), 7);
}

#[test]
fn mod_start_pfn_sets_unmapped_initrd() {
    let img = Builder::pv()
        .note(xen_u64(XEN_ELFNOTE_MOD_START_PFN, 1))
        .parse()
        .unwrap();
    assert!(img.params.unmapped_initrd);
}

#[test]
fn init_p2m_outside_the_image() {
    let img = Builder::pv()
        .note(xen_u64(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000))
        .parse()
        .unwrap();
    assert_eq!(img.params.p2m_base, Some(0x80_0000_0000));
    assert_eq!(
        err(Builder::pv().note(xen_u64(XEN_ELFNOTE_INIT_P2M, BASE + 0x3000))),
        ElfError::P2mBaseInImage(BASE + 0x3000)
    );
    // kend itself is outside [kstart, kend).
    assert!(Builder::pv()
        .note(xen_u64(XEN_ELFNOTE_INIT_P2M, BASE + 0x5001))
        .parse()
        .is_ok());
}

#[test]
fn pae_mode_bsd_symtab_and_l1_mfn_valid() {
    let mut pair = 1u64.to_le_bytes().to_vec();
    pair.extend_from_slice(&1u64.to_le_bytes());
    let img = Builder::pv()
        .note(xen_str(XEN_ELFNOTE_PAE_MODE, "yes"))
        .note(xen_str(XEN_ELFNOTE_BSD_SYMTAB, "yes"))
        .note(xen(XEN_ELFNOTE_L1_MFN_VALID, &pair))
        .parse()
        .unwrap();
    assert_eq!(img.notes.pae_mode.unwrap(), "yes");
    assert!(img.params.bsd_symtab);
    assert_eq!(img.notes.l1_mfn_valid, Some((1, 1)));
    let img = Builder::pv()
        .note(xen(XEN_ELFNOTE_L1_MFN_VALID, &[1, 0, 0, 0, 1, 0, 0, 0]))
        .parse()
        .unwrap();
    assert_eq!(img.notes.l1_mfn_valid, Some((1, 1)));
}

#[test]
fn features_note() {
    let img = Builder::pv()
        .with(xen_str(
            XEN_ELFNOTE_FEATURES,
            "writable_descriptor_tables|auto_translated_physmap|!pae_pgdir_above_4gb|unknown_one",
        ))
        .parse()
        .unwrap();
    let bit = |b: u32| 1u32 << b;
    assert_eq!(
        img.params.f_supported,
        bit(XENFEAT_writable_descriptor_tables)
            | bit(XENFEAT_auto_translated_physmap)
            | bit(XENFEAT_pae_pgdir_above_4gb)
    );
    assert_eq!(img.params.f_required, bit(XENFEAT_pae_pgdir_above_4gb));
    assert!(img.notes.features_present);
    assert_eq!(
        err(Builder::pv().with(xen_str(
            XEN_ELFNOTE_FEATURES,
            "writable_page_tables|!no_such_feature"
        ))),
        ElfError::UnknownRequiredFeature(NoteStr::new(b"no_such_feature"))
    );
}

#[test]
fn feature_string_tokenizer_follows_libelf() {
    let (mut s, mut r) = (0, 0);
    parse_features(b"||dom0|", &mut s, &mut r).unwrap();
    assert_eq!((s, r), (1 << XENFEAT_dom0, 0));
    // A lone "!" requires the empty name: refused like libelf.
    assert!(parse_features(b"!", &mut s, &mut r).is_err());
    // Names are cut at 63 bytes; the rest is read as the next name.
    let mut long = vec![b'x'; 63];
    long.extend_from_slice(b"dom0");
    let (mut s, mut r) = (0, 0);
    parse_features(&long, &mut s, &mut r).unwrap();
    assert_eq!(s, 1 << XENFEAT_dom0);
    // Stops at a NUL.
    let (mut s, mut r) = (0, 0);
    parse_features(b"dom0\0!bogus", &mut s, &mut r).unwrap();
    assert_eq!(s, 1 << XENFEAT_dom0);
}

#[test]
fn supported_features_note_and_dom0() {
    let img = Builder::pv()
        .note(xen_u32(XEN_ELFNOTE_SUPPORTED_FEATURES, 1))
        .parse()
        .unwrap();
    assert_eq!(img.notes.supported_features, Some(1));
    assert!(img.params.has_supported_features_note);
    assert!(!img.params.dom0_capable());
    let img = Builder::pv()
        .note(xen_u32(
            XEN_ELFNOTE_SUPPORTED_FEATURES,
            (1 << XENFEAT_dom0) | 1,
        ))
        .parse()
        .unwrap();
    assert!(img.params.dom0_capable());
    assert_ne!(img.params.f_supported & (1 << XENFEAT_dom0), 0);
}

#[test]
fn later_note_wins() {
    let img = Builder::pv()
        .note(xen_str(XEN_ELFNOTE_GUEST_OS, "second"))
        .parse()
        .unwrap();
    assert_eq!(img.notes.guest_os.unwrap(), "second");
}

#[test]
fn long_strings_are_truncated_not_refused() {
    let long = "a".repeat(200);
    let img = Builder::pv()
        .with(xen_str(XEN_ELFNOTE_GUEST_VERSION, &long))
        .parse()
        .unwrap();
    assert_eq!(
        img.notes.guest_version.unwrap().as_bytes().len(),
        NOTE_STR_MAX
    );
    // No NUL in the descriptor: the whole descriptor.
    let img = Builder::pv()
        .with(xen(XEN_ELFNOTE_GUEST_OS, b"abcd"))
        .parse()
        .unwrap();
    assert_eq!(img.notes.guest_os.unwrap(), "abcd");
}

#[test]
fn other_owners_and_unknown_types_are_ignored() {
    let gnu = Note {
        name: b"GNU\0".to_vec(),
        ty: XEN_ELFNOTE_GUEST_OS,
        desc: b"evil\0".to_vec(),
    };
    let img = Builder::pv()
        .note(gnu)
        .note(xen_u64(0x1234, 5))
        .note(xen_str(0, "INFO=1"))
        .parse()
        .unwrap();
    assert_eq!(img.notes.guest_os.unwrap(), "test-os");
}

#[test]
fn notes_from_sections_when_no_note_segment() {
    let mut b = Builder::pv();
    b.note_segment = false;
    let img = b.parse().unwrap();
    assert!(img.notes_from_sections);
    assert_eq!(img.notes.guest_os.unwrap(), "test-os");
    // With neither, the image is not a Xen image.
    b.note_section = false;
    assert_eq!(err(b), ElfError::NotXenImage);
}

#[test]
fn note_segment_with_offset_zero_is_skipped() {
    let mut b = Builder::pv();
    b.note_section = false;
    let mut bytes = b.build();
    let ph = EHDR_SIZE + 2 * PHDR_SIZE; // the PT_NOTE header
    bytes[ph + 8..ph + 16].fill(0);
    assert_eq!(GuestImage::parse(&bytes), Err(ElfError::NotXenImage));
}

// ---------------------------------------------------------------------------------
// libelf's checks.

#[test]
fn xen_version_must_start_with_xen_3_0() {
    assert_eq!(
        err(Builder::pv().without(XEN_ELFNOTE_XEN_VERSION)),
        ElfError::BadXenVersion
    );
    assert_eq!(
        err(Builder::pv().with(xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-4.0"))),
        ElfError::BadXenVersion
    );
    assert!(Builder::pv()
        .with(xen_str(XEN_ELFNOTE_XEN_VERSION, "xen-3.0-x86_64"))
        .parse()
        .is_ok());
}

#[test]
fn loader_generic_unless_linux() {
    assert_eq!(
        err(Builder::pv().without(XEN_ELFNOTE_LOADER)),
        ElfError::UnsupportedLoader
    );
    assert_eq!(
        err(Builder::pv().with(xen_str(XEN_ELFNOTE_LOADER, "special"))),
        ElfError::UnsupportedLoader
    );
    let linux = Builder::pv()
        .without(XEN_ELFNOTE_LOADER)
        .with(xen_str(XEN_ELFNOTE_GUEST_OS, "linux"));
    assert!(linux.parse().is_ok());
    // libelf compares 7 characters: "generic-ish" passes.
    assert!(Builder::pv()
        .with(xen_str(XEN_ELFNOTE_LOADER, "generic-ish"))
        .parse()
        .is_ok());
}

#[test]
fn paddr_offset_needs_virt_base() {
    assert_eq!(
        err(Builder::pv().without(XEN_ELFNOTE_VIRT_BASE)),
        ElfError::PaddrOffsetWithoutVirtBase
    );
}

#[test]
fn virt_base_defaults_to_zero_xtf_style() {
    // XTF: linked at 1 MiB, no VIRT_BASE/PADDR_OFFSET: VA == PA.
    let mut b = Builder::pv()
        .without(XEN_ELFNOTE_VIRT_BASE)
        .without(XEN_ELFNOTE_PADDR_OFFSET);
    b.segs = vec![load_seg(PF_R | PF_W | PF_X, 0x10_0000, 0x1000, 0x4000)];
    b.entry = 0x10_0000;
    let b = b.with(xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, 0x10_1000));
    let p = b.parse().unwrap().params;
    assert_eq!(
        (p.virt_base, p.elf_paddr_offset, p.virt_kstart, p.virt_kend),
        (0, 0, 0x10_0000, 0x10_4000)
    );
}

#[test]
fn linux_style_paddr_offset() {
    // Linux: p_paddr 16 MiB, VIRT_BASE __START_KERNEL_map, PADDR_OFFSET 0.
    let mut b = Builder::pv()
        .with(xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0))
        .with(xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, BASE + 0x100_1000));
    for s in &mut b.segs {
        s.paddr -= BASE - 0x100_0000;
        s.vaddr += 0x100_0000;
    }
    b.entry = BASE + 0x100_0000;
    let img = b.parse().unwrap();
    assert_eq!(img.params.virt_kstart, BASE + 0x100_0000);
    assert_eq!(img.params.virt_kend, BASE + 0x100_5001);
    assert_eq!(img.segments()[0].load_addr, BASE + 0x100_0000);
}

#[test]
fn entry_must_be_in_image() {
    let mut b = Builder::pv();
    b.entry = BASE - 1;
    assert_eq!(err(b.clone()), ElfError::EntryOutOfImage(BASE - 1));
    b.entry = BASE + 0x5002;
    assert_eq!(err(b.clone()), ElfError::EntryOutOfImage(BASE + 0x5002));
    // libelf accepts entry == kend.
    b.entry = BASE + 0x5001;
    assert!(b.parse().is_ok());
    assert_eq!(
        err(Builder::pv().note(xen_u64(XEN_ELFNOTE_ENTRY, 0))),
        ElfError::EntryOutOfImage(0)
    );
}

#[test]
fn virt_base_must_not_be_above_kernel() {
    let b = Builder::pv()
        .with(xen_u64(XEN_ELFNOTE_VIRT_BASE, BASE + 0x1000))
        .with(xen_u64(XEN_ELFNOTE_PADDR_OFFSET, BASE + 0x1000));
    assert_eq!(err(b), ElfError::VirtBaseAboveKernel);
}

#[test]
fn hypercall_page_must_be_in_image() {
    for a in [BASE - 0x1000, BASE + 0x5001, 0] {
        assert_eq!(
            err(Builder::pv().with(xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, a))),
            ElfError::HypercallPageOutOfImage(a)
        );
    }
    assert!(Builder::pv()
        .without(XEN_ELFNOTE_HYPERCALL_PAGE)
        .parse()
        .unwrap()
        .params
        .virt_hypercall
        .is_none());
}

// ---------------------------------------------------------------------------------
// Segment checks.

#[test]
fn overlapping_segments_are_refused() {
    let mut b = Builder::pv();
    b.segs[1].paddr = BASE + 0x1fff;
    assert_eq!(err(b), ElfError::SegmentsOverlap(0, 1));
    // Touching is fine; empty segments never overlap.
    let mut b = Builder::pv();
    b.segs.push(load_seg(PF_R, BASE + 0x1000, 0, 0));
    assert!(b.parse().is_ok());
}

#[test]
fn non_canonical_and_wrapping_segments_are_refused() {
    let mut b = Builder::pv()
        .with(xen_u64(XEN_ELFNOTE_VIRT_BASE, 0))
        .with(xen_u64(XEN_ELFNOTE_PADDR_OFFSET, 0));
    b.segs = vec![load_seg(PF_R | PF_X, 0x7fff_ffff_f000, 0x1000, 0x2000)];
    b.entry = 0x7fff_ffff_f000;
    let b = b.with(xen_u64(XEN_ELFNOTE_HYPERCALL_PAGE, 0x7fff_ffff_f000));
    assert_eq!(err(b.clone()), ElfError::SegmentNotCanonical(0));
    let mut w = b.clone();
    w.segs[0].paddr = u64::MAX - 0xfff;
    w.segs[0].memsz = 0x2000;
    assert_eq!(err(w), ElfError::SegmentWraps(0));
    // Ending exactly at 2^64 is refused too (kend would wrap to 0).
    let mut e = b;
    e.segs[0].paddr = u64::MAX - 0xfff;
    e.segs[0].memsz = 0x1000;
    assert_eq!(err(e), ElfError::SegmentWraps(0));
}

#[test]
fn segment_offsets_and_sizes_are_checked() {
    let mut b = Builder::pv();
    b.segs[0].offset = Some(u64::MAX - 4);
    assert_eq!(err(b), ElfError::SegmentOutsideFile(0));
    let mut b = Builder::pv();
    b.segs[0].memsz = 0x1000;
    assert_eq!(err(b), ElfError::SegmentFileszExceedsMemsz(0));
}

#[test]
fn non_loadable_segments_are_ignored() {
    let mut b = Builder::pv();
    b.segs.push(Seg {
        flags: 0,
        ..load_seg(0, 0, 0x10, 0x10)
    }); // PT_LOAD without R/W/X
    b.segs.push(Seg {
        p_type: 0x6474e551,
        ..load_seg(PF_R | PF_W, 0, 0, 0)
    }); // GNU_STACK
    let img = b.parse().unwrap();
    assert_eq!(img.segments().len(), 2);
    let mut b = Builder::pv();
    b.segs.clear();
    assert_eq!(err(b), ElfError::NoLoadableSegments);
}

#[test]
fn too_many_segments() {
    let mut b = Builder::pv();
    b.segs = (0..=MAX_LOAD_SEGMENTS as u64)
        .map(|i| load_seg(PF_R | PF_X, BASE + i * 0x1000, 0x10, 0x1000))
        .collect();
    assert_eq!(err(b.clone()), ElfError::TooManySegments);
    b.segs.pop();
    assert!(b.parse().is_ok());
}

// ---------------------------------------------------------------------------------
// Header checks.

#[test]
fn header_checks() {
    let good = Builder::pv().build();
    assert_eq!(GuestImage::parse(&good[..63]), Err(ElfError::TooShort));
    assert_eq!(GuestImage::parse(&[]), Err(ElfError::TooShort));
    let patched = |at: usize, v: &[u8]| {
        let mut b = good.clone();
        b[at..at + v.len()].copy_from_slice(v);
        GuestImage::parse(&b)
    };
    assert_eq!(patched(0, b"\x7fELG"), Err(ElfError::BadMagic));
    assert_eq!(patched(4, &[1]), Err(ElfError::NotElf64));
    assert_eq!(patched(5, &[2]), Err(ElfError::NotLittleEndian));
    assert_eq!(patched(6, &[0]), Err(ElfError::BadVersion));
    assert_eq!(
        patched(16, &3u16.to_le_bytes()),
        Err(ElfError::NotExecutable(3))
    );
    assert_eq!(
        patched(18, &3u16.to_le_bytes()),
        Err(ElfError::WrongMachine(3))
    );
    assert_eq!(
        patched(54, &32u16.to_le_bytes()),
        Err(ElfError::BadHeaderSize)
    );
    assert_eq!(
        patched(32, &u64::MAX.to_le_bytes()),
        Err(ElfError::PhdrTableOutOfBounds)
    );
    assert_eq!(
        patched(56, &0xffffu16.to_le_bytes()),
        Err(ElfError::PhdrTableOutOfBounds)
    );
    assert_eq!(
        patched(40, &(u64::MAX - 10).to_le_bytes()),
        Err(ElfError::ShdrTableOutOfBounds)
    );
}

#[test]
fn truncated_notes_are_refused() {
    let mut b = Builder::pv();
    b.note_section = false;
    let bytes = b.build();
    let ph = EHDR_SIZE + 2 * PHDR_SIZE;
    let notes_at = u64::from_le_bytes(bytes[ph + 8..ph + 16].try_into().unwrap()) as usize;
    // First note's descsz made huge.
    let mut t = bytes.clone();
    t[notes_at + 4..notes_at + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert_eq!(GuestImage::parse(&t), Err(ElfError::NoteTruncated));
    // namesz huge.
    let mut t = bytes.clone();
    t[notes_at..notes_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(GuestImage::parse(&t), Err(ElfError::NoteTruncated));
    // Segment runs off the file.
    let mut t = bytes;
    t[ph + 32..ph + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(GuestImage::parse(&t), Err(ElfError::NotesOutsideFile));
}

#[test]
fn too_many_notes() {
    let mut b = Builder::pv();
    b.note_section = false;
    for _ in 0..MAX_TOTAL_NOTES {
        b.notes.push(Note {
            name: Vec::new(),
            ty: 0,
            desc: Vec::new(),
        });
    }
    assert_eq!(err(b), ElfError::TooManyNotes);
}

#[test]
fn errors_display() {
    let all = [
        ElfError::TooShort,
        ElfError::NotExecutable(1),
        ElfError::SegmentsOverlap(1, 2),
        ElfError::UnknownRequiredFeature(NoteStr::new(b"x\xff")),
        ElfError::HypercallPageOutOfImage(1),
        ElfError::NotXenImage,
    ];
    for e in all {
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(
        ElfError::UnknownRequiredFeature(NoteStr::new(b"x\xff")).to_string(),
        "unknown required feature 'x?'"
    );
    let l: LoadError<&str> = LoadError::Dest("no frame");
    assert_eq!(l.to_string(), "placing the kernel: no frame");
}

// ---------------------------------------------------------------------------------
// Loading.

#[test]
fn load_writes_file_bytes_and_zeroes_bss() {
    let bytes = Builder::pv().build();
    let img = GuestImage::parse(&bytes).unwrap();
    let p = img.params;
    let mut mem = vec![0xaau8; (p.virt_kend - p.virt_kstart) as usize];
    let base = p.virt_kstart;
    let mut zeroed = Vec::new();
    img.load::<()>(
        &bytes,
        |va, data| {
            let at = (va - base) as usize;
            mem[at..at + data.len()].copy_from_slice(data);
            Ok(())
        },
        |va, len| {
            zeroed.push((va, len));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(zeroed, vec![(BASE + 0x2100, 0x2f01)]);
    assert_eq!(mem[0], 1);
    assert_eq!(mem[0x1fff], (0x1fff % 251) as u8 + 1);
    assert_eq!(mem[0x2000], 1);
    // Destination errors come back as Dest; a short slice as Image.
    assert_eq!(
        img.load(&bytes, |_, _| Err(7), |_, _| Ok(())),
        Err(LoadError::Dest(7))
    );
    assert_eq!(
        img.load::<()>(&bytes[..100], |_, _| Ok(()), |_, _| Ok(())),
        Err(LoadError::Image(ElfError::SegmentOutsideFile(0)))
    );
}

// ---------------------------------------------------------------------------------
// The real pv-guest image.

#[test]
fn real_pv_guest_image() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/images/pv-guest");
    let Ok(bytes) = std::fs::read(path) else {
        println!("note: {path} missing (run `cargo xtask build`); skipping");
        return;
    };
    let img = GuestImage::parse(&bytes).expect("pv-guest parses");
    let p = img.params;
    assert_eq!(img.notes.guest_os.unwrap(), "pv-guest");
    assert_eq!(img.notes.loader.unwrap(), "generic");
    assert!(img.notes.xen_version.unwrap().starts_with("xen-3.0"));
    assert_eq!(p.virt_base, 0xffff_ffff_8000_0000);
    assert_eq!(p.virt_entry, 0xffff_ffff_8000_0000);
    assert_eq!(p.virt_kstart, 0xffff_ffff_8000_0000);
    let hc = p.virt_hypercall.expect("HYPERCALL_PAGE");
    assert!(hc >= p.virt_kstart && hc < p.virt_kend && hc.is_multiple_of(4096));
    assert_ne!(p.f_required & (1 << XENFEAT_writable_page_tables), 0);
    let mut written = 0u64;
    img.load::<()>(
        &bytes,
        |_, d| {
            written += d.len() as u64;
            Ok(())
        },
        |_, _| Ok(()),
    )
    .unwrap();
    assert!(written > 0);
}

// ---------------------------------------------------------------------------------
// Hostile input never panics.

fn exercise(bytes: &[u8]) {
    if let Ok(img) = GuestImage::parse(bytes) {
        let p = img.params;
        assert!(p.virt_kstart <= p.virt_kend);
        assert!(p.virt_entry >= p.virt_kstart && p.virt_entry <= p.virt_kend);
        for s in img.segments() {
            assert!(s.load_addr >= p.virt_kstart && s.load_addr + s.memsz <= p.virt_kend);
        }
        img.load::<()>(bytes, |_, _| Ok(()), |_, _| Ok(())).unwrap();
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_with_elf_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut bytes = Builder::pv().build()[..24].to_vec();
        bytes.extend_from_slice(&tail);
        exercise(&bytes);
    }

    #[test]
    fn corrupted_images_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = Builder::pv().note(xen_u64(XEN_ELFNOTE_INIT_P2M, 0x80_0000_0000)).build();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        exercise(&bytes);
    }

    #[test]
    fn corrupted_header_words_never_panic(which in 0usize..64, v in any::<u64>()) {
        // Overwrite one aligned 8-byte word in the headers with an arbitrary value.
        let mut bytes = Builder::pv().build();
        let at = which * 8;
        if at + 8 <= bytes.len() {
            bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        exercise(&bytes);
    }
}
