//! Multiboot (v1) information block, as QEMU's `-kernel` loader hands it over.
//!
//! The parser reads physical memory only through [`PhysRead`], so it never trusts an
//! address it was given: a block that points outside readable memory is an error.

use core::fmt;

/// The value the loader leaves in `eax`.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

const FLAG_MEM: u32 = 1 << 0;
const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;

/// How many modules and memory-map entries we keep; more are reported as an error.
pub const MAX_MODULES: usize = 16;
pub const MAX_MEMORY_REGIONS: usize = 64;
/// Longest command line (kernel or module) we accept, without the NUL.
pub const MAX_CMDLINE: usize = 1024;

/// Read access to physical memory.
pub trait PhysRead {
    /// Copies `buf.len()` bytes from physical address `paddr`.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultibootError {
    BadMagic(u32),
    /// A range the block points at is not readable physical memory.
    Unreadable { paddr: u64, len: u64 },
    TooManyModules(u32),
    TooManyRegions,
    /// A command line without a NUL within [`MAX_CMDLINE`] bytes, or not UTF-8.
    BadString { paddr: u64 },
    /// A module whose end lies before its start.
    BadModule { index: usize },
    /// A memory-map entry whose `size` field would walk backwards or overflow.
    BadMemoryMap { offset: u64 },
}

impl fmt::Display for MultibootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad multiboot magic {m:#x}"),
            Self::Unreadable { paddr, len } => {
                write!(f, "multiboot data at {paddr:#x}+{len:#x} is not readable")
            }
            Self::TooManyModules(n) => write!(f, "{n} modules (at most {MAX_MODULES})"),
            Self::TooManyRegions => write!(f, "more than {MAX_MEMORY_REGIONS} memory regions"),
            Self::BadString { paddr } => write!(f, "bad string at {paddr:#x}"),
            Self::BadModule { index } => write!(f, "module {index} ends before it starts"),
            Self::BadMemoryMap { offset } => write!(f, "bad memory map entry at offset {offset}"),
        }
    }
}

/// A multiboot memory-map type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Ram,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Bad,
    Other(u32),
}

impl From<u32> for RegionKind {
    fn from(t: u32) -> Self {
        match t {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Bad,
            n => Self::Other(n),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    pub kind: RegionKind,
}

/// A fixed-capacity string copied out of physical memory.
#[derive(Clone, Copy)]
pub struct BootString {
    bytes: [u8; MAX_CMDLINE],
    len: usize,
}

impl BootString {
    const EMPTY: Self = Self { bytes: [0; MAX_CMDLINE], len: 0 };

    pub fn as_str(&self) -> &str {
        // Only built from validated UTF-8 in `read_cstr`.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Debug for BootString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A boot module. Its command line stays in loader memory: it is checked at parse time
/// and copied out on demand, which keeps [`BootInfo`] small enough for an early stack.
#[derive(Clone, Copy, Debug)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    cmdline_paddr: u64,
}

impl Module {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `path args` as given to QEMU's `-initrd`.
    pub fn cmdline(&self, mem: &impl PhysRead) -> Result<BootString, MultibootError> {
        match self.cmdline_paddr {
            0 => Ok(BootString::EMPTY),
            p => read_cstr(mem, p),
        }
    }
}

/// Everything we use from the information block, copied out of guest-visible memory.
#[derive(Debug)]
pub struct BootInfo {
    /// `mem_lower`/`mem_upper` in KiB, when the loader gave them.
    pub mem_lower_kib: Option<u32>,
    pub mem_upper_kib: Option<u32>,
    pub cmdline: BootString,
    modules: [Option<Module>; MAX_MODULES],
    module_count: usize,
    regions: [Option<MemoryRegion>; MAX_MEMORY_REGIONS],
    region_count: usize,
}

impl BootInfo {
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules[..self.module_count].iter().flatten()
    }

    pub fn memory_map(&self) -> impl Iterator<Item = &MemoryRegion> {
        self.regions[..self.region_count].iter().flatten()
    }

    /// Bytes of usable RAM in the memory map.
    pub fn ram_bytes(&self) -> u64 {
        self.memory_map()
            .filter(|r| r.kind == RegionKind::Ram)
            .fold(0u64, |acc, r| acc.saturating_add(r.len))
    }
}

fn read_u32(mem: &impl PhysRead, paddr: u64) -> Result<u32, MultibootError> {
    let mut b = [0u8; 4];
    mem.read(paddr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(mem: &impl PhysRead, paddr: u64) -> Result<u64, MultibootError> {
    let mut b = [0u8; 8];
    mem.read(paddr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_cstr(mem: &impl PhysRead, paddr: u64) -> Result<BootString, MultibootError> {
    let mut s = BootString::EMPTY;
    for i in 0..=MAX_CMDLINE {
        let mut b = [0u8; 1];
        mem.read(paddr.wrapping_add(i as u64), &mut b)?;
        if b[0] == 0 {
            s.len = i;
            core::str::from_utf8(&s.bytes[..i]).map_err(|_| MultibootError::BadString { paddr })?;
            return Ok(s);
        }
        if i == MAX_CMDLINE {
            break;
        }
        s.bytes[i] = b[0];
    }
    Err(MultibootError::BadString { paddr })
}

/// Parses the block at `info` that a loader handed over with `magic`.
pub fn parse(mem: &impl PhysRead, magic: u32, info: u64) -> Result<BootInfo, MultibootError> {
    if magic != BOOTLOADER_MAGIC {
        return Err(MultibootError::BadMagic(magic));
    }
    let flags = read_u32(mem, info)?;
    let mut out = BootInfo {
        mem_lower_kib: None,
        mem_upper_kib: None,
        cmdline: BootString::EMPTY,
        modules: [None; MAX_MODULES],
        module_count: 0,
        regions: [None; MAX_MEMORY_REGIONS],
        region_count: 0,
    };
    if flags & FLAG_MEM != 0 {
        out.mem_lower_kib = Some(read_u32(mem, info + 4)?);
        out.mem_upper_kib = Some(read_u32(mem, info + 8)?);
    }
    if flags & FLAG_CMDLINE != 0 {
        out.cmdline = read_cstr(mem, u64::from(read_u32(mem, info + 16)?))?;
    }
    if flags & FLAG_MODS != 0 {
        let count = read_u32(mem, info + 20)?;
        let addr = u64::from(read_u32(mem, info + 24)?);
        if count as usize > MAX_MODULES {
            return Err(MultibootError::TooManyModules(count));
        }
        for index in 0..count as usize {
            let m = addr + 16 * index as u64;
            let start = u64::from(read_u32(mem, m)?);
            let end = u64::from(read_u32(mem, m + 4)?);
            if end < start {
                return Err(MultibootError::BadModule { index });
            }
            let module = Module { start, end, cmdline_paddr: u64::from(read_u32(mem, m + 8)?) };
            module.cmdline(mem)?; // validated now, so later reads cannot fail
            out.modules[index] = Some(module);
        }
        out.module_count = count as usize;
    }
    if flags & FLAG_MMAP != 0 {
        let len = u64::from(read_u32(mem, info + 44)?);
        let addr = u64::from(read_u32(mem, info + 48)?);
        let mut off = 0u64;
        // Each entry: u32 size (of the rest), u64 base, u64 length, u32 type.
        while off + 4 <= len {
            let size = u64::from(read_u32(mem, addr + off)?);
            if size < 20 {
                return Err(MultibootError::BadMemoryMap { offset: off });
            }
            if out.region_count == MAX_MEMORY_REGIONS {
                return Err(MultibootError::TooManyRegions);
            }
            let e = addr + off + 4;
            out.regions[out.region_count] = Some(MemoryRegion {
                base: read_u64(mem, e)?,
                len: read_u64(mem, e + 8)?,
                kind: RegionKind::from(read_u32(mem, e + 16)?),
            });
            out.region_count += 1;
            off += size + 4;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical memory backed by a vector starting at address 0.
    struct FakeMem(Vec<u8>);

    impl PhysRead for FakeMem {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError> {
            let err = MultibootError::Unreadable { paddr, len: buf.len() as u64 };
            let start = usize::try_from(paddr).map_err(|_| err)?;
            let end = start.checked_add(buf.len()).ok_or(err)?;
            buf.copy_from_slice(self.0.get(start..end).ok_or(err)?);
            Ok(())
        }
    }

    impl FakeMem {
        fn put_u32(&mut self, at: usize, v: u32) {
            self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        fn put_u64(&mut self, at: usize, v: u64) {
            self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        fn put_str(&mut self, at: usize, s: &str) {
            self.0[at..at + s.len()].copy_from_slice(s.as_bytes());
            self.0[at + s.len()] = 0;
        }
    }

    /// Info block at 0x100 with a command line, two modules and a two-entry memory map.
    fn sample() -> FakeMem {
        let mut m = FakeMem(vec![0; 0x2000]);
        m.put_u32(0x100, FLAG_MEM | FLAG_CMDLINE | FLAG_MODS | FLAG_MMAP);
        m.put_u32(0x104, 639);
        m.put_u32(0x108, 130_048);
        m.put_u32(0x110, 0x800);
        m.put_str(0x800, "xen-core console=com1 dom0_mem=64M");
        m.put_u32(0x114, 2);
        m.put_u32(0x118, 0x400);
        for (i, (start, end, s)) in [(0x1000u32, 0x1800u32, 0x900u32), (0x1800, 0x1810, 0)].iter().enumerate() {
            let at = 0x400 + 16 * i;
            m.put_u32(at, *start);
            m.put_u32(at + 4, *end);
            m.put_u32(at + 8, *s);
        }
        m.put_str(0x900, "pv-guest tests=all");
        m.put_u32(0x12c, 48);
        m.put_u32(0x130, 0x600);
        for (i, (base, len, t)) in [(0u64, 0x9fc00u64, 1u32), (0x100000, 0x7f00000, 1)].iter().enumerate() {
            let at = 0x600 + 24 * i;
            m.put_u32(at, 20);
            m.put_u64(at + 4, *base);
            m.put_u64(at + 12, *len);
            m.put_u32(at + 20, *t);
        }
        m
    }

    #[test]
    fn parses_a_full_block() {
        let info = parse(&sample(), BOOTLOADER_MAGIC, 0x100).unwrap();
        assert_eq!(info.mem_upper_kib, Some(130_048));
        assert_eq!(info.cmdline.as_str(), "xen-core console=com1 dom0_mem=64M");
        let mods: Vec<_> = info.modules().collect();
        assert_eq!(mods.len(), 2);
        assert_eq!((mods[0].start, mods[0].len()), (0x1000, 0x800));
        let m = sample();
        assert_eq!(mods[0].cmdline(&m).unwrap().as_str(), "pv-guest tests=all");
        assert_eq!(mods[1].cmdline(&m).unwrap().as_str(), "");
        assert_eq!(info.memory_map().count(), 2);
        assert_eq!(info.ram_bytes(), 0x9fc00 + 0x7f00000);
    }

    #[test]
    fn rejects_wrong_magic() {
        assert_eq!(parse(&sample(), 0x1234, 0x100).unwrap_err(), MultibootError::BadMagic(0x1234));
    }

    #[test]
    fn rejects_pointers_outside_memory() {
        let mut m = sample();
        m.put_u32(0x110, 0xdead_0000);
        assert!(matches!(parse(&m, BOOTLOADER_MAGIC, 0x100), Err(MultibootError::Unreadable { .. })));
    }

    #[test]
    fn rejects_unterminated_command_line() {
        let mut m = FakeMem(vec![b'a'; 0x3000]);
        m.put_u32(0x100, FLAG_CMDLINE);
        m.put_u32(0x110, 0x800);
        assert_eq!(
            parse(&m, BOOTLOADER_MAGIC, 0x100).unwrap_err(),
            MultibootError::BadString { paddr: 0x800 }
        );
    }

    #[test]
    fn rejects_bad_module_command_line() {
        let mut m = sample();
        m.0[0x900] = 0xff; // not UTF-8
        assert_eq!(parse(&m, BOOTLOADER_MAGIC, 0x100).unwrap_err(), MultibootError::BadString { paddr: 0x900 });
    }

    #[test]
    fn rejects_module_ending_before_start() {
        let mut m = sample();
        m.put_u32(0x404, 0x10);
        assert_eq!(parse(&m, BOOTLOADER_MAGIC, 0x100).unwrap_err(), MultibootError::BadModule { index: 0 });
    }

    #[test]
    fn rejects_too_many_modules() {
        let mut m = sample();
        m.put_u32(0x114, 1000);
        assert_eq!(parse(&m, BOOTLOADER_MAGIC, 0x100).unwrap_err(), MultibootError::TooManyModules(1000));
    }

    #[test]
    fn memory_map_entry_with_tiny_size_is_an_error_not_a_loop() {
        let mut m = sample();
        m.put_u32(0x600, 0);
        assert_eq!(
            parse(&m, BOOTLOADER_MAGIC, 0x100).unwrap_err(),
            MultibootError::BadMemoryMap { offset: 0 }
        );
    }
}
