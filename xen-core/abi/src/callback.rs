//! `callback.h`: `HYPERVISOR_callback_op` (`CALLBACKOP_register`/`unregister`).
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `CALLBACKTYPE_event`: event-channel upcall.
pub const CALLBACKTYPE_event: u16 = 0;
/// `CALLBACKTYPE_failsafe`: segment-reload failure.
pub const CALLBACKTYPE_failsafe: u16 = 1;
/// `CALLBACKTYPE_syscall`: 64-bit user `SYSCALL`.
pub const CALLBACKTYPE_syscall: u16 = 2;
/// `CALLBACKTYPE_sysenter_deprecated`
pub const CALLBACKTYPE_sysenter_deprecated: u16 = 3;
/// `CALLBACKTYPE_nmi`
pub const CALLBACKTYPE_nmi: u16 = 4;
/// `CALLBACKTYPE_sysenter`: 32-bit user `SYSENTER`.
pub const CALLBACKTYPE_sysenter: u16 = 5;
/// `CALLBACKTYPE_syscall32`: 32-bit user `SYSCALL`.
pub const CALLBACKTYPE_syscall32: u16 = 7;

/// `_CALLBACKF_mask_events`
pub const _CALLBACKF_mask_events: u32 = 0;
/// `CALLBACKF_mask_events`: mask events on entry to the callback.
pub const CALLBACKF_mask_events: u16 = 1 << _CALLBACKF_mask_events;

/// `CALLBACKOP_register`
pub const CALLBACKOP_register: u32 = 0;
/// `CALLBACKOP_unregister`
pub const CALLBACKOP_unregister: u32 = 1;

/// `struct callback_register` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CallbackRegister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    /// `CALLBACKF_*`.
    pub flags: u16,
    pub _pad0: [u8; 4],
    /// `xen_callback_t`: the handler's address.
    pub address: u64,
}

/// `struct callback_unregister` (4 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CallbackUnregister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    pub _unused: u16,
}
