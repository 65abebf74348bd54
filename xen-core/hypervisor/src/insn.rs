//! Decoding the x86-64 instructions a PV kernel uses to write a page-table entry it maps
//! read-only (Xen emulates them: "writable page tables"): `mov` from a register or an
//! immediate, `xchg`, `lock cmpxchg`, the read-modify-write ALU forms (`and`, `or`,
//! `xor`, `add`, `sub` with a register or immediate) and `bts`/`btr`/`btc`, at 1, 2, 4
//! or 8 bytes, to a memory operand (Linux's `ptep_set_wrprotect` is `lock andb`,
//! `ptep_test_and_clear_young` a `lock btr`).

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
    /// memory := memory OP source.
    Alu { op: AluOp, src: u64 },
    /// Bit `bit` (already reduced to the operand size) tested into CF, then changed.
    Bit { op: BitOp, bit: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Or,
    And,
    Sub,
    Xor,
}

impl AluOp {
    /// The operation on `size`-byte values (the result truncated to the size).
    pub fn apply(self, a: u64, b: u64, size: u8) -> u64 {
        let r = match self {
            Self::Add => a.wrapping_add(b),
            Self::Or => a | b,
            Self::And => a & b,
            Self::Sub => a.wrapping_sub(b),
            Self::Xor => a ^ b,
        };
        r & size_mask(size)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    Set,
    Reset,
    Complement,
}

impl BitOp {
    pub fn apply(self, v: u64, bit: u8) -> u64 {
        let m = 1u64 << bit;
        match self {
            Self::Set => v | m,
            Self::Reset => v & !m,
            Self::Complement => v ^ m,
        }
    }
}

/// All-ones for a `size`-byte value.
pub fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        !0
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub op: Op,
    /// Operand size: 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// Instruction length, to step over it.
    pub len: u8,
}

/// Length of a ModRM memory operand (ModRM, SIB, displacement), or None for a register
/// operand or one cut short.
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
    // The displacement must be there too: a truncated instruction is not decoded (found
    // by tests/parsers.rs: `86 45` decoded as a 3-byte xchg).
    (bytes.len() >= len).then_some(len)
}

/// Decodes `bytes` (at least the instruction; 15 is always enough). `reg(n)` reads
/// general register n (0 = rax ... 15 = r15).
pub fn decode(bytes: &[u8], reg: impl Fn(u8) -> u64) -> Option<Write> {
    let mut i = 0;
    let mut opsize16 = false;
    // Legacy prefixes (lock, operand size, segment overrides), then at most one REX.
    while let Some(&b) = bytes.get(i) {
        match b {
            0x66 => opsize16 = true,
            0xf0 | 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => {}
            _ => break,
        }
        i += 1;
        if i >= 15 {
            return None;
        }
    }
    let mut rex = 0u8;
    if let Some(&b @ 0x40..=0x4f) = bytes.get(i) {
        rex = b;
        i += 1;
    }
    let wide = rex & 8 != 0;
    let full = if wide { 8 } else if opsize16 { 2 } else { 4 };
    let reg_ext = (rex & 4) << 1; // REX.R -> bit 3 of ModRM.reg
    // A register operand of `size` bytes. Byte registers 4-7 without REX are ah..bh.
    let value = |n: u8, size: u8| {
        if size == 1 && rex == 0 && (4..8).contains(&n) {
            (reg(n - 4) >> 8) & 0xff
        } else {
            reg(n) & size_mask(size)
        }
    };
    let imm = |at: usize, n: usize, size: u8| -> Option<u64> {
        let b = bytes.get(at..at + n)?;
        let v = match n {
            1 => b[0] as i8 as i64 as u64,
            2 => i16::from_le_bytes([b[0], b[1]]) as i64 as u64,
            _ => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64 as u64,
        };
        Some(v & size_mask(size))
    };
    let alu = |digit: u8| match digit {
        0 => Some(AluOp::Add),
        1 => Some(AluOp::Or),
        4 => Some(AluOp::And),
        5 => Some(AluOp::Sub),
        6 => Some(AluOp::Xor),
        _ => None,
    };
    let op = *bytes.get(i)?;
    let modrm = |k: usize| bytes.get(i + k).copied();
    let (op, size, rest) = match op {
        // mov r/m, r  /  xchg r/m, r (8-bit and full-size forms)
        0x86..=0x89 => {
            let m = modrm(1)?;
            let size = if op & 1 == 0 { 1 } else { full };
            let r = ((m >> 3) & 7) | reg_ext;
            let l = modrm_len(&bytes[i + 1..])?;
            let op = if matches!(op, 0x88 | 0x89) { Op::Store(value(r, size)) } else { Op::Xchg { reg: r } };
            (op, size, 1 + l)
        }
        // mov r/m, imm
        0xc6 | 0xc7 => {
            let m = modrm(1)?;
            if (m >> 3) & 7 != 0 {
                return None;
            }
            let size = if op == 0xc6 { 1 } else { full };
            let l = modrm_len(&bytes[i + 1..])?;
            let n = usize::from(size.min(4));
            (Op::Store(imm(i + 1 + l, n, size)?), size, 1 + l + n)
        }
        // ALU r/m, r: add 00/01, or 08/09, and 20/21, sub 28/29, xor 30/31
        0x00 | 0x01 | 0x08 | 0x09 | 0x20 | 0x21 | 0x28 | 0x29 | 0x30 | 0x31 => {
            let m = modrm(1)?;
            let size = if op & 1 == 0 { 1 } else { full };
            let r = ((m >> 3) & 7) | reg_ext;
            let l = modrm_len(&bytes[i + 1..])?;
            (Op::Alu { op: alu(op >> 3)?, src: value(r, size) }, size, 1 + l)
        }
        // ALU r/m, imm: 80 (imm8), 81 (imm16/32), 83 (sign-extended imm8)
        0x80 | 0x81 | 0x83 => {
            let m = modrm(1)?;
            let size = if op == 0x80 { 1 } else { full };
            let l = modrm_len(&bytes[i + 1..])?;
            let n = if op == 0x81 { usize::from(size.min(4)) } else { 1 };
            (Op::Alu { op: alu((m >> 3) & 7)?, src: imm(i + 1 + l, n, size)? }, size, 1 + l + n)
        }
        0x0f => {
            let op2 = *bytes.get(i + 1)?;
            let m = modrm(2)?;
            let l = modrm_len(&bytes[i + 2..])?;
            let bits = (full * 8) as u64;
            match op2 {
                0xb1 => (Op::Cmpxchg { reg: ((m >> 3) & 7) | reg_ext }, full, 2 + l),
                // bts/btr/btc r/m, r: the register's bit offset also moves the address,
                // which the fault address already reflects; keep the bit within the operand.
                0xab | 0xb3 | 0xbb => {
                    let bop = match op2 {
                        0xab => BitOp::Set,
                        0xb3 => BitOp::Reset,
                        _ => BitOp::Complement,
                    };
                    let bit = (reg(((m >> 3) & 7) | reg_ext) % bits) as u8;
                    (Op::Bit { op: bop, bit }, full, 2 + l)
                }
                // bts/btr/btc r/m, imm8 (0f ba /5 /6 /7)
                0xba => {
                    let bop = match (m >> 3) & 7 {
                        5 => BitOp::Set,
                        6 => BitOp::Reset,
                        7 => BitOp::Complement,
                        _ => return None,
                    };
                    let bit = (u64::from(*bytes.get(i + 2 + l)?) % bits) as u8;
                    (Op::Bit { op: bop, bit }, full, 2 + l + 1)
                }
                _ => return None,
            }
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
    fn truncated_displacement_is_not_decoded() {
        // xchg %al, 0x10(%rbp) needs its disp8; without it (the fetch stopped at an
        // unreadable page) nothing is decoded, so nothing is emulated.
        assert_eq!(decode(&[0x86, 0x45], regs), None);
        assert_eq!(decode(&[0x86, 0x45, 0x10], regs).map(|w| w.len), Some(3));
        // mov %rax, disp32(%rip) with three of its four displacement bytes.
        assert_eq!(decode(&[0x48, 0x89, 0x05, 0x78, 0x56, 0x34], regs), None);
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
    fn linux_pte_read_modify_write_forms() {
        // ds lock? andb $0xfd, (%r12): ptep_set_wrprotect as Debian's 6.1 emits it
        assert_eq!(
            decode(&[0x3e, 0x41, 0x80, 0x24, 0x24, 0xfd], regs),
            Some(Write { op: Op::Alu { op: AluOp::And, src: 0xfd }, size: 1, len: 6 })
        );
        // lock btrq $5, (%rdi): test_and_clear_bit(_PAGE_BIT_ACCESSED)
        assert_eq!(
            decode(&[0xf0, 0x48, 0x0f, 0xba, 0x37, 0x05], regs),
            Some(Write { op: Op::Bit { op: BitOp::Reset, bit: 5 }, size: 8, len: 6 })
        );
        // lock orb $2, (%rax) ; lock orq %rsi, (%rdi) ; andw $-3, 4(%rdx) ; movb %al, 1(%rdi)
        assert_eq!(decode(&[0xf0, 0x80, 0x08, 0x02], regs).map(|w| (w.op, w.size)), Some((Op::Alu { op: AluOp::Or, src: 2 }, 1)));
        assert_eq!(decode(&[0xf0, 0x48, 0x09, 0x37], regs).map(|w| (w.op, w.size)), Some((Op::Alu { op: AluOp::Or, src: regs(6) }, 8)));
        assert_eq!(decode(&[0x66, 0x83, 0x62, 0x04, 0xfd], regs).map(|w| (w.op, w.size, w.len)), Some((Op::Alu { op: AluOp::And, src: 0xfffd }, 2, 5)));
        assert_eq!(decode(&[0x88, 0x47, 0x01], regs).map(|w| (w.op, w.size)), Some((Op::Store(regs(0) & 0xff), 1)));
        // movb %ah, (%rdi) without REX is the high byte of rax
        assert_eq!(decode(&[0x88, 0x27], regs).map(|w| w.op), Some(Op::Store((regs(0) >> 8) & 0xff)));
        // lock btsq %rcx, (%rdi): bit from a register, reduced to the operand
        assert_eq!(decode(&[0xf0, 0x48, 0x0f, 0xab, 0x0f], |n| if n == 1 { 70 } else { 0 }).map(|w| w.op), Some(Op::Bit { op: BitOp::Set, bit: 6 }));
    }

    #[test]
    fn alu_and_bit_arithmetic() {
        assert_eq!(AluOp::And.apply(0x67, 0xfd, 1), 0x65);
        assert_eq!(AluOp::Add.apply(0xff, 1, 1), 0);
        assert_eq!(AluOp::Sub.apply(0, 1, 2), 0xffff);
        assert_eq!(BitOp::Reset.apply(0x67, 5), 0x47);
        assert_eq!(BitOp::Complement.apply(0, 63), 1 << 63);
        assert_eq!(size_mask(4), 0xffff_ffff);
    }

    #[test]
    fn everything_else_is_refused() {
        assert_eq!(decode(&[0x48, 0x89, 0xc7], regs), None); // register destination
        assert_eq!(decode(&[0x48, 0x8b, 0x07], regs), None); // a load
        assert_eq!(decode(&[0x48, 0xc7, 0x0f, 0, 0, 0, 0], regs), None); // C7 /1
        assert_eq!(decode(&[0x80, 0x38, 0x01], regs), None); // cmp: no write
        assert_eq!(decode(&[0x0f, 0xba, 0x27, 0x01], regs), None); // bt: no write
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
                assert!(w.len as usize <= 15 && matches!(w.size, 1 | 2 | 4 | 8));
            }
        }
    }
}
