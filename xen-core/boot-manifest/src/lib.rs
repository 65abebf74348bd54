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
/// vCPUs a manifest domain may have (xen-core's `createdomain` limit).
pub const MAX_VCPUS: u32 = 128;

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
    /// Index of the multiboot module holding the domain's initrd, if it has one.
    pub initrd_module: Option<u32>,
}

/// An interdomain event channel bound at boot (like Xen 4.17's dom0less static event
/// channels): port `port_a` of domain `dom_a` is connected to `port_b` of `dom_b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticChannel {
    pub dom_a: u16,
    pub port_a: u32,
    pub dom_b: u16,
    pub port_b: u32,
}

/// The domain that runs xenstored. Every other domain gets a xenstore ring page (its
/// `start_info.store_mfn`), grant reference 1 (`GNTTAB_RESERVED_XENSTORE`) granting
/// that page to the xenstore domain, and an event channel whose xenstore-domain end is
/// port `port_base + domid` (the other end is `start_info.store_evtchn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenstoreSpec {
    pub domain: u16,
    pub port_base: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Created in order: domain ids 0, 1, 2, ...
    pub domains: Vec<DomainSpec>,
    pub channels: Vec<StaticChannel>,
    pub xenstore: Option<XenstoreSpec>,
}

/// Highest port a static channel may use (2-level ABI: 4096 ports; port 0 is reserved).
pub const MAX_STATIC_PORT: u32 = 4095;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    NotAManifest,
    Decode,
    TooManyDomains(usize),
    NoDomains,
    /// Domain index and what is wrong with it.
    Bad(usize, &'static str),
    /// Channel index and what is wrong with it.
    BadChannel(usize, &'static str),
    BadXenstore(&'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAManifest => f.write_str("not a manifest (bad magic)"),
            Self::Decode => f.write_str("manifest does not decode"),
            Self::TooManyDomains(n) => write!(f, "{n} domains (at most {MAX_DOMAINS})"),
            Self::NoDomains => f.write_str("manifest lists no domains"),
            Self::Bad(i, why) => write!(f, "domain {i}: {why}"),
            Self::BadChannel(i, why) => write!(f, "channel {i}: {why}"),
            Self::BadXenstore(why) => write!(f, "xenstore: {why}"),
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
            if d.initrd_module.is_some_and(|m| m as usize >= nr_modules || m == d.kernel_module) {
                return Err(ManifestError::Bad(i, "initrd module index out of range or the kernel's"));
            }
            if d.memory_kib < 4096 || d.memory_kib % 4 != 0 {
                return Err(ManifestError::Bad(i, "memory must be a multiple of 4 KiB, at least 4 MiB"));
            }
            if d.vcpus == 0 || d.vcpus > MAX_VCPUS {
                return Err(ManifestError::Bad(i, "vCPUs must be 1..=128"));
            }
            if d.cmdline.len() > MAX_CMDLINE {
                return Err(ManifestError::Bad(i, "command line longer than 1023 bytes"));
            }
        }
        let mut used: Vec<(u16, u32)> = Vec::new();
        if let Some(xs) = m.xenstore {
            if xs.domain as usize >= m.domains.len() {
                return Err(ManifestError::BadXenstore("no such domain"));
            }
            let last = xs.port_base.checked_add(m.domains.len() as u32 - 1);
            if xs.port_base == 0 || last.is_none_or(|p| p > MAX_STATIC_PORT) {
                return Err(ManifestError::BadXenstore("ports out of range"));
            }
            used.extend((0..m.domains.len() as u32).map(|i| (xs.domain, xs.port_base + i)));
        }
        for (i, c) in m.channels.iter().enumerate() {
            for (dom, port) in [(c.dom_a, c.port_a), (c.dom_b, c.port_b)] {
                if dom as usize >= m.domains.len() {
                    return Err(ManifestError::BadChannel(i, "no such domain"));
                }
                if port == 0 || port > MAX_STATIC_PORT {
                    return Err(ManifestError::BadChannel(i, "port must be 1..=4095"));
                }
                if used.contains(&(dom, port)) {
                    return Err(ManifestError::BadChannel(i, "port used twice"));
                }
                used.push((dom, port));
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
            initrd_module: None,
        }
    }

    #[test]
    fn round_trip() {
        let m = Manifest {
            domains: vec![spec(1), spec(2)],
            channels: vec![StaticChannel { dom_a: 0, port_a: 10, dom_b: 1, port_b: 10 }],
            xenstore: Some(XenstoreSpec { domain: 0, port_base: 100 }),
        };
        assert_eq!(Manifest::decode(&m.encode(), 3), Ok(m));
        // A static channel may not take a port of the xenstore domain's range.
        let clash = Manifest {
            domains: vec![spec(1), spec(2)],
            channels: vec![StaticChannel { dom_a: 0, port_a: 101, dom_b: 1, port_b: 10 }],
            xenstore: Some(XenstoreSpec { domain: 0, port_base: 100 }),
        };
        assert!(matches!(Manifest::decode(&clash.encode(), 3), Err(ManifestError::BadChannel(0, _))));
        let bad = Manifest { domains: vec![spec(1)], xenstore: Some(XenstoreSpec { domain: 3, port_base: 100 }), ..Default::default() };
        assert_eq!(Manifest::decode(&bad.encode(), 3), Err(ManifestError::BadXenstore("no such domain")));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert_eq!(Manifest::decode(b"ELF...", 3), Err(ManifestError::NotAManifest));
        assert_eq!(Manifest::decode(&MAGIC, 3), Err(ManifestError::Decode));
        assert_eq!(Manifest::decode(&Manifest::default().encode(), 3), Err(ManifestError::NoDomains));
        let ch = |dom_a, port_a, dom_b, port_b| StaticChannel { dom_a, port_a, dom_b, port_b };
        for (c, _) in [(ch(0, 0, 1, 3), "port 0"), (ch(0, 5, 2, 5), "domain 2"), (ch(0, 4096, 1, 3), "port 4096")] {
            let m = Manifest { domains: vec![spec(1), spec(1)], channels: vec![c], xenstore: None };
            assert!(matches!(Manifest::decode(&m.encode(), 3), Err(ManifestError::BadChannel(0, _))));
        }
        let twice = Manifest { domains: vec![spec(1), spec(1)], channels: vec![ch(0, 7, 1, 7), ch(0, 7, 1, 8)], xenstore: None };
        assert!(matches!(Manifest::decode(&twice.encode(), 3), Err(ManifestError::BadChannel(1, _))));
        let m = Manifest { domains: vec![spec(5)], ..Default::default() };
        assert!(matches!(Manifest::decode(&m.encode(), 3), Err(ManifestError::Bad(0, _))));
        let mut s = spec(1);
        s.memory_kib = 1000;
        assert!(matches!(
            Manifest::decode(&Manifest { domains: vec![s], ..Default::default() }.encode(), 3),
            Err(ManifestError::Bad(0, _))
        ));
        for vcpus in [0, MAX_VCPUS + 1] {
            let m = Manifest { domains: vec![DomainSpec { vcpus, ..spec(1) }], ..Default::default() };
            assert!(matches!(Manifest::decode(&m.encode(), 3), Err(ManifestError::Bad(0, _))), "{vcpus} vCPUs");
        }
        let two = Manifest { domains: vec![DomainSpec { vcpus: 2, ..spec(1) }], ..Default::default() };
        assert_eq!(Manifest::decode(&two.encode(), 3), Ok(two));
        let many = Manifest { domains: vec![spec(1); MAX_DOMAINS + 1], ..Default::default() };
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
