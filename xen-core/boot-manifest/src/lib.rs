//! The boot-time manifest: a multiboot module listing the domains xen-core creates at
//! boot (like Xen's dom0less on Arm), so inter-domain I/O works before a toolstack does.
//!
//! Wire format: the 8-byte magic [`MAGIC`], then the postcard encoding of [`Manifest`].
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Identifies a manifest module (version 1).
pub const MAGIC: [u8; 8] = *b"XCMANIF1";

/// Upper bounds the hypervisor enforces on what a manifest asks for.
pub const MAX_DOMAINS: usize = 16;
pub const MAX_CMDLINE: usize = 1023;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec {
    pub name: String,
    /// Index of the multiboot module holding the kernel ELF.
    pub kernel_module: u32,
    /// Memory in KiB.
    pub memory_kib: u64,
    pub vcpus: u32,
    pub cmdline: String,
    /// Gets `SIF_PRIVILEGED` (may name other domains in privileged hypercalls).
    pub privileged: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Created in order: domain ids 0, 1, 2, ...
    pub domains: Vec<DomainSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    NotAManifest,
    Decode,
    TooManyDomains(usize),
    NoDomains,
    /// Domain index and what is wrong with it.
    Bad(usize, &'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAManifest => f.write_str("not a manifest (bad magic)"),
            Self::Decode => f.write_str("manifest does not decode"),
            Self::TooManyDomains(n) => write!(f, "{n} domains (at most {MAX_DOMAINS})"),
            Self::NoDomains => f.write_str("manifest lists no domains"),
            Self::Bad(i, why) => write!(f, "domain {i}: {why}"),
        }
    }
}

impl Manifest {
    pub fn is_manifest(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Decodes and checks a manifest module; `nr_modules` bounds kernel indices.
    pub fn decode(bytes: &[u8], nr_modules: usize) -> Result<Self, ManifestError> {
        let body = bytes.strip_prefix(&MAGIC).ok_or(ManifestError::NotAManifest)?;
        let m: Manifest = postcard::from_bytes(body).map_err(|_| ManifestError::Decode)?;
        if m.domains.is_empty() {
            return Err(ManifestError::NoDomains);
        }
        if m.domains.len() > MAX_DOMAINS {
            return Err(ManifestError::TooManyDomains(m.domains.len()));
        }
        for (i, d) in m.domains.iter().enumerate() {
            if d.kernel_module as usize >= nr_modules {
                return Err(ManifestError::Bad(i, "kernel module index out of range"));
            }
            if d.memory_kib < 4096 || d.memory_kib % 4 != 0 {
                return Err(ManifestError::Bad(i, "memory must be a multiple of 4 KiB, at least 4 MiB"));
            }
            if d.vcpus != 1 {
                return Err(ManifestError::Bad(i, "only 1 vCPU per domain is supported"));
            }
            if d.cmdline.len() > MAX_CMDLINE {
                return Err(ManifestError::Bad(i, "command line longer than 1023 bytes"));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn spec(module: u32) -> DomainSpec {
        DomainSpec {
            name: "front".into(),
            kernel_module: module,
            memory_kib: 32 * 1024,
            vcpus: 1,
            cmdline: "role=blkfront".into(),
            privileged: false,
        }
    }

    #[test]
    fn round_trip() {
        let m = Manifest { domains: vec![spec(1), spec(2)] };
        assert_eq!(Manifest::decode(&m.encode(), 3), Ok(m));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert_eq!(Manifest::decode(b"ELF...", 3), Err(ManifestError::NotAManifest));
        assert_eq!(Manifest::decode(&MAGIC, 3), Err(ManifestError::Decode));
        assert_eq!(Manifest::decode(&Manifest::default().encode(), 3), Err(ManifestError::NoDomains));
        let m = Manifest { domains: vec![spec(5)] };
        assert!(matches!(Manifest::decode(&m.encode(), 3), Err(ManifestError::Bad(0, _))));
        let mut s = spec(1);
        s.memory_kib = 1000;
        assert!(matches!(Manifest::decode(&Manifest { domains: vec![s] }.encode(), 3), Err(ManifestError::Bad(0, _))));
        let many = Manifest { domains: vec![spec(1); MAX_DOMAINS + 1] };
        assert_eq!(Manifest::decode(&many.encode(), 3), Err(ManifestError::TooManyDomains(MAX_DOMAINS + 1)));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = Vec::from(MAGIC);
            bytes.extend(tail);
            let _ = Manifest::decode(&bytes, 4);
        }
    }
}
