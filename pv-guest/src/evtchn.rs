//! Event channels: the upcall handler (each vCPU handles the ports bound to it),
//! masking and waiting on the running vCPU, and which vCPU each port is bound to.

use crate::arch::x86_64::smp::{self, MAX_VCPUS};
use crate::events::{self, PortCounters, NR_PORTS};
use crate::{hv, shared};
use core::sync::atomic::{AtomicU64, Ordering};

/// Dispatch counts per port, on any vCPU.
pub static HITS: PortCounters = PortCounters::new();
/// Dispatch counts per port on each vCPU.
pub static HITS_ON: [PortCounters; MAX_VCPUS] = [const { PortCounters::new() }; MAX_VCPUS];

const WORDS: usize = NR_PORTS / 64;

/// For vCPUs 1.., the ports bound to them; vCPU 0 has every other port (Xen binds a new
/// port to vCPU 0 unless told otherwise). Row 0 is unused.
static BOUND: [[AtomicU64; WORDS]; MAX_VCPUS] = [const { [const { AtomicU64::new(0) }; WORDS] }; MAX_VCPUS];

/// The ports of `word` bound to vCPU `cpu`, as far as this kernel bound them.
pub fn owned(cpu: usize, word: usize) -> u64 {
    if cpu != 0 {
        return BOUND[cpu][word].load(Ordering::Acquire);
    }
    !BOUND[1..].iter().fold(0, |acc, row| acc | row[word].load(Ordering::Acquire))
}

/// Records that `port` now notifies vCPU `vcpu` (after a bind or EVTCHNOP_bind_vcpu).
pub fn bound(port: u32, vcpu: u32) {
    let (word, bit) = events::port_position(port);
    if word >= WORDS {
        return;
    }
    for (cpu, row) in BOUND.iter().enumerate().skip(1) {
        if cpu == vcpu as usize {
            row[word].fetch_or(bit, Ordering::AcqRel);
        } else {
            row[word].fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

/// Drops an event pending on `port` unseen (e.g. the one `bind_interdomain` raises), as
/// the upcall would clear it.
pub fn discard_pending(port: u32) {
    let (word, bit) = events::port_position(port);
    if word < WORDS {
        shared::pending_word(word).fetch_and(!bit, Ordering::SeqCst);
    }
}

/// Called from the event callback (events masked by Xen on entry).
pub fn upcall() {
    if shared::page().is_some() {
        let cpu = smp::current();
        events::scan(&shared::VcpuEvents { cpu }, |port| {
            HITS.record(port);
            HITS_ON[cpu].record(port);
        });
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
