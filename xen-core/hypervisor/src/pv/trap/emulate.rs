//! What a PV kernel (running in ring 3) cannot execute itself and Xen emulates:
//! RDMSR/WRMSR of the registers a 64-bit kernel needs, and CPUID behind Xen's
//! forced-emulation prefix (`ud2; .ascii "xen"; cpuid`), answered with Xen 4.17's PV
//! CPUID policy (`crate::cpuid_policy`).

use crate::pv::domain::Domain;
use crate::pv::mmu::m2p;
use crate::cpuid_policy::{guest_cpuid, CpuPolicy, GuestCpuidCtx, X86_CR4_OSXSAVE};
use spin::Once;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu};
use crate::msr_policy::{self, nr, MsrCtx, Read, Write};

const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, b'x', b'e', b'n', 0x0f, 0xa2];

fn fetch<const N: usize>(d: &Domain, rip: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() }.copy_from(rip, &mut b).ok()?;
    Some(b)
}

/// What the MSR policy depends on, from the guest's CPUID.
fn msr_ctx(d: &Domain) -> MsrCtx {
    let (_, b0, c0, d0) = cpuid(d, 0, 0, true);
    let (_, _, _, d7) = cpuid(d, 7, 0, true);
    let (_, _, _, e1d) = cpuid(d, 0x8000_0001, 0, true);
    let (_, b8, _, _) = cpuid(d, 0x8000_0008, 0, true);
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
    let v = &d.vcpus[d.cur_vcpu];
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
    match msr_policy::write(&ctx, &mut d.vcpus[d.cur_vcpu].msrs, msr, val, |m| cpu::rdmsr_safe(m).unwrap_or(0)) {
        Write::Ignore | Write::Stored => true,
        Write::Fault => false,
        Write::Base(nr::FS_BASE) => {
            cpu::set_fs_base(val);
            d.vcpus[d.cur_vcpu].fs_base = val;
            true
        }
        Write::Base(nr::GS_BASE) => {
            cpu::set_gs_base(val);
            if d.vcpus[d.cur_vcpu].kernel_mode {
                d.vcpus[d.cur_vcpu].gs_base_kernel = val;
            } else {
                d.vcpus[d.cur_vcpu].gs_base_user = val;
            }
            true
        }
        Write::Base(_) => {
            if d.vcpus[d.cur_vcpu].kernel_mode {
                d.vcpus[d.cur_vcpu].gs_base_user = val;
            } else {
                d.vcpus[d.cur_vcpu].gs_base_kernel = val;
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
    answer_cpuid(d, regs, false);
    regs.rip += 2;
    true
}

fn answer_cpuid(d: &Domain, regs: &mut Regs, forced: bool) {
    let (a, b, c, dx) = cpuid(d, regs.rax as u32, regs.rcx as u32, forced);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(b);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
}

/// The guest-controllable CR4 bits the CPUID policy lets a PV guest set (Xen's
/// `pv_fixup_guest_cr4`): TSD and DE always, FSGSBASE and OSXSAVE with their features.
pub fn cr4_policy_mask(d: &Domain) -> u64 {
    let (_, _, c1, _) = cpuid(d, 1, 0, true);
    let (_, b7, _, _) = cpuid(d, 7, 0, true);
    let mut m = (1 << 2) | (1 << 3);
    if b7 & 1 != 0 {
        m |= 1 << 16;
    }
    if c1 & (1 << 26) != 0 {
        m |= 1 << 18;
    }
    m
}

/// CPUID as Xen 4.17 presents it to vCPU 0 of the PV domain `d` (the policy in
/// `crate::cpuid_policy`, over this CPU's native CPUID). `forced`: the CPUID came through
/// the forced-emulation prefix (a #UD); false for a native CPUID that faulted (CPUID
/// faulting, a #GP), which Xen answers differently for the hardware domain's kernel
/// (MONITOR leaks).
pub(crate) fn cpuid(d: &Domain, leaf: u32, subleaf: u32, forced: bool) -> (u32, u32, u32, u32) {
    let ctx = GuestCpuidCtx {
        hardware_domain: d.hardware,
        kernel_mode: d.vcpus[d.cur_vcpu].kernel_mode,
        forced,
        // The guest-controllable CR4 bits it set (`emul_priv::write_cr`).
        guest_cr4: d.vcpus[d.cur_vcpu].cr4_guest,
        xen_cr4_osxsave: cpu::read_cr4() & X86_CR4_OSXSAVE != 0,
        vcpu_id: 0,
        // Xen never emulates the hardware domain's TSC and leaves its kHz 0; other PV
        // domains get the host's frequency (`tsc_set_info`).
        tsc_khz: if d.hardware { 0 } else { (clock::tsc_hz() / 1000) as u32 },
        max_mfn: m2p::entries().saturating_sub(1),
    };
    let policies = POLICIES.call_once(|| [CpuPolicy::pv_domain(&host, false), CpuPolicy::pv_domain(&host, true)]);
    // A toolstack's XEN_DOMCTL_set_cpu_policy, else the PV domain policy.
    let policy = d.ctl.cpu_policy.as_deref().unwrap_or(&policies[usize::from(d.hardware)]);
    let [a, b, c, dx] = guest_cpuid(&host, policy, &ctx, leaf, subleaf);
    (a, b, c, dx)
}

/// A domain's CPU policy as it stands (XEN_DOMCTL_get/set_cpu_policy start from it).
pub fn domain_policy(d: &Domain) -> CpuPolicy {
    match d.ctl.cpu_policy.as_deref() {
        Some(p) => p.clone(),
        None => CpuPolicy::pv_domain(&host, d.hardware),
    }
}

/// Xen's system policies by `XEN_SYSCTL_cpu_policy_*` index: raw, host, PV maximum, PV
/// default; `None` for the HVM ones (xen-core has no HVM: Xen built without it answers
/// `-EOPNOTSUPP` for those).
pub fn system_policy(index: u32) -> Option<CpuPolicy> {
    let host_p = || CpuPolicy::host(&host);
    match index {
        0 => Some(CpuPolicy::raw(&host)),
        1 => Some(host_p()),
        2 => Some(CpuPolicy::pv_max(&host_p(), &host)),
        4 => {
            let h = host_p();
            let max = CpuPolicy::pv_max(&h, &host);
            Some(CpuPolicy::pv_default(&h, &max, &host))
        }
        _ => None,
    }
}

/// `set_for_domain` over this CPU.
pub fn set_domain_policy(p: CpuPolicy) -> Result<CpuPolicy, crate::cpuid_policy::PolicyError> {
    p.set_for_domain(&host)
}

/// The serialised MSRs of a policy (`x86_msr_copy_to_buffer`): MSR_INTEL_PLATFORM_INFO
/// (CPUID faulting: always for PV policies, the CPU's for raw and host) and
/// MSR_ARCH_CAPABILITIES (the CPU's when the policy shows it, else 0).
pub fn policy_msrs(p: &CpuPolicy, pv: bool) -> [(u32, u64); 2] {
    let faulting = pv || cpu::rdmsr_safe(msr_policy::nr::INTEL_PLATFORM_INFO).is_some_and(|v| v & (1 << 31) != 0);
    let arch_caps = if p.feat[0][3] & (1 << 29) != 0 { cpu::rdmsr_safe(msr_policy::nr::ARCH_CAPABILITIES).unwrap_or(0) } else { 0 };
    [(msr_policy::nr::INTEL_PLATFORM_INFO, if faulting { 1 << 31 } else { 0 }), (msr_policy::nr::ARCH_CAPABILITIES, arch_caps)]
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
    answer_cpuid(d, regs, true);
    regs.rip += 7;
    true
}
