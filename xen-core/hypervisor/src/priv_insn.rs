//! Decoding the privileged instructions a PV kernel (running in ring 3) executes and
//! Xen emulates on the #GP they raise (`arch/x86/pv/emul-priv-op.c`): control- and
//! debug-register moves, port I/O (also string and `rep` forms), cache flushes, TSC and
//! MSR access, `clts`, `hlt`. Only the decoding lives here, so it is host-tested; the
//! hypervisor's `pv::emul_priv` carries the effects out.

/// Where a port number comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Imm(u8),
    Dx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivInsn {
    /// `mov %crN, %gpr`.
    ReadCr { cr: u8, gpr: u8 },
    /// `mov %gpr, %crN`.
    WriteCr { cr: u8, gpr: u8 },
    ReadDr { dr: u8, gpr: u8 },
    WriteDr { dr: u8, gpr: u8 },
    Clts,
    Wbinvd,
    Invd,
    Rdtsc,
    Rdtscp,
    Rdmsr,
    Wrmsr,
    /// `xsetbv` (XCR[ecx] := edx:eax).
    Xsetbv,
    Hlt,
    /// `cli`/`sti`: with the virtual IOPL, they mask or unmask event delivery.
    Cli,
    Sti,
    /// `in` of `size` (1, 2 or 4) bytes into al/ax/eax.
    In { size: u8, port: Port },
    Out { size: u8, port: Port },
    /// `ins`: port dx to [rdi]; `rep` repeats rcx times; `addr32` uses edi/ecx.
    Ins { size: u8, rep: bool, addr32: bool },
    /// `outs`: [rsi] (segment override allowed) to port dx.
    Outs { size: u8, rep: bool, addr32: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub insn: PrivInsn,
    /// Instruction length, to step over it.
    pub len: u8,
}

/// Decodes the instruction at the start of `bytes` (15 bytes are always enough), if it
/// is one of the privileged instructions above; None for anything else or truncation.
pub fn decode(bytes: &[u8]) -> Option<Decoded> {
    let mut i = 0;
    let (mut opsize16, mut addr32, mut rep, mut rex) = (false, false, false, 0u8);
    // Legacy prefixes in any order, then at most one REX immediately before the opcode.
    while let Some(&b) = bytes.get(i) {
        match b {
            0x66 => opsize16 = true,
            0x67 => addr32 = true,
            0xf3 | 0xf2 => rep = true,
            0xf0 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            _ => break,
        }
        i += 1;
        if i >= 15 {
            return None;
        }
    }
    if let Some(&b @ 0x40..=0x4f) = bytes.get(i) {
        rex = b;
        i += 1;
    }
    let size = if opsize16 { 2 } else { 4 };
    let op = *bytes.get(i)?;
    let (insn, rest) = match op {
        0xe4 => (PrivInsn::In { size: 1, port: Port::Imm(*bytes.get(i + 1)?) }, 2),
        0xe5 => (PrivInsn::In { size, port: Port::Imm(*bytes.get(i + 1)?) }, 2),
        0xe6 => (PrivInsn::Out { size: 1, port: Port::Imm(*bytes.get(i + 1)?) }, 2),
        0xe7 => (PrivInsn::Out { size, port: Port::Imm(*bytes.get(i + 1)?) }, 2),
        0xec => (PrivInsn::In { size: 1, port: Port::Dx }, 1),
        0xed => (PrivInsn::In { size, port: Port::Dx }, 1),
        0xee => (PrivInsn::Out { size: 1, port: Port::Dx }, 1),
        0xef => (PrivInsn::Out { size, port: Port::Dx }, 1),
        0x6c => (PrivInsn::Ins { size: 1, rep, addr32 }, 1),
        0x6d => (PrivInsn::Ins { size, rep, addr32 }, 1),
        0x6e => (PrivInsn::Outs { size: 1, rep, addr32 }, 1),
        0x6f => (PrivInsn::Outs { size, rep, addr32 }, 1),
        0xf4 => (PrivInsn::Hlt, 1),
        0xfa => (PrivInsn::Cli, 1),
        0xfb => (PrivInsn::Sti, 1),
        0x0f => {
            let op2 = *bytes.get(i + 1)?;
            match op2 {
                0x20..=0x23 => {
                    // The CPU treats the ModRM as register-direct whatever its mod bits.
                    let modrm = *bytes.get(i + 2)?;
                    let n = ((modrm >> 3) & 7) | ((rex & 4) << 1);
                    let gpr = (modrm & 7) | ((rex & 1) << 3);
                    let insn = match op2 {
                        0x20 => PrivInsn::ReadCr { cr: n, gpr },
                        0x22 => PrivInsn::WriteCr { cr: n, gpr },
                        0x21 => PrivInsn::ReadDr { dr: n, gpr },
                        _ => PrivInsn::WriteDr { dr: n, gpr },
                    };
                    (insn, 3)
                }
                0x06 => (PrivInsn::Clts, 2),
                0x08 => (PrivInsn::Invd, 2),
                0x09 => (PrivInsn::Wbinvd, 2),
                0x30 => (PrivInsn::Wrmsr, 2),
                0x31 => (PrivInsn::Rdtsc, 2),
                0x32 => (PrivInsn::Rdmsr, 2),
                0x01 if bytes.get(i + 2) == Some(&0xf9) => (PrivInsn::Rdtscp, 3),
                0x01 if bytes.get(i + 2) == Some(&0xd1) => (PrivInsn::Xsetbv, 3),
                _ => return None,
            }
        }
        _ => return None,
    };
    let len = i + rest;
    (len <= 15).then_some(Decoded { insn, len: len as u8 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: &[u8]) -> Option<(PrivInsn, u8)> {
        decode(b).map(|x| (x.insn, x.len))
    }

    #[test]
    fn control_and_debug_registers() {
        // mov %cr3, %rax ; mov %rdi, %cr4 ; mov %cr0, %r9 ; mov %r8, %cr8 (REX.R and REX.B)
        assert_eq!(d(&[0x0f, 0x20, 0xd8]), Some((PrivInsn::ReadCr { cr: 3, gpr: 0 }, 3)));
        assert_eq!(d(&[0x0f, 0x22, 0xe7]), Some((PrivInsn::WriteCr { cr: 4, gpr: 7 }, 3)));
        assert_eq!(d(&[0x41, 0x0f, 0x20, 0xc1]), Some((PrivInsn::ReadCr { cr: 0, gpr: 9 }, 4)));
        assert_eq!(d(&[0x45, 0x0f, 0x22, 0xc0]), Some((PrivInsn::WriteCr { cr: 8, gpr: 8 }, 4)));
        // mov %db7, %rax ; mov %rsi, %db0
        assert_eq!(d(&[0x0f, 0x21, 0xf8]), Some((PrivInsn::ReadDr { dr: 7, gpr: 0 }, 3)));
        assert_eq!(d(&[0x0f, 0x23, 0xc6]), Some((PrivInsn::WriteDr { dr: 0, gpr: 6 }, 3)));
    }

    #[test]
    fn port_io_forms() {
        assert_eq!(d(&[0xe4, 0x64]), Some((PrivInsn::In { size: 1, port: Port::Imm(0x64) }, 2)));
        assert_eq!(d(&[0x66, 0xe5, 0x70]), Some((PrivInsn::In { size: 2, port: Port::Imm(0x70) }, 3)));
        assert_eq!(d(&[0xed]), Some((PrivInsn::In { size: 4, port: Port::Dx }, 1)));
        assert_eq!(d(&[0xee]), Some((PrivInsn::Out { size: 1, port: Port::Dx }, 1)));
        assert_eq!(d(&[0x66, 0xef]), Some((PrivInsn::Out { size: 2, port: Port::Dx }, 2)));
        assert_eq!(d(&[0xe6, 0x80]), Some((PrivInsn::Out { size: 1, port: Port::Imm(0x80) }, 2)));
        // rep insw ; rep outsb with a segment override ; addr32 insl
        assert_eq!(d(&[0x66, 0xf3, 0x6d]), Some((PrivInsn::Ins { size: 2, rep: true, addr32: false }, 3)));
        assert_eq!(d(&[0xf3, 0x2e, 0x6e]), Some((PrivInsn::Outs { size: 1, rep: true, addr32: false }, 3)));
        assert_eq!(d(&[0x67, 0x6d]), Some((PrivInsn::Ins { size: 4, rep: false, addr32: true }, 2)));
    }

    #[test]
    fn the_rest() {
        assert_eq!(d(&[0x0f, 0x09]), Some((PrivInsn::Wbinvd, 2)));
        assert_eq!(d(&[0x0f, 0x08]), Some((PrivInsn::Invd, 2)));
        assert_eq!(d(&[0x0f, 0x06]), Some((PrivInsn::Clts, 2)));
        assert_eq!(d(&[0x0f, 0x31]), Some((PrivInsn::Rdtsc, 2)));
        assert_eq!(d(&[0x0f, 0x01, 0xf9]), Some((PrivInsn::Rdtscp, 3)));
        assert_eq!(d(&[0x0f, 0x32]), Some((PrivInsn::Rdmsr, 2)));
        assert_eq!(d(&[0x0f, 0x30]), Some((PrivInsn::Wrmsr, 2)));
        assert_eq!(d(&[0xf4]), Some((PrivInsn::Hlt, 1)));
        assert_eq!(d(&[0xfa]), Some((PrivInsn::Cli, 1)));
        assert_eq!(d(&[0xfb]), Some((PrivInsn::Sti, 1)));
        assert_eq!(d(&[0x0f, 0x01, 0xd0]), None); // xgetbv is not privileged
        assert_eq!(d(&[0x0f, 0x01, 0xd1]), Some((PrivInsn::Xsetbv, 3)));
        assert_eq!(d(&[0x48, 0x89, 0x07]), None);
        assert_eq!(d(&[0x0f]), None);
        assert_eq!(d(&[0xe4]), None);
        assert_eq!(d(&[]), None);
        assert_eq!(d(&[0x66; 16]), None); // only prefixes
    }

    #[test]
    fn garbage_never_panics_and_lengths_stay_in_bounds() {
        let mut x = 0x9e37_79b9u32;
        for _ in 0..50000 {
            let mut b = [0u8; 15];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            let n = (x as usize) % 16;
            if let Some(dec) = decode(&b[..n]) {
                assert!(dec.len as usize <= n);
            }
        }
    }
}
