//! `event_channel.h`: `HYPERVISOR_event_channel_op` commands and argument
//! structures, plus the FIFO ABI constants.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `EVTCHNOP_bind_interdomain`
pub const EVTCHNOP_bind_interdomain: u32 = 0;
/// `EVTCHNOP_bind_virq`
pub const EVTCHNOP_bind_virq: u32 = 1;
/// `EVTCHNOP_bind_pirq`
pub const EVTCHNOP_bind_pirq: u32 = 2;
/// `EVTCHNOP_close`
pub const EVTCHNOP_close: u32 = 3;
/// `EVTCHNOP_send`
pub const EVTCHNOP_send: u32 = 4;
/// `EVTCHNOP_status`
pub const EVTCHNOP_status: u32 = 5;
/// `EVTCHNOP_alloc_unbound`
pub const EVTCHNOP_alloc_unbound: u32 = 6;
/// `EVTCHNOP_bind_ipi`
pub const EVTCHNOP_bind_ipi: u32 = 7;
/// `EVTCHNOP_bind_vcpu`
pub const EVTCHNOP_bind_vcpu: u32 = 8;
/// `EVTCHNOP_unmask`
pub const EVTCHNOP_unmask: u32 = 9;
/// `EVTCHNOP_reset`
pub const EVTCHNOP_reset: u32 = 10;
/// `EVTCHNOP_init_control` (FIFO ABI)
pub const EVTCHNOP_init_control: u32 = 11;
/// `EVTCHNOP_expand_array` (FIFO ABI)
pub const EVTCHNOP_expand_array: u32 = 12;
/// `EVTCHNOP_set_priority` (FIFO ABI)
pub const EVTCHNOP_set_priority: u32 = 13;

/// `EVTCHNSTAT_closed`: channel is not in use.
pub const EVTCHNSTAT_closed: u32 = 0;
/// `EVTCHNSTAT_unbound`: waiting for an interdomain connection.
pub const EVTCHNSTAT_unbound: u32 = 1;
/// `EVTCHNSTAT_interdomain`: connected to a remote domain.
pub const EVTCHNSTAT_interdomain: u32 = 2;
/// `EVTCHNSTAT_pirq`: bound to a physical IRQ.
pub const EVTCHNSTAT_pirq: u32 = 3;
/// `EVTCHNSTAT_virq`: bound to a virtual IRQ.
pub const EVTCHNSTAT_virq: u32 = 4;
/// `EVTCHNSTAT_ipi`: bound to a virtual IPI.
pub const EVTCHNSTAT_ipi: u32 = 5;

/// `BIND_PIRQ__WILL_SHARE`
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

/// `EVTCHN_2L_NR_CHANNELS` on x86-64 (4096).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 8 * 8 * 64;

/// `EVTCHN_FIFO_PRIORITY_MAX`
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// `EVTCHN_FIFO_PRIORITY_MIN`
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// `EVTCHN_FIFO_MAX_QUEUES`
pub const EVTCHN_FIFO_MAX_QUEUES: usize = EVTCHN_FIFO_PRIORITY_MIN as usize + 1;
/// `EVTCHN_FIFO_PENDING` (bit number in an `event_word_t`)
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// `EVTCHN_FIFO_MASKED`
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// `EVTCHN_FIFO_LINKED`
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// `EVTCHN_FIFO_BUSY`
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// `EVTCHN_FIFO_LINK_BITS`
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// `EVTCHN_FIFO_LINK_MASK`
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// `EVTCHN_FIFO_NR_CHANNELS`
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;

/// `struct evtchn_alloc_unbound` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    /// OUT.
    pub port: u32,
}

/// `struct evtchn_bind_interdomain` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: u16,
    pub _pad0: [u8; 2],
    pub remote_port: u32,
    /// OUT.
    pub local_port: u32,
}

/// `struct evtchn_bind_virq` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindVirq {
    /// `VIRQ_*`.
    pub virq: u32,
    pub vcpu: u32,
    /// OUT.
    pub port: u32,
}

/// `struct evtchn_bind_pirq` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindPirq {
    pub pirq: u32,
    /// `BIND_PIRQ__*`.
    pub flags: u32,
    /// OUT.
    pub port: u32,
}

/// `struct evtchn_bind_ipi` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindIpi {
    pub vcpu: u32,
    /// OUT.
    pub port: u32,
}

/// `struct evtchn_close`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnClose {
    pub port: u32,
}

/// `struct evtchn_send`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnSend {
    pub port: u32,
}

/// `struct evtchn_status` (24 bytes). `u` is a C union; use the accessors.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnStatus {
    pub dom: u16,
    pub _pad0: [u8; 2],
    pub port: u32,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: vCPU the channel is bound to.
    pub vcpu: u32,
    /// OUT: `union { unbound{dom}; interdomain{dom, port}; pirq; virq; } u`.
    pub u: [u32; 2],
}

impl EvtchnStatus {
    /// `u.unbound.dom` / `u.interdomain.dom` (low 16 bits of the first word).
    pub const fn remote_dom(&self) -> u16 {
        self.u[0] as u16
    }
    /// `u.interdomain.port`.
    pub const fn remote_port(&self) -> u32 {
        self.u[1]
    }
    /// `u.pirq`.
    pub const fn pirq(&self) -> u32 {
        self.u[0]
    }
    /// `u.virq`.
    pub const fn virq(&self) -> u32 {
        self.u[0]
    }
    /// Fills `u.unbound`.
    pub fn set_unbound(&mut self, dom: u16) {
        self.u = [dom as u32, 0];
    }
    /// Fills `u.interdomain`.
    pub fn set_interdomain(&mut self, dom: u16, port: u32) {
        self.u = [dom as u32, port];
    }
    /// Fills `u.pirq` or `u.virq`.
    pub fn set_irq(&mut self, irq: u32) {
        self.u = [irq, 0];
    }
}

/// `struct evtchn_bind_vcpu` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindVcpu {
    pub port: u32,
    pub vcpu: u32,
}

/// `struct evtchn_unmask`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnUnmask {
    pub port: u32,
}

/// `struct evtchn_reset`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnReset {
    pub dom: u16,
}

/// `struct evtchn_init_control` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnInitControl {
    pub control_gfn: u64,
    pub offset: u32,
    pub vcpu: u32,
    /// OUT.
    pub link_bits: u8,
    pub _pad: [u8; 7],
}

/// `struct evtchn_expand_array`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnExpandArray {
    pub array_gfn: u64,
}

/// `struct evtchn_set_priority`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnSetPriority {
    pub port: u32,
    pub priority: u32,
}

/// `struct evtchn_op` (28 bytes): the argument of the compat hypercall
/// `event_channel_op_compat` (16). `u` holds one of the structures above; convert
/// with `zerocopy` (e.g. `EvtchnSend::read_from_prefix(op.u.as_bytes())`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnOp {
    /// `EVTCHNOP_*`.
    pub cmd: u32,
    /// The union, sized by its largest member (`evtchn_status`).
    pub u: [u32; 6],
}

/// `struct evtchn_fifo_control_block` (72 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnFifoControlBlock {
    pub ready: u32,
    pub _rsvd: u32,
    pub head: [u32; EVTCHN_FIFO_MAX_QUEUES],
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn status_union() {
        let mut s = EvtchnStatus::default();
        s.set_interdomain(3, 17);
        assert_eq!((s.remote_dom(), s.remote_port()), (3, 17));
        s.set_irq(9);
        assert_eq!(s.virq(), 9);
        assert_eq!(s.pirq(), 9);
    }

    #[test]
    fn compat_op_holds_every_payload() {
        let op = EvtchnOp {
            cmd: EVTCHNOP_send,
            u: [5, 0, 0, 0, 0, 0],
        };
        let (send, _) =
            <EvtchnSend as zerocopy::FromBytes>::read_from_prefix(op.u.as_bytes()).unwrap();
        assert_eq!(send.port, 5);
        assert!(core::mem::size_of::<EvtchnStatus>() <= core::mem::size_of_val(&op.u));
    }
}
