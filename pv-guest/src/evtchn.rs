//! Event channels on this vCPU: the upcall handler, masking, and waiting.

use crate::events::{self, PortCounters};
use crate::{hv, shared};
use core::sync::atomic::Ordering;

/// Dispatch counts per port.
pub static HITS: PortCounters = PortCounters::new();

/// Called from the event callback (events masked by Xen on entry).
pub fn upcall() {
    if shared::page().is_some() {
        events::scan(&shared::Vcpu0Events, |port| HITS.record(port));
    }
}

/// Masks every port, then enables event delivery (clears `evtchn_upcall_mask`).
pub fn init() {
    for w in 0..xen_abi::xen::EVTCHN_WORDS {
        shared::mask_word(w).store(!0, Ordering::SeqCst);
    }
    enable();
}

/// Unmasks delivery; any event already pending is delivered on the next hypercall
/// return (an `xen_version` does it at once).
pub fn enable() {
    shared::upcall_mask().store(0, Ordering::SeqCst);
    if shared::upcall_pending().load(Ordering::SeqCst) != 0 {
        crate::arch::x86_64::hypercall::xen_version_no_arg(0);
    }
}

pub fn disable() {
    shared::upcall_mask().store(1, Ordering::SeqCst);
}

/// Unmasks `port`: EVTCHNOP_unmask clears the mask bit and re-raises the port if it is
/// pending. The bit must still be set when the hypercall runs: Xen re-raises only a port
/// it unmasks itself, so clearing it here first would leave an event that arrived while
/// masked (the one `bind_interdomain` always sets) pending for ever, and every later
/// event on the port merged into it unseen.
pub fn unmask(port: u32) -> i64 {
    hv::unmask(port)
}

/// How `wait_for` sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// SCHEDOP_block: until any event (the caller must have one coming, e.g. a timer).
    Block,
    /// SCHEDOP_poll on the port with the deadline as its timeout.
    Poll,
}

/// Sleeps until `port` has been dispatched more than `seen` times or `deadline_ns` of
/// system time passes. Returns whether the port fired.
pub fn wait_for(port: u32, seen: u32, deadline_ns: u64, how: Sleep) -> bool {
    loop {
        // Mask, test, then sleep: SCHEDOP_block unmasks atomically and returns at once if
        // an event is pending, and SCHEDOP_poll returns at once if the port is pending
        // (with events masked the pending bit stays set), so no wakeup is lost.
        disable();
        if HITS.count(port) > seen {
            enable();
            return true;
        }
        if shared::now_ns() >= deadline_ns {
            enable();
            return false;
        }
        match how {
            Sleep::Block => hv::sched_block(),
            Sleep::Poll => hv::poll(&[port], deadline_ns),
        };
        enable();
    }
}
