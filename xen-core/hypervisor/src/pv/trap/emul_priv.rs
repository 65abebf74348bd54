//! Privileged instructions of a PV guest kernel (Xen's `emul-priv-op.c`): the kernel
//! runs in ring 3, so `mov` to/from control and debug registers, port I/O, cache
//! flushes, MSR access and CPUID (when the CPU can fault it) raise #GP, and we carry
//! them out as Xen would for a PV guest. `crate::priv_insn` decodes; this module acts.

use crate::pv::domain::Domain;
use crate::pv::mmu;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{cpu, phys, port};
use crate::priv_insn::{self, Port, PrivInsn};
use xen_abi::{DomId, Mfn};

const CR0_TS: u64 = 1 << 3;
const RFLAGS_DF: u64 = 1 << 10;
/// `vcpu_info.arch.cr2`: where the last page fault's address was reported.
const VCPU_INFO_CR2: u64 = 16;
/// At most this many iterations of a `rep ins/outs` per trap; the rest re-executes.
const REP_BATCH: u64 = 1024;

/// CR4 bits a PV guest controls (Xen's PV_CR4_GUEST_MASK): TSD, DE, FSGSBASE, OSXSAVE.
pub const CR4_GUEST_MASK: u64 = (1 << 2) | (1 << 3) | (1 << 16) | (1 << 18);
/// CR4 bits of the hardware a PV guest sees (PV_CR4_GUEST_VISIBLE_MASK): PAE, MCE,
/// OSFXSR, OSXMMEXCPT.
const CR4_VISIBLE_MASK: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10);

pub fn reg(regs: &Regs, n: u8) -> u64 {
    match n & 15 {
        0 => regs.rax,
        1 => regs.rcx,
        2 => regs.rdx,
        3 => regs.rbx,
        4 => regs.rsp,
        5 => regs.rbp,
        6 => regs.rsi,
        7 => regs.rdi,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        _ => regs.r15,
    }
}

pub fn set_reg(regs: &mut Regs, n: u8, v: u64) {
    let r = match n & 15 {
        0 => &mut regs.rax,
        1 => &mut regs.rcx,
        2 => &mut regs.rdx,
        3 => &mut regs.rbx,
        4 => &mut regs.rsp,
        5 => &mut regs.rbp,
        6 => &mut regs.rsi,
        7 => &mut regs.rdi,
        8 => &mut regs.r8,
        9 => &mut regs.r9,
        10 => &mut regs.r10,
        11 => &mut regs.r11,
        12 => &mut regs.r12,
        13 => &mut regs.r13,
        14 => &mut regs.r14,
        _ => &mut regs.r15,
    };
    *r = v;
}

/// The instruction bytes at the guest's RIP that are readable (up to 15).
pub fn fetch_insn(d: &Domain, rip: u64) -> ([u8; 15], usize) {
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let mut bytes = [0u8; 15];
    let n = (1..=15).rev().find(|&n| guest.copy_from(rip, &mut bytes[..n]).is_ok()).unwrap_or(0);
    (bytes, n)
}

/// CR4 as the guest reads it (Xen's `pv_fixup_guest_cr4` view).
pub fn guest_cr4(d: &Domain) -> u64 {
    (d.vcpus[d.cur_vcpu].cr4_guest & CR4_GUEST_MASK) | (cpu::read_cr4() & CR4_VISIBLE_MASK)
}

/// Whether the domain's I/O reaches the hardware: only the hardware domain's (Xen's
/// `dom0_setup_permissions`), and never the ports the hypervisor keeps (`port::passthrough_*`
/// refuses those). Others read all-ones; their writes are dropped.
fn port_passthrough(d: &Domain) -> bool {
    d.hardware
}

/// Xen's `iopl_ok`: the virtual IOPL (set_iopl) covers the guest's privilege level: 1
/// in guest kernel mode, 3 in user mode.
fn iopl_ok(d: &Domain) -> bool {
    d.vcpus[d.cur_vcpu].iopl >= if d.vcpus[d.cur_vcpu].kernel_mode { 1 } else { 3 }
}

/// Xen's `guest_io_okay`: the virtual IOPL, or else the guest's I/O bitmap
/// (PHYSDEVOP_set_iobitmap) clears every bit of `bytes` ports from `port`. The bitmap is
/// read through the kernel's page tables (in user mode too, as Xen toggles to them);
/// an unreadable byte counts as all ones (no access).
fn io_allowed(d: &Domain, port: u16, bytes: u8) -> bool {
    if iopl_ok(d) {
        return true;
    }
    let (port, bytes) = (u32::from(port), u32::from(bytes));
    if port + bytes > d.vcpus[d.cur_vcpu].iobmp_limit {
        return false;
    }
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].kernel_l4 };
    let at = d.vcpus[d.cur_vcpu].iobmp.wrapping_add(u64::from(port >> 3));
    let mut x = [0u8; 2];
    if guest.copy_from(at, &mut x[..1]).is_err() {
        x = [0xff; 2];
    } else if guest.copy_from(at.wrapping_add(1), &mut x[1..]).is_err() {
        x[1] = 0xff;
    }
    let mask = u32::from(u16::from_le_bytes(x));
    mask & (((1u32 << bytes) - 1) << (port & 7)) == 0
}

fn io_read(d: &mut Domain, port: u16, size: u8) -> u32 {
    if port == 0xcf8 && size == 4 && d.hardware {
        return d.pci_cf8;
    }
    if !port_passthrough(d) {
        return !0;
    }
    port::passthrough_read(port, size).unwrap_or(!0)
}

fn io_write(d: &mut Domain, port: u16, size: u8, value: u32) {
    if port == 0xcf8 && size == 4 && d.hardware {
        d.pci_cf8 = value;
        return;
    }
    if port_passthrough(d) {
        port::passthrough_write(port, size, value);
    }
}

fn merge_sized(old: u64, value: u32, size: u8) -> u64 {
    match size {
        1 => (old & !0xff) | u64::from(value & 0xff),
        2 => (old & !0xffff) | u64::from(value & 0xffff),
        _ => u64::from(value), // 32-bit results zero-extend into rax
    }
}

/// `rep ins/outs`: up to REP_BATCH iterations; true when the instruction is complete.
fn string_io(d: &mut Domain, regs: &mut Regs, port: u16, size: u8, rep: bool, addr32: bool, input: bool) -> Option<bool> {
    let mask = if addr32 { 0xffff_ffffu64 } else { !0 };
    let step = if regs.rflags & RFLAGS_DF != 0 { 0u64.wrapping_sub(u64::from(size)) } else { u64::from(size) };
    let mut count = if rep { regs.rcx & mask } else { 1 };
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let mut done = 0;
    while count > 0 && done < REP_BATCH {
        if input {
            let v = io_read(d, port, size);
            let at = regs.rdi & mask;
            guest.copy_to(at, &v.to_le_bytes()[..usize::from(size)]).ok()?;
            regs.rdi = (regs.rdi & !mask) | (at.wrapping_add(step) & mask);
        } else {
            let at = regs.rsi & mask;
            let mut b = [0u8; 4];
            guest.copy_from(at, &mut b[..usize::from(size)]).ok()?;
            io_write(d, port, size, u32::from_le_bytes(b));
            regs.rsi = (regs.rsi & !mask) | (at.wrapping_add(step) & mask);
        }
        count -= 1;
        done += 1;
        if rep {
            regs.rcx = (regs.rcx & !mask) | count;
        }
    }
    Some(count == 0)
}

fn read_cr(d: &Domain, cr: u8) -> Option<u64> {
    Some(match cr {
        0 => (cpu::read_cr0() & !CR0_TS) | if d.vcpus[d.cur_vcpu].fpu_ts { CR0_TS } else { 0 },
        2 => {
            let mut b = [0u8; 8];
            phys::read_bytes(d.vcpus[d.cur_vcpu].vcpu_info_maddr + VCPU_INFO_CR2, &mut b);
            u64::from_le_bytes(b)
        }
        // A PV guest's own base pointer: its machine frame (MFN == GMFN for PV).
        3 => d.vcpus[d.cur_vcpu].current_l4() << 12,
        4 => guest_cr4(d),
        _ => return None,
    })
}

fn write_cr(d: &mut Domain, cr: u8, val: u64) -> bool {
    match cr {
        // Only TS may change (Xen: "Attempt to change unmodifiable CR0 flags").
        0 => {
            if (val ^ cpu::read_cr0()) & !CR0_TS != 0 {
                return false;
            }
            d.vcpus[d.cur_vcpu].fpu_ts = val & CR0_TS != 0;
            cpu::set_ts(d.vcpus[d.cur_vcpu].fpu_ts);
            true
        }
        // new_guest_cr3: the same checks and references as MMUEXT_NEW_BASEPTR.
        3 => {
            let mut vm = d.vcpus[d.cur_vcpu].mm;
            let ok = mmu::with(|t, hw| t.new_baseptr(hw, DomId(d.id), &mut vm, Mfn(val >> 12))).is_ok();
            if ok {
                d.vcpus[d.cur_vcpu].set_mm(vm);
                cpu::write_cr3(d.vcpus[d.cur_vcpu].current_l4() << 12);
            }
            ok
        }
        // Xen discards bits outside the guest-controllable set, never faults.
        4 => {
            d.vcpus[d.cur_vcpu].cr4_guest = val & CR4_GUEST_MASK & super::emulate::cr4_policy_mask(d);
            cpu::apply_guest_cr4(d.vcpus[d.cur_vcpu].cr4_guest);
            true
        }
        _ => false,
    }
}

/// `HYPERVISOR_set_debugreg`: -EPERM for a DR0-3 address outside the guest's range,
/// -EINVAL for another register or a bad DR7, as Xen's `set_debugreg`.
pub fn set_debugreg(d: &mut Domain, reg: u64, value: u64) -> crate::pv::hypercall::HcResult {
    let n = d.cur_vcpu;
    set_vcpu_debugreg(&mut d.vcpus[n], reg, value)
}

/// `set_debugreg` on vCPU `v` (also from a vCPU context the toolstack or the guest loads).
pub fn set_vcpu_debugreg(v: &mut crate::pv::domain::Vcpu, reg: u64, value: u64) -> crate::pv::hypercall::HcResult {
    use xen_abi::errno::Errno;
    match reg {
        0..=3 | 6 | 7 if write_dr(v, reg as u8, value) => Ok(0),
        0..=3 => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

/// `HYPERVISOR_get_debugreg`.
pub fn get_debugreg(d: &Domain, reg: u64) -> crate::pv::hypercall::HcResult {
    match reg {
        0..=3 | 6 | 7 => read_dr(d, reg as u8).ok_or(xen_abi::errno::Errno::EINVAL),
        _ => Err(xen_abi::errno::Errno::EINVAL),
    }
}

/// Xen's `set_debugreg` rules for a PV guest: DR0-3 must be guest addresses; DR4/5
/// alias DR6/7 (CR4.DE clear); DR6/DR7 keep their fixed bits. The values are kept for
/// the guest to read back; they are not loaded into the hardware (no guest breakpoints).
fn write_dr(v: &mut crate::pv::domain::Vcpu, dr: u8, val: u64) -> bool {
    let dr = match dr {
        4 => 6,
        5 => 7,
        n => n,
    };
    match dr {
        0..=3 => {
            let canonical = val >> 47 == 0 || val >> 47 == 0x1ffff;
            if !canonical || (xen_abi::arch_x86_64::HYPERVISOR_VIRT_START..xen_abi::arch_x86_64::HYPERVISOR_VIRT_END).contains(&val) {
                return false;
            }
            v.debugreg[usize::from(dr)] = val;
        }
        6 => v.debugreg[6] = (val & 0xffff_efff) | 0xffff_0ff0,
        7 => {
            if val >> 32 != 0 {
                return false;
            }
            v.debugreg[7] = (val & !0xd800) | 0x400;
        }
        _ => return false,
    }
    true
}

fn read_dr(d: &Domain, dr: u8) -> Option<u64> {
    match dr {
        0..=3 | 6 | 7 => Some(d.vcpus[d.cur_vcpu].debugreg[usize::from(dr)]),
        4 => Some(d.vcpus[d.cur_vcpu].debugreg[6]),
        5 => Some(d.vcpus[d.cur_vcpu].debugreg[7]),
        _ => None,
    }
}

/// XSETBV from the guest kernel (Xen's emulator and `handle_xsetbv`): #UD while the
/// guest's own CR4.OSXSAVE is clear; then only XCR0, only values within the domain's
/// CPUID policy (leaf 0xd's XCR0 mask) that the architecture allows, else #GP.
fn xsetbv(d: &mut Domain, regs: &mut Regs) -> Option<bool> {
    if d.vcpus[d.cur_vcpu].cr4_guest & crate::cpuid_policy::X86_CR4_OSXSAVE == 0 {
        super::inject_exception(d, regs, 6, None);
        return None;
    }
    let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    let (lo, _, _, hi) = super::emulate::cpuid(d, 0xd, 0, true);
    let max = u64::from(hi) << 32 | u64::from(lo);
    if regs.rcx as u32 != 0 || cpu::xcr0_supported() == 0 || !crate::cpuid_policy::xsetbv_allowed(value, max) {
        return Some(false);
    }
    d.vcpus[d.cur_vcpu].fpu.xcr0 = value;
    cpu::set_xcr0(value);
    Some(true)
}

/// A #GP (error code 0) from the guest: carries out the privileged instruction at RIP.
/// True if handled (RIP advanced, or left in place to continue a `rep` string op).
pub fn privileged_op(d: &mut Domain, regs: &mut Regs) -> bool {
    let (bytes, n) = fetch_insn(d, regs.rip);
    let Some(dec) = priv_insn::decode(&bytes[..n]) else {
        return super::emulate::cpuid_fault(d, regs, &bytes[..n]);
    };
    let kernel = d.vcpus[d.cur_vcpu].kernel_mode;
    let done = match dec.insn {
        // Everything but I/O and rdtsc needs guest kernel mode (the guest's ring 0).
        PrivInsn::ReadCr { .. } | PrivInsn::WriteCr { .. } | PrivInsn::ReadDr { .. } | PrivInsn::WriteDr { .. } | PrivInsn::Clts | PrivInsn::Wbinvd | PrivInsn::Invd | PrivInsn::Rdmsr | PrivInsn::Wrmsr | PrivInsn::Hlt
            if !kernel =>
        {
            false
        }
        PrivInsn::ReadCr { cr, gpr } => read_cr(d, cr).map(|v| set_reg(regs, gpr, v)).is_some(),
        PrivInsn::WriteCr { cr, gpr } => write_cr(d, cr, reg(regs, gpr)),
        PrivInsn::ReadDr { dr, gpr } => read_dr(d, dr).map(|v| set_reg(regs, gpr, v)).is_some(),
        PrivInsn::WriteDr { dr, gpr } => {
            let n = d.cur_vcpu;
            write_dr(&mut d.vcpus[n], dr, reg(regs, gpr))
        }
        PrivInsn::Clts => {
            d.vcpus[d.cur_vcpu].fpu_ts = false;
            cpu::set_ts(false);
            true
        }
        // Xen ignores cache flushes from guests that may not flush the real caches.
        PrivInsn::Wbinvd | PrivInsn::Invd => true,
        PrivInsn::Rdtsc | PrivInsn::Rdtscp => {
            let tsc = cpu::rdtsc();
            regs.rax = tsc & 0xffff_ffff;
            regs.rdx = tsc >> 32;
            if dec.insn == PrivInsn::Rdtscp {
                regs.rcx = 0; // TSC_AUX: vCPU 0
            }
            true
        }
        PrivInsn::Xsetbv => match xsetbv(d, regs) {
            Some(ok) => ok,
            None => return true, // #UD delivered
        },
        PrivInsn::Rdmsr => super::emulate::rdmsr_insn(d, regs),
        PrivInsn::Wrmsr => super::emulate::wrmsr_insn(d, regs),
        // A PV kernel idles with SCHEDOP_block; a stray hlt is a #GP as on Xen.
        PrivInsn::Hlt => false,
        // Under the virtual IOPL Xen steps over cli/sti without touching the event mask:
        // a later popf could not undo it ("fast & loose will do", emul-priv-op.c).
        PrivInsn::Cli | PrivInsn::Sti if iopl_ok(d) => true,
        PrivInsn::In { size, port } | PrivInsn::Out { size, port }
            if io_allowed(
                d,
                match port {
                    Port::Imm(p) => u16::from(p),
                    Port::Dx => regs.rdx as u16,
                },
                size,
            ) =>
        {
            let p = match port {
                Port::Imm(p) => u16::from(p),
                Port::Dx => regs.rdx as u16,
            };
            if let PrivInsn::In { .. } = dec.insn {
                let v = io_read(d, p, size);
                regs.rax = merge_sized(regs.rax, v, size);
            } else {
                io_write(d, p, size, regs.rax as u32);
            }
            true
        }
        PrivInsn::Ins { size, rep, addr32 } | PrivInsn::Outs { size, rep, addr32 } if io_allowed(d, regs.rdx as u16, size) => {
            let input = matches!(dec.insn, PrivInsn::Ins { .. });
            match string_io(d, regs, regs.rdx as u16, size, rep, addr32, input) {
                Some(true) => true,
                // Not finished: re-execute the instruction for the rest.
                Some(false) => return true,
                // A guest buffer it can't access: its own fault, as a #GP here.
                None => false,
            }
        }
        _ => false,
    };
    if done {
        regs.rip += u64::from(dec.len);
    }
    done
}
