//! The Xen 4.17 public interface as seen by a 64-bit PV guest, its toolstack and its
//! split drivers: the one Rust copy of `xen/include/public`.
//!
//! Every `#[repr(C)]` type here is checked field by field against the real C headers
//! (Debian's `libxen-dev`) by `tests/layout.rs`. Padding is explicit so that every type
//! can be read from and written to guest memory as plain bytes (`zerocopy`).
//!
//! Naming: structures use CamelCase versions of the C names (`struct start_info` is
//! [`xen::StartInfo`]); constants keep Xen's exact spelling (minus leading underscores)
//! so that `grep -r XENMEM_populate_physmap` finds both worlds. C unions become either a
//! fixed-size integer field with typed accessors or separate structs of the union's
//! size that callers convert with `zerocopy`.
#![no_std]
#![forbid(unsafe_code)]

/// `impl Default` through `FromZeros::new_zeroed` for structs whose arrays are too
/// long for `#[derive(Default)]`.
macro_rules! zeroed_default {
    ($($ty:ty),* $(,)?) => {
        $(
            impl Default for $ty {
                fn default() -> Self {
                    <Self as zerocopy::FromZeros>::new_zeroed()
                }
            }
        )*
    };
}

pub mod arch_x86_64;
pub mod blkif;
pub mod callback;
pub mod console;
pub mod cpufeatureset;
pub mod domctl;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hypercall;
pub mod memory;
pub mod netif;
mod payload;
pub mod physdev;
pub mod sched;
pub mod sysctl;
pub mod types;
pub mod vcpu;
pub mod version;
pub mod xen;
pub mod xenbus;
pub mod xenstore;

pub use errno::Errno;
pub use types::{DomId, EvtchnPort, Gfn, GrantRef, Mfn, Pfn, VcpuId};
