//! Which MSRs a 64-bit PV guest may read and write, and what it sees: Xen 4.17's
//! `guest_rdmsr`/`guest_wrmsr` (`arch/x86/msr.c`) and the PV `read_msr`/`write_msr` of
//! `arch/x86/pv/emul-priv-op.c`, for an Intel host without a virtual PMU. Portable:
//! the hypervisor supplies the host values it may read and carries out the effects.

/// MSR numbers (Xen's names).
pub mod nr {
    pub const IA32_TSC: u32 = 0x10;
    pub const IA32_PLATFORM_ID: u32 = 0x17;
    pub const APIC_BASE: u32 = 0x1b;
    pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
    pub const SPEC_CTRL: u32 = 0x48;
    pub const PRED_CMD: u32 = 0x49;
    pub const IA32_UCODE_REV: u32 = 0x8b;
    pub const P6_PERFCTR0: u32 = 0xc1;
    pub const INTEL_PLATFORM_INFO: u32 = 0xce;
    pub const MPERF: u32 = 0xe7;
    pub const APERF: u32 = 0xe8;
    pub const ARCH_CAPABILITIES: u32 = 0x10a;
    pub const FLUSH_CMD: u32 = 0x10b;
    pub const INTEL_MISC_FEATURES_ENABLES: u32 = 0x140;
    pub const MCG_CAP: u32 = 0x179;
    pub const MCG_STATUS: u32 = 0x17a;
    pub const MCG_CTL: u32 = 0x17b;
    pub const P6_EVNTSEL0: u32 = 0x186;
    pub const IA32_PERF_STATUS: u32 = 0x198;
    pub const IA32_PERF_CTL: u32 = 0x199;
    pub const IA32_THERM_CONTROL: u32 = 0x19a;
    pub const IA32_THERM_STATUS: u32 = 0x19c;
    pub const IA32_MISC_ENABLE: u32 = 0x1a0;
    pub const IA32_ENERGY_PERF_BIAS: u32 = 0x1b0;
    pub const IA32_CR_PAT: u32 = 0x277;
    pub const MCX_CTL2_FIRST: u32 = 0x280;
    pub const MCX_CTL2_LAST: u32 = 0x29f;
    pub const CORE_PERF_FIXED_CTR0: u32 = 0x309;
    pub const CORE_PERF_FIXED_CTR2: u32 = 0x30b;
    pub const IA32_PERF_CAPABILITIES: u32 = 0x345;
    pub const CORE_PERF_FIXED_CTR_CTRL: u32 = 0x38d;
    pub const CORE_PERF_GLOBAL_OVF_CTRL: u32 = 0x390;
    pub const MCX_FIRST: u32 = 0x400;
    pub const MCX_LAST: u32 = 0x47f;
    pub const MCG_EXT_CTL: u32 = 0x4d0;
    pub const EFER: u32 = 0xc000_0080;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const SHADOW_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
}

/// Xen's PAT for PV guests (WB, WT, UC-, UC, WC, WP, UC, UC).
pub const XEN_MSR_PAT: u64 = 0x0000_0501_0007_0406;
/// `MSR_INTEL_PLATFORM_INFO`: CPUID faulting available (Xen always offers it to PV).
const PLATFORM_INFO_CPUID_FAULTING: u64 = 1 << 31;
const MISC_FEATURES_CPUID_FAULTING: u64 = 1;
/// Xen's vMCE: two banks; on Intel MCG_CAP also says SER_P, TES_P and CMCI_P.
const GUEST_MC_BANK_NUM: u64 = 2;
const INTEL_GUEST_MCG_CAP: u64 = (1 << 24) | (1 << 11) | (1 << 10) | GUEST_MC_BANK_NUM;
const AMD_HWCR: u32 = 0xc001_0015;
const AMD64_DE_CFG: u32 = 0xc001_1029;
/// `AMD64_DE_CFG_LFENCE_SERIALISE`, which Xen reports set.
const DE_CFG_LFENCE_SERIALISE: u64 = 1 << 1;

/// What the guest's vCPU holds for the MSRs it may write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuMsrs {
    pub misc_features_enables: u64,
    pub spec_ctrl: u64,
    pub tsc_aux: u64,
    pub mcg_status: u64,
    pub mcg_ctl: u64,
}

/// What the policy depends on besides the vCPU's own values.
#[derive(Clone, Copy, Debug)]
pub struct MsrCtx {
    /// The guest's CPUID shows IBRS/IBPB (SPEC_CTRL exists).
    pub has_spec_ctrl: bool,
    /// The guest's CPUID shows ARCH_CAPABILITIES; its value if so.
    pub arch_caps: Option<u64>,
    /// The guest's CPUID shows RDTSCP or RDPID.
    pub has_tsc_aux: bool,
    pub vcpu_id: u32,
    /// The CPU (and so the guest's CPUID) is Intel's; otherwise AMD's.
    pub intel: bool,
}

/// The answer to a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Value(u64),
    /// The guest gets #GP.
    Fault,
    /// A value only the hypervisor can read: the host's (FS/GS base, EFER, TSC,
    /// PLATFORM_ID, UCODE_REV, MISC_ENABLE), then `guest_view` applied.
    Host(u32),
    /// The inactive GS base the vCPU keeps.
    ShadowGs,
}

/// The effect of a write the policy accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Accepted, nothing happens (Xen's "ignored" writes).
    Ignore,
    /// Stored in the vCPU's copy.
    Stored,
    /// A base register the hypervisor loads (FS, GS, shadow GS), value canonical.
    Base(u32),
    Fault,
}

/// Xen's `guest_misc_enable`: the host's MISC_ENABLE without the PMU and MONITOR bits,
/// with BTS/PEBS unavailable and xTPR disabled.
pub fn guest_misc_enable(host: u64) -> u64 {
    const PERF_AVAIL: u64 = 1 << 7;
    const BTS_UNAVAIL: u64 = 1 << 11;
    const PEBS_UNAVAIL: u64 = 1 << 12;
    const MONITOR_ENABLE: u64 = 1 << 18;
    const XTPR_DISABLE: u64 = 1 << 23;
    (host & !(PERF_AVAIL | MONITOR_ENABLE)) | BTS_UNAVAIL | PEBS_UNAVAIL | XTPR_DISABLE
}

fn is_pmu(msr: u32) -> bool {
    use nr::*;
    matches!(msr,
        P6_PERFCTR0..=0xc8
        | P6_EVNTSEL0..=0x189
        | CORE_PERF_FIXED_CTR0..=CORE_PERF_FIXED_CTR2
        | CORE_PERF_FIXED_CTR_CTRL..=CORE_PERF_GLOBAL_OVF_CTRL)
}

fn is_mce(msr: u32) -> bool {
    use nr::*;
    matches!(msr, MCG_CAP..=MCG_CTL | MCX_CTL2_FIRST..=MCX_CTL2_LAST | MCX_FIRST..=MCX_LAST | MCG_EXT_CTL)
}

/// Xen's vMCE for a PV guest: MCi_CTL all ones, everything else zero (no error is ever
/// injected), MCG_CTL zero as MCG_CTL_P is not offered.
fn vmce_read(ctx: &MsrCtx, v: &VcpuMsrs, msr: u32) -> Read {
    use nr::*;
    match msr {
        MCG_CAP => Read::Value(if ctx.intel { INTEL_GUEST_MCG_CAP } else { GUEST_MC_BANK_NUM }),
        MCG_STATUS => Read::Value(v.mcg_status),
        MCX_FIRST..=MCX_LAST if (msr - MCX_FIRST).is_multiple_of(4) => Read::Value(!0),
        _ => Read::Value(0),
    }
}

pub fn read(ctx: &MsrCtx, v: &VcpuMsrs, msr: u32) -> Read {
    use nr::*;
    match msr {
        PRED_CMD | FLUSH_CMD => Read::Fault, // write-only
        IA32_FEATURE_CONTROL if ctx.intel => Read::Value(1), // locked, nothing enabled
        IA32_PLATFORM_ID | IA32_MISC_ENABLE if ctx.intel => Read::Host(msr),
        IA32_UCODE_REV => Read::Host(msr),
        SPEC_CTRL if ctx.has_spec_ctrl => Read::Value(v.spec_ctrl),
        INTEL_PLATFORM_INFO => Read::Value(PLATFORM_INFO_CPUID_FAULTING),
        ARCH_CAPABILITIES => ctx.arch_caps.map_or(Read::Fault, Read::Value),
        INTEL_MISC_FEATURES_ENABLES => Read::Value(v.misc_features_enables),
        m if is_mce(m) => vmce_read(ctx, v, m),
        IA32_PERF_STATUS | IA32_PERF_CTL | IA32_THERM_STATUS if ctx.intel => Read::Value(0),
        AMD_HWCR if !ctx.intel => Read::Value(0),
        AMD64_DE_CFG if !ctx.intel => Read::Value(DE_CFG_LFENCE_SERIALISE),
        TSC_AUX if ctx.has_tsc_aux => Read::Value(v.tsc_aux),
        APIC_BASE => Read::Value(0xfee0_0000 | (1 << 11) | if ctx.vcpu_id == 0 { 1 << 8 } else { 0 }),
        FS_BASE | GS_BASE | EFER | IA32_TSC => Read::Host(msr),
        SHADOW_GS_BASE => Read::ShadowGs,
        IA32_CR_PAT => Read::Value(XEN_MSR_PAT),
        IA32_PERF_CAPABILITIES => Read::Value(0),
        // No virtual PMU: the counters read as zero (Intel's; AMD's K7/F15h set likewise).
        m if is_pmu(m) && ctx.intel => Read::Value(0),
        0xc001_0000..=0xc001_0007 | 0xc001_0200..=0xc001_020b if !ctx.intel => Read::Value(0),
        _ => Read::Fault,
    }
}

fn canonical(va: u64) -> bool {
    va >> 47 == 0 || va >> 47 == 0x1ffff
}

/// `host` reads a host MSR the policy compares against (EFER, MISC_ENABLE).
pub fn write(ctx: &MsrCtx, v: &mut VcpuMsrs, msr: u32, val: u64, host: impl Fn(u32) -> u64) -> Write {
    use nr::*;
    match msr {
        // The SDM's "write 0, cpuid, read" microcode-revision sequence.
        IA32_UCODE_REV => Write::Ignore,
        SPEC_CTRL if ctx.has_spec_ctrl => {
            // IBRS, STIBP, SSBD only.
            if val & !0b111 != 0 {
                return Write::Fault;
            }
            v.spec_ctrl = val;
            Write::Stored
        }
        PRED_CMD if ctx.has_spec_ctrl => {
            if val & !1 != 0 {
                Write::Fault
            } else {
                Write::Ignore
            }
        }
        INTEL_MISC_FEATURES_ENABLES => {
            if val & !MISC_FEATURES_CPUID_FAULTING != 0 {
                return Write::Fault;
            }
            v.misc_features_enables = val;
            Write::Stored
        }
        TSC_AUX if ctx.has_tsc_aux => {
            if val >> 32 != 0 {
                return Write::Fault;
            }
            v.tsc_aux = val;
            Write::Stored
        }
        MCG_STATUS => {
            v.mcg_status = val;
            Write::Stored
        }
        m if is_mce(m) => Write::Ignore,
        FS_BASE | GS_BASE | SHADOW_GS_BASE => {
            if canonical(val) {
                Write::Base(msr)
            } else {
                Write::Fault
            }
        }
        // Writes that change nothing are accepted, others ignored with a warning in Xen.
        EFER => {
            if val == host(EFER) {
                Write::Ignore
            } else {
                Write::Fault
            }
        }
        IA32_CR_PAT => {
            if val == XEN_MSR_PAT {
                Write::Ignore
            } else {
                Write::Fault
            }
        }
        IA32_MISC_ENABLE | IA32_THERM_CONTROL | IA32_ENERGY_PERF_BIAS if ctx.intel => Write::Ignore,
        MPERF | APERF => Write::Ignore,
        m if is_pmu(m) && ctx.intel => Write::Ignore,
        0xc001_0000..=0xc001_0007 | 0xc001_0200..=0xc001_020b if !ctx.intel => Write::Ignore,
        _ => Write::Fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: MsrCtx = MsrCtx { has_spec_ctrl: true, arch_caps: None, has_tsc_aux: true, vcpu_id: 0, intel: true };

    #[test]
    fn reads() {
        let v = VcpuMsrs::default();
        assert_eq!(read(&CTX, &v, nr::IA32_UCODE_REV), Read::Host(nr::IA32_UCODE_REV));
        assert_eq!(read(&CTX, &v, nr::IA32_CR_PAT), Read::Value(XEN_MSR_PAT));
        assert_eq!(read(&CTX, &v, nr::INTEL_PLATFORM_INFO), Read::Value(1 << 31));
        assert_eq!(read(&CTX, &v, nr::ARCH_CAPABILITIES), Read::Fault);
        assert_eq!(read(&CTX, &v, nr::PRED_CMD), Read::Fault);
        assert_eq!(read(&CTX, &v, nr::MCG_CAP), Read::Value(INTEL_GUEST_MCG_CAP));
        assert_eq!(read(&CTX, &v, nr::MCX_FIRST), Read::Value(!0));
        assert_eq!(read(&CTX, &v, nr::MCX_FIRST + 1), Read::Value(0));
        let amd = MsrCtx { intel: false, ..CTX };
        assert_eq!(read(&amd, &v, nr::MCG_CAP), Read::Value(2));
        assert_eq!(read(&amd, &v, nr::IA32_MISC_ENABLE), Read::Fault);
        assert_eq!(read(&amd, &v, AMD64_DE_CFG), Read::Value(2));
        assert_eq!(read(&CTX, &v, 0xc1), Read::Value(0));
        assert_eq!(read(&CTX, &v, 0x1234_5678), Read::Fault);
        assert_eq!(read(&CTX, &v, nr::APIC_BASE), Read::Value(0xfee0_0900));
    }

    #[test]
    fn writes() {
        let mut v = VcpuMsrs::default();
        let host = |_| 0xd01;
        assert_eq!(write(&CTX, &mut v, nr::INTEL_MISC_FEATURES_ENABLES, 1, host), Write::Stored);
        assert_eq!(read(&CTX, &v, nr::INTEL_MISC_FEATURES_ENABLES), Read::Value(1));
        assert_eq!(write(&CTX, &mut v, nr::INTEL_MISC_FEATURES_ENABLES, 2, host), Write::Fault);
        assert_eq!(write(&CTX, &mut v, nr::EFER, 0xd01, host), Write::Ignore);
        assert_eq!(write(&CTX, &mut v, nr::EFER, 0x501, host), Write::Fault);
        assert_eq!(write(&CTX, &mut v, nr::FS_BASE, 1 << 60, host), Write::Fault);
        assert_eq!(write(&CTX, &mut v, nr::GS_BASE, 0xffff_8880_0000_0000, host), Write::Base(nr::GS_BASE));
        assert_eq!(write(&CTX, &mut v, nr::SPEC_CTRL, 8, host), Write::Fault);
        assert_eq!(write(&CTX, &mut v, nr::SPEC_CTRL, 1, host), Write::Stored);
        assert_eq!(write(&CTX, &mut v, 0x1234_5678, 0, host), Write::Fault);
        assert_eq!(guest_misc_enable(0x850089), (0x850089 & !(1 << 7) & !(1 << 18)) | (1 << 11) | (1 << 12) | (1 << 23));
    }
}
