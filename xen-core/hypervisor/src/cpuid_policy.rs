//! The CPUID a 64-bit PV guest sees, derived from the host's as Xen 4.17 derives it
//! (`xen/arch/x86/cpu-policy.c`, `cpuid.c`, `lib/x86/cpuid.c`, `traps.c`
//! `cpuid_hypervisor_leaves`): the raw policy read from the CPU, the host policy (leaf
//! counts clamped to what Xen keeps), the PV maximum and default policies (the host's
//! features masked by `cpufeatureset.h`'s annotations, the special bits, the dependency
//! closure of `gen-cpuid.py`), the domain's policy (`recalculate_cpuid_policy`, ITSC for
//! the initial domain), and at each CPUID `guest_cpuid`'s dynamic adjustments (OSXSAVE,
//! OSPKE, the hardware domain kernel's MTRR/EIST leaks, XSAVE sizes for the current XCR0).

use xen_abi::cpufeatureset::{self as f, Feature, FSCAPINTS, WORD_LOCATION};

/// A CPUID answer: eax, ebx, ecx, edx.
pub type Leaf = [u32; 4];

/// What Xen's `guest_cpuid` looks at besides the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestCpuidCtx {
    /// The hardware domain (Xen's initial domain): its kernel gets the MTRR and EIST
    /// leaks, and its TSC is never emulated.
    pub hardware_domain: bool,
    /// The vCPU is in guest kernel mode.
    pub kernel_mode: bool,
    /// The CPUID came through the forced-emulation prefix (a #UD); false for a faulted
    /// native CPUID (#GP, CPUID faulting).
    pub forced: bool,
    /// The guest's virtual CR4 (OSXSAVE and PKE are reflected in leaves 1 and 7).
    pub guest_cr4: u64,
    /// The hypervisor's own CR4.OSXSAVE: Xen leaks it into a PV kernel's emulated CPUID.
    pub xen_cr4_osxsave: bool,
    /// vCPU number.
    pub vcpu_id: u32,
    /// The domain's TSC frequency in kHz as Xen records it (0 for the hardware domain,
    /// the host's for other PV domains), in leaf 0x40000003.
    pub tsc_khz: u32,
    /// The highest machine frame number the hypervisor may hand out (leaf 0x40000005).
    pub max_mfn: u64,
}

pub const X86_CR4_OSXSAVE: u64 = 1 << 18;
pub const X86_CR4_PKE: u64 = 1 << 22;

/// Xen's leaf counts (`CPUID_GUEST_NR_*`).
const NR_BASIC: usize = 0xd + 1;
const NR_CACHE: usize = 5 + 1;
const NR_FEAT: usize = 2 + 1;
const NR_TOPO: usize = 1 + 1;
const NR_XSTATE: usize = 62 + 1;
const NR_EXTD_INTEL: usize = 0x8 + 1;
const NR_EXTD_AMD: usize = 0x21 + 1;
const NR_EXTD: usize = NR_EXTD_AMD;

/// XEN_CPUID_MAX_NUM_LEAVES: Xen's leaves 0x40000000..=0x40000005.
const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;
const XEN_MAJOR: u32 = 4;
const XEN_MINOR: u32 = 17;

const XSTATE_FP_SSE: u64 = 0b11;
const XSTATE_YMM: u64 = 1 << 2;
const XSTATE_BNDREGS: u64 = 1 << 3;
const XSTATE_BNDCSR: u64 = 1 << 4;
const XSTATE_OPMASK: u64 = 1 << 5;
const XSTATE_ZMM: u64 = 1 << 6;
const XSTATE_HI_ZMM: u64 = 1 << 7;
const XSTATE_PKRU: u64 = 1 << 9;
const XSTATE_AREA_MIN_SIZE: u32 = 512 + 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
    Hygon,
    Other,
}

fn vendor_of(l0: Leaf) -> Vendor {
    match (l0[1], l0[3], l0[2]) {
        (0x756e_6547, 0x4965_6e69, 0x6c65_746e) => Vendor::Intel, // "GenuineIntel"
        (0x6874_7541, 0x6974_6e65, 0x444d_4163) => Vendor::Amd,   // "AuthenticAMD"
        (0x6f67_7948, 0x6e65_476e, 0x656e_6975) => Vendor::Hygon, // "HygonGenuine"
        _ => Vendor::Other,
    }
}

/// Xen's `struct cpu_policy`, CPUID part, as raw leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuPolicy {
    pub basic: [Leaf; NR_BASIC],
    pub cache: [Leaf; NR_CACHE],
    pub feat: [Leaf; NR_FEAT],
    pub topo: [Leaf; NR_TOPO],
    pub xstate: [Leaf; NR_XSTATE],
    pub extd: [Leaf; NR_EXTD],
    pub vendor: Vendor,
    /// The host's features as Xen sees them (`boot_cpu_data.x86_capability`), which
    /// `guest_cpuid`'s leaks and Xen's time leaf consult.
    pub host_fs: Featureset,
}

/// A featureset: `FSCAPINTS` words indexed by [`Feature::value`].
pub type Featureset = [u32; FSCAPINTS];

fn has(fs: &Featureset, feat: Feature) -> bool {
    fs[feat.word()] & feat.mask() != 0
}
fn set(fs: &mut Featureset, feat: Feature) {
    fs[feat.word()] |= feat.mask();
}
fn clear(fs: &mut Featureset, feat: Feature) {
    fs[feat.word()] &= !feat.mask();
}

/// `gen-cpuid.py`'s dependency table: disabling a key disables everything listed (and
/// what depends on those in turn).
const DEPS: &[(Feature, &[Feature])] = &[
    (f::FPU, &[f::MMX, f::RSTR_FP_ERR_PTRS]),
    (f::PSE, &[f::PSE36]),
    (f::PAE, &[f::LM, f::NX]),
    (f::TSC, &[f::TSC_DEADLINE, f::RDTSCP, f::TSC_ADJUST, f::ITSC]),
    (f::APIC, &[f::X2APIC, f::TSC_DEADLINE, f::EXTAPIC]),
    (f::MMX, &[f::MMXEXT, f::_3DNOW]),
    (f::FXSR, &[f::FFXSR, f::SSE]),
    (f::SSE, &[f::SSE2, f::MISALIGNSSE]),
    (f::SSE2, &[f::SSE3, f::LM, f::AESNI, f::PCLMULQDQ, f::SHA, f::GFNI]),
    (f::SSE3, &[f::SSSE3, f::SSE4A]),
    (f::SSSE3, &[f::SSE4_1]),
    (f::SSE4_1, &[f::SSE4_2]),
    (f::XSAVE, &[f::XSAVEOPT, f::XSAVEC, f::XGETBV1, f::XSAVES, f::AVX, f::MPX, f::PKU, f::LWP]),
    (f::AVX, &[f::FMA, f::FMA4, f::F16C, f::AVX2, f::XOP]),
    (f::NX, &[f::SMAP]),
    (f::LM, &[f::CX16, f::PCID, f::LAHF_LM, f::PAGE1GB, f::PKU, f::NO_LMSL]),
    (f::_3DNOW, &[f::_3DNOWEXT]),
    (f::AVX2, &[f::AVX512F, f::VAES, f::VPCLMULQDQ, f::AVX_VNNI]),
    (
        f::AVX512F,
        &[
            f::AVX512DQ,
            f::AVX512_IFMA,
            f::AVX512PF,
            f::AVX512ER,
            f::AVX512CD,
            f::AVX512BW,
            f::AVX512VL,
            f::AVX512_4VNNIW,
            f::AVX512_4FMAPS,
            f::AVX512_VNNI,
            f::AVX512_VPOPCNTDQ,
            f::AVX512_VP2INTERSECT,
        ],
    ),
    (f::AVX512BW, &[f::AVX512_VBMI, f::AVX512_VBMI2, f::AVX512_BITALG, f::AVX512_BF16, f::AVX512_FP16]),
    (f::PCLMULQDQ, &[f::VPCLMULQDQ]),
    (f::AESNI, &[f::VAES]),
    (f::IBRSB, &[f::STIBP, f::SSBD, f::INTEL_PSFD, f::EIBRS, f::IPRED_CTRL, f::RRSBA_CTRL, f::BHI_CTRL]),
    (f::IBRS, &[f::AMD_STIBP, f::AMD_SSBD, f::PSFD, f::IBRS_ALWAYS, f::IBRS_FAST, f::IBRS_SAME_MODE]),
    (f::IBPB, &[f::IBPB_RET, f::SBPB, f::IBPB_BRTYPE]),
    (f::AMD_STIBP, &[f::STIBP_ALWAYS]),
    (f::RTM, &[f::TSXLDTRK]),
    (f::EIBRS, &[f::RRSBA]),
];

/// `known_features` clamp and the dependency closure (`sanitise_featureset`). ARCH_CAPS
/// disables every MSR_ARCH_CAPS bit (words 16 and 17).
pub fn sanitise_featureset(fs: &mut Featureset) {
    let mut known = [0u32; FSCAPINTS];
    for feat in f::FEATURES {
        set(&mut known, *feat);
    }
    for (w, k) in fs.iter_mut().zip(known) {
        *w &= k;
    }
    loop {
        let before = *fs;
        for (key, deps) in DEPS {
            if !has(fs, *key) {
                for d in *deps {
                    clear(fs, *d);
                }
            }
        }
        if !has(fs, f::ARCH_CAPS) {
            fs[f::FEATURESET_m10Al] = 0;
            fs[f::FEATURESET_m10Ah] = 0;
        }
        if *fs == before {
            break;
        }
    }
}

/// The PV masks from the annotations: (`pv_max_featuremask`, `pv_def_featuremask`).
pub fn pv_masks() -> (Featureset, Featureset) {
    let (mut max, mut def) = ([0u32; FSCAPINTS], [0u32; FSCAPINTS]);
    for feat in f::FEATURES {
        if feat.pv_max() {
            set(&mut max, *feat);
        }
        if feat.pv_default() {
            set(&mut def, *feat);
        }
    }
    (max, def)
}

impl CpuPolicy {
    fn empty(vendor: Vendor) -> Self {
        CpuPolicy {
            basic: [[0; 4]; NR_BASIC],
            cache: [[0; 4]; NR_CACHE],
            feat: [[0; 4]; NR_FEAT],
            topo: [[0; 4]; NR_TOPO],
            xstate: [[0; 4]; NR_XSTATE],
            extd: [[0; 4]; NR_EXTD],
            vendor,
            host_fs: [0; FSCAPINTS],
        }
    }

    /// `x86_cpu_policy_fill_native`: what the CPU reports, in Xen's slots.
    pub fn raw(host: &impl Fn(u32, u32) -> Leaf) -> Self {
        let l0 = host(0, 0);
        let mut p = Self::empty(vendor_of(l0));
        p.basic[0] = l0;
        let max = (l0[0] as usize).min(NR_BASIC - 1);
        for i in 1..=max {
            if ![0x4, 0x7, 0xb, 0xd].contains(&i) {
                p.basic[i] = host(i as u32, 0);
            }
        }
        if max >= 4 {
            for i in 0..NR_CACHE {
                let l = host(4, i as u32);
                if l[0] & 0x1f == 0 {
                    break;
                }
                p.cache[i] = l;
            }
        }
        if max >= 7 {
            p.feat[0] = host(7, 0);
            for i in 1..=(p.feat[0][0] as usize).min(NR_FEAT - 1) {
                p.feat[i] = host(7, i as u32);
            }
        }
        if max >= 0xb {
            for i in 0..NR_TOPO {
                let l = host(0xb, i as u32);
                if (l[2] >> 8) & 0xff == 0 {
                    break;
                }
                p.topo[i] = l;
            }
        }
        if max >= 0xd {
            p.xstate[0] = host(0xd, 0);
            p.xstate[1] = host(0xd, 1);
            let xstates = p.xstates();
            for i in 2..NR_XSTATE {
                if xstates & (1 << i) != 0 {
                    p.xstate[i] = host(0xd, i as u32);
                }
            }
        }
        p.extd[0] = host(0x8000_0000, 0);
        let max_extd = if p.extd[0][0] & 0xffff_0000 == 0x8000_0000 { p.extd[0][0] & 0xffff } else { 0 };
        for i in 1..=(max_extd as usize).min(NR_EXTD - 1) {
            p.extd[i] = host(0x8000_0000 + i as u32, 0);
        }
        p
    }

    /// `cpu_policy_xstates`: XCR0 | XSS from leaf 0xd.
    fn xstates(&self) -> u64 {
        let x = &self.xstate;
        (u64::from(x[0][3]) << 32 | u64::from(x[0][0])) | (u64::from(x[1][3]) << 32 | u64::from(x[1][2]))
    }

    pub fn max_leaf(&self) -> u32 {
        self.basic[0][0]
    }

    fn word(&mut self, w: usize) -> Option<&mut u32> {
        let (leaf, sub, reg) = WORD_LOCATION[w]?;
        Some(match leaf {
            0x1 => &mut self.basic[1][reg],
            0x7 => &mut self.feat[sub as usize][reg],
            0xd => &mut self.xstate[sub as usize][reg],
            _ => &mut self.extd[(leaf & 0xffff) as usize][reg],
        })
    }

    /// `x86_cpu_policy_to_featureset` (the MSR words are not CPUID: left 0).
    pub fn featureset(&self) -> Featureset {
        let mut p = self.clone();
        let mut fs = [0; FSCAPINTS];
        for (w, v) in fs.iter_mut().enumerate() {
            if let Some(x) = p.word(w) {
                *v = *x;
            }
        }
        fs
    }

    /// `x86_cpu_featureset_to_policy`.
    pub fn set_featureset(&mut self, fs: &Featureset) {
        for (w, v) in fs.iter().enumerate() {
            if let Some(x) = self.word(w) {
                *x = *v;
            }
        }
    }

    fn has(&self, feat: Feature) -> bool {
        has(&self.featureset(), feat)
    }

    /// `recalculate_xstate`: leaf 0xd rebuilt from the features, component sizes and
    /// offsets from the host (`xstate_sizes`/`xstate_offsets`, read from leaf 0xd).
    fn recalculate_xstate(&mut self, host: &impl Fn(u32, u32) -> Leaf) {
        let da1 = self.xstate[1][0];
        self.xstate = [[0; 4]; NR_XSTATE];
        if !self.has(f::XSAVE) {
            return;
        }
        let comp_end = |i: u32| {
            let l = host(0xd, i);
            l[1] + l[0]
        };
        let mut xstates = XSTATE_FP_SSE;
        let mut size = XSTATE_AREA_MIN_SIZE;
        let mut add = |mask: u64, last: u32| {
            xstates |= mask;
            size = size.max(comp_end(last));
        };
        if self.has(f::AVX) {
            add(XSTATE_YMM, 2);
        }
        if self.has(f::MPX) {
            add(XSTATE_BNDREGS | XSTATE_BNDCSR, 4);
        }
        if self.has(f::AVX512F) {
            add(XSTATE_OPMASK | XSTATE_ZMM | XSTATE_HI_ZMM, 7);
        }
        if self.has(f::PKU) {
            add(XSTATE_PKRU, 9);
        }
        // Xen 4.17 supports no supervisor (XSS) components (`XSTATE_XSAVES_ONLY` is 0):
        // everything is XCR0, XSS stays 0 and no component is marked supervisor.
        self.xstate[0] = [xstates as u32, 0, size, (xstates >> 32) as u32];
        self.xstate[1][0] = da1;
        for i in 2..(NR_XSTATE as u32).min(63) {
            if xstates & (1u64 << i) == 0 {
                continue;
            }
            // size, offset; ecx bit 1: 64-byte aligned in the compacted format.
            let h = host(0xd, i);
            self.xstate[i as usize] = [h[0], h[1], h[2] & 2, 0];
        }
    }

    /// `recalculate_misc`: reserved and hidden fields cleared, shared fields duplicated.
    fn recalculate_misc(&mut self) {
        const COMMON_1D: [Feature; 18] = [
            f::FPU, f::VME, f::DE, f::PSE, f::TSC, f::MSR, f::PAE, f::MCE, f::CX8, f::APIC,
            f::MTRR, f::PGE, f::MCA, f::CMOV, f::PAT, f::PSE36, f::MMX, f::FXSR,
        ];
        let common_1d = COMMON_1D.iter().fold(0u32, |m, feat| m | feat.mask());
        self.basic[1][0] &= 0x0fff_0fff; // Processor type (Intel)
        self.basic[1][1] &= 0x00ff_ffff; // APIC id: dynamic
        self.basic[0x5] = [0; 4]; // MONITOR not exposed
        self.basic[0x6] = [0; 4]; // Thermal/power not exposed
        self.basic[0x8] = [0; 4];
        self.topo = [[0; 4]; NR_TOPO];
        self.basic[0xc] = [0; 4];
        self.extd[1][3] &= !common_1d;
        // Most of power/RAS hidden.
        self.extd[7][0] = 0;
        self.extd[7][1] = 0;
        self.extd[7][2] = 0;
        self.extd[8][3] = 0;
        match self.vendor {
            Vendor::Intel => {
                self.basic[2][0] = (self.basic[2][0] & !0xff) | 1; // l2_nr_queries fixed to 1
                self.basic[0x3] = [0; 4]; // PSN
                self.basic[0x9] = [0; 4]; // DCA
                self.extd[0][1] = 0;
                self.extd[0][2] = 0;
                self.extd[0][3] = 0;
                self.extd[1][0] = 0;
                self.extd[1][1] = 0;
                self.extd[5] = [0; 4];
                self.extd[6][0] = 0;
                self.extd[6][1] = 0;
                self.extd[6][3] = 0;
                self.extd[8][0] &= 0x0000_ffff;
                self.extd[8][2] = 0;
            }
            Vendor::Amd | Vendor::Hygon => {
                self.basic[2] = [0; 4];
                self.basic[3] = [0; 4];
                self.cache = [[0; 4]; NR_CACHE];
                self.basic[9] = [0; 4];
                self.basic[0xa] = [0; 4];
                self.extd[0][1..].copy_from_slice(&self.basic[0][1..]);
                self.extd[1][0] = self.basic[1][0];
                self.extd[1][1] &= 0xff00_ffff;
                self.extd[1][3] |= self.basic[1][3] & common_1d;
                self.extd[8][0] &= 0x0000_ffff; // GuestMaxPhysAddr hidden
                self.extd[8][2] &= 0x0003_f0ff;
                self.extd[9] = [0; 4];
                for l in &mut self.extd[0xb..=0x18] {
                    *l = [0; 4];
                }
                for l in &mut self.extd[0x1b..=0x20] {
                    *l = [0; 4];
                }
                self.extd[0x21][1] = 0;
                self.extd[0x21][3] = 0;
            }
            Vendor::Other => {}
        }
    }

    /// `calculate_host_policy` (vPMU off, Xen's default): the raw policy clamped to the
    /// leaves Xen keeps, with Xen's own view of the features (`x86_capability`).
    pub fn host(host: &impl Fn(u32, u32) -> Leaf) -> Self {
        let mut p = Self::raw(host);
        p.basic[0][0] = p.basic[0][0].min(NR_BASIC as u32 - 1);
        if p.basic[0][0] >= 7 {
            p.feat[0][0] = p.feat[0][0].min(NR_FEAT as u32 - 1);
        }
        let max_extd = if p.extd[0][0] & 0xffff_0000 == 0x8000_0000 { p.extd[0][0] & 0xffff } else { 0 };
        p.extd[0][0] = 0x8000_0000 | max_extd.min(NR_EXTD as u32 - 1);
        let fs = host_capabilities(&p);
        p.set_featureset(&fs);
        p.host_fs = fs;
        p.recalculate_xstate(host);
        p.recalculate_misc();
        p.basic[0xa] = [0; 4]; // vPMU off
        if p.has(f::SVM) {
            // Not reached for PV (0x8000000a is cleared below); kept as Xen clamps it.
            p.extd[0xa][3] &= (1 << 0) | (1 << 1) | (1 << 3) | (1 << 10) | (1 << 7);
            p.extd[0xa][3] |= (1 << 5) | (1 << 4);
        }
        p
    }

    /// `calculate_pv_def_policy`: from the host policy and the PV maximum policy.
    pub fn pv_default(host_p: &Self, max: &Self, host: &impl Fn(u32, u32) -> Leaf) -> Self {
        let (_, def_mask) = pv_masks();
        let host_fs = host_p.host_fs;
        let mut p = max.clone();
        p.feat[0][0] = host_p.feat[0][0];
        let mut fs = p.featureset();
        for (w, m) in fs.iter_mut().zip(def_mask) {
            *w &= m;
        }
        common_adjustments(&mut fs, &host_fs);
        common_default_adjustments(&mut fs, &host_fs, host_p.vendor);
        sanitise_featureset(&mut fs);
        p.set_featureset(&fs);
        p.recalculate_xstate(host);
        p
    }

    /// A PV domain's policy: `init_domain_cpu_policy` (the PV default, then
    /// `recalculate_cpuid_policy`), and for the hardware domain `init_dom0_cpuid_policy`
    /// (ITSC when the host has it).
    pub fn pv_domain(host: &impl Fn(u32, u32) -> Leaf, hardware_domain: bool) -> Self {
        let host_p = Self::host(host);
        let max = Self::pv_max(&host_p, host);
        let mut p = Self::pv_default(&host_p, &max, host);
        p.recalculate(host, &max);
        if hardware_domain && has(&host_p.host_fs, f::ITSC) {
            let mut fs = p.featureset();
            set(&mut fs, f::ITSC);
            p.set_featureset(&fs);
            p.recalculate(host, &max);
        }
        p
    }

    /// `calculate_pv_max_policy`: from the host policy.
    pub fn pv_max(host_p: &Self, host: &impl Fn(u32, u32) -> Leaf) -> Self {
        let (max_mask, _) = pv_masks();
        let host_fs = host_p.host_fs;
        let mut p = host_p.clone();
        p.feat[0][0] = NR_FEAT as u32 - 1;
        let mut fs = p.featureset();
        for (w, m) in fs.iter_mut().zip(max_mask) {
            *w &= m;
        }
        // Tolerated for migration: older Xen leaked the host's x2APIC bit to PV guests.
        set(&mut fs, f::X2APIC);
        // MSR_SPEC_CTRL is virtualised for PV (Xen's synthetic SC_MSR_PV, on by default)
        // only when the CPU has IBRS; hidden otherwise.
        if !has(&host_fs, f::IBRSB) && !has(&host_fs, f::IBRS) {
            clear(&mut fs, f::IBRSB);
            clear(&mut fs, f::IBRS);
        }
        // BP_SPEC_REDUCE is off by default.
        clear(&mut fs, f::SRSO_US_NO);
        common_max_adjustments(&mut fs, host_p.vendor);
        common_adjustments(&mut fs, &host_fs);
        sanitise_featureset(&mut fs);
        p.set_featureset(&fs);
        p.recalculate_xstate(host);
        p.extd[0xa] = [0; 4];
        p
    }

    /// `recalculate_cpuid_policy` for a 64-bit PV domain.
    fn recalculate(&mut self, host: &impl Fn(u32, u32) -> Leaf, max: &CpuPolicy) {
        self.basic[0][0] = self.basic[0][0].min(max.basic[0][0]);
        self.feat[0][0] = self.feat[0][0].min(max.feat[0][0]);
        let extd_limit = match self.vendor {
            Vendor::Amd | Vendor::Hygon => NR_EXTD_AMD,
            _ => NR_EXTD_INTEL,
        } as u32
            - 1;
        self.extd[0][0] = 0x8000_0000 | (self.extd[0][0] & 0xffff).min(extd_limit);
        let mut fs = self.featureset();
        let max_fs = max.featureset();
        for (w, m) in fs.iter_mut().zip(max_fs) {
            *w &= m;
        }
        if self.basic[0][0] < 0xd {
            clear(&mut fs, f::XSAVE);
        }
        sanitise_featureset(&mut fs);
        // The host's FDP_EXCP_ONLY and NO_FPU_SEL, whatever the policy says.
        let host_7b0 = self.host_fs[f::FEATURESET_7b0];
        let keep = f::FDP_EXCP_ONLY.mask() | f::NO_FPU_SEL.mask();
        fs[f::FEATURESET_7b0] = (fs[f::FEATURESET_7b0] & !keep) | (host_7b0 & keep);
        self.set_featureset(&fs);
        // Host cache line size.
        self.basic[1][1] = (self.basic[1][1] & !0xff00) | (max.basic[1][1] & 0xff00);
        // maxphysaddr: min(ours, max's, paging's = the host's), at least 36 with PAE/PSE36.
        let phys = |l: &Leaf| l[0] & 0xff;
        let mut maxphys = phys(&self.extd[8]).min(phys(&max.extd[8]));
        let floor = if self.has(f::PAE) || self.has(f::PSE36) { 36 } else { 32 };
        maxphys = maxphys.max(floor);
        let maxlin = if self.has(f::LM) { 48 } else { 32 };
        self.extd[8][0] = (self.extd[8][0] & !0xffff) | maxphys | (maxlin << 8);
        self.recalculate_xstate(host);
        self.recalculate_misc();
        for i in 0..NR_CACHE {
            let ty = self.cache[i][0] & 0x1f;
            if (1..=3).contains(&ty) {
                self.cache[i][0] &= 0xffff_c3ff;
                self.cache[i][3] &= 7;
            } else {
                for l in &mut self.cache[i..] {
                    *l = [0; 4];
                }
                break;
            }
        }
        self.basic[0xa] = [0; 4]; // vPMU off
        if !self.has(f::SVM) {
            self.extd[0xa] = [0; 4];
        }
        if !self.has(f::PAGE1GB) {
            self.extd[0x19] = [0; 4];
        }
    }
}

/// Xen's `boot_cpu_data.x86_capability` in featureset words: the raw CPUID features
/// with what Xen's CPU setup changes. On AMD, `init_amd` drops SYSENTER (unusable in long
/// mode). OSXSAVE/OSPKE are left as the raw value reads (every guest mask drops them).
fn host_capabilities(raw: &CpuPolicy) -> Featureset {
    let mut fs = raw.featureset();
    if matches!(raw.vendor, Vendor::Amd | Vendor::Hygon) {
        clear(&mut fs, f::SEP);
    }
    fs
}

/// `guest_common_max_feature_adjustments`.
fn common_max_adjustments(fs: &mut Featureset, vendor: Vendor) {
    match vendor {
        Vendor::Intel => {
            for feat in [f::ARCH_CAPS, f::RSBA, f::RRSBA, f::MD_CLEAR, f::FB_CLEAR, f::RFDS_CLEAR] {
                set(fs, feat);
            }
            if has(fs, f::RTM) {
                set(fs, f::RTM_ALWAYS_ABORT);
            }
        }
        Vendor::Amd => set(fs, f::VERW_CLEAR),
        _ => {}
    }
    set(fs, f::HTT);
    set(fs, f::CMP_LEGACY);
}

/// `guest_common_feature_adjustments`.
fn common_adjustments(fs: &mut Featureset, host: &Featureset) {
    set(fs, f::HYPERVISOR);
    if has(fs, f::IBRSB) {
        set(fs, f::STIBP);
    }
    if has(fs, f::IBRS) {
        set(fs, f::AMD_STIBP);
    }
    if has(host, f::IBRSB) {
        set(fs, f::IBPB);
    }
}

/// `guest_common_default_feature_adjustments`.
fn common_default_adjustments(fs: &mut Featureset, host: &Featureset, vendor: Vendor) {
    match vendor {
        Vendor::Intel => {
            for feat in [f::MD_CLEAR, f::FB_CLEAR, f::RFDS_CLEAR] {
                if !has(host, feat) {
                    clear(fs, feat);
                }
            }
        }
        Vendor::Amd if !has(host, f::VERW_CLEAR) => clear(fs, f::VERW_CLEAR),
        _ => {}
    }
    if !has(host, f::HTT) {
        clear(fs, f::HTT);
    }
    if !has(host, f::CMP_LEGACY) {
        clear(fs, f::CMP_LEGACY);
    }
}

/// Xen's `valid_xcr0`: x87 always; YMM needs SSE; the three AVX-512 components
/// together and with YMM; MPX's two together.
pub fn valid_xcr0(xcr0: u64) -> bool {
    let avx512 = XSTATE_OPMASK | XSTATE_ZMM | XSTATE_HI_ZMM;
    xcr0 & 1 != 0
        && (xcr0 & XSTATE_YMM == 0 || xcr0 & 2 != 0)
        && (xcr0 & avx512 == 0 || (xcr0 & XSTATE_YMM != 0 && xcr0 & avx512 == avx512))
        && (xcr0 & XSTATE_BNDREGS == 0) == (xcr0 & XSTATE_BNDCSR == 0)
}

/// Whether Xen's `handle_xsetbv` lets a PV guest load `xcr0` when its policy's XCR0 mask
/// (leaf 0xd sub-leaf 0, edx:eax) is `max`.
pub fn xsetbv_allowed(xcr0: u64, max: u64) -> bool {
    xcr0 & !max == 0 && valid_xcr0(xcr0)
}

/// Xen's leaves 0x40000000..=0x400001ff for a PV domain (`cpuid_hypervisor_leaves`).
fn hypervisor_leaf(ctx: &GuestCpuidCtx, host_fs: &Featureset, leaf: u32, subleaf: u32) -> Leaf {
    let idx = leaf - 0x4000_0000;
    if idx > XEN_CPUID_MAX_NUM_LEAVES {
        return [0; 4];
    }
    match idx {
        // "XenVMMXenVMM"
        0 => [0x4000_0000 + XEN_CPUID_MAX_NUM_LEAVES, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e],
        1 => [XEN_MAJOR << 16 | XEN_MINOR, 0, 0, 0],
        // One hypercall page, MSR base, XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD.
        2 => [1, 0x4000_0000, 1, 0],
        3 => match subleaf {
            // vtsc 0; bit 1 host TSC safe (invariant TSC); bit 2 RDTSCP; tsc_mode 0
            // (default); the domain's kHz; incarnation 0.
            0 => {
                let safe = u32::from(has(host_fs, f::ITSC)) << 1;
                let rdtscp = u32::from(has(host_fs, f::RDTSCP)) << 2;
                [safe | rdtscp, 0, ctx.tsc_khz, 0]
            }
            _ => [0; 4],
        },
        // HVM-only leaf.
        4 => [0; 4],
        // PV: the width of machine addresses (flsl(highest mfn) + PAGE_SHIFT).
        _ => match subleaf {
            0 => [0, (64 - ctx.max_mfn.leading_zeros()) + 12, 0, 0],
            _ => [0; 4],
        },
    }
}

/// CPUID leaf `leaf`, sub-leaf `subleaf`, as Xen 4.17 answers a 64-bit PV guest in the
/// context `ctx`, on a CPU whose native CPUID is `host`. This derives the domain policy
/// each time; a hypervisor keeps [`CpuPolicy::pv_domain`] and calls [`guest_cpuid`].
pub fn pv_cpuid(host: impl Fn(u32, u32) -> Leaf, ctx: &GuestCpuidCtx, leaf: u32, subleaf: u32) -> Leaf {
    let p = CpuPolicy::pv_domain(&host, ctx.hardware_domain);
    guest_cpuid(&host, &p, ctx, leaf, subleaf)
}

/// `guest_cpuid` for a PV vCPU over a domain policy `p` (from [`CpuPolicy::pv_domain`]
/// on the same CPU); `host` is only read for the leaves Xen reads live (the current XSAVE
/// sizes, the hardware domain's MONITOR leaf).
pub fn guest_cpuid(host: &impl Fn(u32, u32) -> Leaf, p: &CpuPolicy, ctx: &GuestCpuidCtx, leaf: u32, subleaf: u32) -> Leaf {
    let sub = subleaf as usize;
    let mut res = match leaf {
        0..=0xd => {
            if leaf > p.max_leaf().min(NR_BASIC as u32 - 1) {
                return [0; 4];
            }
            match leaf {
                0x4 if sub < NR_CACHE => p.cache[sub],
                0x7 if subleaf <= p.feat[0][0].min(NR_FEAT as u32 - 1) => p.feat[sub],
                0xb if sub < NR_TOPO => p.topo[sub],
                0xd if p.has(f::XSAVE) && sub < NR_XSTATE => p.xstate[sub],
                0x4 | 0x7 | 0xb | 0xd => return [0; 4],
                _ => p.basic[leaf as usize],
            }
        }
        0x4000_0000..=0x4000_01ff => return hypervisor_leaf(ctx, &p.host_fs, leaf, subleaf),
        0x8000_0000..=0x8000_0021 => {
            if leaf & 0xffff > (p.extd[0][0] & 0xffff).min(NR_EXTD as u32 - 1) {
                return [0; 4];
            }
            p.extd[(leaf & 0xffff) as usize]
        }
        _ => return [0; 4],
    };

    // Dynamic adjustments.
    let hw_kernel = ctx.hardware_domain && ctx.kernel_mode;
    let host_fs = || p.host_fs;
    match (leaf, subleaf) {
        (0x1, _) => {
            res[1] &= 0x00ff_ffff;
            if ctx.guest_cr4 & X86_CR4_OSXSAVE != 0
                || (p.has(f::XSAVE) && ctx.forced && ctx.kernel_mode && ctx.xen_cr4_osxsave)
            {
                res[2] |= f::OSXSAVE.mask();
            }
            if hw_kernel {
                let hfs = host_fs();
                if has(&hfs, f::MONITOR) && !ctx.forced {
                    res[2] |= f::MONITOR.mask();
                }
                if has(&hfs, f::EIST) {
                    res[2] |= f::EIST.mask();
                }
                if has(&hfs, f::MTRR) {
                    res[3] |= f::MTRR.mask();
                }
            }
        }
        (0x5, _) if hw_kernel && has(&host_fs(), f::MONITOR) && !ctx.forced => res = host(5, 0),
        (0x7, 0) if ctx.guest_cr4 & X86_CR4_PKE != 0 => res[2] |= f::OSPKE.mask(),
        (0xb, _) if p.has(f::X2APIC) => {
            res[2] = (res[2] & !0xff) | (subleaf & 0xff);
            res[3] = ctx.vcpu_id * 2;
        }
        // The sizes for the XCR0 (and XSS) in force, read from the CPU.
        (0xd, 0) if p.has(f::XSAVE) => res[1] = host(0xd, 0)[1],
        (0xd, 1) if p.has(f::XSAVEC) => res[1] = host(0xd, 1)[1],
        (0x8000_0001, _) if hw_kernel && has(&host_fs(), f::MTRR) => res[3] |= f::MTRR.mask(),
        _ => {}
    }
    res
}

/// `XEN_CPUID_NO_SUBLEAF`: a leaf without subleaves, in a serialised policy.
pub const XEN_CPUID_NO_SUBLEAF: u32 = !0;

/// `CPUID_MAX_SERIALISED_LEAVES`: the most leaves a serialised policy holds (Xen's
/// leaf counts, each subleaf array less its first entry, and the two hypervisor limits).
pub const CPUID_MAX_SERIALISED_LEAVES: u32 =
    (NR_BASIC + NR_FEAT - 1 + NR_CACHE - 1 + NR_TOPO - 1 + NR_XSTATE - 1 + NR_EXTD + 2) as u32;

/// `MSR_MAX_SERIALISED_ENTRIES`: MSR_INTEL_PLATFORM_INFO and MSR_ARCH_CAPABILITIES.
pub const MSR_MAX_SERIALISED_ENTRIES: u32 = 2;

/// Where a serialised policy went wrong (`struct cpu_policy_errors`; `!0`: nowhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub errno: xen_abi::errno::Errno,
    pub leaf: u32,
    pub subleaf: u32,
    pub msr: u32,
}

impl PolicyError {
    fn cpuid(errno: xen_abi::errno::Errno, leaf: u32, subleaf: u32) -> Self {
        PolicyError { errno, leaf, subleaf, msr: !0 }
    }
    fn msr(errno: xen_abi::errno::Errno, msr: u32) -> Self {
        PolicyError { errno, leaf: !0, subleaf: !0, msr }
    }
}

impl CpuPolicy {
    /// `x86_cpuid_copy_to_buffer`'s leaves, in its order: the basic leaves up to the
    /// maximum (leaf 4's subleaves up to the first null cache, 7's up to its maximum,
    /// 0xb's up to the first null level, 0xd's 0 and 1 then one per state of XCR0|XSS
    /// from 2), the two hypervisor limits (0: Xen's system policies have none), the
    /// extended leaves up to their maximum.
    pub fn serialise(&self) -> alloc::vec::Vec<(u32, u32, Leaf)> {
        let mut out = alloc::vec::Vec::new();
        for leaf in 0..=(self.basic[0][0] as usize).min(NR_BASIC - 1) {
            match leaf {
                0x4 => {
                    for (i, l) in self.cache.iter().enumerate() {
                        out.push((4, i as u32, *l));
                        if l[0] & 0x1f == 0 {
                            break;
                        }
                    }
                }
                0x7 => {
                    for i in 0..=(self.feat[0][0] as usize).min(NR_FEAT - 1) {
                        out.push((7, i as u32, self.feat[i]));
                    }
                }
                0xb => {
                    for (i, l) in self.topo.iter().enumerate() {
                        out.push((0xb, i as u32, *l));
                        if (l[2] >> 8) & 0xff == 0 {
                            break;
                        }
                    }
                }
                0xd => {
                    out.push((0xd, 0, self.xstate[0]));
                    out.push((0xd, 1, self.xstate[1]));
                    let mut xstates = self.xstates() >> 2;
                    let mut i = 2;
                    while xstates != 0 && i < NR_XSTATE {
                        out.push((0xd, i as u32, self.xstate[i]));
                        xstates >>= 1;
                        i += 1;
                    }
                }
                _ => out.push((leaf as u32, XEN_CPUID_NO_SUBLEAF, self.basic[leaf])),
            }
        }
        out.push((0x4000_0000, XEN_CPUID_NO_SUBLEAF, [0; 4]));
        out.push((0x4000_0100, XEN_CPUID_NO_SUBLEAF, [0; 4]));
        for leaf in 0..=((self.extd[0][0] & 0xffff) as usize).min(NR_EXTD - 1) {
            out.push((0x8000_0000 | leaf as u32, XEN_CPUID_NO_SUBLEAF, self.extd[leaf]));
        }
        out
    }

    /// One entry of `x86_cpuid_copy_from_buffer`: the leaf put in its slot; a leaf or
    /// subleaf with no slot `-ERANGE`. The hypervisor limits are taken and dropped
    /// (xen-core's leaves 0x40000000.. are fixed). Call [`CpuPolicy::recalc_synth`] after
    /// the last one.
    pub fn merge_leaf(&mut self, leaf: u32, subleaf: u32, l: Leaf) -> Result<(), PolicyError> {
        let range = Err(PolicyError::cpuid(xen_abi::errno::Errno::ERANGE, leaf, subleaf));
        let slot = match leaf {
            0x4 => self.cache.get_mut(subleaf as usize),
            0x7 => self.feat.get_mut(subleaf as usize),
            0xb => self.topo.get_mut(subleaf as usize),
            0xd => self.xstate.get_mut(subleaf as usize),
            0x4000_0000 | 0x4000_0100 if subleaf == XEN_CPUID_NO_SUBLEAF => return Ok(()),
            _ if subleaf != XEN_CPUID_NO_SUBLEAF => return range,
            l if (l as usize) < NR_BASIC => self.basic.get_mut(l as usize),
            l if (0x8000_0000..0x8000_0000 + NR_EXTD as u32).contains(&l) => self.extd.get_mut((l & 0xffff) as usize),
            _ => return range,
        };
        match slot {
            Some(s) => {
                *s = l;
                Ok(())
            }
            None => range,
        }
    }

    /// `x86_cpu_policy_recalc_synth`: the vendor from leaf 0.
    pub fn recalc_synth(&mut self) {
        self.vendor = vendor_of(self.basic[0]);
    }

    /// `x86_cpu_policies_are_compatible`, CPUID part: no maximum leaf, leaf 7 subleaf or
    /// extended leaf above `max`'s (`-EINVAL` naming the leaf).
    pub fn compatible_with(&self, max: &CpuPolicy) -> Result<(), PolicyError> {
        let inval = xen_abi::errno::Errno::EINVAL;
        if self.basic[0][0] > max.basic[0][0] {
            return Err(PolicyError::cpuid(inval, 0, XEN_CPUID_NO_SUBLEAF));
        }
        if self.feat[0][0] > max.feat[0][0] {
            return Err(PolicyError::cpuid(inval, 7, 0));
        }
        if self.extd[0][0] > max.extd[0][0] {
            return Err(PolicyError::cpuid(inval, 0x8000_0000, XEN_CPUID_NO_SUBLEAF));
        }
        Ok(())
    }

    /// A toolstack's policy for a PV domain (`XEN_DOMCTL_set_cpu_policy`): `self` (the
    /// domain's policy with the toolstack's leaves merged) checked against the PV
    /// maximum, then `recalculate_cpuid_policy`. The result is what the domain's CPUID
    /// answers from then on.
    pub fn set_for_domain(mut self, host: &impl Fn(u32, u32) -> Leaf) -> Result<Self, PolicyError> {
        let host_p = Self::host(host);
        let max = Self::pv_max(&host_p, host);
        self.recalc_synth();
        self.compatible_with(&max)?;
        self.recalculate(host, &max);
        Ok(self)
    }
}

/// One entry of `x86_msr_copy_from_buffer` checked against the PV maximum (Xen's
/// `x86_cpu_policies_are_compatible` for MSRs): flags must be 0 (`-EINVAL`);
/// MSR_INTEL_PLATFORM_INFO is 32 bits (`-EOVERFLOW`) and may hold CPUID faulting only
/// (`-EINVAL`); MSR_ARCH_CAPABILITIES is taken; any other MSR `-ERANGE`. xen-core's PV
/// MSRs are fixed (CPUID faulting always offered): the values are checked, not kept.
pub fn check_msr_entry(idx: u32, flags: u32, val: u64) -> Result<(), PolicyError> {
    use xen_abi::errno::Errno;
    if flags != 0 {
        return Err(PolicyError::msr(Errno::EINVAL, idx));
    }
    match idx {
        0xce => {
            if val > u64::from(u32::MAX) {
                return Err(PolicyError::msr(Errno::EOVERFLOW, idx));
            }
            if val & !(1 << 31) != 0 {
                return Err(PolicyError::msr(Errno::EINVAL, idx));
            }
            Ok(())
        }
        0x10a => Ok(()),
        _ => Err(PolicyError::msr(Errno::ERANGE, idx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use xen_abi::errno::Errno;

    /// A synthetic CPU: leaves by (leaf, sub-leaf), zero elsewhere.
    #[derive(Clone)]
    struct Cpu(BTreeMap<(u32, u32), Leaf>);

    impl Cpu {
        fn get(&self, leaf: u32, sub: u32) -> Leaf {
            self.0.get(&(leaf, sub)).copied().unwrap_or([0; 4])
        }
        fn set_bit(&mut self, feat: Feature) {
            let (leaf, sub, reg) = WORD_LOCATION[feat.word()].unwrap();
            self.0.entry((leaf, sub)).or_insert([0; 4])[reg] |= feat.mask();
        }
        fn clear_bit(&mut self, feat: Feature) {
            let (leaf, sub, reg) = WORD_LOCATION[feat.word()].unwrap();
            self.0.entry((leaf, sub)).or_insert([0; 4])[reg] &= !feat.mask();
        }
        fn host(&self) -> impl Fn(u32, u32) -> Leaf + '_ {
            |l, s| self.get(l, s)
        }
    }

    const LA57: u32 = 1 << 16;
    const INTEL: [u32; 3] = [0x756e_6547, 0x6c65_746e, 0x4965_6e69]; // ebx, ecx, edx
    const AMD: [u32; 3] = [0x6874_7541, 0x444d_4163, 0x6974_6e65];

    /// A Skylake-like CPU with features a PV guest must not see among those it may.
    fn cpu(vendor: [u32; 3]) -> Cpu {
        let mut c = Cpu(BTreeMap::new());
        c.0.insert((0, 0), [0x1f, vendor[0], vendor[1], vendor[2]]);
        // family 6 model 0x55, processor type 1; APIC id 5, 16 logical, clflush 8.
        c.0.insert((1, 0), [0x0005_1654, 0x0510_0800, 0, 0]);
        c.0.insert((2, 0), [0x0076_0036, 0, 0, 0x00c3_0000]);
        c.0.insert((4, 0), [0x1c00_4121, 0x01c0_003f, 0x3f, 0xfff0]);
        c.0.insert((4, 1), [0x1c00_4122, 0x01c0_003f, 0x3f, 0]);
        c.0.insert((5, 0), [0x40, 0x40, 3, 0x2020]);
        c.0.insert((6, 0), [0x77, 2, 9, 0]);
        c.0.insert((0xb, 0), [1, 2, 0x100, 5]);
        c.0.insert((0xb, 1), [5, 16, 0x201, 5]);
        // XCR0 supported: x87 SSE AVX BNDREGS BNDCSR opmask ZMM_Hi256 Hi16_ZMM PKRU.
        c.0.insert((0xd, 0), [0x2ff, 0x240, 0xa88, 0]);
        c.0.insert((0xd, 1), [0xf, 0x3c8, 0x100, 0]);
        for (i, size, off) in [(2, 0x100, 0x240), (3, 0x40, 0x3c0), (4, 0x40, 0x400), (5, 0x40, 0x440), (6, 0x200, 0x480), (7, 0x400, 0x680), (9, 8, 0xa80)] {
            c.0.insert((0xd, i), [size, off, 0, 0]);
        }
        c.0.insert((0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
        c.0.insert((0x8000_0006, 0), [0, 0, 0x0100_6040, 0]);
        c.0.insert((0x8000_0008, 0), [0x3027, 0, 0, 0]);
        for feat in [
            f::FPU, f::VME, f::DE, f::PSE, f::TSC, f::MSR, f::PAE, f::MCE, f::CX8, f::APIC, f::SEP, f::MTRR,
            f::PGE, f::MCA, f::CMOV, f::PAT, f::PSE36, f::CLFLUSH, f::DS, f::ACPI, f::MMX, f::FXSR, f::SSE,
            f::SSE2, f::SS, f::HTT, f::TM1, f::PBE, f::SSE3, f::PCLMULQDQ, f::MONITOR, f::VMX, f::SMX,
            f::EIST, f::SSSE3, f::FMA, f::CX16, f::PCID, f::SSE4_1, f::SSE4_2, f::X2APIC, f::MOVBE,
            f::POPCNT, f::TSC_DEADLINE, f::AESNI, f::XSAVE, f::OSXSAVE, f::AVX, f::F16C, f::RDRAND,
            f::SYSCALL, f::NX, f::PAGE1GB, f::RDTSCP, f::LM, f::LAHF_LM, f::ABM, f::_3DNOWPREFETCH,
            f::XSAVEOPT, f::XSAVEC, f::XGETBV1, f::XSAVES, f::FSGSBASE, f::TSC_ADJUST, f::BMI1, f::AVX2,
            f::SMEP, f::BMI2, f::ERMS, f::INVPCID, f::MPX, f::AVX512F, f::AVX512DQ, f::RDSEED, f::ADX,
            f::SMAP, f::CLFLUSHOPT, f::CLWB, f::AVX512CD, f::AVX512BW, f::AVX512VL, f::UMIP, f::PKU,
            f::OSPKE, f::ITSC,
        ] {
            c.set_bit(feat);
        }
        // LA57 (leaf 7 ECX bit 16): unknown to Xen 4.17, so never passed on.
        c.0.get_mut(&(7, 0)).unwrap()[2] |= LA57;
        c
    }

    fn dom0_kernel() -> GuestCpuidCtx {
        GuestCpuidCtx {
            hardware_domain: true,
            kernel_mode: true,
            forced: true,
            xen_cr4_osxsave: true,
            max_mfn: 0x1ffdf,
            ..Default::default()
        }
    }

    fn bit(r: Leaf, feat: Feature) -> bool {
        let (_, _, reg) = WORD_LOCATION[feat.word()].unwrap();
        r[reg] & feat.mask() != 0
    }

    fn sees(c: &Cpu, ctx: &GuestCpuidCtx, feat: Feature) -> bool {
        let (leaf, sub, _) = WORD_LOCATION[feat.word()].unwrap();
        bit(pv_cpuid(c.host(), ctx, leaf, sub), feat)
    }

    #[test]
    fn serialised_policy_round_trips_and_is_bounded() {
        for v in [INTEL, AMD] {
            let c = cpu(v);
            let host = c.host();
            let p = CpuPolicy::pv_domain(&host, false);
            let leaves = p.serialise();
            assert!(leaves.len() as u32 <= CPUID_MAX_SERIALISED_LEAVES);
            assert_eq!(leaves[0].0, 0);
            assert!(leaves.iter().any(|l| l.0 == 0x4000_0000));
            let mut q = CpuPolicy::empty(Vendor::Other);
            for (leaf, sub, l) in &leaves {
                q.merge_leaf(*leaf, *sub, *l).unwrap();
            }
            q.recalc_synth();
            assert_eq!(q.serialise(), leaves);
            // What libxc's xc_cpuid_apply_policy sends back: the same, accepted as it is.
            let mut set = p.clone();
            for (leaf, sub, l) in &leaves {
                set.merge_leaf(*leaf, *sub, *l).unwrap();
            }
            assert_eq!(set.set_for_domain(&host).unwrap(), p);
        }
    }

    #[test]
    fn serialised_leaves_out_of_range_or_above_the_maximum() {
        let c = cpu(INTEL);
        let host = c.host();
        let mut p = CpuPolicy::pv_domain(&host, false);
        let e = |leaf, subleaf| Err(PolicyError { errno: Errno::ERANGE, leaf, subleaf, msr: !0 });
        assert_eq!(p.merge_leaf(4, NR_CACHE as u32, [0; 4]), e(4, NR_CACHE as u32));
        assert_eq!(p.merge_leaf(4, XEN_CPUID_NO_SUBLEAF, [0; 4]), e(4, XEN_CPUID_NO_SUBLEAF));
        assert_eq!(p.merge_leaf(1, 0, [0; 4]), e(1, 0));
        assert_eq!(p.merge_leaf(NR_BASIC as u32, XEN_CPUID_NO_SUBLEAF, [0; 4]), e(NR_BASIC as u32, XEN_CPUID_NO_SUBLEAF));
        assert_eq!(p.merge_leaf(0x4000_0001, XEN_CPUID_NO_SUBLEAF, [0; 4]), e(0x4000_0001, XEN_CPUID_NO_SUBLEAF));
        assert_eq!(p.merge_leaf(0x8000_0000 + NR_EXTD as u32, XEN_CPUID_NO_SUBLEAF, [0; 4]), e(0x8000_0000 + NR_EXTD as u32, XEN_CPUID_NO_SUBLEAF));
        assert_eq!(p.merge_leaf(0x4000_0100, XEN_CPUID_NO_SUBLEAF, [7; 4]), Ok(()));
        let mut big = p.clone();
        big.merge_leaf(0, XEN_CPUID_NO_SUBLEAF, [0x20, INTEL[0], INTEL[1], INTEL[2]]).unwrap();
        assert_eq!(big.set_for_domain(&host).unwrap_err(), PolicyError { errno: Errno::EINVAL, leaf: 0, subleaf: XEN_CPUID_NO_SUBLEAF, msr: !0 });
        // Fewer features than the default: kept.
        let mut fewer = p.clone();
        let mut l1 = fewer.basic[1];
        l1[2] &= !f::SSE4_2.mask();
        fewer.merge_leaf(1, XEN_CPUID_NO_SUBLEAF, l1).unwrap();
        let fewer = fewer.set_for_domain(&host).unwrap();
        assert!(!fewer.has(f::SSE4_2));
        p.recalc_synth();
        assert_eq!(check_msr_entry(0xce, 0, 1 << 31), Ok(()));
        assert_eq!(check_msr_entry(0xce, 0, 1).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(check_msr_entry(0xce, 0, 1 << 32).unwrap_err().errno, Errno::EOVERFLOW);
        assert_eq!(check_msr_entry(0xce, 1, 0).unwrap_err().errno, Errno::EINVAL);
        assert_eq!(check_msr_entry(0x10a, 0, 5), Ok(()));
        assert_eq!(check_msr_entry(0x10, 0, 0).unwrap_err(), PolicyError { errno: Errno::ERANGE, leaf: !0, subleaf: !0, msr: 0x10 });
    }

    #[test]
    fn hides_what_xen_hides_from_pv() {
        let c = cpu(INTEL);
        let domu = GuestCpuidCtx { kernel_mode: true, forced: true, ..Default::default() };
        for feat in [
            f::VME, f::PSE, f::PGE, f::PSE36, f::MTRR, f::DS, f::PAGE1GB, f::SMEP, f::SMAP, f::UMIP, f::PKU,
            f::OSPKE, f::PCID, f::INVPCID, f::TSC_DEADLINE, f::X2APIC, f::VMX, f::SMX, f::MONITOR,
            f::EIST, f::TSC_ADJUST, f::XSAVES, f::MPX, f::ITSC,
        ] {
            assert!(!sees(&c, &domu, feat), "{} visible to a PV domU", feat.name);
        }
        assert_eq!(pv_cpuid(c.host(), &domu, 7, 0)[2] & LA57, 0, "LA57");
        for feat in [
            f::FPU, f::DE, f::TSC, f::MSR, f::PAE, f::MCE, f::CX8, f::APIC, f::MCA, f::CMOV, f::PAT,
            f::CLFLUSH, f::SSE2, f::HTT, f::HYPERVISOR, f::XSAVE, f::AVX, f::RDRAND, f::FSGSBASE,
            f::AVX2, f::AVX512F, f::AVX512VL, f::NX, f::LM, f::SYSCALL, f::RDTSCP, f::XSAVEOPT, f::XSAVEC,
        ] {
            assert!(sees(&c, &domu, feat), "{} hidden from a PV domU", feat.name);
        }
        // Guests never see an APIC id; the cache line size stays.
        assert_eq!(pv_cpuid(c.host(), &domu, 1, 0)[1], 0x0010_0800);
        // Intel processor type is cleared.
        assert_eq!(pv_cpuid(c.host(), &domu, 1, 0)[0], 0x0005_0654);
    }

    #[test]
    fn sep_is_kept_on_intel_only() {
        let domu = GuestCpuidCtx::default();
        // SEP is 'A': Intel hosts pass it, AMD hosts drop it (no SYSENTER in long mode).
        let intel = pv_cpuid(cpu(INTEL).host(), &domu, 1, 0);
        let amd = pv_cpuid(cpu(AMD).host(), &domu, 1, 0);
        assert_eq!((bit(intel, f::SEP), bit(amd, f::SEP)), (f::SEP.pv_default(), false));
    }

    #[test]
    fn hardware_domain_kernel_leaks() {
        let c = cpu(AMD);
        let ctx = dom0_kernel();
        assert!(sees(&c, &ctx, f::MTRR));
        assert!(bit(pv_cpuid(c.host(), &ctx, 0x8000_0001, 0), f::MTRR), "AMD's 0x80000001 copy");
        assert!(sees(&c, &ctx, f::EIST));
        // MONITOR only for a faulted (native) CPUID, with the host's leaf 5.
        assert!(!sees(&c, &ctx, f::MONITOR));
        assert_eq!(pv_cpuid(c.host(), &ctx, 5, 0), [0; 4]);
        let faulted = GuestCpuidCtx { forced: false, ..ctx };
        assert!(sees(&c, &faulted, f::MONITOR));
        assert_eq!(pv_cpuid(c.host(), &faulted, 5, 0), c.get(5, 0));
        // Not for its user space, not for other domains.
        for other in [GuestCpuidCtx { kernel_mode: false, ..ctx }, GuestCpuidCtx { hardware_domain: false, ..ctx }] {
            assert!(!sees(&c, &other, f::MTRR) && !sees(&c, &other, f::EIST));
        }
    }

    #[test]
    fn osxsave_follows_xen_and_guest_cr4() {
        let c = cpu(INTEL);
        let ctx = dom0_kernel();
        assert!(sees(&c, &ctx, f::OSXSAVE), "Xen's CR4.OSXSAVE leaks into the emulated CPUID");
        assert!(!sees(&c, &GuestCpuidCtx { xen_cr4_osxsave: false, ..ctx }, f::OSXSAVE));
        assert!(!sees(&c, &GuestCpuidCtx { kernel_mode: false, ..ctx }, f::OSXSAVE));
        assert!(!sees(&c, &GuestCpuidCtx { forced: false, ..ctx }, f::OSXSAVE));
        let own = GuestCpuidCtx { kernel_mode: false, xen_cr4_osxsave: false, guest_cr4: X86_CR4_OSXSAVE, ..ctx };
        assert!(sees(&c, &own, f::OSXSAVE), "the guest's own CR4.OSXSAVE");
        assert!(sees(&c, &GuestCpuidCtx { guest_cr4: X86_CR4_PKE, ..ctx }, f::OSPKE));
        // Without XSAVE in the policy, the leak is off too.
        let mut c = c;
        c.clear_bit(f::XSAVE);
        assert!(!sees(&c, &ctx, f::OSXSAVE));
    }

    #[test]
    fn dependencies_follow_a_missing_feature() {
        let mut c = cpu(INTEL);
        c.clear_bit(f::XSAVE);
        let ctx = dom0_kernel();
        for feat in [f::AVX, f::AVX2, f::FMA, f::F16C, f::AVX512F, f::AVX512VL, f::XSAVEOPT, f::XSAVEC] {
            assert!(!sees(&c, &ctx, feat), "{} without XSAVE", feat.name);
        }
        assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, 0), [0; 4]);
        assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, 2), [0; 4]);
        let mut c = cpu(INTEL);
        c.clear_bit(f::SSE2);
        assert!(!sees(&c, &ctx, f::LM) && !sees(&c, &ctx, f::SSE3) && !sees(&c, &ctx, f::AESNI));
        assert!(!sees(&c, &ctx, f::CX16), "CX16 depends on LM");
        // The host's values for the rest: 48-bit linear, physical width kept.
        assert_eq!(pv_cpuid(cpu(INTEL).host(), &ctx, 0x8000_0008, 0)[0], 0x3027);
    }

    #[test]
    fn xstate_leaf_for_the_guests_features() {
        let c = cpu(INTEL);
        let ctx = dom0_kernel();
        // x87 SSE AVX and the three AVX-512 components; no MPX (not PV), no PKRU (HVM HAP).
        let l0 = pv_cpuid(c.host(), &ctx, 0xd, 0);
        assert_eq!(l0, [0xe7, 0x240, 0x680 + 0x400, 0]);
        let l1 = pv_cpuid(c.host(), &ctx, 0xd, 1);
        assert_eq!(l1, [0x7, 0x3c8, 0, 0], "XSAVEOPT XSAVEC XGETBV1; EBX is the CPU's current size");
        assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, 2), [0x100, 0x240, 0, 0]);
        assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, 7), [0x400, 0x680, 0, 0]);
        for sub in [3, 4, 8, 9, 62, 63] {
            assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, sub), [0; 4], "sub-leaf {sub}");
        }
        // Without AVX-512 the maximum size is the YMM area's end.
        let mut c = c;
        c.clear_bit(f::AVX512F);
        assert_eq!(pv_cpuid(c.host(), &ctx, 0xd, 0), [0x7, 0x240, 0x340, 0]);
    }

    #[test]
    fn leaves_past_the_maxima_are_zero() {
        let c = cpu(INTEL);
        let ctx = dom0_kernel();
        assert_eq!(pv_cpuid(c.host(), &ctx, 0, 0)[0], 0xd, "basic leaves clamped to Xen's 0xd");
        for leaf in [0xe, 0x10, 0x1f, 0x20, 0x3fff_ffff, 0x8000_0009, 0x8000_0021, 0x8000_0022, 0xc000_0000] {
            assert_eq!(pv_cpuid(c.host(), &ctx, leaf, 0), [0; 4], "leaf {leaf:#x}");
        }
        // Zeroed leaves: PSN, MONITOR, thermal, topology, vPMU.
        for leaf in [3, 5, 6, 0xa, 0xb] {
            assert_eq!(pv_cpuid(c.host(), &ctx, leaf, 0), [0; 4], "leaf {leaf:#x}");
        }
        // Leaf 7 up to its maximum sub-leaf, leaf 4 with reserved fields cleared.
        assert_eq!(pv_cpuid(c.host(), &ctx, 7, 1), [0; 4]);
        assert_eq!(pv_cpuid(c.host(), &ctx, 4, 0), [0x1c00_4121 & 0xffff_c3ff, 0x01c0_003f, 0x3f, 0]);
        assert_eq!(pv_cpuid(c.host(), &ctx, 4, 2), [0; 4]);
        // Intel: leaf 2's query count fixed to 1, vendor and family not duplicated.
        assert_eq!(pv_cpuid(c.host(), &ctx, 2, 0)[0] & 0xff, 1);
        assert_eq!(pv_cpuid(c.host(), &ctx, 0x8000_0000, 0), [0x8000_0008, 0, 0, 0]);
    }

    #[test]
    fn amd_duplicates_vendor_and_common_features() {
        let mut c = cpu(AMD);
        c.0.get_mut(&(0x8000_0000, 0)).unwrap()[0] = 0x8000_0023;
        c.0.insert((0x8000_001f, 0), [0xf, 0, 0, 0]);
        let ctx = GuestCpuidCtx::default();
        let l = pv_cpuid(c.host(), &ctx, 0x8000_0000, 0);
        assert_eq!(l, [0x8000_0021, AMD[0], AMD[1], AMD[2]], "AMD leaves kept up to 0x80000021");
        let e1 = pv_cpuid(c.host(), &ctx, 0x8000_0001, 0);
        assert_eq!(e1[0], 0x0005_0654, "family/model copied from leaf 1, processor type cleared");
        assert!(bit(e1, f::FPU) && bit(e1, f::APIC) && !bit(e1, f::PSE) && !bit(e1, f::MTRR));
        assert_eq!(pv_cpuid(c.host(), &ctx, 0x8000_001f, 0), [0; 4], "SEV hidden");
        assert_eq!(pv_cpuid(c.host(), &ctx, 4, 0), [0; 4], "Intel's cache leaf hidden on AMD");
    }

    #[test]
    fn xsetbv_rules() {
        let max = 0xe7; // x87 SSE YMM and AVX-512
        for ok in [0b1, 0b11, 0b111, 0xe7] {
            assert!(xsetbv_allowed(ok, max), "{ok:#x}");
        }
        for bad in [0, 0b10, 0b101, 0x27, 0x67, 0xe3, 0x207, 0x1b] {
            assert!(!xsetbv_allowed(bad, max), "{bad:#x}");
        }
        assert!(!xsetbv_allowed(0b111, 0b11), "YMM outside the policy");
        assert!(valid_xcr0(0x1b) && valid_xcr0(0x1f) && !valid_xcr0(0xb) && !valid_xcr0(0x13), "MPX pairs");
    }

    #[test]
    fn xen_leaves() {
        let c = cpu(INTEL);
        let ctx = dom0_kernel();
        let l = |leaf| pv_cpuid(c.host(), &ctx, leaf, 0);
        assert_eq!(l(0x4000_0000), [0x4000_0005, 0x566e_6558, 0x6558_4d4d, 0x4d4d_566e]);
        assert_eq!(l(0x4000_0001), [0x0004_0011, 0, 0, 0]);
        assert_eq!(l(0x4000_0002), [1, 0x4000_0000, 1, 0]);
        assert_eq!(l(0x4000_0003), [0b110, 0, 0, 0], "invariant TSC and RDTSCP, dom0's kHz 0");
        let domu = GuestCpuidCtx { tsc_khz: 2_100_000, ..ctx };
        assert_eq!(pv_cpuid(c.host(), &domu, 0x4000_0003, 0)[2], 2_100_000);
        assert_eq!(pv_cpuid(c.host(), &ctx, 0x4000_0003, 1), [0; 4]);
        assert_eq!(l(0x4000_0004), [0; 4]);
        assert_eq!(l(0x4000_0005), [0, 29, 0, 0], "machine addresses up to mfn 0x1ffdf: 29 bits");
        assert_eq!(l(0x4000_0006), [0; 4]);
        assert_eq!(l(0x4000_0100), [0; 4]);
    }
}
