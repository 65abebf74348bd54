//! The machine's processors from ACPI: the RSDP in the BIOS area, the RSDT or XSDT, and
//! the MADT's local APIC (and x2APIC) entries of enabled CPUs, as Xen's
//! `acpi_parse_madt` finds what to start. Firmware input is checked as any other input:
//! checksums, lengths that stay inside their table, bounded walks.

use crate::multiboot::PhysRead;
use alloc::vec::Vec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP with a good checksum in the BIOS area.
    NoRsdp,
    /// A table could not be read, or its checksum or length is wrong.
    BadTable { signature: [u8; 4], paddr: u64 },
    /// The RSDT/XSDT names no MADT.
    NoMadt,
}

impl core::fmt::Display for AcpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRsdp => write!(f, "no ACPI RSDP in the BIOS area"),
            Self::BadTable { signature, paddr } => {
                write!(f, "bad ACPI table {} at {paddr:#x}", core::str::from_utf8(signature).unwrap_or("????"))
            }
            Self::NoMadt => write!(f, "no MADT in the ACPI tables"),
        }
    }
}

/// What the MADT says about the machine's processors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the local APICs' MMIO page.
    pub lapic_base: u64,
    /// APIC ids of the enabled processors, in the table's order (the boot CPU is
    /// usually first; the caller finds itself by its own id).
    pub apic_ids: Vec<u32>,
}

/// Where the BIOS keeps the RSDP (ACPI 5.2.5.1): the first KiB of the EBDA, then
/// 0xE0000-0xFFFFF, on 16-byte boundaries.
const BIOS_AREA: (u64, u64) = (0xe_0000, 0x10_0000);
const SDT_HEADER: usize = 36;
/// More tables or MADT entries than this is not a real machine's.
const MAX_TABLES: usize = 256;
const MAX_TABLE_LEN: u32 = 1 << 20;

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

fn read(mem: &impl PhysRead, paddr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = alloc::vec![0u8; len];
    mem.read(paddr, &mut buf).ok()?;
    Some(buf)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// The RSDP's root table: (address, is XSDT).
fn find_rsdp(mem: &impl PhysRead) -> Result<(u64, bool), AcpiError> {
    let ebda = read(mem, 0x40e, 2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])) << 4);
    let areas = ebda.filter(|&e| e >= 0x400).map(|e| (e, e + 1024)).into_iter().chain([BIOS_AREA]);
    for (start, end) in areas {
        let Some(area) = read(mem, start, (end - start) as usize) else { continue };
        for off in (0..area.len().saturating_sub(20)).step_by(16) {
            let r = &area[off..];
            if &r[..8] != b"RSD PTR " || sum(&r[..20]) != 0 {
                continue;
            }
            let revision = r[15];
            if revision >= 2 && r.len() >= 36 && sum(&r[..36]) == 0 {
                if let Some(xsdt) = u64_at(r, 24).filter(|&x| x != 0) {
                    return Ok((xsdt, true));
                }
            }
            return Ok((u64::from(u32_at(r, 16).unwrap_or(0)), false));
        }
    }
    Err(AcpiError::NoRsdp)
}

/// A whole table at `paddr` with a good length and checksum.
fn table(mem: &impl PhysRead, paddr: u64) -> Result<Vec<u8>, AcpiError> {
    let bad = |signature| AcpiError::BadTable { signature, paddr };
    let head = read(mem, paddr, SDT_HEADER).ok_or(bad(*b"????"))?;
    let signature: [u8; 4] = head[..4].try_into().unwrap_or(*b"????");
    let len = u32_at(&head, 4).ok_or(bad(signature))?;
    if !(SDT_HEADER as u32..=MAX_TABLE_LEN).contains(&len) {
        return Err(bad(signature));
    }
    let t = read(mem, paddr, len as usize).ok_or(bad(signature))?;
    if sum(&t) != 0 {
        return Err(bad(signature));
    }
    Ok(t)
}

/// The MADT's processors.
pub fn parse_madt(mem: &impl PhysRead) -> Result<Madt, AcpiError> {
    let (root, xsdt) = find_rsdp(mem)?;
    let root_table = table(mem, root)?;
    let width = if xsdt { 8 } else { 4 };
    let entries = root_table[SDT_HEADER..].chunks_exact(width).take(MAX_TABLES);
    for e in entries {
        let paddr = if xsdt { u64_at(e, 0) } else { u32_at(e, 0).map(u64::from) }.unwrap_or(0);
        let Some(head) = read(mem, paddr, 4) else { continue };
        if head != b"APIC" {
            continue;
        }
        return madt_cpus(&table(mem, paddr)?);
    }
    Err(AcpiError::NoMadt)
}

/// The enabled local APICs (type 0) and x2APICs (type 9) of a checked MADT.
pub fn madt_cpus(t: &[u8]) -> Result<Madt, AcpiError> {
    let bad = AcpiError::BadTable { signature: *b"APIC", paddr: 0 };
    let lapic_base = u64::from(u32_at(t, SDT_HEADER).ok_or(bad)?);
    let mut apic_ids = Vec::new();
    let mut off = SDT_HEADER + 8;
    for _ in 0..MAX_TABLES * 16 {
        let (Some(&kind), Some(&len)) = (t.get(off), t.get(off + 1)) else { break };
        let len = usize::from(len);
        if len < 2 || off + len > t.len() {
            return Err(bad);
        }
        let e = &t[off..off + len];
        match (kind, len) {
            (0, 8) if u32_at(e, 4).ok_or(bad)? & 1 != 0 => apic_ids.push(u32::from(e[3])),
            (9, 16) if u32_at(e, 8).ok_or(bad)? & 1 != 0 => apic_ids.push(u32_at(e, 4).ok_or(bad)?),
            // The local APIC address override (type 5): a 64-bit base.
            (5, 12) => {}
            _ => {}
        }
        off += len;
    }
    apic_ids.dedup();
    Ok(Madt { lapic_base, apic_ids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multiboot::MultibootError;

    struct Mem(alloc::collections::BTreeMap<u64, Vec<u8>>);

    impl PhysRead for Mem {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError> {
            for (&base, bytes) in &self.0 {
                if paddr >= base && paddr + buf.len() as u64 <= base + bytes.len() as u64 {
                    let s = (paddr - base) as usize;
                    buf.copy_from_slice(&bytes[s..s + buf.len()]);
                    return Ok(());
                }
            }
            Err(MultibootError::Unreadable { paddr, len: buf.len() as u64 })
        }
    }

    fn fix_checksum(t: &mut [u8], at: usize, over: usize) {
        t[at] = 0;
        t[at] = 0u8.wrapping_sub(sum(&t[..over]));
    }

    fn sdt(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = alloc::vec![0u8; SDT_HEADER];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let n = t.len();
        fix_checksum(&mut t, 9, n);
        t
    }

    fn madt_body(entries: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            b.extend_from_slice(e);
        }
        b
    }

    /// A machine as QEMU's SeaBIOS lays it out: RSDP at 0xf5000, RSDT, MADT.
    fn machine(madt: Vec<u8>) -> Mem {
        let mut bios = alloc::vec![0u8; (BIOS_AREA.1 - BIOS_AREA.0) as usize];
        let rsdp_at = 0xf5000 - BIOS_AREA.0 as usize;
        let mut rsdp = [0u8; 20];
        rsdp[..8].copy_from_slice(b"RSD PTR ");
        rsdp[16..20].copy_from_slice(&0x7fe0_0000u32.to_le_bytes());
        fix_checksum(&mut rsdp, 8, 20);
        bios[rsdp_at..rsdp_at + 20].copy_from_slice(&rsdp);
        let rsdt = sdt(b"RSDT", &[0x7fe0_1000u32.to_le_bytes(), 0x7fe0_2000u32.to_le_bytes()].concat());
        let fadt = sdt(b"FACP", &[0; 8]);
        let mut m = alloc::collections::BTreeMap::new();
        m.insert(BIOS_AREA.0, bios);
        m.insert(0x7fe0_0000, rsdt);
        m.insert(0x7fe0_1000, fadt);
        m.insert(0x7fe0_2000, madt);
        Mem(m)
    }

    #[test]
    fn enabled_cpus_of_a_qemu_madt() {
        let cpu = |id: u8, flags: u32| [&[0u8, 8, id, id][..], &flags.to_le_bytes()].concat();
        let ioapic = [1u8, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0];
        let x2 = [&[9u8, 16, 0, 0][..], &300u32.to_le_bytes(), &1u32.to_le_bytes(), &7u32.to_le_bytes()].concat();
        let body = madt_body(&[&cpu(0, 1), &cpu(1, 1), &cpu(2, 0), &ioapic, &x2]);
        let m = parse_madt(&machine(sdt(b"APIC", &body))).unwrap();
        assert_eq!(m.lapic_base, 0xfee0_0000);
        assert_eq!(m.apic_ids, [0, 1, 300]);
    }

    #[test]
    fn bad_tables_are_refused() {
        let good = sdt(b"APIC", &madt_body(&[&[0, 8, 0, 0, 1, 0, 0, 0]]));
        let mut bad_sum = good.clone();
        bad_sum[40] ^= 1;
        assert!(matches!(parse_madt(&machine(bad_sum)), Err(AcpiError::BadTable { .. })));
        // An entry running past the table's end.
        let overrun = sdt(b"APIC", &madt_body(&[&[0, 60, 0, 0, 1, 0, 0, 0]]));
        assert!(matches!(parse_madt(&machine(overrun)), Err(AcpiError::BadTable { .. })));
        // A zero-length entry would never end the walk.
        let zero = sdt(b"APIC", &madt_body(&[&[0, 0, 0, 0, 1, 0, 0, 0]]));
        assert!(matches!(parse_madt(&machine(zero)), Err(AcpiError::BadTable { .. })));
        assert_eq!(parse_madt(&Mem(Default::default())), Err(AcpiError::NoRsdp));
        assert_eq!(parse_madt(&machine(sdt(b"SSDT", &[0; 8]))), Err(AcpiError::NoMadt));
    }

    #[test]
    fn arbitrary_madt_bytes_never_panic() {
        let mut x = 0x1234_5678u64;
        for n in 0..2000usize {
            let mut t = alloc::vec![0u8; SDT_HEADER + 8 + n % 97];
            for b in t.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let _ = madt_cpus(&t);
        }
    }
}
