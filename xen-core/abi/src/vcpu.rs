//! `vcpu.h`: `HYPERVISOR_vcpu_op` commands and argument structures.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `VCPUOP_initialise`: arg = `vcpu_guest_context`.
pub const VCPUOP_initialise: u32 = 0;
/// `VCPUOP_up`
pub const VCPUOP_up: u32 = 1;
/// `VCPUOP_down`
pub const VCPUOP_down: u32 = 2;
/// `VCPUOP_is_up`
pub const VCPUOP_is_up: u32 = 3;
/// `VCPUOP_get_runstate_info`
pub const VCPUOP_get_runstate_info: u32 = 4;
/// `VCPUOP_register_runstate_memory_area`
pub const VCPUOP_register_runstate_memory_area: u32 = 5;
/// `VCPUOP_set_periodic_timer`
pub const VCPUOP_set_periodic_timer: u32 = 6;
/// `VCPUOP_stop_periodic_timer`
pub const VCPUOP_stop_periodic_timer: u32 = 7;
/// `VCPUOP_set_singleshot_timer`
pub const VCPUOP_set_singleshot_timer: u32 = 8;
/// `VCPUOP_stop_singleshot_timer`
pub const VCPUOP_stop_singleshot_timer: u32 = 9;
/// `VCPUOP_register_vcpu_info`
pub const VCPUOP_register_vcpu_info: u32 = 10;
/// `VCPUOP_send_nmi`
pub const VCPUOP_send_nmi: u32 = 11;
/// `VCPUOP_get_physid`
pub const VCPUOP_get_physid: u32 = 12;
/// `VCPUOP_register_vcpu_time_memory_area`
pub const VCPUOP_register_vcpu_time_memory_area: u32 = 13;

/// `RUNSTATE_running`
pub const RUNSTATE_running: i32 = 0;
/// `RUNSTATE_runnable`
pub const RUNSTATE_runnable: i32 = 1;
/// `RUNSTATE_blocked`
pub const RUNSTATE_blocked: i32 = 2;
/// `RUNSTATE_offline`
pub const RUNSTATE_offline: i32 = 3;

/// `XEN_RUNSTATE_UPDATE`: set in `state_entry_time` while Xen updates the area
/// (with `VMASST_TYPE_runstate_update_flag`).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `_VCPU_SSHOTTMR_future`
pub const _VCPU_SSHOTTMR_future: u32 = 0;
/// `VCPU_SSHOTTMR_future`: fail with -ETIME if the timeout is in the past.
pub const VCPU_SSHOTTMR_future: u32 = 1 << _VCPU_SSHOTTMR_future;

/// `struct vcpu_runstate_info` (48 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRunstateInfo {
    /// `RUNSTATE_*`.
    pub state: i32,
    pub _pad0: [u8; 4],
    /// System time (ns) when the current state was entered.
    pub state_entry_time: u64,
    /// Time spent in each `RUNSTATE_*` (ns).
    pub time: [u64; 4],
}

/// `struct vcpu_register_runstate_memory_area` (8 bytes): `addr` is a union of a
/// guest handle, a pointer and a `uint64_t p`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterRunstateMemoryArea {
    /// Guest virtual address of a [`VcpuRunstateInfo`].
    pub addr: u64,
}

/// `struct vcpu_set_periodic_timer`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuSetPeriodicTimer {
    pub period_ns: u64,
}

/// `struct vcpu_set_singleshot_timer` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute system time in nanoseconds.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    pub _pad0: [u8; 4],
}

/// `struct vcpu_register_vcpu_info` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterVcpuInfo {
    /// Frame to place the `vcpu_info` in.
    pub mfn: u64,
    /// Offset within that page (the 64 bytes must not cross it).
    pub offset: u32,
    pub rsvd: u32,
}

/// `struct vcpu_get_physid`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuGetPhysid {
    pub phys_id: u64,
}

/// `struct vcpu_register_time_memory_area` (8 bytes; `addr` is a union like
/// [`VcpuRegisterRunstateMemoryArea::addr`]).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuRegisterTimeMemoryArea {
    /// Guest virtual address of a `vcpu_time_info`.
    pub addr: u64,
}
