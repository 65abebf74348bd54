//! `arch-x86/cpufeatureset.h`: Xen 4.17's featureset, every CPU feature Xen knows with
//! its word and bit (`word * 32 + bit`) and its policy annotation. The annotation is what
//! Xen's `gen-cpuid.py` turns into the guest masks: `A` all guests (PV too) by default,
//! `a` all guests when opted in, `S`/`s` HVM guests, `H`/`h` HVM HAP guests, `!` special
//! handling by Xen. `tests/layout.rs` checks every value against the C header and every
//! annotation against the header's text.
#![allow(non_upper_case_globals)]
// Values keep the header's `word*32+bit` spelling, `0 * 32 + n` and `w * 32 + 0` included.
#![allow(clippy::identity_op, clippy::erasing_op)]

/// One `XEN_CPUFEATURE(name, value) /*attrs description */` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// The name after `XEN_X86_FEATURE_` (digits-first names as in the header).
    pub name: &'static str,
    /// `word * 32 + bit`.
    pub value: u32,
    /// The annotation characters (empty: no guest may see it).
    pub attrs: &'static str,
}

impl Feature {
    pub const fn word(&self) -> usize {
        (self.value / 32) as usize
    }
    pub const fn mask(&self) -> u32 {
        1 << (self.value % 32)
    }
    /// In Xen's PV default featureset (`A`).
    pub fn pv_default(&self) -> bool {
        self.attrs.contains('A')
    }
    /// In Xen's PV maximum featureset (`A` or `a`).
    pub fn pv_max(&self) -> bool {
        self.attrs.contains(['A', 'a'])
    }
    /// Xen handles the bit specially (`!`).
    pub fn special(&self) -> bool {
        self.attrs.contains('!')
    }
}

/// Featureset words: where each lives (leaf, sub-leaf, register 0..=3 for eax..edx).
/// Words 16 and 17 are `MSR_ARCH_CAPS` (0x10a) bits, not CPUID.
pub const FEATURESET_1d: usize = 0;
pub const FEATURESET_1c: usize = 1;
pub const FEATURESET_e1d: usize = 2;
pub const FEATURESET_e1c: usize = 3;
pub const FEATURESET_Da1: usize = 4;
pub const FEATURESET_7b0: usize = 5;
pub const FEATURESET_7c0: usize = 6;
pub const FEATURESET_e7d: usize = 7;
pub const FEATURESET_e8b: usize = 8;
pub const FEATURESET_7d0: usize = 9;
pub const FEATURESET_7a1: usize = 10;
pub const FEATURESET_e21a: usize = 11;
pub const FEATURESET_7b1: usize = 12;
pub const FEATURESET_7d2: usize = 13;
pub const FEATURESET_7c1: usize = 14;
pub const FEATURESET_7d1: usize = 15;
pub const FEATURESET_m10Al: usize = 16;
pub const FEATURESET_m10Ah: usize = 17;
pub const FEATURESET_e21c: usize = 18;
/// Number of featureset words (`FSCAPINTS`).
pub const FSCAPINTS: usize = 19;

/// The CPUID (leaf, sub-leaf, register) of each featureset word; `None` for the MSR words.
pub const WORD_LOCATION: [Option<(u32, u32, usize)>; FSCAPINTS] = [
    Some((0x1, 0, 3)),
    Some((0x1, 0, 2)),
    Some((0x8000_0001, 0, 3)),
    Some((0x8000_0001, 0, 2)),
    Some((0xd, 1, 0)),
    Some((0x7, 0, 1)),
    Some((0x7, 0, 2)),
    Some((0x8000_0007, 0, 3)),
    Some((0x8000_0008, 0, 1)),
    Some((0x7, 0, 3)),
    Some((0x7, 1, 0)),
    Some((0x8000_0021, 0, 0)),
    Some((0x7, 1, 1)),
    Some((0x7, 2, 3)),
    Some((0x7, 1, 2)),
    Some((0x7, 1, 3)),
    None,
    None,
    Some((0x8000_0021, 0, 2)),
];

/// `XEN_X86_FEATURE_FPU`: Onboard FPU
pub const FPU: Feature = Feature { name: "FPU", value: 0 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_VME`: Virtual Mode Extensions
pub const VME: Feature = Feature { name: "VME", value: 0 * 32 + 1, attrs: "S" };
/// `XEN_X86_FEATURE_DE`: Debugging Extensions
pub const DE: Feature = Feature { name: "DE", value: 0 * 32 + 2, attrs: "A" };
/// `XEN_X86_FEATURE_PSE`: Page Size Extensions
pub const PSE: Feature = Feature { name: "PSE", value: 0 * 32 + 3, attrs: "S" };
/// `XEN_X86_FEATURE_TSC`: Time Stamp Counter
pub const TSC: Feature = Feature { name: "TSC", value: 0 * 32 + 4, attrs: "A" };
/// `XEN_X86_FEATURE_MSR`: Model-Specific Registers, RDMSR, WRMSR
pub const MSR: Feature = Feature { name: "MSR", value: 0 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_PAE`: Physical Address Extensions
pub const PAE: Feature = Feature { name: "PAE", value: 0 * 32 + 6, attrs: "A" };
/// `XEN_X86_FEATURE_MCE`: Machine Check Architecture
pub const MCE: Feature = Feature { name: "MCE", value: 0 * 32 + 7, attrs: "A" };
/// `XEN_X86_FEATURE_CX8`: CMPXCHG8 instruction
pub const CX8: Feature = Feature { name: "CX8", value: 0 * 32 + 8, attrs: "A" };
/// `XEN_X86_FEATURE_APIC`: Onboard APIC
pub const APIC: Feature = Feature { name: "APIC", value: 0 * 32 + 9, attrs: "!A" };
/// `XEN_X86_FEATURE_SEP`: SYSENTER/SYSEXIT
pub const SEP: Feature = Feature { name: "SEP", value: 0 * 32 + 11, attrs: "A" };
/// `XEN_X86_FEATURE_MTRR`: Memory Type Range Registers
pub const MTRR: Feature = Feature { name: "MTRR", value: 0 * 32 + 12, attrs: "S" };
/// `XEN_X86_FEATURE_PGE`: Page Global Enable
pub const PGE: Feature = Feature { name: "PGE", value: 0 * 32 + 13, attrs: "S" };
/// `XEN_X86_FEATURE_MCA`: Machine Check Architecture
pub const MCA: Feature = Feature { name: "MCA", value: 0 * 32 + 14, attrs: "A" };
/// `XEN_X86_FEATURE_CMOV`: CMOV instruction (FCMOVCC and FCOMI too if FPU present)
pub const CMOV: Feature = Feature { name: "CMOV", value: 0 * 32 + 15, attrs: "A" };
/// `XEN_X86_FEATURE_PAT`: Page Attribute Table
pub const PAT: Feature = Feature { name: "PAT", value: 0 * 32 + 16, attrs: "A" };
/// `XEN_X86_FEATURE_PSE36`: 36-bit PSEs
pub const PSE36: Feature = Feature { name: "PSE36", value: 0 * 32 + 17, attrs: "S" };
/// `XEN_X86_FEATURE_CLFLUSH`: CLFLUSH instruction
pub const CLFLUSH: Feature = Feature { name: "CLFLUSH", value: 0 * 32 + 19, attrs: "A" };
/// `XEN_X86_FEATURE_DS`: Debug Store
pub const DS: Feature = Feature { name: "DS", value: 0 * 32 + 21, attrs: "" };
/// `XEN_X86_FEATURE_ACPI`: ACPI via MSR
pub const ACPI: Feature = Feature { name: "ACPI", value: 0 * 32 + 22, attrs: "A" };
/// `XEN_X86_FEATURE_MMX`: Multimedia Extensions
pub const MMX: Feature = Feature { name: "MMX", value: 0 * 32 + 23, attrs: "A" };
/// `XEN_X86_FEATURE_FXSR`: FXSAVE and FXRSTOR instructions
pub const FXSR: Feature = Feature { name: "FXSR", value: 0 * 32 + 24, attrs: "A" };
/// `XEN_X86_FEATURE_SSE`: Streaming SIMD Extensions
pub const SSE: Feature = Feature { name: "SSE", value: 0 * 32 + 25, attrs: "A" };
/// `XEN_X86_FEATURE_SSE2`: Streaming SIMD Extensions-2
pub const SSE2: Feature = Feature { name: "SSE2", value: 0 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_SS`: CPU self snoop
pub const SS: Feature = Feature { name: "SS", value: 0 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_HTT`: Hyper-Threading Technology
pub const HTT: Feature = Feature { name: "HTT", value: 0 * 32 + 28, attrs: "!A" };
/// `XEN_X86_FEATURE_TM1`: Thermal Monitor 1
pub const TM1: Feature = Feature { name: "TM1", value: 0 * 32 + 29, attrs: "" };
/// `XEN_X86_FEATURE_PBE`: Pending Break Enable
pub const PBE: Feature = Feature { name: "PBE", value: 0 * 32 + 31, attrs: "" };
/// `XEN_X86_FEATURE_SSE3`: Streaming SIMD Extensions-3
pub const SSE3: Feature = Feature { name: "SSE3", value: 1 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_PCLMULQDQ`: Carry-less multiplication
pub const PCLMULQDQ: Feature = Feature { name: "PCLMULQDQ", value: 1 * 32 + 1, attrs: "A" };
/// `XEN_X86_FEATURE_DTES64`: 64-bit Debug Store
pub const DTES64: Feature = Feature { name: "DTES64", value: 1 * 32 + 2, attrs: "" };
/// `XEN_X86_FEATURE_MONITOR`: Monitor/Mwait support
pub const MONITOR: Feature = Feature { name: "MONITOR", value: 1 * 32 + 3, attrs: "" };
/// `XEN_X86_FEATURE_DSCPL`: CPL Qualified Debug Store
pub const DSCPL: Feature = Feature { name: "DSCPL", value: 1 * 32 + 4, attrs: "" };
/// `XEN_X86_FEATURE_VMX`: Virtual Machine Extensions
pub const VMX: Feature = Feature { name: "VMX", value: 1 * 32 + 5, attrs: "h" };
/// `XEN_X86_FEATURE_SMX`: Safer Mode Extensions
pub const SMX: Feature = Feature { name: "SMX", value: 1 * 32 + 6, attrs: "" };
/// `XEN_X86_FEATURE_EIST`: Enhanced SpeedStep
pub const EIST: Feature = Feature { name: "EIST", value: 1 * 32 + 7, attrs: "" };
/// `XEN_X86_FEATURE_TM2`: Thermal Monitor 2
pub const TM2: Feature = Feature { name: "TM2", value: 1 * 32 + 8, attrs: "" };
/// `XEN_X86_FEATURE_SSSE3`: Supplemental Streaming SIMD Extensions-3
pub const SSSE3: Feature = Feature { name: "SSSE3", value: 1 * 32 + 9, attrs: "A" };
/// `XEN_X86_FEATURE_FMA`: Fused Multiply Add
pub const FMA: Feature = Feature { name: "FMA", value: 1 * 32 + 12, attrs: "A" };
/// `XEN_X86_FEATURE_CX16`: CMPXCHG16B
pub const CX16: Feature = Feature { name: "CX16", value: 1 * 32 + 13, attrs: "A" };
/// `XEN_X86_FEATURE_XTPR`: Send Task Priority Messages
pub const XTPR: Feature = Feature { name: "XTPR", value: 1 * 32 + 14, attrs: "" };
/// `XEN_X86_FEATURE_PDCM`: Perf/Debug Capability MSR
pub const PDCM: Feature = Feature { name: "PDCM", value: 1 * 32 + 15, attrs: "" };
/// `XEN_X86_FEATURE_PCID`: Process Context ID
pub const PCID: Feature = Feature { name: "PCID", value: 1 * 32 + 17, attrs: "H" };
/// `XEN_X86_FEATURE_DCA`: Direct Cache Access
pub const DCA: Feature = Feature { name: "DCA", value: 1 * 32 + 18, attrs: "" };
/// `XEN_X86_FEATURE_SSE4_1`: Streaming SIMD Extensions 4.1
pub const SSE4_1: Feature = Feature { name: "SSE4_1", value: 1 * 32 + 19, attrs: "A" };
/// `XEN_X86_FEATURE_SSE4_2`: Streaming SIMD Extensions 4.2
pub const SSE4_2: Feature = Feature { name: "SSE4_2", value: 1 * 32 + 20, attrs: "A" };
/// `XEN_X86_FEATURE_X2APIC`: Extended xAPIC
pub const X2APIC: Feature = Feature { name: "X2APIC", value: 1 * 32 + 21, attrs: "!S" };
/// `XEN_X86_FEATURE_MOVBE`: movbe instruction
pub const MOVBE: Feature = Feature { name: "MOVBE", value: 1 * 32 + 22, attrs: "A" };
/// `XEN_X86_FEATURE_POPCNT`: POPCNT instruction
pub const POPCNT: Feature = Feature { name: "POPCNT", value: 1 * 32 + 23, attrs: "A" };
/// `XEN_X86_FEATURE_TSC_DEADLINE`: TSC Deadline Timer
pub const TSC_DEADLINE: Feature = Feature { name: "TSC_DEADLINE", value: 1 * 32 + 24, attrs: "S" };
/// `XEN_X86_FEATURE_AESNI`: AES instructions
pub const AESNI: Feature = Feature { name: "AESNI", value: 1 * 32 + 25, attrs: "A" };
/// `XEN_X86_FEATURE_XSAVE`: XSAVE/XRSTOR/XSETBV/XGETBV
pub const XSAVE: Feature = Feature { name: "XSAVE", value: 1 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_OSXSAVE`: OSXSAVE
pub const OSXSAVE: Feature = Feature { name: "OSXSAVE", value: 1 * 32 + 27, attrs: "!" };
/// `XEN_X86_FEATURE_AVX`: Advanced Vector Extensions
pub const AVX: Feature = Feature { name: "AVX", value: 1 * 32 + 28, attrs: "A" };
/// `XEN_X86_FEATURE_F16C`: Half-precision convert instruction
pub const F16C: Feature = Feature { name: "F16C", value: 1 * 32 + 29, attrs: "A" };
/// `XEN_X86_FEATURE_RDRAND`: Digital Random Number Generator
pub const RDRAND: Feature = Feature { name: "RDRAND", value: 1 * 32 + 30, attrs: "!A" };
/// `XEN_X86_FEATURE_HYPERVISOR`: Running under some hypervisor
pub const HYPERVISOR: Feature = Feature { name: "HYPERVISOR", value: 1 * 32 + 31, attrs: "!A" };
/// `XEN_X86_FEATURE_SYSCALL`: SYSCALL/SYSRET
pub const SYSCALL: Feature = Feature { name: "SYSCALL", value: 2 * 32 + 11, attrs: "A" };
/// `XEN_X86_FEATURE_NX`: Execute Disable
pub const NX: Feature = Feature { name: "NX", value: 2 * 32 + 20, attrs: "A" };
/// `XEN_X86_FEATURE_MMXEXT`: AMD MMX extensions
pub const MMXEXT: Feature = Feature { name: "MMXEXT", value: 2 * 32 + 22, attrs: "A" };
/// `XEN_X86_FEATURE_FFXSR`: FFXSR instruction optimizations
pub const FFXSR: Feature = Feature { name: "FFXSR", value: 2 * 32 + 25, attrs: "A" };
/// `XEN_X86_FEATURE_PAGE1GB`: 1Gb large page support
pub const PAGE1GB: Feature = Feature { name: "PAGE1GB", value: 2 * 32 + 26, attrs: "H" };
/// `XEN_X86_FEATURE_RDTSCP`: RDTSCP
pub const RDTSCP: Feature = Feature { name: "RDTSCP", value: 2 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_LM`: Long Mode (x86-64)
pub const LM: Feature = Feature { name: "LM", value: 2 * 32 + 29, attrs: "A" };
/// `XEN_X86_FEATURE_3DNOWEXT`: AMD 3DNow! extensions
pub const _3DNOWEXT: Feature = Feature { name: "3DNOWEXT", value: 2 * 32 + 30, attrs: "A" };
/// `XEN_X86_FEATURE_3DNOW`: 3DNow!
pub const _3DNOW: Feature = Feature { name: "3DNOW", value: 2 * 32 + 31, attrs: "A" };
/// `XEN_X86_FEATURE_LAHF_LM`: LAHF/SAHF in long mode
pub const LAHF_LM: Feature = Feature { name: "LAHF_LM", value: 3 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_CMP_LEGACY`: If yes HyperThreading not valid
pub const CMP_LEGACY: Feature = Feature { name: "CMP_LEGACY", value: 3 * 32 + 1, attrs: "!A" };
/// `XEN_X86_FEATURE_SVM`: Secure virtual machine
pub const SVM: Feature = Feature { name: "SVM", value: 3 * 32 + 2, attrs: "h" };
/// `XEN_X86_FEATURE_EXTAPIC`: Extended APIC space
pub const EXTAPIC: Feature = Feature { name: "EXTAPIC", value: 3 * 32 + 3, attrs: "" };
/// `XEN_X86_FEATURE_CR8_LEGACY`: CR8 in 32-bit mode
pub const CR8_LEGACY: Feature = Feature { name: "CR8_LEGACY", value: 3 * 32 + 4, attrs: "S" };
/// `XEN_X86_FEATURE_ABM`: Advanced bit manipulation
pub const ABM: Feature = Feature { name: "ABM", value: 3 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_SSE4A`: SSE-4A
pub const SSE4A: Feature = Feature { name: "SSE4A", value: 3 * 32 + 6, attrs: "A" };
/// `XEN_X86_FEATURE_MISALIGNSSE`: Misaligned SSE mode
pub const MISALIGNSSE: Feature = Feature { name: "MISALIGNSSE", value: 3 * 32 + 7, attrs: "A" };
/// `XEN_X86_FEATURE_3DNOWPREFETCH`: 3DNow prefetch instructions
pub const _3DNOWPREFETCH: Feature = Feature { name: "3DNOWPREFETCH", value: 3 * 32 + 8, attrs: "A" };
/// `XEN_X86_FEATURE_OSVW`: OS Visible Workaround
pub const OSVW: Feature = Feature { name: "OSVW", value: 3 * 32 + 9, attrs: "" };
/// `XEN_X86_FEATURE_IBS`: Instruction Based Sampling
pub const IBS: Feature = Feature { name: "IBS", value: 3 * 32 + 10, attrs: "" };
/// `XEN_X86_FEATURE_XOP`: extended AVX instructions
pub const XOP: Feature = Feature { name: "XOP", value: 3 * 32 + 11, attrs: "A" };
/// `XEN_X86_FEATURE_SKINIT`: SKINIT/STGI instructions
pub const SKINIT: Feature = Feature { name: "SKINIT", value: 3 * 32 + 12, attrs: "" };
/// `XEN_X86_FEATURE_WDT`: Watchdog timer
pub const WDT: Feature = Feature { name: "WDT", value: 3 * 32 + 13, attrs: "" };
/// `XEN_X86_FEATURE_LWP`: Light Weight Profiling
pub const LWP: Feature = Feature { name: "LWP", value: 3 * 32 + 15, attrs: "" };
/// `XEN_X86_FEATURE_FMA4`: 4 operands MAC instructions
pub const FMA4: Feature = Feature { name: "FMA4", value: 3 * 32 + 16, attrs: "A" };
/// `XEN_X86_FEATURE_NODEID_MSR`: NodeId MSR
pub const NODEID_MSR: Feature = Feature { name: "NODEID_MSR", value: 3 * 32 + 19, attrs: "" };
/// `XEN_X86_FEATURE_TBM`: trailing bit manipulations
pub const TBM: Feature = Feature { name: "TBM", value: 3 * 32 + 21, attrs: "A" };
/// `XEN_X86_FEATURE_TOPOEXT`: topology extensions CPUID leafs
pub const TOPOEXT: Feature = Feature { name: "TOPOEXT", value: 3 * 32 + 22, attrs: "" };
/// `XEN_X86_FEATURE_DBEXT`: data breakpoint extension
pub const DBEXT: Feature = Feature { name: "DBEXT", value: 3 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_MONITORX`: MONITOR extension (MONITORX/MWAITX)
pub const MONITORX: Feature = Feature { name: "MONITORX", value: 3 * 32 + 29, attrs: "" };
/// `XEN_X86_FEATURE_XSAVEOPT`: XSAVEOPT instruction
pub const XSAVEOPT: Feature = Feature { name: "XSAVEOPT", value: 4 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_XSAVEC`: XSAVEC/XRSTORC instructions
pub const XSAVEC: Feature = Feature { name: "XSAVEC", value: 4 * 32 + 1, attrs: "A" };
/// `XEN_X86_FEATURE_XGETBV1`: XGETBV with %ecx=1
pub const XGETBV1: Feature = Feature { name: "XGETBV1", value: 4 * 32 + 2, attrs: "A" };
/// `XEN_X86_FEATURE_XSAVES`: XSAVES/XRSTORS instructions
pub const XSAVES: Feature = Feature { name: "XSAVES", value: 4 * 32 + 3, attrs: "S" };
/// `XEN_X86_FEATURE_FSGSBASE`: {RD,WR}{FS,GS}BASE instructions
pub const FSGSBASE: Feature = Feature { name: "FSGSBASE", value: 5 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_TSC_ADJUST`: TSC_ADJUST MSR available
pub const TSC_ADJUST: Feature = Feature { name: "TSC_ADJUST", value: 5 * 32 + 1, attrs: "S" };
/// `XEN_X86_FEATURE_SGX`: Software Guard extensions
pub const SGX: Feature = Feature { name: "SGX", value: 5 * 32 + 2, attrs: "" };
/// `XEN_X86_FEATURE_BMI1`: 1st bit manipulation extensions
pub const BMI1: Feature = Feature { name: "BMI1", value: 5 * 32 + 3, attrs: "A" };
/// `XEN_X86_FEATURE_HLE`: Hardware Lock Elision
pub const HLE: Feature = Feature { name: "HLE", value: 5 * 32 + 4, attrs: "!a" };
/// `XEN_X86_FEATURE_AVX2`: AVX2 instructions
pub const AVX2: Feature = Feature { name: "AVX2", value: 5 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_FDP_EXCP_ONLY`: x87 FDP only updated on exception.
pub const FDP_EXCP_ONLY: Feature = Feature { name: "FDP_EXCP_ONLY", value: 5 * 32 + 6, attrs: "!" };
/// `XEN_X86_FEATURE_SMEP`: Supervisor Mode Execution Protection
pub const SMEP: Feature = Feature { name: "SMEP", value: 5 * 32 + 7, attrs: "S" };
/// `XEN_X86_FEATURE_BMI2`: 2nd bit manipulation extensions
pub const BMI2: Feature = Feature { name: "BMI2", value: 5 * 32 + 8, attrs: "A" };
/// `XEN_X86_FEATURE_ERMS`: Enhanced REP MOVSB/STOSB
pub const ERMS: Feature = Feature { name: "ERMS", value: 5 * 32 + 9, attrs: "A" };
/// `XEN_X86_FEATURE_INVPCID`: Invalidate Process Context ID
pub const INVPCID: Feature = Feature { name: "INVPCID", value: 5 * 32 + 10, attrs: "H" };
/// `XEN_X86_FEATURE_RTM`: Restricted Transactional Memory
pub const RTM: Feature = Feature { name: "RTM", value: 5 * 32 + 11, attrs: "!A" };
/// `XEN_X86_FEATURE_PQM`: Platform QoS Monitoring
pub const PQM: Feature = Feature { name: "PQM", value: 5 * 32 + 12, attrs: "" };
/// `XEN_X86_FEATURE_NO_FPU_SEL`: FPU CS/DS stored as zero
pub const NO_FPU_SEL: Feature = Feature { name: "NO_FPU_SEL", value: 5 * 32 + 13, attrs: "!" };
/// `XEN_X86_FEATURE_MPX`: Memory Protection Extensions
pub const MPX: Feature = Feature { name: "MPX", value: 5 * 32 + 14, attrs: "s" };
/// `XEN_X86_FEATURE_PQE`: Platform QoS Enforcement
pub const PQE: Feature = Feature { name: "PQE", value: 5 * 32 + 15, attrs: "" };
/// `XEN_X86_FEATURE_AVX512F`: AVX-512 Foundation Instructions
pub const AVX512F: Feature = Feature { name: "AVX512F", value: 5 * 32 + 16, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512DQ`: AVX-512 Doubleword & Quadword Instrs
pub const AVX512DQ: Feature = Feature { name: "AVX512DQ", value: 5 * 32 + 17, attrs: "A" };
/// `XEN_X86_FEATURE_RDSEED`: RDSEED instruction
pub const RDSEED: Feature = Feature { name: "RDSEED", value: 5 * 32 + 18, attrs: "A" };
/// `XEN_X86_FEATURE_ADX`: ADCX, ADOX instructions
pub const ADX: Feature = Feature { name: "ADX", value: 5 * 32 + 19, attrs: "A" };
/// `XEN_X86_FEATURE_SMAP`: Supervisor Mode Access Prevention
pub const SMAP: Feature = Feature { name: "SMAP", value: 5 * 32 + 20, attrs: "S" };
/// `XEN_X86_FEATURE_AVX512_IFMA`: AVX-512 Integer Fused Multiply Add
pub const AVX512_IFMA: Feature = Feature { name: "AVX512_IFMA", value: 5 * 32 + 21, attrs: "A" };
/// `XEN_X86_FEATURE_CLFLUSHOPT`: CLFLUSHOPT instruction
pub const CLFLUSHOPT: Feature = Feature { name: "CLFLUSHOPT", value: 5 * 32 + 23, attrs: "A" };
/// `XEN_X86_FEATURE_CLWB`: CLWB instruction
pub const CLWB: Feature = Feature { name: "CLWB", value: 5 * 32 + 24, attrs: "!A" };
/// `XEN_X86_FEATURE_PROC_TRACE`: Processor Trace
pub const PROC_TRACE: Feature = Feature { name: "PROC_TRACE", value: 5 * 32 + 25, attrs: "" };
/// `XEN_X86_FEATURE_AVX512PF`: AVX-512 Prefetch Instructions
pub const AVX512PF: Feature = Feature { name: "AVX512PF", value: 5 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512ER`: AVX-512 Exponent & Reciprocal Instrs
pub const AVX512ER: Feature = Feature { name: "AVX512ER", value: 5 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512CD`: AVX-512 Conflict Detection Instrs
pub const AVX512CD: Feature = Feature { name: "AVX512CD", value: 5 * 32 + 28, attrs: "A" };
/// `XEN_X86_FEATURE_SHA`: SHA1 & SHA256 instructions
pub const SHA: Feature = Feature { name: "SHA", value: 5 * 32 + 29, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512BW`: AVX-512 Byte and Word Instructions
pub const AVX512BW: Feature = Feature { name: "AVX512BW", value: 5 * 32 + 30, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512VL`: AVX-512 Vector Length Extensions
pub const AVX512VL: Feature = Feature { name: "AVX512VL", value: 5 * 32 + 31, attrs: "A" };
/// `XEN_X86_FEATURE_PREFETCHWT1`: PREFETCHWT1 instruction
pub const PREFETCHWT1: Feature = Feature { name: "PREFETCHWT1", value: 6 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_VBMI`: AVX-512 Vector Byte Manipulation Instrs
pub const AVX512_VBMI: Feature = Feature { name: "AVX512_VBMI", value: 6 * 32 + 1, attrs: "A" };
/// `XEN_X86_FEATURE_UMIP`: User Mode Instruction Prevention
pub const UMIP: Feature = Feature { name: "UMIP", value: 6 * 32 + 2, attrs: "S" };
/// `XEN_X86_FEATURE_PKU`: Protection Keys for Userspace
pub const PKU: Feature = Feature { name: "PKU", value: 6 * 32 + 3, attrs: "H" };
/// `XEN_X86_FEATURE_OSPKE`: OS Protection Keys Enable
pub const OSPKE: Feature = Feature { name: "OSPKE", value: 6 * 32 + 4, attrs: "!" };
/// `XEN_X86_FEATURE_AVX512_VBMI2`: Additional AVX-512 Vector Byte Manipulation Instrs
pub const AVX512_VBMI2: Feature = Feature { name: "AVX512_VBMI2", value: 6 * 32 + 6, attrs: "A" };
/// `XEN_X86_FEATURE_CET_SS`: CET - Shadow Stacks
pub const CET_SS: Feature = Feature { name: "CET_SS", value: 6 * 32 + 7, attrs: "" };
/// `XEN_X86_FEATURE_GFNI`: Galois Field Instrs
pub const GFNI: Feature = Feature { name: "GFNI", value: 6 * 32 + 8, attrs: "A" };
/// `XEN_X86_FEATURE_VAES`: Vector AES Instrs
pub const VAES: Feature = Feature { name: "VAES", value: 6 * 32 + 9, attrs: "A" };
/// `XEN_X86_FEATURE_VPCLMULQDQ`: Vector Carry-less Multiplication Instrs
pub const VPCLMULQDQ: Feature = Feature { name: "VPCLMULQDQ", value: 6 * 32 + 10, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_VNNI`: Vector Neural Network Instrs
pub const AVX512_VNNI: Feature = Feature { name: "AVX512_VNNI", value: 6 * 32 + 11, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_BITALG`: Support for VPOPCNT[B,W] and VPSHUFBITQMB
pub const AVX512_BITALG: Feature = Feature { name: "AVX512_BITALG", value: 6 * 32 + 12, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_VPOPCNTDQ`: POPCNT for vectors of DW/QW
pub const AVX512_VPOPCNTDQ: Feature = Feature { name: "AVX512_VPOPCNTDQ", value: 6 * 32 + 14, attrs: "A" };
/// `XEN_X86_FEATURE_RDPID`: RDPID instruction
pub const RDPID: Feature = Feature { name: "RDPID", value: 6 * 32 + 22, attrs: "A" };
/// `XEN_X86_FEATURE_CLDEMOTE`: CLDEMOTE instruction
pub const CLDEMOTE: Feature = Feature { name: "CLDEMOTE", value: 6 * 32 + 25, attrs: "A" };
/// `XEN_X86_FEATURE_MOVDIRI`: MOVDIRI instruction
pub const MOVDIRI: Feature = Feature { name: "MOVDIRI", value: 6 * 32 + 27, attrs: "a" };
/// `XEN_X86_FEATURE_MOVDIR64B`: MOVDIR64B instruction
pub const MOVDIR64B: Feature = Feature { name: "MOVDIR64B", value: 6 * 32 + 28, attrs: "a" };
/// `XEN_X86_FEATURE_ENQCMD`: ENQCMD{,S} instructions
pub const ENQCMD: Feature = Feature { name: "ENQCMD", value: 6 * 32 + 29, attrs: "" };
/// `XEN_X86_FEATURE_HW_PSTATE`: Hardware Pstates
pub const HW_PSTATE: Feature = Feature { name: "HW_PSTATE", value: 7 * 32 + 7, attrs: "" };
/// `XEN_X86_FEATURE_ITSC`: Invariant TSC
pub const ITSC: Feature = Feature { name: "ITSC", value: 7 * 32 + 8, attrs: "a" };
/// `XEN_X86_FEATURE_CPB`: Core Performance Boost (Turbo)
pub const CPB: Feature = Feature { name: "CPB", value: 7 * 32 + 9, attrs: "" };
/// `XEN_X86_FEATURE_EFRO`: APERF/MPERF Read Only interface
pub const EFRO: Feature = Feature { name: "EFRO", value: 7 * 32 + 10, attrs: "" };
/// `XEN_X86_FEATURE_CLZERO`: CLZERO instruction
pub const CLZERO: Feature = Feature { name: "CLZERO", value: 8 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_RSTR_FP_ERR_PTRS`: (F)X{SAVE,RSTOR} always saves/restores FPU Error pointers
pub const RSTR_FP_ERR_PTRS: Feature = Feature { name: "RSTR_FP_ERR_PTRS", value: 8 * 32 + 2, attrs: "A" };
/// `XEN_X86_FEATURE_WBNOINVD`: WBNOINVD instruction
pub const WBNOINVD: Feature = Feature { name: "WBNOINVD", value: 8 * 32 + 9, attrs: "" };
/// `XEN_X86_FEATURE_IBPB`: IBPB support only (no IBRS, used by AMD)
pub const IBPB: Feature = Feature { name: "IBPB", value: 8 * 32 + 12, attrs: "A" };
/// `XEN_X86_FEATURE_IBRS`: MSR_SPEC_CTRL.IBRS
pub const IBRS: Feature = Feature { name: "IBRS", value: 8 * 32 + 14, attrs: "S" };
/// `XEN_X86_FEATURE_AMD_STIBP`: MSR_SPEC_CTRL.STIBP
pub const AMD_STIBP: Feature = Feature { name: "AMD_STIBP", value: 8 * 32 + 15, attrs: "S" };
/// `XEN_X86_FEATURE_IBRS_ALWAYS`: IBRS preferred always on
pub const IBRS_ALWAYS: Feature = Feature { name: "IBRS_ALWAYS", value: 8 * 32 + 16, attrs: "S" };
/// `XEN_X86_FEATURE_STIBP_ALWAYS`: STIBP preferred always on
pub const STIBP_ALWAYS: Feature = Feature { name: "STIBP_ALWAYS", value: 8 * 32 + 17, attrs: "S" };
/// `XEN_X86_FEATURE_IBRS_FAST`: IBRS preferred over software options
pub const IBRS_FAST: Feature = Feature { name: "IBRS_FAST", value: 8 * 32 + 18, attrs: "S" };
/// `XEN_X86_FEATURE_IBRS_SAME_MODE`: IBRS provides same-mode protection
pub const IBRS_SAME_MODE: Feature = Feature { name: "IBRS_SAME_MODE", value: 8 * 32 + 19, attrs: "S" };
/// `XEN_X86_FEATURE_NO_LMSL`: EFER.LMSLE no longer supported.
pub const NO_LMSL: Feature = Feature { name: "NO_LMSL", value: 8 * 32 + 20, attrs: "S" };
/// `XEN_X86_FEATURE_AMD_PPIN`: Protected Processor Inventory Number
pub const AMD_PPIN: Feature = Feature { name: "AMD_PPIN", value: 8 * 32 + 23, attrs: "" };
/// `XEN_X86_FEATURE_AMD_SSBD`: MSR_SPEC_CTRL.SSBD available
pub const AMD_SSBD: Feature = Feature { name: "AMD_SSBD", value: 8 * 32 + 24, attrs: "S" };
/// `XEN_X86_FEATURE_VIRT_SSBD`: MSR_VIRT_SPEC_CTRL.SSBD
pub const VIRT_SSBD: Feature = Feature { name: "VIRT_SSBD", value: 8 * 32 + 25, attrs: "!" };
/// `XEN_X86_FEATURE_SSB_NO`: Hardware not vulnerable to SSB
pub const SSB_NO: Feature = Feature { name: "SSB_NO", value: 8 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_PSFD`: MSR_SPEC_CTRL.PSFD
pub const PSFD: Feature = Feature { name: "PSFD", value: 8 * 32 + 28, attrs: "S" };
/// `XEN_X86_FEATURE_BTC_NO`: Hardware not vulnerable to Branch Type Confusion
pub const BTC_NO: Feature = Feature { name: "BTC_NO", value: 8 * 32 + 29, attrs: "A" };
/// `XEN_X86_FEATURE_IBPB_RET`: IBPB clears RSB/RAS too.
pub const IBPB_RET: Feature = Feature { name: "IBPB_RET", value: 8 * 32 + 30, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_4VNNIW`: AVX512 Neural Network Instructions
pub const AVX512_4VNNIW: Feature = Feature { name: "AVX512_4VNNIW", value: 9 * 32 + 2, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_4FMAPS`: AVX512 Multiply Accumulation Single Precision
pub const AVX512_4FMAPS: Feature = Feature { name: "AVX512_4FMAPS", value: 9 * 32 + 3, attrs: "A" };
/// `XEN_X86_FEATURE_FSRM`: Fast Short REP MOVS
pub const FSRM: Feature = Feature { name: "FSRM", value: 9 * 32 + 4, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_VP2INTERSECT`: VP2INTERSECT{D,Q} insns
pub const AVX512_VP2INTERSECT: Feature = Feature { name: "AVX512_VP2INTERSECT", value: 9 * 32 + 8, attrs: "a" };
/// `XEN_X86_FEATURE_SRBDS_CTRL`: MSR_MCU_OPT_CTRL and RNGDS_MITG_DIS.
pub const SRBDS_CTRL: Feature = Feature { name: "SRBDS_CTRL", value: 9 * 32 + 9, attrs: "" };
/// `XEN_X86_FEATURE_MD_CLEAR`: VERW clears microarchitectural buffers
pub const MD_CLEAR: Feature = Feature { name: "MD_CLEAR", value: 9 * 32 + 10, attrs: "!A" };
/// `XEN_X86_FEATURE_RTM_ALWAYS_ABORT`: RTM disabled (but XBEGIN wont fault)
pub const RTM_ALWAYS_ABORT: Feature = Feature { name: "RTM_ALWAYS_ABORT", value: 9 * 32 + 11, attrs: "!" };
/// `XEN_X86_FEATURE_TSX_FORCE_ABORT`: MSR_TSX_FORCE_ABORT.RTM_ABORT
pub const TSX_FORCE_ABORT: Feature = Feature { name: "TSX_FORCE_ABORT", value: 9 * 32 + 13, attrs: "" };
/// `XEN_X86_FEATURE_SERIALIZE`: SERIALIZE insn
pub const SERIALIZE: Feature = Feature { name: "SERIALIZE", value: 9 * 32 + 14, attrs: "A" };
/// `XEN_X86_FEATURE_HYBRID`: Heterogeneous platform
pub const HYBRID: Feature = Feature { name: "HYBRID", value: 9 * 32 + 15, attrs: "" };
/// `XEN_X86_FEATURE_TSXLDTRK`: TSX load tracking suspend/resume insns
pub const TSXLDTRK: Feature = Feature { name: "TSXLDTRK", value: 9 * 32 + 16, attrs: "a" };
/// `XEN_X86_FEATURE_CET_IBT`: CET - Indirect Branch Tracking
pub const CET_IBT: Feature = Feature { name: "CET_IBT", value: 9 * 32 + 20, attrs: "" };
/// `XEN_X86_FEATURE_AVX512_FP16`: AVX512 FP16 instructions
pub const AVX512_FP16: Feature = Feature { name: "AVX512_FP16", value: 9 * 32 + 23, attrs: "" };
/// `XEN_X86_FEATURE_IBRSB`: IBRS and IBPB support (used by Intel)
pub const IBRSB: Feature = Feature { name: "IBRSB", value: 9 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_STIBP`: STIBP
pub const STIBP: Feature = Feature { name: "STIBP", value: 9 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_L1D_FLUSH`: MSR_FLUSH_CMD and L1D flush.
pub const L1D_FLUSH: Feature = Feature { name: "L1D_FLUSH", value: 9 * 32 + 28, attrs: "S" };
/// `XEN_X86_FEATURE_ARCH_CAPS`: IA32_ARCH_CAPABILITIES MSR
pub const ARCH_CAPS: Feature = Feature { name: "ARCH_CAPS", value: 9 * 32 + 29, attrs: "!A" };
/// `XEN_X86_FEATURE_CORE_CAPS`: IA32_CORE_CAPABILITIES MSR
pub const CORE_CAPS: Feature = Feature { name: "CORE_CAPS", value: 9 * 32 + 30, attrs: "" };
/// `XEN_X86_FEATURE_SSBD`: MSR_SPEC_CTRL.SSBD available
pub const SSBD: Feature = Feature { name: "SSBD", value: 9 * 32 + 31, attrs: "A" };
/// `XEN_X86_FEATURE_AVX_VNNI`: AVX-VNNI Instructions
pub const AVX_VNNI: Feature = Feature { name: "AVX_VNNI", value: 10 * 32 + 4, attrs: "A" };
/// `XEN_X86_FEATURE_AVX512_BF16`: AVX512 BFloat16 Instructions
pub const AVX512_BF16: Feature = Feature { name: "AVX512_BF16", value: 10 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_FZRM`: Fast Zero-length REP MOVSB
pub const FZRM: Feature = Feature { name: "FZRM", value: 10 * 32 + 10, attrs: "A" };
/// `XEN_X86_FEATURE_FSRS`: Fast Short REP STOSB
pub const FSRS: Feature = Feature { name: "FSRS", value: 10 * 32 + 11, attrs: "A" };
/// `XEN_X86_FEATURE_FSRCS`: Fast Short REP CMPSB/SCASB
pub const FSRCS: Feature = Feature { name: "FSRCS", value: 10 * 32 + 12, attrs: "A" };
/// `XEN_X86_FEATURE_LFENCE_DISPATCH`: LFENCE always serializing
pub const LFENCE_DISPATCH: Feature = Feature { name: "LFENCE_DISPATCH", value: 11 * 32 + 2, attrs: "A" };
/// `XEN_X86_FEATURE_VERW_CLEAR`: VERW clears microarchitectural buffers
pub const VERW_CLEAR: Feature = Feature { name: "VERW_CLEAR", value: 11 * 32 + 5, attrs: "!A" };
/// `XEN_X86_FEATURE_NSCB`: Null Selector Clears Base (and limit too)
pub const NSCB: Feature = Feature { name: "NSCB", value: 11 * 32 + 6, attrs: "A" };
/// `XEN_X86_FEATURE_AUTO_IBRS`: Automatic IBRS
pub const AUTO_IBRS: Feature = Feature { name: "AUTO_IBRS", value: 11 * 32 + 8, attrs: "" };
/// `XEN_X86_FEATURE_SBPB`: Selective Branch Predictor Barrier
pub const SBPB: Feature = Feature { name: "SBPB", value: 11 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_IBPB_BRTYPE`: IBPB flushes Branch Type predictions too
pub const IBPB_BRTYPE: Feature = Feature { name: "IBPB_BRTYPE", value: 11 * 32 + 28, attrs: "A" };
/// `XEN_X86_FEATURE_SRSO_NO`: Hardware not vulnerable to Speculative Return Stack Overflow
pub const SRSO_NO: Feature = Feature { name: "SRSO_NO", value: 11 * 32 + 29, attrs: "A" };
/// `XEN_X86_FEATURE_SRSO_US_NO`: Hardware not vulnerable to SRSO across the User/Supervisor boundary
pub const SRSO_US_NO: Feature = Feature { name: "SRSO_US_NO", value: 11 * 32 + 30, attrs: "A!" };
/// `XEN_X86_FEATURE_SRSO_MSR_FIX`: MSR_BP_CFG.BP_SPEC_REDUCE available
pub const SRSO_MSR_FIX: Feature = Feature { name: "SRSO_MSR_FIX", value: 11 * 32 + 31, attrs: "" };
/// `XEN_X86_FEATURE_INTEL_PPIN`: Protected Processor Inventory Number
pub const INTEL_PPIN: Feature = Feature { name: "INTEL_PPIN", value: 12 * 32 + 0, attrs: "" };
/// `XEN_X86_FEATURE_INTEL_PSFD`: MSR_SPEC_CTRL.PSFD
pub const INTEL_PSFD: Feature = Feature { name: "INTEL_PSFD", value: 13 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_IPRED_CTRL`: MSR_SPEC_CTRL.IPRED_DIS_*
pub const IPRED_CTRL: Feature = Feature { name: "IPRED_CTRL", value: 13 * 32 + 1, attrs: "S" };
/// `XEN_X86_FEATURE_RRSBA_CTRL`: MSR_SPEC_CTRL.RRSBA_DIS_*
pub const RRSBA_CTRL: Feature = Feature { name: "RRSBA_CTRL", value: 13 * 32 + 2, attrs: "S" };
/// `XEN_X86_FEATURE_BHI_CTRL`: MSR_SPEC_CTRL.BHI_DIS_S
pub const BHI_CTRL: Feature = Feature { name: "BHI_CTRL", value: 13 * 32 + 4, attrs: "S" };
/// `XEN_X86_FEATURE_MCDT_NO`: MCDT_NO
pub const MCDT_NO: Feature = Feature { name: "MCDT_NO", value: 13 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_CET_SSS`: CET Supervisor Shadow Stacks safe to use
pub const CET_SSS: Feature = Feature { name: "CET_SSS", value: 15 * 32 + 18, attrs: "" };
/// `XEN_X86_FEATURE_RDCL_NO`: No Rogue Data Cache Load (Meltdown)
pub const RDCL_NO: Feature = Feature { name: "RDCL_NO", value: 16 * 32 + 0, attrs: "A" };
/// `XEN_X86_FEATURE_EIBRS`: Enhanced IBRS
pub const EIBRS: Feature = Feature { name: "EIBRS", value: 16 * 32 + 1, attrs: "A" };
/// `XEN_X86_FEATURE_RSBA`: RSB Alternative (Retpoline not safe)
pub const RSBA: Feature = Feature { name: "RSBA", value: 16 * 32 + 2, attrs: "!" };
/// `XEN_X86_FEATURE_SKIP_L1DFL`: Don't need to flush L1D on VMEntry
pub const SKIP_L1DFL: Feature = Feature { name: "SKIP_L1DFL", value: 16 * 32 + 3, attrs: "" };
/// `XEN_X86_FEATURE_INTEL_SSB_NO`: No Speculative Store Bypass
pub const INTEL_SSB_NO: Feature = Feature { name: "INTEL_SSB_NO", value: 16 * 32 + 4, attrs: "A" };
/// `XEN_X86_FEATURE_MDS_NO`: No Microarchitectural Data Sampling
pub const MDS_NO: Feature = Feature { name: "MDS_NO", value: 16 * 32 + 5, attrs: "A" };
/// `XEN_X86_FEATURE_IF_PSCHANGE_MC_NO`: No Instruction fetch #MC
pub const IF_PSCHANGE_MC_NO: Feature = Feature { name: "IF_PSCHANGE_MC_NO", value: 16 * 32 + 6, attrs: "A" };
/// `XEN_X86_FEATURE_TSX_CTRL`: MSR_TSX_CTRL
pub const TSX_CTRL: Feature = Feature { name: "TSX_CTRL", value: 16 * 32 + 7, attrs: "" };
/// `XEN_X86_FEATURE_TAA_NO`: No TSX Async Abort
pub const TAA_NO: Feature = Feature { name: "TAA_NO", value: 16 * 32 + 8, attrs: "A" };
/// `XEN_X86_FEATURE_MCU_CTRL`: MSR_MCU_CTRL
pub const MCU_CTRL: Feature = Feature { name: "MCU_CTRL", value: 16 * 32 + 9, attrs: "" };
/// `XEN_X86_FEATURE_MISC_PKG_CTRL`: MSR_MISC_PKG_CTRL
pub const MISC_PKG_CTRL: Feature = Feature { name: "MISC_PKG_CTRL", value: 16 * 32 + 10, attrs: "" };
/// `XEN_X86_FEATURE_ENERGY_FILTERING`: MSR_MISC_PKG_CTRL.ENERGY_FILTERING
pub const ENERGY_FILTERING: Feature = Feature { name: "ENERGY_FILTERING", value: 16 * 32 + 11, attrs: "" };
/// `XEN_X86_FEATURE_DOITM`: Data Operand Invariant Timing Mode
pub const DOITM: Feature = Feature { name: "DOITM", value: 16 * 32 + 12, attrs: "" };
/// `XEN_X86_FEATURE_SBDR_SSDP_NO`: No Shared Buffer Data Read or Sideband Stale Data Propagation
pub const SBDR_SSDP_NO: Feature = Feature { name: "SBDR_SSDP_NO", value: 16 * 32 + 13, attrs: "A" };
/// `XEN_X86_FEATURE_FBSDP_NO`: No Fill Buffer Stale Data Propagation
pub const FBSDP_NO: Feature = Feature { name: "FBSDP_NO", value: 16 * 32 + 14, attrs: "A" };
/// `XEN_X86_FEATURE_PSDP_NO`: No Primary Stale Data Propagation
pub const PSDP_NO: Feature = Feature { name: "PSDP_NO", value: 16 * 32 + 15, attrs: "A" };
/// `XEN_X86_FEATURE_FB_CLEAR`: Fill Buffers cleared by VERW
pub const FB_CLEAR: Feature = Feature { name: "FB_CLEAR", value: 16 * 32 + 17, attrs: "!A" };
/// `XEN_X86_FEATURE_FB_CLEAR_CTRL`: MSR_OPT_CPU_CTRL.FB_CLEAR_DIS
pub const FB_CLEAR_CTRL: Feature = Feature { name: "FB_CLEAR_CTRL", value: 16 * 32 + 18, attrs: "" };
/// `XEN_X86_FEATURE_RRSBA`: Restricted RSB Alternative
pub const RRSBA: Feature = Feature { name: "RRSBA", value: 16 * 32 + 19, attrs: "!" };
/// `XEN_X86_FEATURE_BHI_NO`: No Branch History Injection
pub const BHI_NO: Feature = Feature { name: "BHI_NO", value: 16 * 32 + 20, attrs: "A" };
/// `XEN_X86_FEATURE_XAPIC_STATUS`: MSR_XAPIC_DISABLE_STATUS
pub const XAPIC_STATUS: Feature = Feature { name: "XAPIC_STATUS", value: 16 * 32 + 21, attrs: "" };
/// `XEN_X86_FEATURE_OVRCLK_STATUS`: MSR_OVERCLOCKING_STATUS
pub const OVRCLK_STATUS: Feature = Feature { name: "OVRCLK_STATUS", value: 16 * 32 + 23, attrs: "" };
/// `XEN_X86_FEATURE_PBRSB_NO`: No Post-Barrier RSB predictions
pub const PBRSB_NO: Feature = Feature { name: "PBRSB_NO", value: 16 * 32 + 24, attrs: "A" };
/// `XEN_X86_FEATURE_GDS_CTRL`: MCU_OPT_CTRL.GDS_MIT_{DIS,LOCK}
pub const GDS_CTRL: Feature = Feature { name: "GDS_CTRL", value: 16 * 32 + 25, attrs: "" };
/// `XEN_X86_FEATURE_GDS_NO`: No Gather Data Sampling
pub const GDS_NO: Feature = Feature { name: "GDS_NO", value: 16 * 32 + 26, attrs: "A" };
/// `XEN_X86_FEATURE_RFDS_NO`: No Register File Data Sampling
pub const RFDS_NO: Feature = Feature { name: "RFDS_NO", value: 16 * 32 + 27, attrs: "A" };
/// `XEN_X86_FEATURE_RFDS_CLEAR`: Register File(s) cleared by VERW
pub const RFDS_CLEAR: Feature = Feature { name: "RFDS_CLEAR", value: 16 * 32 + 28, attrs: "!A" };
/// `XEN_X86_FEATURE_ITS_NO`: No Indirect Target Selection
pub const ITS_NO: Feature = Feature { name: "ITS_NO", value: 16 * 32 + 62, attrs: "!A" };
/// `XEN_X86_FEATURE_TSA_SQ_NO`: No Store Queue Transitive Scheduler Attacks
pub const TSA_SQ_NO: Feature = Feature { name: "TSA_SQ_NO", value: 18 * 32 + 1, attrs: "A" };
/// `XEN_X86_FEATURE_TSA_L1_NO`: No L1D Transitive Scheduler Attacks
pub const TSA_L1_NO: Feature = Feature { name: "TSA_L1_NO", value: 18 * 32 + 2, attrs: "A" };

/// Every feature of the header, in its order.
pub const FEATURES: &[Feature] = &[
    FPU,
    VME,
    DE,
    PSE,
    TSC,
    MSR,
    PAE,
    MCE,
    CX8,
    APIC,
    SEP,
    MTRR,
    PGE,
    MCA,
    CMOV,
    PAT,
    PSE36,
    CLFLUSH,
    DS,
    ACPI,
    MMX,
    FXSR,
    SSE,
    SSE2,
    SS,
    HTT,
    TM1,
    PBE,
    SSE3,
    PCLMULQDQ,
    DTES64,
    MONITOR,
    DSCPL,
    VMX,
    SMX,
    EIST,
    TM2,
    SSSE3,
    FMA,
    CX16,
    XTPR,
    PDCM,
    PCID,
    DCA,
    SSE4_1,
    SSE4_2,
    X2APIC,
    MOVBE,
    POPCNT,
    TSC_DEADLINE,
    AESNI,
    XSAVE,
    OSXSAVE,
    AVX,
    F16C,
    RDRAND,
    HYPERVISOR,
    SYSCALL,
    NX,
    MMXEXT,
    FFXSR,
    PAGE1GB,
    RDTSCP,
    LM,
    _3DNOWEXT,
    _3DNOW,
    LAHF_LM,
    CMP_LEGACY,
    SVM,
    EXTAPIC,
    CR8_LEGACY,
    ABM,
    SSE4A,
    MISALIGNSSE,
    _3DNOWPREFETCH,
    OSVW,
    IBS,
    XOP,
    SKINIT,
    WDT,
    LWP,
    FMA4,
    NODEID_MSR,
    TBM,
    TOPOEXT,
    DBEXT,
    MONITORX,
    XSAVEOPT,
    XSAVEC,
    XGETBV1,
    XSAVES,
    FSGSBASE,
    TSC_ADJUST,
    SGX,
    BMI1,
    HLE,
    AVX2,
    FDP_EXCP_ONLY,
    SMEP,
    BMI2,
    ERMS,
    INVPCID,
    RTM,
    PQM,
    NO_FPU_SEL,
    MPX,
    PQE,
    AVX512F,
    AVX512DQ,
    RDSEED,
    ADX,
    SMAP,
    AVX512_IFMA,
    CLFLUSHOPT,
    CLWB,
    PROC_TRACE,
    AVX512PF,
    AVX512ER,
    AVX512CD,
    SHA,
    AVX512BW,
    AVX512VL,
    PREFETCHWT1,
    AVX512_VBMI,
    UMIP,
    PKU,
    OSPKE,
    AVX512_VBMI2,
    CET_SS,
    GFNI,
    VAES,
    VPCLMULQDQ,
    AVX512_VNNI,
    AVX512_BITALG,
    AVX512_VPOPCNTDQ,
    RDPID,
    CLDEMOTE,
    MOVDIRI,
    MOVDIR64B,
    ENQCMD,
    HW_PSTATE,
    ITSC,
    CPB,
    EFRO,
    CLZERO,
    RSTR_FP_ERR_PTRS,
    WBNOINVD,
    IBPB,
    IBRS,
    AMD_STIBP,
    IBRS_ALWAYS,
    STIBP_ALWAYS,
    IBRS_FAST,
    IBRS_SAME_MODE,
    NO_LMSL,
    AMD_PPIN,
    AMD_SSBD,
    VIRT_SSBD,
    SSB_NO,
    PSFD,
    BTC_NO,
    IBPB_RET,
    AVX512_4VNNIW,
    AVX512_4FMAPS,
    FSRM,
    AVX512_VP2INTERSECT,
    SRBDS_CTRL,
    MD_CLEAR,
    RTM_ALWAYS_ABORT,
    TSX_FORCE_ABORT,
    SERIALIZE,
    HYBRID,
    TSXLDTRK,
    CET_IBT,
    AVX512_FP16,
    IBRSB,
    STIBP,
    L1D_FLUSH,
    ARCH_CAPS,
    CORE_CAPS,
    SSBD,
    AVX_VNNI,
    AVX512_BF16,
    FZRM,
    FSRS,
    FSRCS,
    LFENCE_DISPATCH,
    VERW_CLEAR,
    NSCB,
    AUTO_IBRS,
    SBPB,
    IBPB_BRTYPE,
    SRSO_NO,
    SRSO_US_NO,
    SRSO_MSR_FIX,
    INTEL_PPIN,
    INTEL_PSFD,
    IPRED_CTRL,
    RRSBA_CTRL,
    BHI_CTRL,
    MCDT_NO,
    CET_SSS,
    RDCL_NO,
    EIBRS,
    RSBA,
    SKIP_L1DFL,
    INTEL_SSB_NO,
    MDS_NO,
    IF_PSCHANGE_MC_NO,
    TSX_CTRL,
    TAA_NO,
    MCU_CTRL,
    MISC_PKG_CTRL,
    ENERGY_FILTERING,
    DOITM,
    SBDR_SSDP_NO,
    FBSDP_NO,
    PSDP_NO,
    FB_CLEAR,
    FB_CLEAR_CTRL,
    RRSBA,
    BHI_NO,
    XAPIC_STATUS,
    OVRCLK_STATUS,
    PBRSB_NO,
    GDS_CTRL,
    GDS_NO,
    RFDS_NO,
    RFDS_CLEAR,
    ITS_NO,
    TSA_SQ_NO,
    TSA_L1_NO,
];
