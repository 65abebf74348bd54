//! Decoding the few x86-64 instructions a PV kernel uses to write a page-table entry it
//! maps read-only (Xen emulates them: "writable page tables"): `mov` from a register or
//! an immediate, `xchg`, and `lock cmpxchg`, 4 or 8 bytes, to a memory operand.

/// What the instruction does to the memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Store the value (register or sign-extended immediate).
    Store(u64),
    /// Store register `reg`'s value and put the old memory value in it.
    Xchg { reg: u8 },
    /// If memory equals rax (eax), store register `reg`'s value and set ZF; otherwise
    /// load memory into rax (eax) and clear ZF.
    Cmpxchg { reg: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub op: Op,
    /// Operand size: 4 or 8 bytes.
    pub size: u8,
    /// Instruction length, to step over it.
    pub len: u8,
}

/// Length of a ModRM memory operand (ModRM, SIB, displacement), or None for a register
/// operand.
fn modrm_len(bytes: &[u8]) -> Option<usize> {
    let modrm = *bytes.first()?;
    let (md, rm) = (modrm >> 6, modrm & 7);
    if md == 3 {
        return None;
    }
    let mut len = 1;
    let mut base_is_disp32 = false;
    if rm == 4 {
        let sib = *bytes.get(1)?;
        len += 1;
        base_is_disp32 = md == 0 && sib & 7 == 5;
    }
    len += match md {
        0 if rm == 5 || base_is_disp32 => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    Some(len)
}

/// Decodes `bytes` (at least the instruction; 15 is always enough). `reg(n)` reads
/// general register n (0 = rax ... 15 = r15).
pub fn decode(bytes: &[u8], reg: impl Fn(u8) -> u64) -> Option<Write> {
    let mut i = 0;
    let mut rex = 0u8;
    while let Some(&b) = bytes.get(i) {
        match b {
            0xf0 => i += 1, // lock
            0x40..=0x4f => {
                rex = b;
                i += 1;
                break; // REX must come last
            }
            _ => break,
        }
    }
    let wide = rex & 8 != 0;
    let size = if wide { 8 } else { 4 };
    let reg_ext = (rex & 4) << 1; // REX.R -> bit 3 of ModRM.reg
    let value = |n: u8| {
        let v = reg(n);
        if wide {
            v
        } else {
            v & 0xffff_ffff
        }
    };
    let op = *bytes.get(i)?;
    let (op, rest) = match op {
        0x89 | 0x87 => {
            let modrm = *bytes.get(i + 1)?;
            let r = ((modrm >> 3) & 7) | reg_ext;
            let l = modrm_len(&bytes[i + 1..])?;
            let op = if op == 0x89 { Op::Store(value(r)) } else { Op::Xchg { reg: r } };
            (op, 1 + l)
        }
        0xc7 => {
            let modrm = *bytes.get(i + 1)?;
            if (modrm >> 3) & 7 != 0 {
                return None;
            }
            let l = modrm_len(&bytes[i + 1..])?;
            let imm = bytes.get(i + 1 + l..i + 5 + l)?;
            let imm = i32::from_le_bytes(imm.try_into().ok()?) as i64 as u64;
            let imm = if wide { imm } else { imm & 0xffff_ffff };
            (Op::Store(imm), 1 + l + 4)
        }
        0x0f if bytes.get(i + 1) == Some(&0xb1) => {
            let modrm = *bytes.get(i + 2)?;
            let r = ((modrm >> 3) & 7) | reg_ext;
            let l = modrm_len(&bytes[i + 2..])?;
            (Op::Cmpxchg { reg: r }, 2 + l)
        }
        _ => return None,
    };
    let len = i + rest;
    (len <= 15).then_some(Write { op, size, len: len as u8 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(n: u8) -> u64 {
        0x1111_0000_0000_0000 + u64::from(n)
    }

    #[test]
    fn mov_register_to_memory() {
        // mov %rsi, (%rdi)
        assert_eq!(decode(&[0x48, 0x89, 0x37], regs), Some(Write { op: Op::Store(regs(6)), size: 8, len: 3 }));
        // mov %r9, 0x10(%rax)
        assert_eq!(decode(&[0x4c, 0x89, 0x48, 0x10], regs), Some(Write { op: Op::Store(regs(9)), size: 8, len: 4 }));
        // mov %ecx, (%rdx,%rax,8)  (32-bit half of an entry)
        assert_eq!(decode(&[0x89, 0x0c, 0xc2], regs), Some(Write { op: Op::Store(regs(1) & 0xffff_ffff), size: 4, len: 3 }));
        // mov %rax, 0x12345678(%rip)
        assert_eq!(decode(&[0x48, 0x89, 0x05, 0x78, 0x56, 0x34, 0x12], regs).map(|w| w.len), Some(7));
        // mov %rax, 0x100(%rbp) (disp32)
        assert_eq!(decode(&[0x48, 0x89, 0x85, 0, 1, 0, 0], regs).map(|w| w.len), Some(7));
    }

    #[test]
    fn immediates_xchg_and_cmpxchg() {
        // movq $-1, (%rdi): sign-extended
        assert_eq!(decode(&[0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff], regs), Some(Write { op: Op::Store(!0), size: 8, len: 7 }));
        // movq $0, 8(%rsp) with SIB
        assert_eq!(decode(&[0x48, 0xc7, 0x44, 0x24, 0x08, 0, 0, 0, 0], regs).map(|w| (w.op, w.len)), Some((Op::Store(0), 9)));
        // xchg %rax, (%rdi)
        assert_eq!(decode(&[0x48, 0x87, 0x07], regs), Some(Write { op: Op::Xchg { reg: 0 }, size: 8, len: 3 }));
        // lock cmpxchg %r8, (%rsi)
        assert_eq!(decode(&[0xf0, 0x4c, 0x0f, 0xb1, 0x06], regs), Some(Write { op: Op::Cmpxchg { reg: 8 }, size: 8, len: 5 }));
    }

    #[test]
    fn everything_else_is_refused() {
        assert_eq!(decode(&[0x48, 0x89, 0xc7], regs), None); // register destination
        assert_eq!(decode(&[0x48, 0x8b, 0x07], regs), None); // a load
        assert_eq!(decode(&[0x48, 0xc7, 0x0f, 0, 0, 0, 0], regs), None); // C7 /1
        assert_eq!(decode(&[0x48], regs), None); // truncated
        assert_eq!(decode(&[0x48, 0x89], regs), None);
        assert_eq!(decode(&[], regs), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0x1234_5678u32;
        for _ in 0..20000 {
            let mut b = [0u8; 15];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = x as u8;
            }
            if let Some(w) = decode(&b, regs) {
                assert!(w.len as usize <= 15 && (w.size == 4 || w.size == 8));
            }
        }
    }
}
