//! Typed hypercalls. Arguments travel through the scratch arena (`arch::mem`): copied
//! in, the hypercall issued with arena pointers, results copied back out. Nothing here
//! needs `unsafe`.

use crate::arch::x86_64::hypercall::call;
use crate::arch::x86_64::mem::{scratch_addr, scratch_get, scratch_put};
use xen_abi::hypercall as nr;
use xen_abi::xen::{MmuUpdate, MmuextOp, MulticallEntry, DOMID_SELF};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Arena offsets: the main argument (or array), and a second buffer (`done` counts,
/// grant frame lists) in the second half.
pub const ARG: usize = 0;
pub const AUX: usize = 8192;

/// `nr(cmd, &arg)` for the `(cmd, pointer)` hypercalls: event_channel_op, sched_op,
/// callback_op, memory_op, physdev_op, xen_version...
pub fn op<T: IntoBytes + FromBytes + Immutable>(nr: u64, cmd: u64, arg: &mut T) -> i64 {
    scratch_put(ARG, arg);
    let r = call(nr, [cmd, scratch_addr(ARG), 0, 0, 0]);
    *arg = scratch_get(ARG);
    r
}

pub fn evtchn<T: IntoBytes + FromBytes + Immutable>(cmd: u32, arg: &mut T) -> i64 {
    op(nr::HYPERVISOR_event_channel_op, u64::from(cmd), arg)
}

pub fn sched<T: IntoBytes + FromBytes + Immutable>(cmd: u32, arg: &mut T) -> i64 {
    op(nr::HYPERVISOR_sched_op, u64::from(cmd), arg)
}

/// `vcpu_op(cmd, vcpu, &arg)`.
pub fn vcpu<T: IntoBytes + FromBytes + Immutable>(cmd: u32, vcpu: u32, arg: &mut T) -> i64 {
    scratch_put(ARG, arg);
    let r = call(nr::HYPERVISOR_vcpu_op, [u64::from(cmd), u64::from(vcpu), scratch_addr(ARG), 0, 0]);
    *arg = scratch_get(ARG);
    r
}

/// `grant_table_op(cmd, &arg, 1)`.
pub fn grant<T: IntoBytes + FromBytes + Immutable>(cmd: u32, arg: &mut T) -> i64 {
    scratch_put(ARG, arg);
    let r = call(nr::HYPERVISOR_grant_table_op, [u64::from(cmd), scratch_addr(ARG), 1, 0, 0]);
    *arg = scratch_get(ARG);
    r
}

/// `mmu_update(reqs, count, &done, foreigndom)`: (result, done).
pub fn mmu_update(reqs: &[MmuUpdate], foreigndom: u16) -> (i64, u32) {
    scratch_put(ARG, reqs);
    scratch_put(AUX, &0u32);
    let args = [scratch_addr(ARG), reqs.len() as u64, scratch_addr(AUX), u64::from(foreigndom), 0];
    let r = call(nr::HYPERVISOR_mmu_update, args);
    (r, scratch_get(AUX))
}

pub fn mmu_update_self(reqs: &[MmuUpdate]) -> (i64, u32) {
    mmu_update(reqs, DOMID_SELF.0)
}

/// `mmuext_op(ops, count, &done, foreigndom)`: (result, done).
pub fn mmuext(ops: &[MmuextOp], foreigndom: u16) -> (i64, u32) {
    scratch_put(ARG, ops);
    scratch_put(AUX, &0u32);
    let args = [scratch_addr(ARG), ops.len() as u64, scratch_addr(AUX), u64::from(foreigndom), 0];
    let r = call(nr::HYPERVISOR_mmuext_op, args);
    (r, scratch_get(AUX))
}

pub fn mmuext1(cmd: u32, arg1: u64, arg2: u64) -> i64 {
    mmuext(&[MmuextOp { cmd, arg1, arg2, ..Default::default() }], DOMID_SELF.0).0
}

/// `update_va_mapping(va, pte, flags)`: Xen resolves `va` through the current page
/// tables; it never dereferences it.
pub fn update_va_mapping(va: u64, pte: u64, flags: u64) -> i64 {
    crate::arch::x86_64::hypercall::update_va_mapping(va, pte, flags)
}

/// `multicall(entries, n)`; results are copied back into `entries`.
pub fn multicall(entries: &mut [MulticallEntry]) -> i64 {
    scratch_put(ARG, &*entries);
    let r = call(nr::HYPERVISOR_multicall, [scratch_addr(ARG), entries.len() as u64, 0, 0, 0]);
    for (i, e) in entries.iter_mut().enumerate() {
        *e = scratch_get(ARG + i * core::mem::size_of::<MulticallEntry>());
    }
    r
}

pub fn sched_block() -> i64 {
    call(nr::HYPERVISOR_sched_op, [u64::from(xen_abi::sched::SCHEDOP_block), 0, 0, 0, 0])
}

/// `SCHEDOP_poll`: sleeps until one of `ports` is pending or system time `timeout_ns`.
pub fn poll(ports: &[u32], timeout_ns: u64) -> i64 {
    scratch_put(AUX, ports);
    let mut p = xen_abi::sched::SchedPoll {
        ports: scratch_addr(AUX),
        nr_ports: ports.len() as u32,
        timeout: timeout_ns,
        ..Default::default()
    };
    sched(xen_abi::sched::SCHEDOP_poll, &mut p)
}

pub fn sched_yield() -> i64 {
    call(nr::HYPERVISOR_sched_op, [u64::from(xen_abi::sched::SCHEDOP_yield), 0, 0, 0, 0])
}

// ---------------------------------------------------------------- event channels

use xen_abi::event_channel::*;

fn port_or_err(r: i64, port: u32) -> Result<u32, i64> {
    if r == 0 {
        Ok(port)
    } else {
        Err(r)
    }
}

/// The new port notifies `vcpu`: record it so that vCPU's upcall handles it.
fn bound_to(r: Result<u32, i64>, vcpu: u32) -> Result<u32, i64> {
    if let Ok(port) = r {
        crate::evtchn::bound(port, vcpu);
    }
    r
}

pub fn bind_ipi(vcpu: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindIpi { vcpu, port: 0 };
    let r = evtchn(EVTCHNOP_bind_ipi, &mut a);
    bound_to(port_or_err(r, a.port), vcpu)
}

pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindVirq { virq, vcpu, port: 0 };
    let r = evtchn(EVTCHNOP_bind_virq, &mut a);
    bound_to(port_or_err(r, a.port), vcpu)
}

pub fn alloc_unbound(dom: u16, remote_dom: u16) -> Result<u32, i64> {
    let mut a = EvtchnAllocUnbound { dom, remote_dom, port: 0 };
    let r = evtchn(EVTCHNOP_alloc_unbound, &mut a);
    bound_to(port_or_err(r, a.port), 0)
}

pub fn bind_interdomain(remote_dom: u16, remote_port: u32) -> Result<u32, i64> {
    let mut a = EvtchnBindInterdomain { remote_dom, remote_port, ..Default::default() };
    let r = evtchn(EVTCHNOP_bind_interdomain, &mut a);
    bound_to(port_or_err(r, a.local_port), 0)
}

/// `EVTCHNOP_bind_vcpu`: `port` now notifies `vcpu`.
pub fn bind_vcpu(port: u32, vcpu: u32) -> i64 {
    let r = evtchn(EVTCHNOP_bind_vcpu, &mut EvtchnBindVcpu { port, vcpu });
    if r == 0 {
        crate::evtchn::bound(port, vcpu);
    }
    r
}

pub fn send(port: u32) -> i64 {
    evtchn(EVTCHNOP_send, &mut EvtchnSend { port })
}

pub fn close(port: u32) -> i64 {
    let r = evtchn(EVTCHNOP_close, &mut EvtchnClose { port });
    if r == 0 {
        // A port number handed out again belongs to vCPU 0 until bound elsewhere.
        crate::evtchn::bound(port, 0);
    }
    r
}

pub fn unmask(port: u32) -> i64 {
    evtchn(EVTCHNOP_unmask, &mut EvtchnUnmask { port })
}

pub fn status(port: u32) -> Result<EvtchnStatus, i64> {
    let mut a = EvtchnStatus { dom: DOMID_SELF.0, port, ..Default::default() };
    let r = evtchn(EVTCHNOP_status, &mut a);
    if r == 0 {
        Ok(a)
    } else {
        Err(r)
    }
}
