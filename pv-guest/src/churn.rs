//! vCPU 1's concurrent work (issue 14: the hostile suite and the fuzzer run with two
//! vCPUs per guest). While vCPU 0 runs the hostile suite or its fuzz stream, vCPU 1
//! issues, from its own seed, a mix of legitimate hypercalls whose results it checks
//! (`xen_version`, an IPI to itself, a grant of its own mapped, read and unmapped, a
//! grant copy between two of its pages, `mmu_update` of a window entry of its own read
//! back through the mapping, TLB flushes naming both vCPUs, its run state, yields) and
//! hostile ones that must be refused (non-canonical and hypervisor pointers, its own L1
//! mapped writable, an unknown hypercall, a port past the end).
//!
//! Strict (the hostile suite): any legitimate call that fails or reads back the wrong
//! value, or any hostile one accepted, is a violation. Lenient (the fuzzer, which closes
//! ports, switches grant versions and so on at random): only an accepted hostile call
//! is. vCPU 0 can stop the grant maps (`quiesce_maps`: the maptrack limit test counts
//! every handle of the domain) and, at the end, the whole loop (`stop`).

// Test failures carry their message in a fixed buffer (no allocator).
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::hypercall::{call, raw_no_args};
use crate::arch::x86_64::mem::{scratch_addr, scratch_put, WindowPage};
use crate::arch::x86_64::sync::SpinLock;
use crate::arch::x86_64::traps;
use crate::mm::pte;
use crate::selftest::{fail, TestResult};
use crate::{hv, paging, println, shared};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use xen_abi::arch_x86_64::HYPERVISOR_VIRT_START;
use xen_abi::grant_table::*;
use xen_abi::hypercall::*;
use xen_abi::xen::{MmuUpdate, MmuextOp, DOMID_SELF, MMUEXT_TLB_FLUSH_MULTI, UVMF_INVLPG};

const NONCANONICAL: u64 = 0xdead_beef_0000_0000;
const XEN_VA: u64 = 0xffff_8300_0000_0000;
/// The grant reference vCPU 1 gives its own page (frame 0; the hostile suite uses 9-11
/// and 512.., the fuzzer 8..48).
const GREF: u32 = 60;
/// Where vCPU 1 keeps its flush mask in its scratch arena.
const MASK: usize = 12288;
/// How long vCPU 0 waits for vCPU 1 (system time; TCG on a loaded machine is slow).
const PATIENCE_NS: u64 = 30_000_000_000;

const PHASE_ALL: u32 = 1;
const PHASE_NO_MAPS: u32 = 2;
const PHASE_STOP: u32 = 3;

/// What vCPU 0 asks for, and what vCPU 1 last saw at the top of its loop (it acts on
/// nothing older once it shows the new phase).
static PHASE: AtomicU32 = AtomicU32::new(0);
static SEEN: AtomicU32 = AtomicU32::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);
static MAPS: AtomicU64 = AtomicU64::new(0);
/// Legitimate calls that failed in lenient mode (not violations there).
static REFUSED: AtomicU64 = AtomicU64::new(0);
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);
/// The first violation: op << 32 | the result's low 32 bits.
static FIRST: AtomicU64 = AtomicU64::new(u64::MAX);
static STRICT: AtomicBool = AtomicBool::new(true);

/// What vCPU 0 sets up for vCPU 1 (taken by vCPU 1 when it starts).
struct Res {
    seed: u64,
    /// The granted page (marker in word 0) and where vCPU 1 maps it.
    marker: u64,
    map_va: u64,
    self_id: u16,
    /// The grant copy's two pages.
    a: WindowPage,
    a_mfn: u64,
    b: WindowPage,
    b_mfn: u64,
    /// A window page of vCPU 1's (its L1 entry's machine address and that L1's frame),
    /// and the frame it maps there (marker in word 0).
    win_va: u64,
    win_l1e: u64,
    q_mfn: u64,
    q_marker: u64,
}

static RES: SpinLock<Option<Res>> = SpinLock::new(None);

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = shared::now_ns() + PATIENCE_NS;
    while !cond() {
        if shared::now_ns() > deadline {
            return false;
        }
        hv::sched_yield();
    }
    true
}

/// Sets up vCPU 1's pages and grant, brings vCPU 1 up and waits until it has done a
/// first round of everything (a grant map included, so its maptrack free list exists
/// before vCPU 0's tests start). `self_id`: our domain id, for the grant entry.
pub fn start(seed: u64, self_id: u16, strict: bool) -> TestResult {
    let e = |what: &str, r: i64| fail(format_args!("{what}: {r}"));
    let table = crate::net::grant_table()?;
    let (p, _, p_mfn) = paging::new_page().map_err(|r| e("granted page", r))?;
    let marker = 0xc4a2_0000_0000_0000 | seed;
    p.u64(0).store(marker, Ordering::SeqCst);
    let map_va = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)).map_err(|r| e("map window", r))?;
    crate::net::grant_entry(&table, GREF, p_mfn, self_id, true);
    let (a, _, a_mfn) = paging::new_page().map_err(|r| e("copy source", r))?;
    let (b, _, b_mfn) = paging::new_page().map_err(|r| e("copy destination", r))?;
    let win_va = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)).map_err(|r| e("mmu window", r))?;
    let win_l1e = paging::l1_entry_maddr(win_va).map_err(|r| e("mmu window L1", r))?;
    let (q, _, q_mfn) = paging::new_page().map_err(|r| e("mmu page", r))?;
    // Lenient (beside the fuzzer): whatever window the caller takes next starts in
    // another L1 table than ours, so its checks of its own tables never see our writes.
    if !strict {
        paging::alloc_window(512).map_err(|r| e("spacer", r))?;
    }
    let q_marker = 0x0a11_0000_0000_0000 | seed;
    q.u64(0).store(q_marker, Ordering::SeqCst);
    *RES.lock() = Some(Res { seed, marker, map_va, self_id, a, a_mfn, b, b_mfn, win_va, win_l1e, q_mfn, q_marker });
    STRICT.store(strict, Ordering::Release);
    PHASE.store(PHASE_ALL, Ordering::Release);
    crate::smp::start_vcpu1()?;
    if !wait_until(|| MAPS.load(Ordering::Acquire) > 0 && CALLS.load(Ordering::Acquire) >= 32) {
        return Err(fail(format_args!(
            "vCPU 1 is up but made {} calls ({} grant maps) in {} s",
            CALLS.load(Ordering::Acquire),
            MAPS.load(Ordering::Acquire),
            PATIENCE_NS / 1_000_000_000
        )));
    }
    Ok(())
}

fn set_phase(p: u32) -> bool {
    PHASE.store(p, Ordering::Release);
    wait_until(|| SEEN.load(Ordering::Acquire) == p)
}

/// No more grant maps from vCPU 1 (none in flight once this returns true).
pub fn quiesce_maps() -> bool {
    PHASE.load(Ordering::Acquire) == 0 || set_phase(PHASE_NO_MAPS)
}

/// Stops vCPU 1 (it takes itself down) and reports what it did.
pub fn stop() -> TestResult {
    if PHASE.load(Ordering::Acquire) == 0 {
        return Err(fail(format_args!("vCPU 1 never started")));
    }
    let stopped = set_phase(PHASE_STOP);
    let (calls, maps, refused, bad) = (
        CALLS.load(Ordering::Acquire),
        MAPS.load(Ordering::Acquire),
        REFUSED.load(Ordering::Acquire),
        VIOLATIONS.load(Ordering::Acquire),
    );
    println!("CHURN vCPU 1: {calls} calls ({maps} grant map rounds), {refused} legitimate calls refused (lenient), {bad} violations");
    if !stopped {
        return Err(fail(format_args!("vCPU 1 did not stop ({calls} calls)")));
    }
    if bad > 0 {
        let f = FIRST.load(Ordering::Acquire);
        return Err(fail(format_args!("{bad} violations on vCPU 1 in {calls} calls; first: op {} result {}", f >> 32, f as u32 as i32)));
    }
    if calls == 0 || maps == 0 {
        return Err(fail(format_args!("vCPU 1 made {calls} calls, {maps} grant maps")));
    }
    Ok(())
}

/// vCPU 1's loop (from `smp::secondary_main`).
pub fn vcpu1_main() -> ! {
    let r = RES.lock().take();
    let Some(r) = r else {
        VIOLATIONS.fetch_add(1, Ordering::AcqRel);
        park();
    };
    let mut rng = r.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let version = call(HYPERVISOR_xen_version, [0, 0, 0, 0, 0]);
    let port = hv::bind_ipi(1).ok();
    if let Some(p) = port {
        crate::evtchn::unmask(p);
    }
    let strict = STRICT.load(Ordering::Acquire);
    loop {
        let phase = PHASE.load(Ordering::Acquire);
        SEEN.store(phase, Ordering::Release);
        if phase == PHASE_STOP {
            break;
        }
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        let pick = rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let op = (pick >> 32) % 14;
        let (legit, ok, result) = one(&r, op, pick, phase, version, port);
        CALLS.fetch_add(1, Ordering::AcqRel);
        if !strict && CALLS.load(Ordering::Relaxed).is_multiple_of(8) {
            // Beside the fuzzer, on a machine shared by several fuzzing domains: the CPU
            // goes to whoever else can run every few calls.
            hv::sched_yield();
        }
        if !ok {
            if legit && !strict {
                REFUSED.fetch_add(1, Ordering::AcqRel);
            } else if VIOLATIONS.fetch_add(1, Ordering::AcqRel) == 0 {
                FIRST.store(op << 32 | u64::from(result as u32), Ordering::Release);
            }
        }
    }
    park()
}

/// Down for good (VCPUOP_down of itself; it never comes back up).
fn park() -> ! {
    loop {
        hv::vcpu(xen_abi::vcpu::VCPUOP_down, 1, &mut ());
    }
}

/// One call: (legitimate, as expected, the result).
fn one(r: &Res, op: u64, pick: u64, phase: u32, version: i64, port: Option<u32>) -> (bool, bool, i64) {
    let off = ((pick & 0x1ff) * 8) as usize;
    match op {
        0 => {
            let v = call(HYPERVISOR_xen_version, [0, 0, 0, 0, 0]);
            (true, v == version && v > 0, v)
        }
        1 => match port {
            Some(p) => {
                let v = hv::send(p);
                (true, v == 0, v)
            }
            None => (true, false, -1),
        },
        2 if phase == PHASE_ALL => {
            let mut m = GnttabMapGrantRef { host_addr: r.map_va, flags: GNTMAP_host_map | GNTMAP_readonly, ref_: GREF, dom: r.self_id, ..Default::default() };
            let v = hv::grant(GNTTABOP_map_grant_ref, &mut m);
            if v != 0 || m.status != GNTST_okay {
                return (true, false, if v != 0 { v } else { i64::from(m.status) });
            }
            MAPS.fetch_add(1, Ordering::AcqRel);
            let seen = traps::read_u64(r.map_va);
            let mut u = GnttabUnmapGrantRef { host_addr: r.map_va, handle: m.handle, ..Default::default() };
            let v = hv::grant(GNTTABOP_unmap_grant_ref, &mut u);
            let gone = traps::read_u64(r.map_va).is_err();
            (true, seen == Ok(r.marker) && v == 0 && u.status == GNTST_okay && gone, if v != 0 { v } else { i64::from(u.status) - 1000 })
        }
        3 => {
            let val = pick ^ 0x5a5a_0000_0000_0000;
            r.a.u64(off).store(val, Ordering::SeqCst);
            let mut c = GnttabCopy {
                source: GnttabCopyPtr { u: r.a_mfn, domid: DOMID_SELF.0, offset: off as u16, ..Default::default() },
                dest: GnttabCopyPtr { u: r.b_mfn, domid: DOMID_SELF.0, offset: off as u16, ..Default::default() },
                len: 8,
                ..Default::default()
            };
            let v = hv::grant(GNTTABOP_copy, &mut c);
            let got = r.b.u64(off).load(Ordering::SeqCst);
            (true, v == 0 && c.status == GNTST_okay && got == val, if v != 0 { v } else { i64::from(c.status) })
        }
        4 => {
            let (v, done) = hv::mmu_update_self(&[MmuUpdate { ptr: r.win_l1e, val: pte::make(r.q_mfn, pte::KERNEL_RO) }]);
            let seen = traps::read_u64(r.win_va);
            let (v2, _) = hv::mmu_update_self(&[MmuUpdate { ptr: r.win_l1e, val: 0 }]);
            crate::arch::x86_64::hypercall::update_va_mapping(r.win_va, 0, UVMF_INVLPG);
            (true, v == 0 && done == 1 && seen == Ok(r.q_marker) && v2 == 0, if v != 0 { v } else { v2 })
        }
        5 => {
            let v = call(HYPERVISOR_mmu_update, [NONCANONICAL, 1, 0, u64::from(DOMID_SELF.0), 0]);
            (false, v < 0, v)
        }
        6 => {
            let v = call(HYPERVISOR_grant_table_op, [GNTTABOP_copy.into(), XEN_VA, 1, 0, 0]);
            (false, v < 0, v)
        }
        7 => {
            let v = hv::update_va_mapping(HYPERVISOR_VIRT_START + 0x1000, 0, UVMF_INVLPG);
            (false, v < 0, v)
        }
        8 => {
            scratch_put(MASK, &3u64);
            let (v, _) = hv::mmuext(&[MmuextOp { cmd: MMUEXT_TLB_FLUSH_MULTI, arg2: scratch_addr(MASK), ..Default::default() }], DOMID_SELF.0);
            (true, v == 0, v)
        }
        9 => {
            let mut info = xen_abi::vcpu::VcpuRunstateInfo::default();
            let v = hv::vcpu(xen_abi::vcpu::VCPUOP_get_runstate_info, 1, &mut info);
            (true, v == 0 && info.state == xen_abi::vcpu::RUNSTATE_running, v)
        }
        11 => {
            // Our own L1 mapped writable through itself: a page table is never writable.
            let l1 = r.win_l1e >> 12;
            let (v, _) = hv::mmu_update_self(&[MmuUpdate { ptr: r.win_l1e, val: pte::make(l1, pte::KERNEL_RW) }]);
            let after = paging::lookup(r.win_va);
            (false, v < 0 && after.is_none_or(|e| !pte::present(e)), v)
        }
        12 => {
            let v = raw_no_args(100);
            (false, v < 0, v)
        }
        13 => {
            let v = hv::send(4096);
            (false, v < 0, v)
        }
        _ => {
            let v = hv::sched_yield();
            (true, v == 0, v)
        }
    }
}
