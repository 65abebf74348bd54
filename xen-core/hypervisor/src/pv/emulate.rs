//! What a PV kernel (running in ring 3) cannot execute itself and Xen emulates:
//! RDMSR/WRMSR of the registers a 64-bit kernel needs, and CPUID behind Xen's
//! forced-emulation prefix (`ud2; .ascii "xen"; cpuid`) with Xen's 0x40000000 leaves.

use super::domain::Domain;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu};

const MSR_EFER: u32 = 0xc000_0080;
const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_SHADOW_GS_BASE: u32 = 0xc000_0102;
const MSR_TSC: u32 = 0x10;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_PAT: u32 = 0x277;
/// Xen's PAT for PV guests (WB, WT, UC-, UC, WC, WP, UC, UC).
const XEN_MSR_PAT: u64 = 0x0000_0501_0007_0406;
const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

fn fetch<const N: usize>(d: &Domain, rip: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    GuestView { l4_mfn: d.vcpu.current_l4() }.copy_from(rip, &mut b).ok()?;
    Some(b)
}

fn rdmsr(d: &Domain, msr: u32) -> Option<u64> {
    let v = &d.vcpu;
    Some(match msr {
        MSR_FS_BASE => cpu::rdmsr(cpu::MSR_FS_BASE),
        MSR_GS_BASE => cpu::rdmsr(cpu::MSR_GS_BASE),
        MSR_SHADOW_GS_BASE => {
            if v.kernel_mode {
                v.gs_base_user
            } else {
                v.gs_base_kernel
            }
        }
        MSR_EFER => cpu::rdmsr(cpu::MSR_EFER),
        MSR_TSC => cpu::rdtsc(),
        MSR_APIC_BASE => 0xfee0_0900, // enabled, BSP, default base
        MSR_PAT => XEN_MSR_PAT,
        _ => return None,
    })
}

fn wrmsr(d: &mut Domain, msr: u32, val: u64) -> bool {
    match msr {
        MSR_FS_BASE | MSR_GS_BASE | MSR_SHADOW_GS_BASE if !canonical(val) => false,
        MSR_FS_BASE => {
            cpu::set_fs_base(val);
            d.vcpu.fs_base = val;
            true
        }
        MSR_GS_BASE => {
            cpu::set_gs_base(val);
            if d.vcpu.kernel_mode {
                d.vcpu.gs_base_kernel = val;
            } else {
                d.vcpu.gs_base_user = val;
            }
            true
        }
        MSR_SHADOW_GS_BASE => {
            if d.vcpu.kernel_mode {
                d.vcpu.gs_base_user = val;
            } else {
                d.vcpu.gs_base_kernel = val;
            }
            true
        }
        // Writes that change nothing are accepted, as Xen does for EFER and PAT.
        MSR_EFER => val == cpu::rdmsr(cpu::MSR_EFER),
        MSR_PAT => val == XEN_MSR_PAT,
        _ => false,
    }
}

/// A #GP from guest kernel mode: emulates RDMSR/WRMSR. True if handled (RIP advanced).
pub fn privileged_op(d: &mut Domain, regs: &mut Regs) -> bool {
    if !d.vcpu.kernel_mode {
        return false;
    }
    let Some(op) = fetch::<2>(d, regs.rip) else { return false };
    let msr = regs.rcx as u32;
    match op {
        [0x0f, 0x32] => match rdmsr(d, msr) {
            Some(v) => {
                regs.rax = v & 0xffff_ffff;
                regs.rdx = v >> 32;
            }
            None => return false,
        },
        [0x0f, 0x30] => {
            let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
            if !wrmsr(d, msr, v) {
                return false;
            }
        }
        _ => return false,
    }
    regs.rip += 2;
    true
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
fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    if (0x4000_0000..=0x4000_00ff).contains(&leaf) {
        return xen_leaf(leaf);
    }
    let (a, b, mut c, d) = cpu::cpuid(leaf, subleaf);
    if leaf == 1 {
        c |= 1 << 31; // hypervisor present
        c &= !((1 << 3) | (1 << 5) | (1 << 6)); // MONITOR, VMX, SMX
    }
    (a, b, c, d)
}

/// A #UD from the guest: the forced-emulation CPUID. True if handled (RIP advanced).
pub fn forced_cpuid(d: &mut Domain, regs: &mut Regs) -> bool {
    if fetch::<7>(d, regs.rip) != Some(FORCED_CPUID) {
        return false;
    }
    let (a, b, c, dx) = cpuid(regs.rax as u32, regs.rcx as u32);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(b);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
    regs.rip += 7;
    true
}
