//! What a PV kernel (running in ring 3) cannot execute itself and Xen emulates:
//! RDMSR/WRMSR of the registers a 64-bit kernel needs, XSETBV, and CPUID behind Xen's
//! forced-emulation prefix (`ud2; .ascii "xen"; cpuid`), answered with Xen 4.17's PV
//! CPUID policy (`crate::cpuid_policy`).

use super::domain::Domain;
use super::m2p;
use crate::cpuid_policy::{guest_cpuid, xsetbv_allowed, CpuPolicy, GuestCpuidCtx, X86_CR4_OSXSAVE};
use spin::Once;
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

/// A #GP from guest kernel mode: emulates RDMSR/WRMSR and XSETBV. True if handled (RIP
/// advanced).
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
        [0x0f, 0x01] if fetch::<3>(d, regs.rip) == Some([0x0f, 0x01, 0xd1]) => {
            // Xen's emulator checks the guest's own CR4.OSXSAVE first: #UD without it.
            if guest_cr4(d) & X86_CR4_OSXSAVE == 0 {
                super::traps::inject_exception(d, regs, 6, None);
                return true;
            }
            let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
            if !xsetbv(d, regs.rcx as u32, v) {
                return false;
            }
            regs.rip += 3;
            return true;
        }
        _ => return false,
    }
    regs.rip += 2;
    true
}

/// XSETBV from the guest kernel with its CR4.OSXSAVE set (Xen's `handle_xsetbv`): only
/// XCR0, only values within the domain's CPUID policy (leaf 0xd's XCR0 mask) that the
/// architecture allows; false (the guest gets #GP) otherwise.
fn xsetbv(d: &mut Domain, index: u32, value: u64) -> bool {
    if index != 0 || !cpu::xsave_enabled() {
        return false;
    }
    let (lo, _, _, hi) = cpuid(d, 0xd, 0, true);
    let max = u64::from(hi) << 32 | u64::from(lo);
    if !xsetbv_allowed(value, max) {
        return false;
    }
    cpu::set_xcr0(value);
    d.vcpu.fpu.xcr0 = value;
    true
}

/// The guest's virtual CR4, as Xen keeps it for a PV vCPU (`v->arch.pv.ctrlreg[4]`).
/// xen-core does not emulate CR4 writes yet, so it is what Xen starts every PV vCPU
/// with, `pv_fixup_guest_cr4(v, 0)`: none of the bits CPUID and XSETBV look at (OSXSAVE,
/// PKE). CR4 emulation replaces this with the vCPU's value.
fn guest_cr4(_d: &Domain) -> u64 {
    0
}

/// CPUID as Xen 4.17 presents it to vCPU 0 of the PV domain `d`: `crate::cpuid_policy`'s
/// `pv_cpuid` over this CPU's native CPUID, with the domain policies kept. `forced`: the
/// CPUID came through the forced-emulation prefix (a #UD); false for a native CPUID that
/// faulted (CPUID faulting, a #GP), which Xen answers differently for the hardware
/// domain's kernel (MONITOR leaks).
pub(crate) fn cpuid(d: &Domain, leaf: u32, subleaf: u32, forced: bool) -> (u32, u32, u32, u32) {
    let ctx = GuestCpuidCtx {
        hardware_domain: d.hardware,
        kernel_mode: d.vcpu.kernel_mode,
        forced,
        guest_cr4: guest_cr4(d),
        xen_cr4_osxsave: cpu::read_cr4() & X86_CR4_OSXSAVE != 0,
        vcpu_id: 0,
        // Xen never emulates the hardware domain's TSC and leaves its kHz 0; other PV
        // domains get the host's frequency (`tsc_set_info`).
        tsc_khz: if d.hardware { 0 } else { (clock::tsc_hz() / 1000) as u32 },
        max_mfn: m2p::entries().saturating_sub(1),
    };
    let policies = POLICIES.call_once(|| [CpuPolicy::pv_domain(&host, false), CpuPolicy::pv_domain(&host, true)]);
    let [a, b, c, dx] = guest_cpuid(&host, &policies[usize::from(d.hardware)], &ctx, leaf, subleaf);
    (a, b, c, dx)
}

/// This CPU's native CPUID.
fn host(leaf: u32, subleaf: u32) -> [u32; 4] {
    let (a, b, c, d) = cpu::cpuid(leaf, subleaf);
    [a, b, c, d]
}

/// The PV domain policies (other domains, the hardware domain): they depend only on the
/// CPU, so they are derived once (Xen derives its PV default policy once at boot and
/// copies it into each domain).
static POLICIES: Once<[CpuPolicy; 2]> = Once::new();

/// A #UD from the guest: the forced-emulation CPUID. True if handled (RIP advanced).
pub fn forced_cpuid(d: &mut Domain, regs: &mut Regs) -> bool {
    if fetch::<7>(d, regs.rip) != Some(FORCED_CPUID) {
        return false;
    }
    let (a, b, c, dx) = cpuid(d, regs.rax as u32, regs.rcx as u32, true);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(b);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
    regs.rip += 7;
    true
}
