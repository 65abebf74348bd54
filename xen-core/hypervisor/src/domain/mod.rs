//! The initial-domain builder's portable parts: reading a PV kernel image
//! ([`elf`]: segments, Xen ELF notes and the domain parameters libelf derives from
//! them) and the start-of-day virtual memory arrangement ([`layout`]) exactly as
//! Xen 4.17's `dom0_construct_pv` computes it. Both are pure, safe and host-tested;
//! the arch code places the bytes and builds the page tables. [`control`] is the
//! toolstack's side of a domain (domctl argument checks, pause and shutdown state);
//! [`runstate`] a vCPU's time accounting; [`credit`] the scheduler's policy (weights,
//! caps, affinity).
#![forbid(unsafe_code)]

pub mod control;
pub mod cpupool;
pub mod credit;
pub mod elf;
pub mod layout;
pub mod runstate;
