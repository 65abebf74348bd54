//! What a PV kernel (running in ring 3) cannot execute itself and Xen emulates:
//! RDMSR/WRMSR of the registers a 64-bit kernel needs, and CPUID behind Xen's
//! forced-emulation prefix (`ud2; .ascii "xen"; cpuid`) with Xen's 0x40000000 leaves.

use super::domain::Domain;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu};
use crate::msr_policy::{self, nr, MsrCtx, Read, Write};

const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];

fn fetch<const N: usize>(d: &Domain, rip: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    GuestView { l4_mfn: d.vcpu.current_l4() }.copy_from(rip, &mut b).ok()?;
    Some(b)
}

/// What the MSR policy depends on, from the guest's CPUID.
fn msr_ctx(d: &Domain) -> MsrCtx {
    let (_, b0, c0, d0) = cpuid(d, 0, 0);
    let (_, _, _, d7) = cpuid(d, 7, 0);
    let (_, _, _, e1d) = cpuid(d, 0x8000_0001, 0);
    let (_, b8, _, _) = cpuid(d, 0x8000_0008, 0);
    let arch_caps = (d7 & (1 << 29) != 0).then(|| cpu::rdmsr_safe(msr_policy::nr::ARCH_CAPABILITIES).unwrap_or(0));
    MsrCtx {
        has_spec_ctrl: d7 & (1 << 26) != 0 || b8 & (1 << 14) != 0,
        arch_caps,
        has_tsc_aux: e1d & (1 << 27) != 0,
        vcpu_id: 0,
        intel: (b0, d0, c0) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e), // "GenuineIntel"
    }
}

fn rdmsr(d: &Domain, msr: u32) -> Option<u64> {
    let v = &d.vcpu;
    match msr_policy::read(&msr_ctx(d), &v.msrs, msr) {
        Read::Value(x) => Some(x),
        Read::Fault => None,
        Read::ShadowGs => Some(if v.kernel_mode { v.gs_base_user } else { v.gs_base_kernel }),
        Read::Host(m) if m == nr::IA32_TSC => Some(cpu::rdtsc()),
        Read::Host(m) if m == nr::IA32_MISC_ENABLE => cpu::rdmsr_safe(m).map(msr_policy::guest_misc_enable),
        Read::Host(m) => cpu::rdmsr_safe(m),
    }
}

fn wrmsr(d: &mut Domain, msr: u32, val: u64) -> bool {
    let ctx = msr_ctx(d);
    match msr_policy::write(&ctx, &mut d.vcpu.msrs, msr, val, |m| cpu::rdmsr_safe(m).unwrap_or(0)) {
        Write::Ignore | Write::Stored => true,
        Write::Fault => false,
        Write::Base(nr::FS_BASE) => {
            cpu::set_fs_base(val);
            d.vcpu.fs_base = val;
            true
        }
        Write::Base(nr::GS_BASE) => {
            cpu::set_gs_base(val);
            if d.vcpu.kernel_mode {
                d.vcpu.gs_base_kernel = val;
            } else {
                d.vcpu.gs_base_user = val;
            }
            true
        }
        Write::Base(_) => {
            if d.vcpu.kernel_mode {
                d.vcpu.gs_base_user = val;
            } else {
                d.vcpu.gs_base_kernel = val;
            }
            true
        }
    }
}

/// `rdmsr` at the guest's RIP (guest kernel mode): true if the MSR is one a PV guest
/// may read; otherwise the guest gets its #GP, as from Xen.
pub fn rdmsr_insn(d: &mut Domain, regs: &mut Regs) -> bool {
    match rdmsr(d, regs.rcx as u32) {
        Some(v) => {
            regs.rax = v & 0xffff_ffff;
            regs.rdx = v >> 32;
            true
        }
        None => {
            log_msr_once(d, regs.rcx as u32, false);
            false
        }
    }
}

/// `wrmsr` at the guest's RIP (guest kernel mode).
pub fn wrmsr_insn(d: &mut Domain, regs: &mut Regs) -> bool {
    let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    let ok = wrmsr(d, regs.rcx as u32, v);
    if !ok {
        log_msr_once(d, regs.rcx as u32, true);
    }
    ok
}

/// Names each refused MSR once on the console, so the log says what a guest missed.
fn log_msr_once(d: &Domain, msr: u32, write: bool) {
    static SEEN: spin::Mutex<alloc::vec::Vec<(u32, bool)>> = spin::Mutex::new(alloc::vec::Vec::new());
    let mut seen = SEEN.lock();
    if seen.len() < 64 && !seen.contains(&(msr, write)) {
        seen.push((msr, write));
        crate::println!("d{}: {} of MSR {msr:#x} refused (#GP)", d.id, if write { "write" } else { "read" });
    }
}

/// A `cpuid` that faulted because CPUID faulting is on (Xen turns it on for PV guests
/// where the CPU can): the policy's answer, as through the forced-emulation prefix.
pub fn cpuid_fault(d: &mut Domain, regs: &mut Regs, bytes: &[u8]) -> bool {
    if bytes.get(..2) != Some(&[0x0f, 0xa2]) {
        return false;
    }
    answer_cpuid(d, regs);
    regs.rip += 2;
    true
}

fn answer_cpuid(d: &Domain, regs: &mut Regs) {
    let (a, b, c, dx) = cpuid(d, regs.rax as u32, regs.rcx as u32);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(b);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
}

/// Whether the guest kernel was shown OSXSAVE through the enlightened CPUID (Xen leaks
/// its own CR4.OSXSAVE there, see cpuid.c), so it may xsetbv before setting CR4.OSXSAVE.
pub fn osxsave_leaked(d: &Domain) -> bool {
    d.vcpu.kernel_mode && cpu::xcr0_supported() != 0
}

/// The guest-controllable CR4 bits the CPUID policy lets a PV guest set (Xen's
/// `pv_fixup_guest_cr4`): TSD and DE always, FSGSBASE and OSXSAVE with their features.
pub fn cr4_policy_mask() -> u64 {
    let (_, _, c1, _) = cpu::cpuid(1, 0);
    let (_, b7, _, _) = cpu::cpuid(7, 0);
    let mut m = (1 << 2) | (1 << 3);
    if b7 & 1 != 0 {
        m |= 1 << 16;
    }
    if c1 & (1 << 26) != 0 {
        m |= 1 << 18;
    }
    m
}

/// Xen's hypervisor CPUID leaves (base 0x40000000) for a PV guest.
fn xen_leaf(leaf: u32) -> (u32, u32, u32, u32) {
    match leaf - 0x4000_0000 {
        0 => (0x4000_0005, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e), // "XenVMMXenVMM"
        1 => ((4 << 16) | 17, 0, 0, 0),
        2 => (1, 0x4000_0000, 1, 0), // one hypercall page, MSR base, PRESERVE_AD
        3 => (0, 0, (clock::tsc_hz() / 1000) as u32, 0),
        // Leaf 5: EBX[7:0] = 0 keeps Linux on grant table v1.
        _ => (0, 0, 0, 0),
    }
}

/// CPUID as Xen presents it to a PV guest: host values with the hypervisor bit set and
/// features a PV guest can't use hidden, plus Xen's leaves.
pub(crate) fn cpuid(_d: &Domain, leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    if (0x4000_0000..=0x4000_00ff).contains(&leaf) {
        return xen_leaf(leaf);
    }
    let (a, mut b, mut c, mut d) = cpu::cpuid(leaf, subleaf);
    // Interim mask until the policy derived from cpufeatureset.h lands: what Xen offers
    // HVM guests only (PSE, PGE, 1 GiB pages, PCID, SMEP, ... ) is hidden from PV.
    match leaf {
        1 => {
            c |= 1 << 31; // hypervisor present
            c &= !((1 << 3) | (1 << 5) | (1 << 6) | (1 << 17) | (1 << 21) | (1 << 24));
            d &= !((1 << 1) | (1 << 3) | (1 << 12) | (1 << 13) | (1 << 17));
        }
        7 if subleaf == 0 => {
            b &= !((1 << 7) | (1 << 10) | (1 << 20));
            c &= !((1 << 2) | (1 << 3) | (1 << 16));
        }
        0x8000_0001 => d &= !(1 << 26),
        _ => {}
    }
    (a, b, c, d)
}

/// A #UD from the guest: the forced-emulation CPUID. True if handled (RIP advanced).
pub fn forced_cpuid(d: &mut Domain, regs: &mut Regs) -> bool {
    if fetch::<7>(d, regs.rip) != Some(FORCED_CPUID) {
        return false;
    }
    answer_cpuid(d, regs);
    regs.rip += 7;
    true
}
