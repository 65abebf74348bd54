//! A PV kernel image: a 64-bit little-endian x86_64 ELF executable with Xen ELF notes.
//!
//! [`GuestImage::parse`] reads the image from a byte slice that may come from a
//! hostile or broken boot module: every offset and size is bounds-checked with
//! checked arithmetic, nothing panics, and every failure is an [`ElfError`]. It
//! returns the `PT_LOAD` segments, the Xen notes (`PT_NOTE` segments, or `SHT_NOTE`
//! sections when no segment held a Xen note) and the domain parameters computed as
//! Xen 4.17's libelf does (`elf_parse_binary`, `elf_xen_parse`, `elf_xen_note_check`,
//! `elf_xen_addr_calc_check` in `xen/common/libelf/`). [`GuestImage::load`] then copies
//! the segments to the guest's virtual addresses through caller-supplied closures.
//!
//! Where this module is stricter than libelf it says so (`Stricter:` in comments);
//! everything else follows libelf's rules, including its quirks.
#![forbid(unsafe_code)]

use core::fmt;

use xen_abi::elfnote::{
    XEN_ELFNOTE_BSD_SYMTAB, XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_GUEST_OS,
    XEN_ELFNOTE_GUEST_VERSION, XEN_ELFNOTE_HV_START_LOW, XEN_ELFNOTE_HYPERCALL_PAGE,
    XEN_ELFNOTE_INIT_P2M, XEN_ELFNOTE_L1_MFN_VALID, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_MOD_START_PFN,
    XEN_ELFNOTE_NAME, XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_PAE_MODE, XEN_ELFNOTE_PHYS32_ENTRY,
    XEN_ELFNOTE_SUPPORTED_FEATURES, XEN_ELFNOTE_SUSPEND_CANCEL, XEN_ELFNOTE_VIRT_BASE,
    XEN_ELFNOTE_XEN_VERSION,
};
use xen_abi::features::{feature_by_name, XENFEAT_dom0};

/// Most `PT_LOAD` segments an image may have (Linux has 4 or 5).
pub const MAX_LOAD_SEGMENTS: usize = 16;
/// Most notes (of any owner) looked at, as libelf's `ELF_MAX_TOTAL_NOTE_COUNT`.
pub const MAX_TOTAL_NOTES: usize = 65536;
/// Bytes kept of a string note. (libelf keeps 15 of `GUEST_OS`, `GUEST_VERSION`,
/// `XEN_VERSION` and `LOADER`; its checks only look at the first 7.)
pub const NOTE_STR_MAX: usize = 31;

// ELF constants (System V gABI / x86_64 psABI).
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const NOTE_HDR_SIZE: usize = 12;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;
/// `PF_X`
pub const PF_X: u32 = 1;
/// `PF_W`
pub const PF_W: u32 = 2;
/// `PF_R`
pub const PF_R: u32 = 4;

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    TooShort,
    /// No `\x7fELF` magic.
    BadMagic,
    /// Not `ELFCLASS64`.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `e_ident[EI_VERSION]` or `e_version` is not `EV_CURRENT`.
    BadVersion,
    /// `e_type` is not `ET_EXEC`.
    NotExecutable(u16),
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine(u16),
    /// `e_ehsize`, `e_phentsize` or `e_shentsize` is not the ELF64 size.
    BadHeaderSize,
    /// The program header table runs past the end of the image.
    PhdrTableOutOfBounds,
    /// The section header table runs past the end of the image.
    ShdrTableOutOfBounds,
    /// More than [`MAX_LOAD_SEGMENTS`] loadable segments.
    TooManySegments,
    /// No loadable (`PT_LOAD` with R, W or X) segment.
    NoLoadableSegments,
    /// Segment (program header index) whose file bytes lie outside the image.
    SegmentOutsideFile(usize),
    /// Segment whose `p_filesz` exceeds its `p_memsz`.
    SegmentFileszExceedsMemsz(usize),
    /// Segment whose address range wraps around the address space.
    SegmentWraps(usize),
    /// Segment whose load range is not in canonical (48-bit) address space.
    SegmentNotCanonical(usize),
    /// Two segments (program header indices) whose load ranges overlap.
    SegmentsOverlap(usize, usize),
    /// The lowest load address is above the highest end (the image wraps).
    ImageWraps,
    /// A note segment or section lies outside the image.
    NotesOutsideFile,
    /// A note's name or descriptor runs past its segment or section.
    NoteTruncated,
    /// More than [`MAX_TOTAL_NOTES`] notes.
    TooManyNotes,
    /// No Xen note at all (libelf: "Not a Xen-ELF image").
    NotXenImage,
    /// `FEATURES` requires (`!name`) a feature this builder does not know.
    UnknownRequiredFeature(NoteStr),
    /// `LOADER` is not `generic` and `GUEST_OS` does not start with `linux`.
    UnsupportedLoader,
    /// `XEN_VERSION` missing or not starting with `xen-3.0`.
    BadXenVersion,
    /// `PADDR_OFFSET` is set but `VIRT_BASE` is not.
    PaddrOffsetWithoutVirtBase,
    /// `VIRT_BASE` lies above the kernel's first byte.
    VirtBaseAboveKernel,
    /// The entry point lies outside `[virt_kstart, virt_kend]`.
    EntryOutOfImage(u64),
    /// `INIT_P2M` points into the kernel image.
    P2mBaseInImage(u64),
    /// `HYPERCALL_PAGE` is not inside `[virt_kstart, virt_kend)`.
    HypercallPageOutOfImage(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("image shorter than an ELF header"),
            Self::BadMagic => f.write_str("not an ELF binary"),
            Self::NotElf64 => f.write_str("not a 64-bit ELF"),
            Self::NotLittleEndian => f.write_str("not a little-endian ELF"),
            Self::BadVersion => f.write_str("unknown ELF version"),
            Self::NotExecutable(t) => write!(f, "ELF type {t} is not ET_EXEC"),
            Self::WrongMachine(m) => write!(f, "ELF machine {m} is not x86_64"),
            Self::BadHeaderSize => f.write_str("ELF header/entry sizes are not ELF64's"),
            Self::PhdrTableOutOfBounds => f.write_str("program headers overflow the image"),
            Self::ShdrTableOutOfBounds => f.write_str("section headers overflow the image"),
            Self::TooManySegments => {
                write!(f, "more than {MAX_LOAD_SEGMENTS} loadable segments")
            }
            Self::NoLoadableSegments => f.write_str("no loadable segment"),
            Self::SegmentOutsideFile(i) => write!(f, "segment {i} lies outside the image"),
            Self::SegmentFileszExceedsMemsz(i) => {
                write!(f, "segment {i} has p_filesz > p_memsz")
            }
            Self::SegmentWraps(i) => write!(f, "segment {i} wraps the address space"),
            Self::SegmentNotCanonical(i) => write!(f, "segment {i} is not canonical"),
            Self::SegmentsOverlap(a, b) => write!(f, "segments {a} and {b} overlap"),
            Self::ImageWraps => f.write_str("ELF start or entries are out of bounds"),
            Self::NotesOutsideFile => f.write_str("note segment or section outside the image"),
            Self::NoteTruncated => f.write_str("truncated ELF note"),
            Self::TooManyNotes => f.write_str("too many ELF notes"),
            Self::NotXenImage => {
                f.write_str("not a Xen-ELF image: no ELF notes or '__xen_guest' section found")
            }
            Self::UnknownRequiredFeature(n) => write!(f, "unknown required feature '{n}'"),
            Self::UnsupportedLoader => {
                f.write_str("will only load images built for the generic loader or Linux images")
            }
            Self::BadXenVersion => f.write_str("will only load images built for Xen v3.0"),
            Self::PaddrOffsetWithoutVirtBase => {
                f.write_str("ELF_PADDR_OFFSET set, VIRT_BASE unset")
            }
            Self::VirtBaseAboveKernel => f.write_str("VIRT_BASE above the kernel start"),
            Self::EntryOutOfImage(e) => write!(f, "entry {e:#x} outside the kernel image"),
            Self::P2mBaseInImage(a) => write!(f, "P->M table base {a:#x} is out of bounds"),
            Self::HypercallPageOutOfImage(a) => {
                write!(f, "hypercall page {a:#x} outside the kernel image")
            }
        }
    }
}

/// A string from a note: the descriptor's bytes up to the first NUL, at most
/// [`NOTE_STR_MAX`] of them.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct NoteStr {
    buf: [u8; NOTE_STR_MAX],
    len: u8,
}

impl NoteStr {
    /// Keeps `bytes` up to the first NUL, truncated to [`NOTE_STR_MAX`].
    pub fn new(bytes: &[u8]) -> Self {
        let bytes = until_nul(bytes);
        let n = bytes.len().min(NOTE_STR_MAX);
        let mut buf = [0; NOTE_STR_MAX];
        buf[..n].copy_from_slice(&bytes[..n]);
        Self { buf, len: n as u8 }
    }
    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
    /// The kept bytes as text, if they are UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }
    /// Whether the string starts with `prefix` (libelf's `strncmp(s, prefix, len)`).
    pub fn starts_with(&self, prefix: &str) -> bool {
        self.as_bytes().starts_with(prefix.as_bytes())
    }
}

impl fmt::Display for NoteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for &b in self.as_bytes() {
            f.write_char(if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            })?;
        }
        Ok(())
    }
}

impl fmt::Debug for NoteStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq<&str> for NoteStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// One loadable segment (`PT_LOAD` with at least one of R, W, X: libelf's
/// `elf_phdr_is_loadable`; `PT_LOAD` with no permission is neither loaded nor counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSegment {
    /// Index of its program header.
    pub index: usize,
    /// `p_vaddr` (not used for loading: Xen places segments by `p_paddr`).
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_flags` (`PF_R`, `PF_W`, `PF_X`).
    pub flags: u32,
    /// Guest virtual address the segment is loaded at:
    /// `p_paddr + VIRT_BASE - PADDR_OFFSET` (libelf's `virt_offset`).
    pub load_addr: u64,
}

/// The Xen notes found, as read (before libelf's defaults). A note given twice keeps
/// the later value, as in libelf; `FEATURES` and `SUPPORTED_FEATURES` accumulate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenNotes {
    /// `GUEST_OS`
    pub guest_os: Option<NoteStr>,
    /// `GUEST_VERSION`
    pub guest_version: Option<NoteStr>,
    /// `XEN_VERSION`
    pub xen_version: Option<NoteStr>,
    /// `LOADER`
    pub loader: Option<NoteStr>,
    /// `PAE_MODE` (meaningful for 32-bit kernels only)
    pub pae_mode: Option<NoteStr>,
    /// `BSD_SYMTAB` (the string; `"yes"` asks for the symbol table)
    pub bsd_symtab: Option<NoteStr>,
    /// `VIRT_BASE`
    pub virt_base: Option<u64>,
    /// `PADDR_OFFSET`
    pub paddr_offset: Option<u64>,
    /// `ENTRY`
    pub entry: Option<u64>,
    /// `HYPERCALL_PAGE`
    pub hypercall_page: Option<u64>,
    /// `INIT_P2M`
    pub init_p2m: Option<u64>,
    /// `MOD_START_PFN`
    pub mod_start_pfn: Option<u64>,
    /// `SUSPEND_CANCEL`
    pub suspend_cancel: Option<u64>,
    /// `HV_START_LOW` (32-bit kernels only)
    pub hv_start_low: Option<u64>,
    /// `PHYS32_ENTRY` (PVH only; recorded, unused for PV)
    pub phys32_entry: Option<u64>,
    /// `L1_MFN_VALID`: the first (mask, value) pair, 8-byte (or 4-byte) entries.
    /// (libelf 4.17 does not interpret this note.)
    pub l1_mfn_valid: Option<(u64, u64)>,
    /// Whether a `FEATURES` note was present.
    pub features_present: bool,
    /// `SUPPORTED_FEATURES` (first 32-bit word), if present.
    pub supported_features: Option<u32>,
    /// XENFEAT bits named in `FEATURES` (required ones included) or set in
    /// `SUPPORTED_FEATURES` (libelf's `f_supported[0]`).
    pub f_supported: u32,
    /// XENFEAT bits named with `!` in `FEATURES` (libelf's `f_required[0]`).
    pub f_required: u32,
}

/// The domain parameters libelf derives (`struct elf_dom_parms`, 64-bit PV subset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainParams {
    /// `VIRT_BASE`, default 0: start of the initial mapping.
    pub virt_base: u64,
    /// `PADDR_OFFSET`, default 0 (notes present).
    pub elf_paddr_offset: u64,
    /// `virt_base - elf_paddr_offset` (wrapping), added to every `p_paddr`.
    pub virt_offset: u64,
    /// Lowest load address: `pstart + virt_offset`.
    pub virt_kstart: u64,
    /// End of the highest segment: `pend + virt_offset` (exclusive).
    pub virt_kend: u64,
    /// `ENTRY`, default `e_entry`.
    pub virt_entry: u64,
    /// `HYPERCALL_PAGE`, if given.
    pub virt_hypercall: Option<u64>,
    /// `INIT_P2M`: where the builder maps the P2M list outside the initial mapping.
    pub p2m_base: Option<u64>,
    /// `MOD_START_PFN != 0`: the initrd may stay unmapped (`mod_start` is then a PFN).
    pub unmapped_initrd: bool,
    /// `HV_START_LOW`, if given (32-bit only; kept for completeness).
    pub virt_hv_start_low: Option<u64>,
    /// Supported XENFEAT bits (submap 0).
    pub f_supported: u32,
    /// Required XENFEAT bits (submap 0).
    pub f_required: u32,
    /// Whether a `SUPPORTED_FEATURES` note was present.
    pub has_supported_features_note: bool,
    /// `SUSPEND_CANCEL != 0`.
    pub suspend_cancel: bool,
    /// `BSD_SYMTAB == "yes"` (the symbol table is not loaded by this builder yet).
    pub bsd_symtab: bool,
}

impl DomainParams {
    /// `dom0_construct_pv`'s check: a kernel with a `SUPPORTED_FEATURES` note must
    /// list `XENFEAT_dom0` to run as the initial domain.
    pub fn dom0_capable(&self) -> bool {
        !self.has_supported_features_note || self.f_supported & (1 << XENFEAT_dom0) != 0
    }
}

/// A parsed PV kernel image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestImage {
    /// `e_entry` from the ELF header.
    pub e_entry: u64,
    segments: [LoadSegment; MAX_LOAD_SEGMENTS],
    nr_segments: usize,
    /// The Xen notes as found.
    pub notes: XenNotes,
    /// The notes came from `SHT_NOTE` sections (no `PT_NOTE` segment held one).
    pub notes_from_sections: bool,
    /// What the builder uses.
    pub params: DomainParams,
}

/// Failure of [`GuestImage::load`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError<E> {
    /// The slice given does not hold the segments parsed earlier.
    Image(ElfError),
    /// A destination callback failed.
    Dest(E),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image(e) => write!(f, "kernel image: {e}"),
            Self::Dest(e) => write!(f, "placing the kernel: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Bounds-checked little-endian reads.

fn bytes_at(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes_at(b, off, 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes_at(b, off, 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes_at(b, off, 8)?.try_into().ok()?))
}
fn until_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}
/// `[off, off + len)` of `b` with `u64` inputs, or `None` if out of bounds.
fn range64(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    bytes_at(b, usize::try_from(off).ok()?, usize::try_from(len).ok()?)
}
fn round4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Whether `a` is a canonical 48-bit virtual address.
pub fn is_canonical(a: u64) -> bool {
    (((a << 16) as i64) >> 16) as u64 == a
}

/// Whether `[start, start + len)` is non-wrapping and wholly canonical (one half).
fn range_canonical(start: u64, len: u64) -> bool {
    if len == 0 {
        return is_canonical(start);
    }
    match start.checked_add(len - 1) {
        Some(last) => is_canonical(start) && is_canonical(last) && (start >> 63) == (last >> 63),
        None => false,
    }
}

/// libelf's `elf_note_numeric`: a 1, 2, 4 or 8-byte little-endian value; any other
/// descriptor size reads as 0 (the note still counts as given).
fn note_numeric(desc: &[u8]) -> u64 {
    match desc.len() {
        1 => u64::from(desc[0]),
        2 => u16_at(desc, 0).map_or(0, u64::from),
        4 => u32_at(desc, 0).map_or(0, u64::from),
        8 => u64_at(desc, 0).unwrap_or(0),
        _ => 0,
    }
}

/// libelf's `elf_xen_parse_features`: names separated by `|`, each at most 63 bytes
/// (a longer one is cut and its rest read as the next name), `!` marks a required
/// one (it is also supported). Unknown supported names are ignored; an unknown
/// required name fails.
pub fn parse_features(s: &[u8], supported: &mut u32, required: &mut u32) -> Result<(), ElfError> {
    const FEATURE_MAX: usize = 63; // libelf's `feature[64]` buffer, NUL-terminated
    let s = until_nul(s);
    let mut pos = 0;
    while pos < s.len() {
        let rest = &s[pos..];
        let mut len = 0;
        let mut tok_len = 0;
        while len < FEATURE_MAX && len < rest.len() {
            if rest[len] == b'|' {
                len += 1;
                break;
            }
            len += 1;
            tok_len = len;
        }
        let tok = &rest[..tok_len];
        pos += len;
        let (name, req) = match tok.split_first() {
            Some((b'!', name)) => (name, true),
            _ => (tok, false),
        };
        let bit = core::str::from_utf8(name)
            .ok()
            .and_then(feature_by_name)
            .filter(|&b| b < 32);
        match bit {
            Some(b) => {
                *supported |= 1 << b;
                if req {
                    *required |= 1 << b;
                }
            }
            None if req => return Err(ElfError::UnknownRequiredFeature(NoteStr::new(name))),
            None => {}
        }
    }
    Ok(())
}

/// Records one Xen note (libelf's `elf_xen_parse_note`). Unknown types are ignored.
fn parse_xen_note(notes: &mut XenNotes, ty: u32, desc: &[u8]) -> Result<(), ElfError> {
    let num = note_numeric(desc);
    let s = NoteStr::new(desc);
    match ty {
        XEN_ELFNOTE_ENTRY => notes.entry = Some(num),
        XEN_ELFNOTE_HYPERCALL_PAGE => notes.hypercall_page = Some(num),
        XEN_ELFNOTE_VIRT_BASE => notes.virt_base = Some(num),
        XEN_ELFNOTE_PADDR_OFFSET => notes.paddr_offset = Some(num),
        XEN_ELFNOTE_INIT_P2M => notes.init_p2m = Some(num),
        XEN_ELFNOTE_MOD_START_PFN => notes.mod_start_pfn = Some(num),
        XEN_ELFNOTE_SUSPEND_CANCEL => notes.suspend_cancel = Some(num),
        XEN_ELFNOTE_HV_START_LOW => notes.hv_start_low = Some(num),
        XEN_ELFNOTE_PHYS32_ENTRY => notes.phys32_entry = Some(num),
        XEN_ELFNOTE_XEN_VERSION => notes.xen_version = Some(s),
        XEN_ELFNOTE_GUEST_OS => notes.guest_os = Some(s),
        XEN_ELFNOTE_GUEST_VERSION => notes.guest_version = Some(s),
        XEN_ELFNOTE_LOADER => notes.loader = Some(s),
        XEN_ELFNOTE_PAE_MODE => notes.pae_mode = Some(s),
        XEN_ELFNOTE_BSD_SYMTAB => notes.bsd_symtab = Some(s),
        XEN_ELFNOTE_FEATURES => {
            notes.features_present = true;
            parse_features(desc, &mut notes.f_supported, &mut notes.f_required)?;
        }
        XEN_ELFNOTE_SUPPORTED_FEATURES => {
            // elf_note_numeric_array(note, 4, 0): 0 unless a whole number of u32s.
            let word = if desc.len().is_multiple_of(4) {
                u32_at(desc, 0).unwrap_or(0)
            } else {
                0
            };
            notes.supported_features = Some(notes.supported_features.unwrap_or(0) | word);
            notes.f_supported |= word;
        }
        XEN_ELFNOTE_L1_MFN_VALID => {
            notes.l1_mfn_valid = match desc.len() {
                n if n >= 16 && n % 8 == 0 => u64_at(desc, 0).zip(u64_at(desc, 8)),
                8 => u32_at(desc, 0)
                    .zip(u32_at(desc, 4))
                    .map(|(m, v)| (m.into(), v.into())),
                _ => None,
            };
        }
        _ => {}
    }
    Ok(())
}

/// Walks the notes in `elf[start..end)` (libelf's `elf_xen_parse_notes`), recording
/// the Xen ones. Returns how many Xen notes it saw. Fewer than 12 bytes left at the
/// end are padding.
fn parse_notes(
    elf: &[u8],
    start: u64,
    size: u64,
    notes: &mut XenNotes,
    total: &mut usize,
) -> Result<usize, ElfError> {
    let area = range64(elf, start, size).ok_or(ElfError::NotesOutsideFile)?;
    let mut pos = 0usize;
    let mut xen = 0;
    while area.len().saturating_sub(pos) >= NOTE_HDR_SIZE {
        let namesz = u32_at(area, pos).ok_or(ElfError::NoteTruncated)? as usize;
        let descsz = u32_at(area, pos + 4).ok_or(ElfError::NoteTruncated)? as usize;
        let ty = u32_at(area, pos + 8).ok_or(ElfError::NoteTruncated)?;
        let name_at = pos + NOTE_HDR_SIZE;
        let desc_at = round4(namesz).and_then(|n| name_at.checked_add(n));
        let desc_at = desc_at.ok_or(ElfError::NoteTruncated)?;
        let name = bytes_at(area, name_at, namesz).ok_or(ElfError::NoteTruncated)?;
        let desc = bytes_at(area, desc_at, descsz).ok_or(ElfError::NoteTruncated)?;
        *total += 1;
        if *total > MAX_TOTAL_NOTES {
            return Err(ElfError::TooManyNotes);
        }
        if until_nul(name) == XEN_ELFNOTE_NAME {
            parse_xen_note(notes, ty, desc)?;
            xen += 1;
        }
        // The descriptor fits, so its rounded end is at most 3 past the area's end.
        pos = round4(descsz)
            .and_then(|d| desc_at.checked_add(d))
            .ok_or(ElfError::NoteTruncated)?;
    }
    Ok(xen)
}

impl GuestImage {
    /// Parses and checks a PV kernel image.
    pub fn parse(elf: &[u8]) -> Result<Self, ElfError> {
        // --- ELF header -------------------------------------------------------
        let ehdr = bytes_at(elf, 0, EHDR_SIZE).ok_or(ElfError::TooShort)?;
        if ehdr[..4] != *b"\x7fELF" {
            return Err(ElfError::BadMagic);
        }
        if ehdr[4] != ELFCLASS64 {
            return Err(ElfError::NotElf64);
        }
        if ehdr[5] != ELFDATA2LSB {
            return Err(ElfError::NotLittleEndian);
        }
        let rd16 = |o| u16_at(ehdr, o).ok_or(ElfError::TooShort);
        let rd32 = |o| u32_at(ehdr, o).ok_or(ElfError::TooShort);
        let rd64 = |o| u64_at(ehdr, o).ok_or(ElfError::TooShort);
        if ehdr[6] != EV_CURRENT || rd32(20)? != u32::from(EV_CURRENT) {
            return Err(ElfError::BadVersion);
        }
        let e_type = rd16(16)?;
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable(e_type));
        }
        let e_machine = rd16(18)?;
        if e_machine != EM_X86_64 {
            return Err(ElfError::WrongMachine(e_machine));
        }
        let e_entry = rd64(24)?;
        let e_phoff = rd64(32)?;
        let e_shoff = rd64(40)?;
        let e_ehsize = usize::from(rd16(52)?);
        let e_phentsize = usize::from(rd16(54)?);
        let e_phnum = usize::from(rd16(56)?);
        let e_shentsize = usize::from(rd16(58)?);
        let e_shnum = usize::from(rd16(60)?);
        if e_ehsize != EHDR_SIZE
            || (e_phnum != 0 && e_phentsize != PHDR_SIZE)
            || (e_shnum != 0 && e_shentsize != SHDR_SIZE)
        {
            return Err(ElfError::BadHeaderSize);
        }
        // libelf's elf_init sanity checks: both tables inside the image.
        let phdrs = range64(elf, e_phoff, (e_phnum * PHDR_SIZE) as u64)
            .ok_or(ElfError::PhdrTableOutOfBounds)?;
        let shdrs = if e_shnum == 0 {
            &[][..]
        } else {
            range64(elf, e_shoff, (e_shnum * SHDR_SIZE) as u64)
                .ok_or(ElfError::ShdrTableOutOfBounds)?
        };

        // --- Program headers: loadable segments and PT_NOTE notes -------------
        let mut segments = [LoadSegment::default(); MAX_LOAD_SEGMENTS];
        let mut nr_segments = 0;
        let mut notes = XenNotes::default();
        let mut total_notes = 0;
        let mut xen_notes = 0;
        let (mut pstart, mut pend) = (u64::MAX, 0u64);
        for (index, ph) in phdrs.chunks_exact(PHDR_SIZE).enumerate() {
            let field = |o| u64_at(ph, o).ok_or(ElfError::PhdrTableOutOfBounds);
            let p_type = u32_at(ph, 0).ok_or(ElfError::PhdrTableOutOfBounds)?;
            let p_flags = u32_at(ph, 4).ok_or(ElfError::PhdrTableOutOfBounds)?;
            let (offset, vaddr, paddr) = (field(8)?, field(16)?, field(24)?);
            let (filesz, memsz) = (field(32)?, field(40)?);
            match p_type {
                // elf_phdr_is_loadable: PT_LOAD with any of R, W, X.
                PT_LOAD if p_flags & (PF_R | PF_W | PF_X) != 0 => {
                    if filesz > memsz {
                        return Err(ElfError::SegmentFileszExceedsMemsz(index));
                    }
                    if range64(elf, offset, filesz).is_none() {
                        return Err(ElfError::SegmentOutsideFile(index));
                    }
                    let end = paddr
                        .checked_add(memsz)
                        .ok_or(ElfError::SegmentWraps(index))?;
                    let slot = segments
                        .get_mut(nr_segments)
                        .ok_or(ElfError::TooManySegments)?;
                    *slot = LoadSegment {
                        index,
                        vaddr,
                        paddr,
                        offset,
                        filesz,
                        memsz,
                        flags: p_flags,
                        load_addr: 0,
                    };
                    nr_segments += 1;
                    // elf_parse_binary: pstart/pend over the loadable segments.
                    pstart = pstart.min(paddr);
                    pend = pend.max(end);
                }
                // elf_xen_parse skips note segments with p_offset 0 (old binutils).
                PT_NOTE if offset != 0 => {
                    xen_notes += parse_notes(elf, offset, filesz, &mut notes, &mut total_notes)?;
                }
                _ => {}
            }
        }

        // --- SHT_NOTE sections, only if no segment held a Xen note ------------
        let mut notes_from_sections = false;
        if xen_notes == 0 {
            for sh in shdrs.chunks_exact(SHDR_SIZE).skip(1) {
                let sh_type = u32_at(sh, 4).ok_or(ElfError::ShdrTableOutOfBounds)?;
                if sh_type != SHT_NOTE {
                    continue;
                }
                let off = u64_at(sh, 24).ok_or(ElfError::ShdrTableOutOfBounds)?;
                let size = u64_at(sh, 32).ok_or(ElfError::ShdrTableOutOfBounds)?;
                xen_notes += parse_notes(elf, off, size, &mut notes, &mut total_notes)?;
            }
            notes_from_sections = xen_notes > 0;
        }
        // The legacy `__xen_guest` section is not supported: x86 images need notes.
        if xen_notes == 0 {
            return Err(ElfError::NotXenImage);
        }
        if nr_segments == 0 {
            return Err(ElfError::NoLoadableSegments);
        }

        // --- elf_xen_note_check ----------------------------------------------
        let generic = notes.loader.is_some_and(|l| l.starts_with("generic"));
        let linux = notes.guest_os.is_some_and(|g| g.starts_with("linux"));
        if !generic && !linux {
            return Err(ElfError::UnsupportedLoader);
        }
        if !notes.xen_version.is_some_and(|v| v.starts_with("xen-3.0")) {
            return Err(ElfError::BadXenVersion);
        }

        // --- elf_xen_addr_calc_check -----------------------------------------
        if notes.paddr_offset.is_some() && notes.virt_base.is_none() {
            return Err(ElfError::PaddrOffsetWithoutVirtBase);
        }
        let virt_base = notes.virt_base.unwrap_or(0);
        // With notes (not the legacy section) PADDR_OFFSET defaults to 0.
        let elf_paddr_offset = notes.paddr_offset.unwrap_or(0);
        let virt_offset = virt_base.wrapping_sub(elf_paddr_offset);
        let virt_kstart = pstart.wrapping_add(virt_offset);
        let virt_kend = pend.wrapping_add(virt_offset);
        let virt_entry = notes.entry.unwrap_or(e_entry);
        // libelf: kstart > kend, entry outside [kstart, kend], virt_base > kstart.
        if virt_kstart > virt_kend {
            return Err(ElfError::ImageWraps);
        }
        if virt_entry < virt_kstart || virt_entry > virt_kend {
            return Err(ElfError::EntryOutOfImage(virt_entry));
        }
        if virt_base > virt_kstart {
            return Err(ElfError::VirtBaseAboveKernel);
        }
        if let Some(p2m) = notes.init_p2m {
            if (virt_kstart..virt_kend).contains(&p2m) {
                return Err(ElfError::P2mBaseInImage(p2m));
            }
        }
        // Stricter: libelf leaves HYPERCALL_PAGE to the builder, which only wants it
        // inside [v_start, v_end); we want it inside the kernel image.
        if let Some(hc) = notes.hypercall_page {
            if !(virt_kstart..virt_kend).contains(&hc) {
                return Err(ElfError::HypercallPageOutOfImage(hc));
            }
        }

        // Stricter: every segment's load range canonical, non-wrapping, inside
        // [kstart, kend) and disjoint from the others.
        let segs = &mut segments[..nr_segments];
        for s in segs.iter_mut() {
            s.load_addr = s.paddr.wrapping_add(virt_offset);
            if !range_canonical(s.load_addr, s.memsz) {
                return Err(ElfError::SegmentNotCanonical(s.index));
            }
            let end = s
                .load_addr
                .checked_add(s.memsz)
                .ok_or(ElfError::SegmentWraps(s.index))?;
            if s.load_addr < virt_kstart || end > virt_kend {
                return Err(ElfError::ImageWraps);
            }
        }
        for (i, a) in segs.iter().enumerate() {
            for b in &segs[i + 1..] {
                let disjoint = a.memsz == 0
                    || b.memsz == 0
                    || a.load_addr.saturating_add(a.memsz) <= b.load_addr
                    || b.load_addr.saturating_add(b.memsz) <= a.load_addr;
                if !disjoint {
                    return Err(ElfError::SegmentsOverlap(a.index, b.index));
                }
            }
        }

        let params = DomainParams {
            virt_base,
            elf_paddr_offset,
            virt_offset,
            virt_kstart,
            virt_kend,
            virt_entry,
            virt_hypercall: notes.hypercall_page,
            p2m_base: notes.init_p2m,
            unmapped_initrd: notes.mod_start_pfn.is_some_and(|v| v != 0),
            virt_hv_start_low: notes.hv_start_low,
            f_supported: notes.f_supported,
            f_required: notes.f_required,
            has_supported_features_note: notes.supported_features.is_some(),
            suspend_cancel: notes.suspend_cancel.is_some_and(|v| v != 0),
            bsd_symtab: notes.bsd_symtab.is_some_and(|s| s == "yes"),
        };
        Ok(Self {
            e_entry,
            segments,
            nr_segments,
            notes,
            notes_from_sections,
            params,
        })
    }

    /// The loadable segments, in program header order.
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments[..self.nr_segments]
    }

    /// Copies the segments into the guest (libelf's `elf_load_binary`): for each
    /// segment, `write(load_addr, file bytes)` then `zero(load_addr + filesz,
    /// memsz - filesz)` for the rest. `elf` must be the slice given to [`Self::parse`].
    /// Empty writes and zero-length fills are not issued.
    pub fn load<E>(
        &self,
        elf: &[u8],
        mut write: impl FnMut(u64, &[u8]) -> Result<(), E>,
        mut zero: impl FnMut(u64, u64) -> Result<(), E>,
    ) -> Result<(), LoadError<E>> {
        for s in self.segments() {
            let bytes = range64(elf, s.offset, s.filesz)
                .ok_or(LoadError::Image(ElfError::SegmentOutsideFile(s.index)))?;
            if !bytes.is_empty() {
                write(s.load_addr, bytes).map_err(LoadError::Dest)?;
            }
            // parse checked filesz <= memsz and that load_addr + memsz does not wrap.
            let rest = s.memsz.saturating_sub(s.filesz);
            if rest != 0 {
                zero(s.load_addr.saturating_add(s.filesz), rest).map_err(LoadError::Dest)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
