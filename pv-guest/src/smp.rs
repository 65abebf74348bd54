//! SMP self-tests (`tests=smp`): vCPU 1 brought up as Linux's `cpu_initialize_context`
//! does, then IPIs between the two vCPUs, event channels bound to each, a mapping
//! removed on vCPU 0 faulting on vCPU 1 after the flush, concurrent grant map/unmap,
//! and VCPUOP_down/up. vCPU 0 drives; vCPU 1 runs `secondary_main`, a worker that
//! executes the commands vCPU 0 posts in a mailbox. With one vCPU the group reports
//! itself skipped.

// Test failures carry their message in a fixed buffer (no allocator).
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::mem::{scratch_addr, scratch_put};
use crate::arch::x86_64::smp::{self, MAX_VCPUS};
use crate::arch::x86_64::traps;
use crate::evtchn::{self, Sleep, HITS_ON};
use crate::mm::pte;
use crate::selftest::{ensure, fail, Env, Failure, TestResult};
use crate::{hv, paging, println, shared, trap};
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use xen_abi::arch_x86_64::{VcpuGuestContext, FLAT_KERNEL_CS, FLAT_KERNEL_SS, VGCF_failsafe_disables_events, VGCF_in_kernel};
use xen_abi::vcpu::*;
use xen_abi::xen::{MmuUpdate, MmuextOp, DOMID_SELF, MMU_NORMAL_PT_UPDATE, UVMF_ALL, UVMF_INVLPG, UVMF_TLB_FLUSH, VIRQ_TIMER};

const ENOENT: i64 = -2;
const EINVAL: i64 = -22;
const EEXIST: i64 = -17;

/// How long vCPU 0 waits for vCPU 1 before calling it lost (system time; TCG is slow).
const PATIENCE_NS: u64 = 20_000_000_000;

/// Where a vCPU mask for flushes lives in the scratch arena (past `hv::AUX`'s use).
const MASK: usize = 12288;

// ---------------------------------------------------------------- per-vCPU data

/// What each vCPU's kernel GS base points at (`gs_base_kernel` in its context): a tag
/// naming the vCPU.
static PERCPU: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

const fn percpu_tag(cpu: usize) -> u64 {
    0x5043_5055_0000_0000 | cpu as u64 // "PCPU" | id
}

// ---------------------------------------------------------------- the mailbox

/// Commands vCPU 0 posts for vCPU 1.
mod cmd {
    /// -> [vCPU id by stack, %gs:0 or !vector, events mask]
    pub const HELLO: u32 = 1;
    /// -> [port or errno] (bound to vCPU 1, unmasked)
    pub const BIND_IPI: u32 = 2;
    /// (port) -> [send's result]
    pub const SEND: u32 = 3;
    /// -> [stop_periodic, port or errno, set_singleshot, fired, new dispatches on vCPU 1]
    pub const TIMER: u32 = 5;
    /// (va) -> [0 value | 1 vector, cr2, error code, #PF count on vCPU 1]
    pub const READ: u32 = 6;
    /// (gref, va, rounds, marker) -> [rounds done, failing step, its result]
    pub const GRANT_ROUNDS: u32 = 7;
    /// -> [VCPUOP_down's result, once up again]
    pub const DOWN: u32 = 8;
}

struct Mailbox {
    /// Bumped by vCPU 0 for every command, after the command and its arguments.
    seq: AtomicU32,
    cmd: AtomicU32,
    args: [AtomicU64; 4],
    /// The last sequence number vCPU 1 finished (results written before).
    done: AtomicU32,
    res: [AtomicU64; 5],
}

static MBOX: Mailbox = Mailbox {
    seq: AtomicU32::new(0),
    cmd: AtomicU32::new(0),
    args: [const { AtomicU64::new(0) }; 4],
    done: AtomicU32::new(0),
    res: [const { AtomicU64::new(0) }; 5],
};

/// vCPU 0's dispatches of vCPU 1's timer port when vCPU 1 bound it.
static T1_ON0_AT_BIND: AtomicU32 = AtomicU32::new(0);

/// Set by vCPU 1 when it reached Rust code with events enabled.
static ALIVE: AtomicU32 = AtomicU32::new(0);

/// Posts a command; returns its sequence number for `wait_done`.
fn post(c: u32, args: [u64; 4]) -> u32 {
    for (a, v) in MBOX.args.iter().zip(args) {
        a.store(v, Ordering::Relaxed);
    }
    MBOX.cmd.store(c, Ordering::Relaxed);
    let seq = MBOX.seq.load(Ordering::Relaxed) + 1;
    MBOX.seq.store(seq, Ordering::Release);
    seq
}

/// Waits (yielding the CPU) until `cond` holds; false when vCPU 1 never got there.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = shared::now_ns() + PATIENCE_NS;
    loop {
        if cond() {
            return true;
        }
        if shared::now_ns() > deadline {
            return false;
        }
        hv::sched_yield();
    }
}

fn wait_done(seq: u32, what: &str) -> Result<[u64; 5], Failure> {
    ensure!(wait_until(|| MBOX.done.load(Ordering::Acquire) == seq), "vCPU 1 did not finish `{what}`");
    Ok(core::array::from_fn(|i| MBOX.res[i].load(Ordering::Relaxed)))
}

fn on_vcpu1(c: u32, args: [u64; 4], what: &str) -> Result<[u64; 5], Failure> {
    let seq = post(c, args);
    wait_done(seq, what)
}

/// What vCPU 1 runs once up: the SMP tests' mailbox worker, or (`start_vcpu1`) the
/// concurrent work of `churn`.
static WORKER: AtomicU32 = AtomicU32::new(0);
const WORKER_CHURN: u32 = 1;

/// vCPU 1's life: enable events, then run commands until told to go down.
pub fn secondary_main(cpu: usize) -> ! {
    evtchn::enable();
    ALIVE.store(cpu as u32, Ordering::Release);
    if WORKER.load(Ordering::Acquire) == WORKER_CHURN {
        crate::churn::vcpu1_main();
    }
    let mut last = MBOX.done.load(Ordering::Acquire);
    loop {
        let seq = MBOX.seq.load(Ordering::Acquire);
        if seq == last {
            hv::sched_yield();
            continue;
        }
        let c = MBOX.cmd.load(Ordering::Relaxed);
        let a: [u64; 4] = core::array::from_fn(|i| MBOX.args[i].load(Ordering::Relaxed));
        let res = execute(c, a);
        for (r, v) in MBOX.res.iter().zip(res) {
            r.store(v, Ordering::Relaxed);
        }
        MBOX.done.store(seq, Ordering::Release);
        last = seq;
    }
}

fn port_or_errno(r: Result<u32, i64>) -> u64 {
    match r {
        Ok(p) => u64::from(p),
        Err(e) => e as u64,
    }
}

fn execute(c: u32, a: [u64; 4]) -> [u64; 5] {
    let me = smp::current();
    match c {
        cmd::HELLO => {
            let gs = smp::gs_word().unwrap_or_else(|v| !v);
            [me as u64, gs, u64::from(shared::upcall_mask().load(Ordering::SeqCst)), 0, 0]
        }
        cmd::BIND_IPI => {
            let r = hv::bind_ipi(me as u32);
            if let Ok(p) = r {
                evtchn::unmask(p);
            }
            [port_or_errno(r), 0, 0, 0, 0]
        }
        cmd::SEND => [hv::send(a[0] as u32) as u64, 0, 0, 0, 0],
        cmd::TIMER => {
            let mut out = [0; 5];
            out[0] = hv::vcpu(VCPUOP_stop_periodic_timer, me as u32, &mut ()) as u64;
            let r = hv::bind_virq(VIRQ_TIMER, me as u32);
            out[1] = port_or_errno(r);
            if let Ok(port) = r {
                T1_ON0_AT_BIND.store(HITS_ON[0].count(port), Ordering::Release);
                evtchn::unmask(port);
                let (seen, mine) = (evtchn::HITS.count(port), HITS_ON[me].count(port));
                let mut t = VcpuSetSingleshotTimer { timeout_abs_ns: shared::now_ns() + 20_000_000, ..Default::default() };
                out[2] = hv::vcpu(VCPUOP_set_singleshot_timer, me as u32, &mut t) as u64;
                out[3] = u64::from(evtchn::wait_for(port, seen, shared::now_ns() + PATIENCE_NS, Sleep::Block));
                out[4] = u64::from(HITS_ON[me].count(port) - mine);
            }
            out
        }
        cmd::READ => {
            let (outcome, value) = match traps::read_u64(a[0]) {
                Ok(v) => (0, v),
                Err(v) => (1, v),
            };
            let c = trap::last_caught();
            [outcome, value, c.cr2, c.error_code, u64::from(trap::count(14))]
        }
        cmd::GRANT_ROUNDS => {
            let (done, step, r) = grant_rounds(a[0] as u32, a[1], a[2], a[3]);
            [done, step, r as u64, 0, 0]
        }
        cmd::DOWN => [hv::vcpu(VCPUOP_down, me as u32, &mut ()) as u64, 0, 0, 0, 0],
        _ => [u64::MAX; 5],
    }
}

// ---------------------------------------------------------------- the tests

/// The group, in order: each step needs the ones before it.
type SmpTest = fn(&mut State<'_>) -> TestResult;

const TESTS: &[(&str, SmpTest)] = &[
    ("smp_vcpu_bringup", bringup),
    ("smp_ipi", ipi),
    ("smp_evtchn_per_vcpu", evtchn_per_vcpu),
    ("smp_tlb_flush", tlb_flush),
    ("smp_grant_concurrent", grant_concurrent),
    ("smp_vcpu_down", vcpu_down),
];

struct State<'a> {
    env: &'a Env<'a>,
    /// vCPU 1 runs its worker loop.
    up: bool,
}

/// Runs the group; `report` gets each test's result.
pub fn run(env: &Env<'_>, report: &mut dyn FnMut(&str, TestResult)) {
    let n = count_vcpus();
    if n < 2 {
        println!("TEST smp SKIP the domain has {n} vCPU(s)");
        return;
    }
    println!("pv-guest: smp: {n} vCPUs");
    let mut st = State { env, up: false };
    for (name, test) in TESTS {
        let r = if st.up || *name == "smp_vcpu_bringup" {
            test(&mut st)
        } else {
            Err(fail(format_args!("vCPU 1 is not running")))
        };
        report(name, r);
    }
}

/// Brings vCPU 1 up (as `bringup`, without its checks) to run `churn::vcpu1_main`.
/// Err when the domain has one vCPU or vCPU 1 does not come up.
pub fn start_vcpu1() -> TestResult {
    let n = count_vcpus();
    ensure!(n >= 2, "the domain has {n} vCPU(s)");
    ensure!(ALIVE.load(Ordering::Acquire) == 0, "vCPU 1 already ran");
    WORKER.store(WORKER_CHURN, Ordering::Release);
    for (cpu, p) in PERCPU.iter().enumerate() {
        p.store(percpu_tag(cpu), Ordering::Relaxed);
    }
    let (gdt, _, gdt_mfn) = paging::new_page().map_err(|r| fail(format_args!("GDT page: {r}")))?;
    let r = hv::update_va_mapping(gdt.va(), pte::make(gdt_mfn, pte::KERNEL_RO), UVMF_INVLPG);
    ensure!(r == 0, "GDT page read-only: {r}");
    let r = hv::vcpu(VCPUOP_initialise, 1, &mut context(gdt_mfn));
    ensure!(r == 0, "VCPUOP_initialise(1): {r}");
    let r = hv::vcpu(VCPUOP_up, 1, &mut ());
    ensure!(r == 0, "VCPUOP_up(1): {r}");
    ensure!(wait_until(|| ALIVE.load(Ordering::Acquire) == 1), "vCPU 1 never reached its entry point");
    Ok(())
}

/// Whether vCPU `vcpu` is up (VCPUOP_is_up: 1 up, 0 down, -ENOENT none).
pub fn is_up(vcpu: u32) -> i64 {
    hv::vcpu(VCPUOP_is_up, vcpu, &mut ())
}

/// vCPUs as Linux counts them: VCPUOP_is_up answers 0 or 1 for each that exists and
/// -ENOENT beyond.
pub fn count_vcpus() -> u32 {
    (0..64).take_while(|&v| is_up(v) >= 0).count() as u32
}

/// vCPU 1's context, as Linux's cpu_initialize_context builds one: kernel mode, flat
/// selectors, its own stack and GDT frame, the kernel's L4, the callbacks and the
/// virtual IDT, the kernel GS base at its per-CPU data.
fn context(gdt_mfn: u64) -> VcpuGuestContext {
    let mut c = VcpuGuestContext { flags: VGCF_in_kernel | VGCF_failsafe_disables_events, ..Default::default() };
    c.user_regs.rip = smp::secondary_entry_point();
    c.user_regs.rsp = smp::stack_top(1);
    c.user_regs.rdi = 1;
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS;
    c.user_regs.rflags = 0x1000; // IOPL 1, as Linux
    for t in trap::trap_table().iter().filter(|t| t.address != 0) {
        c.trap_ctxt[usize::from(t.vector)] = *t;
    }
    c.gdt_frames[0] = gdt_mfn;
    c.gdt_ents = 16;
    c.kernel_ss = u64::from(FLAT_KERNEL_SS);
    c.kernel_sp = smp::stack_top(1);
    c.ctrlreg[3] = xen_abi::arch_x86_64::xen_pfn_to_cr3(paging::l4_mfn());
    c.event_callback_eip = traps::upcall_entry();
    c.failsafe_callback_eip = traps::failsafe_entry();
    c.gs_base_kernel = PERCPU.as_ptr().wrapping_add(1) as u64;
    c
}

/// Brings vCPU 1 up, checking Xen's answers on the way: is_up counts, up before
/// initialise, a writable GDT frame, a second initialise, another vCPU's single-shot
/// timer. Those refusals are checked after vCPU 1 is up, so a wrong answer there does
/// not keep the other tests from running.
fn bringup(st: &mut State<'_>) -> TestResult {
    for (cpu, p) in PERCPU.iter().enumerate() {
        p.store(percpu_tag(cpu), Ordering::Relaxed);
    }
    let absent = MAX_VCPUS as u32 + 6;
    let before = [is_up(0), is_up(1), is_up(absent)];
    let up_uninit = hv::vcpu(VCPUOP_up, 1, &mut ());
    // The GDT frame: a fresh page, refused while we still map it writable.
    let (gdt, _, gdt_mfn) = paging::new_page().map_err(|r| fail(format_args!("GDT page: {r}")))?;
    let writable = hv::vcpu(VCPUOP_initialise, 1, &mut context(gdt_mfn));
    let r = hv::update_va_mapping(gdt.va(), pte::make(gdt_mfn, pte::KERNEL_RO), UVMF_INVLPG);
    ensure!(r == 0, "GDT page read-only: {r}");
    let first = if writable == 0 { 0 } else { hv::vcpu(VCPUOP_initialise, 1, &mut context(gdt_mfn)) };
    ensure!(first == 0, "VCPUOP_initialise(1): {first}");
    let again = hv::vcpu(VCPUOP_initialise, 1, &mut context(gdt_mfn));
    let up_before = is_up(1);
    // A single-shot timer is the running vCPU's own business.
    let mut t = VcpuSetSingleshotTimer { timeout_abs_ns: shared::now_ns() + 1_000_000_000, ..Default::default() };
    let other = hv::vcpu(VCPUOP_set_singleshot_timer, 1, &mut t);
    let r = hv::vcpu(VCPUOP_up, 1, &mut ());
    ensure!(r == 0, "VCPUOP_up(1): {r}");
    ensure!(wait_until(|| ALIVE.load(Ordering::Acquire) == 1), "vCPU 1 never reached its entry point");
    st.up = true;
    let up_after = is_up(1);
    let [id, gs, mask, ..] = on_vcpu1(cmd::HELLO, [0; 4], "hello")?;
    ensure!(before == [1, 0, ENOENT], "is_up(0), is_up(1), is_up({absent}): {before:?}, wanted [1, 0, -ENOENT]");
    ensure!(up_uninit == EINVAL, "VCPUOP_up of a vCPU never initialised: {up_uninit}, wanted -EINVAL");
    ensure!(writable == EINVAL, "VCPUOP_initialise with a writable GDT frame: {writable}, wanted -EINVAL");
    ensure!(again == EEXIST, "VCPUOP_initialise of an initialised vCPU: {again}, wanted -EEXIST");
    ensure!(up_before == 0, "initialised vCPU 1 is up ({up_before}) before VCPUOP_up");
    ensure!(other == EINVAL, "set_singleshot_timer for vCPU 1 from vCPU 0: {other}, wanted -EINVAL");
    ensure!(up_after == 1, "is_up(1) after VCPUOP_up: {up_after}");
    ensure!(id == 1, "vCPU 1 runs on the stack of vCPU {id}");
    ensure!(gs == percpu_tag(1), "vCPU 1's %gs:0 reads {gs:#x}, wanted {:#x} (gs_base_kernel)", percpu_tag(1));
    ensure!(mask == 0, "vCPU 1's evtchn_upcall_mask {mask} after enabling");
    Ok(())
}

/// Waits until vCPU `cpu` dispatched `port` more than `seen` times.
fn dispatched_on(cpu: usize, port: u32, seen: u32) -> bool {
    wait_until(|| HITS_ON[cpu].count(port) > seen)
}

fn ipi(_: &mut State<'_>) -> TestResult {
    let p0 = hv::bind_ipi(0).map_err(|r| fail(format_args!("bind_ipi(0): {r}")))?;
    evtchn::unmask(p0);
    let [p1, ..] = on_vcpu1(cmd::BIND_IPI, [0; 4], "bind_ipi")?;
    let r = check_ipis(p0, p1);
    hv::close(p0);
    if p1 < 4096 {
        hv::close(p1 as u32);
    }
    r
}

/// Dispatches of `port` on each vCPU so far (port numbers are reused, so tests compare
/// against a snapshot taken once the port is bound).
fn hits(port: u32) -> [u32; MAX_VCPUS] {
    core::array::from_fn(|cpu| HITS_ON[cpu].count(port))
}

fn check_ipis(p0: u32, p1: u64) -> TestResult {
    ensure!(p1 < 4096, "bind_ipi(1) on vCPU 1: {}", p1 as i64);
    let p1 = p1 as u32;
    let (h0, h1) = (hits(p0), hits(p1));
    let st = |p| hv::status(p).map(|s| (s.status, s.vcpu));
    let ipi = xen_abi::event_channel::EVTCHNSTAT_ipi;
    ensure!(st(p0) == Ok((ipi, 0)) && st(p1) == Ok((ipi, 1)), "status of {p0}, {p1}: {:?}, {:?}", st(p0), st(p1));
    // vCPU 0 -> vCPU 1, three times, each one seen before the next is sent.
    for i in 0..3 {
        let seen = HITS_ON[1].count(p1);
        let r = hv::send(p1);
        ensure!(r == 0, "send {p1}: {r}");
        ensure!(dispatched_on(1, p1, seen), "IPI {i} from vCPU 0 never dispatched on vCPU 1 (port {p1})");
    }
    // vCPU 1 -> vCPU 0, three times.
    for i in 0..3 {
        let seen = HITS_ON[0].count(p0);
        let [r, ..] = on_vcpu1(cmd::SEND, [u64::from(p0), 0, 0, 0], "send")?;
        ensure!(r == 0, "send {p0} from vCPU 1: {}", r as i64);
        ensure!(dispatched_on(0, p0, seen), "IPI {i} from vCPU 1 never dispatched on vCPU 0 (port {p0})");
    }
    // vCPU 1 IPIs itself: delivered on the way back from its send.
    let seen = HITS_ON[1].count(p1);
    let [r, ..] = on_vcpu1(cmd::SEND, [u64::from(p1), 0, 0, 0], "send to itself")?;
    ensure!(r == 0 && HITS_ON[1].count(p1) == seen + 1, "vCPU 1 to itself: send {}, dispatches {seen} -> {}", r as i64, HITS_ON[1].count(p1));
    let wrong = (HITS_ON[1].count(p0) - h0[1], HITS_ON[0].count(p1) - h1[0]);
    ensure!(wrong == (0, 0), "dispatched on the other vCPU: port {p0} on vCPU 1 {}x, port {p1} on vCPU 0 {}x", wrong.0, wrong.1);
    // An IPI stays with its vCPU; there is no vCPU 7.
    let rebind = hv::bind_vcpu(p1, 0);
    let nonexistent = hv::bind_ipi(7);
    ensure!(rebind == EINVAL, "bind_vcpu of an IPI port: {rebind}, wanted -EINVAL");
    ensure!(nonexistent == Err(ENOENT), "bind_ipi(7): {nonexistent:?}, wanted -ENOENT");
    Ok(())
}

fn evtchn_per_vcpu(_: &mut State<'_>) -> TestResult {
    timers()?;
    loopback()
}

/// VIRQ_TIMER bound per vCPU: each vCPU's single-shot timer fires on that vCPU.
fn timers() -> TestResult {
    let r = hv::vcpu(VCPUOP_stop_periodic_timer, 0, &mut ());
    ensure!(r == 0, "stop_periodic_timer(0): {r}");
    let t0 = hv::bind_virq(VIRQ_TIMER, 0).map_err(|r| fail(format_args!("bind_virq(TIMER, 0): {r}")))?;
    evtchn::unmask(t0);
    let h0 = hits(t0);
    let seen = evtchn::HITS.count(t0);
    let mut t = VcpuSetSingleshotTimer { timeout_abs_ns: shared::now_ns() + 20_000_000, ..Default::default() };
    let set = hv::vcpu(VCPUOP_set_singleshot_timer, 0, &mut t);
    let fired = set == 0 && evtchn::wait_for(t0, seen, shared::now_ns() + PATIENCE_NS, Sleep::Block) && HITS_ON[0].count(t0) > h0[0];
    let res = on_vcpu1(cmd::TIMER, [0; 4], "timer");
    let on1_of_t0 = HITS_ON[1].count(t0) - h0[1];
    hv::close(t0);
    ensure!(set == 0 && fired, "vCPU 0's timer: set_singleshot {set}, fired {fired}");
    let [stop1, t1, set1, fired1, hits1] = res?;
    ensure!(stop1 == 0 && t1 < 4096, "on vCPU 1: stop_periodic_timer {}, bind_virq(TIMER, 1) {}", stop1 as i64, t1 as i64);
    let t1 = t1 as u32;
    let status = hv::status(t1);
    let on0_of_t1 = HITS_ON[0].count(t1).saturating_sub(T1_ON0_AT_BIND.load(Ordering::Acquire));
    let rebind = hv::bind_vcpu(t1, 0);
    hv::close(t1);
    ensure!(set1 == 0 && fired1 == 1 && hits1 >= 1, "vCPU 1's timer: set_singleshot {}, fired {fired1}, dispatches {hits1}", set1 as i64);
    ensure!((on1_of_t0, on0_of_t1) == (0, 0), "timer ports dispatched on the other vCPU: {on1_of_t0}, {on0_of_t1}");
    let status = status.map_err(|r| fail(format_args!("status({t1}): {r}")))?;
    ensure!(
        status.status == xen_abi::event_channel::EVTCHNSTAT_virq && status.vcpu == 1 && status.virq() == VIRQ_TIMER,
        "status of vCPU 1's timer port {t1}: {status:?}"
    );
    ensure!(rebind == EINVAL, "bind_vcpu of a per-vCPU VIRQ: {rebind}, wanted -EINVAL");
    Ok(())
}

/// A loopback interdomain pair; one end moved to vCPU 1 with EVTCHNOP_bind_vcpu is
/// delivered there, and back on vCPU 0 once moved back.
fn loopback() -> TestResult {
    let me = DOMID_SELF.0;
    let a = hv::alloc_unbound(me, me).map_err(|r| fail(format_args!("alloc_unbound: {r}")))?;
    let b = match hv::bind_interdomain(me, a) {
        Ok(b) => b,
        Err(r) => {
            hv::close(a);
            return Err(fail(format_args!("bind_interdomain(self, {a}): {r}")));
        }
    };
    let r = check_loopback(a, b);
    hv::close(b);
    hv::close(a);
    r
}

fn check_loopback(a: u32, b: u32) -> TestResult {
    let r = hv::bind_vcpu(b, 1);
    ensure!(r == 0, "bind_vcpu({b}, 1): {r}");
    // bind_interdomain raised b (masked): drop that, so only our sends count.
    evtchn::discard_pending(b);
    evtchn::discard_pending(a);
    let (ha, hb) = (hits(a), hits(b));
    evtchn::unmask(a);
    evtchn::unmask(b);
    let absent = hv::bind_vcpu(b, 7);
    ensure!(absent == ENOENT, "bind_vcpu({b}, 7): {absent}, wanted -ENOENT");
    let sv = |p| hv::status(p).map(|s| (s.status, s.vcpu));
    let inter = xen_abi::event_channel::EVTCHNSTAT_interdomain;
    ensure!(sv(a) == Ok((inter, 0)) && sv(b) == Ok((inter, 1)), "status of {a}, {b}: {:?}, {:?}", sv(a), sv(b));
    // a -> b (on vCPU 1)
    let seen = HITS_ON[1].count(b);
    let r = hv::send(a);
    ensure!(r == 0 && dispatched_on(1, b, seen), "send {a}: {r}; port {b} never dispatched on vCPU 1");
    // b -> a (on vCPU 0), sent from vCPU 1
    let seen = HITS_ON[0].count(a);
    let [r, ..] = on_vcpu1(cmd::SEND, [u64::from(b), 0, 0, 0], "send")?;
    ensure!(r == 0 && dispatched_on(0, a, seen), "send {b} from vCPU 1: {}; port {a} never dispatched on vCPU 0", r as i64);
    let wrong = (HITS_ON[0].count(b) - hb[0], HITS_ON[1].count(a) - ha[1]);
    ensure!(wrong == (0, 0), "loopback ports dispatched on the wrong vCPU: {b} on vCPU 0 {}x, {a} on vCPU 1 {}x", wrong.0, wrong.1);
    // Back to vCPU 0.
    let r = hv::bind_vcpu(b, 0);
    ensure!(r == 0 && sv(b) == Ok((inter, 0)), "bind_vcpu({b}, 0): {r}, status {:?}", sv(b));
    let seen = HITS_ON[0].count(b);
    let r = hv::send(a);
    ensure!(r == 0 && dispatched_on(0, b, seen), "send {a}: {r}; port {b} never dispatched on vCPU 0 once moved back");
    Ok(())
}

/// What vCPU 1 saw reading `va`.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Value(u64),
    /// vector, cr2, error code
    Fault(u64, u64, u64),
}

fn read_on_vcpu1(va: u64) -> Result<(Seen, u32), Failure> {
    let [outcome, v, cr2, err, pf] = on_vcpu1(cmd::READ, [va, 0, 0, 0], "read")?;
    let seen = if outcome == 0 { Seen::Value(v) } else { Seen::Fault(v, cr2, err) };
    Ok((seen, pf as u32))
}

/// The vCPU mask naming vCPU 1, in the arena: its address.
fn mask_vcpu1() -> u64 {
    scratch_put(MASK, &(1u64 << 1));
    scratch_addr(MASK)
}

fn clear_pte(va: u64) -> TestResult {
    let ptr = paging::l1_entry_maddr(va).map_err(|r| fail(format_args!("L1 for {va:#x}: {r}")))?;
    let (r, done) = hv::mmu_update_self(&[MmuUpdate { ptr: ptr | MMU_NORMAL_PT_UPDATE, val: 0 }]);
    ensure!(r == 0 && done == 1, "mmu_update clearing {va:#x}: {r} (done {done})");
    Ok(())
}

/// vCPU 1 reads a page through a mapping, vCPU 0 removes it and flushes vCPU 1's TLB
/// (five ways), and vCPU 1's next read faults there, cr2 and all. A remap to another
/// frame is seen by vCPU 1 after the flush too.
fn tlb_flush(_: &mut State<'_>) -> TestResult {
    let (p, _, p_mfn) = paging::new_page().map_err(|r| fail(format_args!("new page: {r}")))?;
    let (q, _, q_mfn) = paging::new_page().map_err(|r| fail(format_args!("new page: {r}")))?;
    p.u64(0).store(0x5050_5050_0000_0001, Ordering::SeqCst);
    q.u64(0).store(0x5151_5151_0000_0002, Ordering::SeqCst);
    let va = paging::alloc_window(1).map_err(|r| fail(format_args!("window: {r}")))?;
    let pf0 = trap::count_on(0, 14);
    type Remove = fn(u64) -> Result<i64, Failure>;
    let ways: [(&str, Remove); 5] = [
        ("update_va_mapping(0, UVMF_INVLPG|vcpumask {1})", |va| Ok(hv::update_va_mapping(va, 0, UVMF_INVLPG | mask_vcpu1()))),
        ("update_va_mapping(0, UVMF_TLB_FLUSH|vcpumask {1})", |va| Ok(hv::update_va_mapping(va, 0, UVMF_TLB_FLUSH | mask_vcpu1()))),
        ("update_va_mapping(0, UVMF_INVLPG|UVMF_ALL)", |va| Ok(hv::update_va_mapping(va, 0, UVMF_INVLPG | UVMF_ALL))),
        ("mmu_update + MMUEXT_INVLPG_MULTI {1}", |va| {
            clear_pte(va)?;
            let m = mask_vcpu1();
            Ok(hv::mmuext(&[MmuextOp { cmd: xen_abi::xen::MMUEXT_INVLPG_MULTI, arg1: va, arg2: m, ..Default::default() }], DOMID_SELF.0).0)
        }),
        ("mmu_update + MMUEXT_TLB_FLUSH_MULTI {1}", |va| {
            clear_pte(va)?;
            let m = mask_vcpu1();
            Ok(hv::mmuext(&[MmuextOp { cmd: xen_abi::xen::MMUEXT_TLB_FLUSH_MULTI, arg2: m, ..Default::default() }], DOMID_SELF.0).0)
        }),
    ];
    for (how, remove) in ways {
        paging::map(va, p_mfn, pte::KERNEL_RW).map_err(|r| fail(format_args!("map {va:#x}: {r}")))?;
        let (before, pf) = read_on_vcpu1(va)?;
        ensure!(before == Seen::Value(0x5050_5050_0000_0001), "{how}: vCPU 1 read {before:x?} through the mapping");
        let r = remove(va)?;
        ensure!(r == 0, "{how}: {r}");
        let (after, pf_after) = read_on_vcpu1(va)?;
        // Not present (bit 0 clear), read (bit 1 clear).
        ensure!(
            matches!(after, Seen::Fault(14, cr2, err) if cr2 == va && err & 3 == 0) && pf_after == pf + 1,
            "{how}: vCPU 1 then read {after:x?} (#PF count {pf} -> {pf_after}), wanted #PF at {va:#x}"
        );
    }
    // A remap to another frame, flushed on vCPU 1 only.
    paging::map(va, p_mfn, pte::KERNEL_RW).map_err(|r| fail(format_args!("map {va:#x}: {r}")))?;
    let (before, _) = read_on_vcpu1(va)?;
    let r = hv::update_va_mapping(va, pte::make(q_mfn, pte::KERNEL_RW), UVMF_INVLPG | mask_vcpu1());
    let (after, _) = read_on_vcpu1(va)?;
    ensure!(
        r == 0 && before == Seen::Value(0x5050_5050_0000_0001) && after == Seen::Value(0x5151_5151_0000_0002),
        "remap to another frame: {r}; vCPU 1 read {before:x?} then {after:x?}"
    );
    ensure!(trap::count_on(0, 14) == pf0, "vCPU 0 took {} page faults meant for vCPU 1", trap::count_on(0, 14) - pf0);
    paging::unmap(va).map_err(|r| fail(format_args!("unmap: {r}")))?;
    Ok(())
}

/// Self domain id for grant entries (the initial domain is 0; a domU asks xenstore).
fn self_domid(env: &Env<'_>) -> Result<u16, Failure> {
    if env.start_info.flags & xen_abi::xen::SIF_INITDOMAIN != 0 {
        Ok(0)
    } else {
        crate::store::own_domid(env.start_info).ok_or_else(|| fail(format_args!("a domU needs xenstore to learn its domid")))
    }
}

/// Maps grant `gref` (of our own domain) at `va`, checks the marker through it and
/// unmaps it, `rounds` times: (rounds done, failing step 1-4 or 0, its result).
fn grant_rounds(gref: u32, va: u64, rounds: u64, marker: u64) -> (u64, u64, i64) {
    use xen_abi::grant_table::*;
    let dom = GRANT_DOMID.load(Ordering::Acquire) as u16;
    for i in 0..rounds {
        let mut m = GnttabMapGrantRef { host_addr: va, flags: GNTMAP_host_map, ref_: gref, dom, ..Default::default() };
        let r = hv::grant(GNTTABOP_map_grant_ref, &mut m);
        if r != 0 || m.status != GNTST_okay {
            return (i, 1, if r != 0 { r } else { i64::from(m.status) });
        }
        let seen = traps::read_u64(va);
        let mut u = GnttabUnmapGrantRef { host_addr: va, handle: m.handle, ..Default::default() };
        let r = hv::grant(GNTTABOP_unmap_grant_ref, &mut u);
        if seen != Ok(marker) {
            return (i, 2, seen.map_or_else(|v| -(v as i64), |v| v as i64));
        }
        if r != 0 || u.status != GNTST_okay {
            return (i, 3, if r != 0 { r } else { i64::from(u.status) });
        }
        if traps::read_u64(va).is_ok() {
            return (i, 4, 0);
        }
    }
    (rounds, 0, 0)
}

static GRANT_DOMID: AtomicU32 = AtomicU32::new(0);

/// Both vCPUs map and unmap a grant of their own (refs 9 and 10, pages granted by this
/// domain to itself) at the same time, many rounds; every operation succeeds and no
/// grant stays in use.
fn grant_concurrent(st: &mut State<'_>) -> TestResult {
    use xen_abi::grant_table::*;
    const ROUNDS: u64 = 64;
    let dom = self_domid(st.env)?;
    GRANT_DOMID.store(u32::from(dom), Ordering::Release);
    let table = crate::selftest::grant_table_page()?;
    let mut pages = [(0u64, 0u64); 2];
    for (i, page) in pages.iter_mut().enumerate() {
        let (p, _, mfn) = paging::new_page().map_err(|r| fail(format_args!("new page: {r}")))?;
        let marker = 0x6767_0000_0000_0000 | i as u64;
        p.u64(0).store(marker, Ordering::SeqCst);
        let gref = 9 + i;
        let off = gref * core::mem::size_of::<GrantEntryV1>();
        table.u32(off + 4).store(mfn as u32, Ordering::Relaxed);
        table.u16(off + 2).store(dom, Ordering::Relaxed);
        fence(Ordering::Release);
        table.u16(off).store(GTF_permit_access, Ordering::Release);
        let va = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)).map_err(|r| fail(format_args!("window: {r}")))?;
        *page = (va, marker);
    }
    let seq = post(cmd::GRANT_ROUNDS, [10, pages[1].0, ROUNDS, pages[1].1]);
    let mine = grant_rounds(9, pages[0].0, ROUNDS, pages[0].1);
    let theirs = wait_done(seq, "grant rounds");
    // Revoke both: only possible when Xen holds neither (GTF_reading/writing clear).
    let flags: [u16; 2] = core::array::from_fn(|i| table.u16((9 + i) * core::mem::size_of::<GrantEntryV1>()).load(Ordering::Acquire));
    let revoked: [bool; 2] = core::array::from_fn(|i| {
        table.u16((9 + i) * core::mem::size_of::<GrantEntryV1>()).compare_exchange(GTF_permit_access, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    });
    let [done1, step1, r1, ..] = theirs?;
    ensure!(mine == (ROUNDS, 0, 0), "vCPU 0: {} of {ROUNDS} rounds, step {} failed with {}", mine.0, mine.1, mine.2);
    ensure!((done1, step1) == (ROUNDS, 0), "vCPU 1: {done1} of {ROUNDS} rounds, step {step1} failed with {}", r1 as i64);
    ensure!(flags == [GTF_permit_access; 2] && revoked == [true; 2], "grant flags afterwards {flags:#x?}, revoked {revoked:?}");
    Ok(())
}

fn runstate(vcpu: u32) -> Result<VcpuRunstateInfo, Failure> {
    let mut info = VcpuRunstateInfo::default();
    let r = hv::vcpu(VCPUOP_get_runstate_info, vcpu, &mut info);
    ensure!(r == 0, "get_runstate_info({vcpu}): {r}");
    Ok(info)
}

/// vCPU 1 takes itself down (as Linux's xen_play_dead does), is seen down and offline,
/// comes back up where it stopped (its VCPUOP_down returns 0), and goes down for good.
/// Both vCPUs' runstates show time running.
fn vcpu_down(st: &mut State<'_>) -> TestResult {
    let (r0, r1) = (runstate(0)?, runstate(1)?);
    let running = RUNSTATE_running as usize;
    ensure!(r0.state == RUNSTATE_running && r0.time[running] > 0, "vCPU 0's runstate {r0:?}");
    ensure!(r1.state != RUNSTATE_offline && r1.time[running] > 0, "vCPU 1's runstate {r1:?}");
    let seq = post(cmd::DOWN, [0; 4]);
    ensure!(wait_until(|| is_up(1) == 0), "vCPU 1 still up after its VCPUOP_down ({})", is_up(1));
    st.up = false;
    // Down, it is offline (its state may lag its hypercall by a schedule).
    ensure!(wait_until(|| runstate(1).is_ok_and(|r| r.state == RUNSTATE_offline)), "vCPU 1 is down but not offline");
    let down = runstate(1)?;
    ensure!(down.time[RUNSTATE_offline as usize] > 0 && down.time[running] >= r1.time[running], "vCPU 1's runstate when down {down:?}");
    ensure!(MBOX.done.load(Ordering::Acquire) != seq, "vCPU 1 went on running after VCPUOP_down");
    let r = hv::vcpu(VCPUOP_up, 1, &mut ());
    ensure!(r == 0, "VCPUOP_up(1) again: {r}");
    let [r, ..] = wait_done(seq, "VCPUOP_down, resumed")?;
    st.up = true;
    ensure!(r == 0 && is_up(1) == 1, "vCPU 1 resumed: its VCPUOP_down returned {}, is_up {}", r as i64, is_up(1));
    let [id, ..] = on_vcpu1(cmd::HELLO, [0; 4], "hello")?;
    ensure!(id == 1, "vCPU 1 after resuming: {id}");
    post(cmd::DOWN, [0; 4]);
    ensure!(wait_until(|| is_up(1) == 0), "vCPU 1 still up after its second VCPUOP_down");
    st.up = false;
    let end = (runstate(0)?, runstate(1)?);
    ensure!(end.0.time[running] > r0.time[running] && end.1.time[running] > 0, "runstates at the end {end:?}");
    Ok(())
}
