//! Property tests for the hypervisor's parsers of guest and loader input that run on
//! the host: the writable-page-table instruction decoder (`insn`), the privileged
//! instruction decoder (`priv_insn`), the multiboot information block, guest segment
//! descriptors and the boot command line. Each never panics on arbitrary input, decodes
//! what an encoder wrote back to the same value, reads nothing past the instruction it
//! decoded, and rejects malformed input with its typed error.

use proptest::prelude::*;
use xen_core::insn::{self, Op};
use xen_core::multiboot::{self, MultibootError, PhysRead, BOOTLOADER_MAGIC, MAX_MODULES};
use xen_core::priv_insn::{self, Port, PrivInsn};
use xen_core::{boot_options, segdesc};

fn regs(n: u8) -> u64 {
    0x1111_2222_3333_0000 | u64::from(n)
}

/// Prefixes both decoders accept and ignore (segment overrides).
fn harmless_prefixes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop::sample::select(vec![0x26u8, 0x2e, 0x36, 0x3e, 0x64, 0x65]), 0..4)
}

// ---------------------------------------------------------------- insn

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn insn_decode_never_panics_and_stays_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        if let Some(w) = insn::decode(&bytes, regs) {
            prop_assert!(w.len >= 1 && w.len <= 15 && usize::from(w.len) <= bytes.len(), "{w:?} from {bytes:02x?}");
            prop_assert!([1, 2, 4, 8].contains(&w.size), "{w:?}");
            // Nothing past the instruction was needed: the same answer from its bytes alone.
            prop_assert_eq!(insn::decode(&bytes[..usize::from(w.len)], regs), Some(w));
        }
    }

    #[test]
    fn insn_every_truncation_is_refused_or_shorter(bytes in proptest::collection::vec(any::<u8>(), 1..16)) {
        if let Some(w) = insn::decode(&bytes, regs) {
            for cut in 0..usize::from(w.len) {
                prop_assert_eq!(insn::decode(&bytes[..cut], regs), None, "a truncated instruction decoded");
            }
        }
    }

    /// `mov %reg, disp(%base)` as an assembler encodes it: REX.W/R/B, 0x89, ModRM with
    /// mod 0/1/2 (no SIB, no RIP-relative), displacement.
    #[test]
    fn insn_mov_store_round_trips(prefix in harmless_prefixes(), reg in 0u8..16, base in 0u8..16, md in 0u8..3, disp in any::<u32>(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        prop_assume!(base & 7 != 4 && !(md == 0 && base & 7 == 5));
        let mut b = prefix.clone();
        b.push(0x48 | ((reg >> 3) << 2) | (base >> 3));
        b.push(0x89);
        b.push((md << 6) | ((reg & 7) << 3) | (base & 7));
        match md {
            1 => b.push(disp as u8),
            2 => b.extend_from_slice(&disp.to_le_bytes()),
            _ => {}
        }
        let len = b.len() as u8;
        b.extend_from_slice(&trailing);
        let w = insn::decode(&b, regs);
        prop_assert_eq!(w.map(|w| (w.op, w.size, w.len)), Some((Op::Store(regs(reg)), 8, len)));
    }

    /// `movl/movq $imm32, (%base)`: the immediate, sign-extended for the 64-bit form.
    #[test]
    fn insn_mov_immediate_round_trips(wide in any::<bool>(), base in prop::sample::select(vec![0u8, 1, 2, 3, 6, 7]), imm in any::<i32>()) {
        let mut b = Vec::new();
        if wide {
            b.push(0x48);
        }
        b.extend_from_slice(&[0xc7, base]);
        b.extend_from_slice(&imm.to_le_bytes());
        let want = if wide { imm as i64 as u64 } else { u64::from(imm as u32) };
        let w = insn::decode(&b, regs);
        prop_assert_eq!(w.map(|w| (w.op, w.size, w.len)), Some((Op::Store(want), if wide { 8 } else { 4 }, b.len() as u8)));
    }
}

// ---------------------------------------------------------------- priv_insn

/// An encoder for the instructions `priv_insn` decodes: (bytes, what they are).
fn priv_insn_strategy() -> impl Strategy<Value = (Vec<u8>, PrivInsn)> {
    let simple = prop::sample::select(vec![
        (vec![0xf4u8], PrivInsn::Hlt),
        (vec![0xfa], PrivInsn::Cli),
        (vec![0xfb], PrivInsn::Sti),
        (vec![0x0f, 0x06], PrivInsn::Clts),
        (vec![0x0f, 0x08], PrivInsn::Invd),
        (vec![0x0f, 0x09], PrivInsn::Wbinvd),
        (vec![0x0f, 0x30], PrivInsn::Wrmsr),
        (vec![0x0f, 0x31], PrivInsn::Rdtsc),
        (vec![0x0f, 0x32], PrivInsn::Rdmsr),
        (vec![0x0f, 0x01, 0xf9], PrivInsn::Rdtscp),
        (vec![0x0f, 0x01, 0xd1], PrivInsn::Xsetbv),
    ]);
    let io = (any::<bool>(), 0u8..3, any::<Option<u8>>()).prop_map(|(out, sz, imm)| {
        let size = [1u8, 2, 4][usize::from(sz)];
        let mut b = if size == 2 { vec![0x66] } else { vec![] };
        let base = match (out, imm.is_some()) {
            (false, true) => 0xe4,
            (true, true) => 0xe6,
            (false, false) => 0xec,
            (true, false) => 0xee,
        };
        b.push(base + u8::from(size != 1));
        let port = match imm {
            Some(p) => {
                b.push(p);
                Port::Imm(p)
            }
            None => Port::Dx,
        };
        (b, if out { PrivInsn::Out { size, port } } else { PrivInsn::In { size, port } })
    });
    let string = (any::<bool>(), 0u8..3, any::<bool>(), any::<bool>()).prop_map(|(out, sz, rep, addr32)| {
        let size = [1u8, 2, 4][usize::from(sz)];
        let mut b = vec![];
        if rep {
            b.push(0xf3);
        }
        if addr32 {
            b.push(0x67);
        }
        if size == 2 {
            b.push(0x66);
        }
        b.push(if out { 0x6e } else { 0x6c } + u8::from(size != 1));
        (b, if out { PrivInsn::Outs { size, rep, addr32 } } else { PrivInsn::Ins { size, rep, addr32 } })
    });
    let movs = (0u8..4, 0u8..16, 0u8..16).prop_map(|(kind, n, gpr)| {
        let mut b = vec![];
        let rex = 0x40 | ((n >> 3) << 2) | (gpr >> 3);
        if rex != 0x40 {
            b.push(rex);
        }
        b.extend_from_slice(&[0x0f, 0x20 + kind, 0xc0 | ((n & 7) << 3) | (gpr & 7)]);
        let insn = match kind {
            0 => PrivInsn::ReadCr { cr: n, gpr },
            1 => PrivInsn::ReadDr { dr: n, gpr },
            2 => PrivInsn::WriteCr { cr: n, gpr },
            _ => PrivInsn::WriteDr { dr: n, gpr },
        };
        (b, insn)
    });
    prop_oneof![simple, io, string, movs]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn priv_insn_decode_never_panics_and_stays_in_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        if let Some(d) = priv_insn::decode(&bytes) {
            prop_assert!(d.len >= 1 && d.len <= 15 && usize::from(d.len) <= bytes.len(), "{d:?} from {bytes:02x?}");
            prop_assert_eq!(priv_insn::decode(&bytes[..usize::from(d.len)]), Some(d));
            for cut in 0..usize::from(d.len) {
                prop_assert_eq!(priv_insn::decode(&bytes[..cut]), None, "a truncated instruction decoded");
            }
        }
    }

    #[test]
    fn priv_insn_round_trips((body, insn) in priv_insn_strategy(), prefix in harmless_prefixes(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        // Segment overrides go before everything else (a REX must be last).
        let mut b = prefix;
        b.extend_from_slice(&body);
        let len = b.len() as u8;
        b.extend_from_slice(&trailing);
        let d = priv_insn::decode(&b);
        prop_assert_eq!(d.map(|d| (d.insn, d.len)), Some((insn, len)));
    }

    /// Fifteen prefixes and more: longer than any instruction, refused.
    #[test]
    fn priv_insn_overlong_prefix_runs_are_refused(n in 15usize..40, last in any::<u8>()) {
        let mut b = vec![0x2e; n];
        b.push(last);
        prop_assert_eq!(priv_insn::decode(&b), None);
        prop_assert_eq!(insn::decode(&b, regs), None);
    }
}

// ---------------------------------------------------------------- multiboot

/// Physical memory backed by a vector starting at address 0.
struct Mem(Vec<u8>);

impl PhysRead for Mem {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError> {
        let err = MultibootError::Unreadable { paddr, len: buf.len() as u64 };
        let start = usize::try_from(paddr).map_err(|_| err)?;
        let end = start.checked_add(buf.len()).ok_or(err)?;
        buf.copy_from_slice(self.0.get(start..end).ok_or(err)?);
        Ok(())
    }
}

impl Mem {
    fn u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, at: usize, s: &str) {
        self.0[at..at + s.len()].copy_from_slice(s.as_bytes());
        self.0[at + s.len()] = 0;
    }
}

type ModuleSpec = (u32, u32, String);

/// Writes an information block at 0x100: command line at 0x1000, modules at 0x400
/// (their command lines from 0x2000, 0x100 apart), memory map at 0x800.
fn block(cmdline: &str, modules: &[ModuleSpec], regions: &[(u64, u64, u32)]) -> Mem {
    let mut m = Mem(vec![0; 0x4000]);
    m.u32(0x100, 1 | 4 | 8 | 64);
    m.u32(0x104, 639);
    m.u32(0x108, 65_536);
    m.u32(0x110, 0x1000);
    m.str(0x1000, cmdline);
    m.u32(0x114, modules.len() as u32);
    m.u32(0x118, 0x400);
    for (i, (start, len, s)) in modules.iter().enumerate() {
        let at = 0x400 + 16 * i;
        m.u32(at, *start);
        m.u32(at + 4, start + len);
        let cl = 0x2000 + 0x100 * i;
        m.str(cl, s);
        m.u32(at + 8, cl as u32);
    }
    m.u32(0x12c, (24 * regions.len()) as u32);
    m.u32(0x130, 0x800);
    for (i, (base, len, kind)) in regions.iter().enumerate() {
        let at = 0x800 + 24 * i;
        m.u32(at, 20);
        m.u64(at + 4, *base);
        m.u64(at + 12, *len);
        m.u32(at + 20, *kind);
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn multiboot_never_panics(mem in proptest::collection::vec(any::<u8>(), 0..2048), info in any::<u32>(), good_magic in any::<bool>(), magic in any::<u32>()) {
        let magic = if good_magic { BOOTLOADER_MAGIC } else { magic };
        let info = if mem.is_empty() { u64::from(info) } else { u64::from(info) % (mem.len() as u64 + 64) };
        match multiboot::parse(&Mem(mem), magic, info) {
            Ok(b) => {
                prop_assert!(b.modules().count() <= MAX_MODULES);
                prop_assert!(b.modules().all(|m| m.end >= m.start));
                prop_assert!(b.memory_map().count() <= multiboot::MAX_MEMORY_REGIONS);
                prop_assert!(b.cmdline.as_str().len() <= multiboot::MAX_CMDLINE);
            }
            Err(MultibootError::BadMagic(m)) => prop_assert_eq!(m, magic),
            Err(_) => prop_assert_eq!(magic, BOOTLOADER_MAGIC),
        }
    }

    #[test]
    fn multiboot_round_trips(
        cmdline in "[ -~]{0,200}",
        modules in proptest::collection::vec((0u32..1 << 30, 0u32..1 << 20, "[ -~]{0,100}"), 0..=MAX_MODULES),
        regions in proptest::collection::vec((any::<u64>(), any::<u64>(), 1u32..6), 0..40),
    ) {
        let mem = block(&cmdline, &modules, &regions);
        let b = multiboot::parse(&mem, BOOTLOADER_MAGIC, 0x100).expect("a well-formed block");
        prop_assert_eq!(b.cmdline.as_str(), cmdline.as_str());
        prop_assert_eq!(b.mem_upper_kib, Some(65_536));
        let got: Vec<ModuleSpec> = b.modules().map(|m| (m.start as u32, m.len() as u32, m.cmdline(&mem).unwrap().as_str().to_string())).collect();
        prop_assert_eq!(got, modules);
        let got: Vec<(u64, u64)> = b.memory_map().map(|r| (r.base, r.len)).collect();
        prop_assert_eq!(got, regions.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>());
    }

    #[test]
    fn multiboot_rejects_with_typed_errors(modules in proptest::collection::vec((1u32..1 << 30, 1u32..1 << 20, "[a-z]{0,8}"), 1..=MAX_MODULES), bad in any::<prop::sample::Index>(), extra in 1u32..1000) {
        // A module that ends before it starts.
        let i = bad.index(modules.len());
        let mut mem = block("", &modules, &[]);
        mem.u32(0x400 + 16 * i + 4, modules[i].0 - 1);
        prop_assert_eq!(multiboot::parse(&mem, BOOTLOADER_MAGIC, 0x100).err(), Some(MultibootError::BadModule { index: i }));
        // More modules than we keep.
        let mut mem = block("", &modules, &[]);
        mem.u32(0x114, MAX_MODULES as u32 + extra);
        prop_assert_eq!(multiboot::parse(&mem, BOOTLOADER_MAGIC, 0x100).err(), Some(MultibootError::TooManyModules(MAX_MODULES as u32 + extra)));
        // A command line without its NUL inside readable memory.
        let mut mem = block("", &modules, &[]);
        mem.u32(0x110, 0x3fff);
        mem.0[0x3fff] = b'x';
        let r = multiboot::parse(&mem, BOOTLOADER_MAGIC, 0x100);
        prop_assert!(matches!(r, Err(MultibootError::Unreadable { .. })), "{:?}", r.err());
        // A memory-map entry too short to hold one.
        let mut mem = block("", &modules, &[(0, 4096, 1)]);
        mem.u32(0x800, u32::from(extra as u8 % 20));
        prop_assert_eq!(multiboot::parse(&mem, BOOTLOADER_MAGIC, 0x100).err(), Some(MultibootError::BadMemoryMap { offset: 0 }));
    }
}

// ---------------------------------------------------------------- descriptors, command line

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// A guest descriptor is refused, or comes back harmless: not present, a code/data
    /// segment at DPL 3, or a type-0 system descriptor; checking it again changes nothing.
    #[test]
    fn descriptors_come_back_harmless(desc in any::<u64>()) {
        if let Some(d) = segdesc::check_descriptor(desc) {
            let present = d & (1 << 47) != 0;
            let user_segment = d & (1 << 44) != 0;
            prop_assert!(!present || (user_segment && (d >> 45) & 3 == 3) || (!user_segment && (d >> 40) & 0xf == 0), "{desc:#x} -> {d:#x}");
            prop_assert_eq!(segdesc::check_descriptor(d), Some(d));
            prop_assert_eq!(d & !(3 << 45), desc & !(3 << 45), "only the DPL may change");
        }
    }

    #[test]
    fn boot_command_line_never_panics(cmdline in "[ -~]{0,300}", raw in proptest::collection::vec(any::<char>(), 0..100)) {
        let mut rejected = 0;
        let _ = boot_options::parse(&cmdline, |_| rejected += 1);
        let raw: String = raw.into_iter().collect();
        let _ = boot_options::parse(&raw, |_| rejected += 1);
        for w in cmdline.split([' ', '=']) {
            let _ = boot_options::parse_size(w);
        }
    }

    /// Sizes with a suffix read back as the number times the suffix.
    #[test]
    fn sizes_round_trip(n in 0u64..1 << 20, suffix in prop::sample::select(vec![("K", 1u64 << 10), ("M", 1 << 20), ("G", 1 << 30)])) {
        prop_assert_eq!(boot_options::parse_size(&format!("{n}{}", suffix.0)).ok(), Some(n * suffix.1));
    }
}
