//! The domain table and a round-robin scheduler of vCPUs for one CPU: which vCPU of
//! which domain runs next, context switches (registers, FPU, segment bases, page
//! tables, guest GDT, run-state accounting), blocking and waking (a vCPU an event wakes
//! runs at once, as Xen's credit scheduler boosts it), and the end of a domain.

use crate::domain::runstate::GuestWrite;
use crate::pv::domain::{Domain, RunState, Vcpu};
use crate::arch::x86_64::guest::GuestView;
use xen_abi::vcpu::{RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running};
use crate::pv::{event, trap};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu, gdt, qemu};
use crate::println;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Free frames just before the first domain was built: with every domain gone, the
/// allocator must be back to this count (each domain returned every frame).
pub static FREE_BEFORE_DOMAINS: AtomicU64 = AtomicU64::new(0);

/// How long a vCPU runs before another runnable one gets the CPU.
const TIME_SLICE_NS: u64 = 10_000_000;

#[derive(Debug, Default)]
pub struct Domains {
    /// Every domain by id: a hash map, so memory follows the number of domains rather
    /// than the highest id (ids are sparse once domains come and go).
    by_id: hashbrown::HashMap<u16, Domain>,
    current: u16,
    slice_end: u64,
    /// Whether any domain ended by crashing (the machine's exit status says so).
    any_crashed: bool,
    /// System time of the next serial-input poll.
    next_console_poll: u64,
    /// The domain that gets serial input (None: the hypervisor, which ignores it).
    console_focus: Option<u16>,
    input_switch: crate::console::InputSwitch,
    /// The user switched the input to the hypervisor (so an absent focus is not reset).
    focus_on_xen: bool,
    /// The running vCPU asked to give the CPU away (`SCHEDOP_yield`).
    yield_now: bool,
}

/// A vCPU as the scheduler names it: domain id and vCPU number.
type VcpuRef = (u16, usize);

impl Domains {
    pub fn add(&mut self, d: Domain) {
        self.by_id.insert(d.id, d);
    }

    pub fn current_id(&self) -> u16 {
        self.current
    }

    /// `SCHEDOP_yield`: another runnable vCPU gets the CPU at the return to the guest.
    pub fn yield_cpu(&mut self) {
        self.yield_now = true;
    }

    pub fn cur(&mut self) -> &mut Domain {
        self.by_id.get_mut(&self.current).expect("the current domain exists")
    }

    pub fn get(&self, id: u16) -> Option<&Domain> {
        self.by_id.get(&id).filter(|d| d.alive())
    }

    pub fn get_mut(&mut self, id: u16) -> Option<&mut Domain> {
        self.by_id.get_mut(&id).filter(|d| d.alive())
    }

    /// The current domain and, if it exists and is another one, domain `other`.
    pub fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>) {
        if other == self.current {
            return (self.cur(), None);
        }
        let [a, b] = self.by_id.get_disjoint_mut([&self.current, &other]);
        (a.expect("the current domain exists"), b.filter(|d| d.alive()))
    }

    /// Whether id `id` is taken, by a live domain or one still to be torn down.
    pub fn slot_taken(&self, id: u16) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The living domains' ids, in id order.
    pub fn ids(&self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.alive().map(|d| d.id).collect();
        ids.sort_unstable();
        ids
    }

    fn alive(&self) -> impl Iterator<Item = &Domain> {
        self.by_id.values().filter(|d| d.alive())
    }
}

/// Makes `id` the running domain at boot: its registers become the frame to enter.
pub fn start(doms: &mut Domains, id: u16) -> Regs {
    doms.current = id;
    doms.slice_end = clock::now_ns() + TIME_SLICE_NS;
    let d = doms.cur();
    d.cur_vcpu = 0;
    load(d);
    d.vcpus[0].saved
}

fn save(d: &mut Domain, regs: &Regs) {
    let v = &mut d.vcpus[d.cur_vcpu];
    v.saved = *regs;
    cpu::fpu_save(&mut v.fpu);
    v.fs_base = cpu::fs_base();
    let gs = cpu::gs_base();
    if v.kernel_mode {
        v.gs_base_kernel = gs;
    } else {
        v.gs_base_user = gs;
    }
}

fn load(d: &mut Domain) {
    let v = &mut d.vcpus[d.cur_vcpu];
    cpu::fpu_restore(&mut v.fpu);
    cpu::set_fs_base(v.fs_base);
    cpu::set_gs_base(if v.kernel_mode { v.gs_base_kernel } else { v.gs_base_user });
    cpu::set_ts(v.fpu_ts);
    gdt::load_guest_descriptors(&v.gdt_shadow);
    cpu::write_cr3(v.current_l4() << 12);
    event::update_time(d);
    set_runstate(d, d.cur_vcpu, RUNSTATE_running, clock::now_ns());
}

/// The run state a vCPU that stops running enters.
fn state_after_running(v: &Vcpu) -> i32 {
    if !(v.initialised && v.online) {
        RUNSTATE_offline
    } else if v.run == RunState::Runnable {
        RUNSTATE_runnable
    } else {
        RUNSTATE_blocked
    }
}

/// Accounts vCPU `v`'s change to `state` and rewrites the guest's copy, if it has one
/// (written through its kernel page tables, where Linux keeps it).
pub fn set_runstate(d: &mut Domain, v: usize, state: i32, now: u64) {
    let Some(vc) = d.vcpus.get_mut(v) else { return };
    if !vc.runstate.enter(state, now) {
        return;
    }
    let (Some(area), l4) = (vc.runstate.area, vc.kernel_l4) else { return };
    if l4 == 0 {
        return;
    }
    let guest = GuestView { l4_mfn: l4 };
    let flag = d.vm_assist & (1 << xen_abi::xen::VMASST_TYPE_runstate_update_flag) != 0;
    for w in vc.runstate.guest_writes(flag) {
        // Xen writes what it can; an area the guest unmapped is its own loss.
        let _ = match w {
            GuestWrite::EntryTime(off, t) => guest.write(area.wrapping_add(off), &t),
            GuestWrite::Record(r) => guest.write(area, &r),
        };
    }
}

/// Wakes blocked or polling vCPUs that have something to do; the first one woken, to
/// run next.
fn wake_all(doms: &mut Domains) -> Option<VcpuRef> {
    let now = clock::now_ns();
    let mut woken = None;
    for d in doms.by_id.values_mut().filter(|d| d.alive()) {
        for v in 0..d.vcpus.len() {
            event::fire_timer(d, v, now);
            if d.vcpus[v].run != RunState::Runnable && event::wants_to_run(d, v) {
                d.vcpus[v].run = RunState::Runnable;
                if d.vcpus[v].online {
                    set_runstate(d, v, RUNSTATE_runnable, now);
                }
                if runnable(d, v) {
                    woken = woken.or(Some((d.id, v)));
                }
            }
        }
    }
    woken
}

/// The running vCPU's periodic timer (Xen's `vcpu_periodic_timer_work`): fires if a
/// period passed since it last did; when it is next due.
fn periodic_timer(d: &mut Domain, now: u64) -> Option<u64> {
    let v = &mut d.vcpus[d.cur_vcpu];
    if v.periodic_period == 0 {
        return None;
    }
    if now >= v.periodic_last.saturating_add(v.periodic_period) {
        v.periodic_last = now;
        event::send_vcpu_virq(d, d.cur_vcpu as u32, xen_abi::xen::VIRQ_TIMER);
    }
    let v = &d.vcpus[d.cur_vcpu];
    Some(v.periodic_last.saturating_add(v.periodic_period))
}

fn next_deadline(doms: &Domains) -> Option<u64> {
    doms.alive().flat_map(|d| d.vcpus.iter()).filter(|v| v.online).filter_map(|v| v.wake_deadline()).min()
}

/// Ends the machine when no domain is left, with Xen's words for the hardware domain.
fn all_gone(doms: &Domains) -> ! {
    println!(
        "Frames free: {}, {} before the first domain was built",
        crate::arch::x86_64::mem::with_frames(|a| a.free_frames()),
        FREE_BEFORE_DOMAINS.load(Ordering::Relaxed)
    );
    println!("All domains have shut down: halting machine");
    qemu::exit(if doms.any_crashed { qemu::ExitCode::Failure } else { qemu::ExitCode::Success });
}

/// Called on every way back to a guest, with the frame that will be `iretq`'d: destroys
/// domains that ended, picks who runs (switching `regs` to them if needed), and
/// delivers their pending events.
pub fn exit_to_guest(doms: &mut Domains, regs: &mut Regs) {
    poll_console(doms);
    let cur = doms.current;
    // Every domain that ended: the current one, or another one a privileged domain
    // shut down with SCHEDOP_remote_shutdown, lowest id first. A toolstack's domain
    // stays, shut down, until destroyed (`pv::domctl::lifecycle`).
    let mut ending: Vec<u16> = doms.by_id.values().filter(|d| d.ending.is_some()).map(|d| d.id).collect();
    ending.sort_unstable();
    let dom_exc = !ending.is_empty();
    for id in ending {
        if doms.by_id.get_mut(&id).is_some_and(crate::pv::domctl::lifecycle::keep_shut_down) {
            continue;
        }
        let Some(d) = doms.by_id.remove(&id) else { continue };
        let Some(reason) = d.ending else { continue };
        doms.any_crashed |= reason == crate::pv::domain::END_CRASH;
        if d.hardware {
            // The initial domain of a single-domain boot takes the machine with it.
            crate::pv::hypercall::hardware_domain_shutdown(&d, reason);
        }
        crate::pv::domain::destroy::destroy(doms, d, reason);
    }
    if dom_exc {
        crate::pv::domctl::lifecycle::notify_dom_exc(doms);
    }
    crate::pv::domctl::lifecycle::sweep();
    let woken = wake_all(doms);
    let now = clock::now_ns();
    let cur_ent = doms.by_id.get(&cur).map(|d| (cur, d.cur_vcpu));
    let cur_runnable = cur_ent.is_some_and(|(id, v)| doms.by_id.get(&id).is_some_and(|d| runnable(d, v)));
    let woken = woken.filter(|&w| Some(w) != cur_ent);
    let preempt = now >= doms.slice_end || core::mem::take(&mut doms.yield_now) || woken.is_some();
    let next = if cur_runnable && !preempt {
        cur_ent
    } else {
        woken.or_else(|| pick_after(doms, cur_ent.unwrap_or((cur, 0)), cur_runnable))
    };
    let next = match next {
        Some(n) => n,
        None => {
            // The current vCPU stops running (it blocked, polls or went down): its run
            // state changes now, not when another vCPU is picked, which may be itself.
            if let Some(d) = cur_ent.and_then(|(id, _)| doms.by_id.get_mut(&id)) {
                let state = state_after_running(&d.vcpus[d.cur_vcpu]);
                set_runstate(d, d.cur_vcpu, state, now);
            }
            idle(doms)
        }
    };
    let switching = Some(next) != cur_ent;
    if !switching {
        // Running again (after idling, or on), as Xen's switch back to the same vCPU.
        let d = doms.cur();
        set_runstate(d, d.cur_vcpu, RUNSTATE_running, clock::now_ns());
    }
    if switching {
        if let Some(d) = doms.by_id.get_mut(&cur) {
            save(d, regs);
            let state = state_after_running(&d.vcpus[d.cur_vcpu]);
            set_runstate(d, d.cur_vcpu, state, now);
        }
        doms.current = next.0;
        let d = doms.cur();
        d.cur_vcpu = next.1;
        load(d);
        *regs = d.vcpus[d.cur_vcpu].saved;
    }
    if switching || preempt {
        doms.slice_end = now + TIME_SLICE_NS;
    }
    let d = doms.cur();
    let periodic = periodic_timer(d, now);
    trap::deliver_events(d, regs);
    let others = doms.alive().flat_map(|d| d.vcpus.iter()).filter(|v| v.online).nth(1).is_some();
    let deadline = [next_deadline(doms), periodic, others.then_some(doms.slice_end)].into_iter().flatten().min();
    clock::arm(deadline);
}

/// Whether vCPU `v` of `d` may run now: the domain alive and not paused or shut down
/// for its toolstack, the vCPU loaded, up and not blocked.
fn runnable(d: &Domain, v: usize) -> bool {
    d.alive()
        && d.ctl.can_run()
        && d.vcpus.get(v).is_some_and(|v| v.initialised && v.online && v.run == RunState::Runnable)
}

/// The next runnable vCPU after `cur` in (domain id, vCPU) order, wrapping round (or
/// `cur` itself if it is the only).
fn pick_after(doms: &Domains, cur: VcpuRef, cur_runnable: bool) -> Option<VcpuRef> {
    doms.by_id
        .values()
        .flat_map(|d| (0..d.vcpus.len()).filter(|&v| runnable(d, v)).map(|v| (d.id, v)))
        .min_by_key(|&e| (e <= cur, e))
        .or(cur_runnable.then_some(cur))
}

/// How often the serial line is polled for input while a domain listens for it.
const CONSOLE_POLL_NS: u64 = 10_000_000;

/// Whether someone reads the serial line: a hardware domain or a console ring.
fn console_listener(doms: &Domains) -> Option<u16> {
    doms.alive().filter(|d| d.hardware || d.console_ring.is_some()).map(|d| d.id).min()
}

/// The domains serial input can go to, in Xen's switching order (by id), then the
/// hypervisor itself (None).
fn next_focus(doms: &Domains, cur: Option<u16>) -> Option<u16> {
    let mut ids: Vec<u16> = doms.alive().filter(|d| d.hardware || d.console_ring.is_some()).map(|d| d.id).collect();
    ids.sort_unstable();
    match cur {
        None => ids.first().copied(),
        Some(c) => ids.iter().copied().find(|&i| i > c),
    }
}

/// Takes typed bytes from the UART: three Ctrl-A switch the input focus (as Xen), the
/// rest go to the focused domain: the hardware domain reads them with CONSOLEIO_read
/// after VIRQ_CONSOLE, a manifest domain gets them in its console ring.
fn poll_console(doms: &mut Domains) {
    let now = clock::now_ns();
    if now < doms.next_console_poll {
        return;
    }
    doms.next_console_poll = now + CONSOLE_POLL_NS / 4;
    let mut raw = [0u8; 64];
    let n = crate::console::poll_raw(&mut raw);
    if n == 0 {
        return;
    }
    if doms.console_focus.is_none_or(|f| doms.get(f).is_none_or(|d| !d.alive())) && !doms.focus_on_xen {
        doms.console_focus = next_focus(doms, None);
    }
    let mut out = Vec::new();
    for &b in &raw[..n] {
        let mut bytes = Vec::new();
        if doms.input_switch.feed(b, |x| bytes.push(x)) {
            deliver_input(doms, &out);
            out.clear();
            doms.console_focus = next_focus(doms, doms.console_focus);
            doms.focus_on_xen = doms.console_focus.is_none();
            match doms.console_focus {
                Some(id) => println!("*** Serial input to DOM{id} (type 'CTRL-a' three times to switch input)"),
                None => println!("*** Serial input to Xen (type 'CTRL-a' three times to switch input)"),
            }
        }
        out.extend_from_slice(&bytes);
    }
    deliver_input(doms, &out);
}

fn deliver_input(doms: &mut Domains, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let Some(d) = doms.console_focus.and_then(|id| doms.get_mut(id)) else { return };
    if d.hardware {
        crate::console::queue_input(bytes);
        event::send_virq(d, xen_abi::xen::VIRQ_CONSOLE);
    } else {
        crate::pv::console_ring::feed_input(d, bytes);
    }
}

/// Nobody can run: sleep until a timer or event makes someone runnable.
fn idle(doms: &mut Domains) -> VcpuRef {
    loop {
        if doms.alive().next().is_none() {
            all_gone(doms);
        }
        poll_console(doms);
        wake_all(doms);
        let cur = (doms.current, doms.by_id.get(&doms.current).map_or(0, |d| d.cur_vcpu));
        if let Some(n) = pick_after(doms, cur, false) {
            return n;
        }
        // While a domain listens to the serial line, wake up to poll it.
        let poll = console_listener(doms).map(|_| clock::now_ns() + CONSOLE_POLL_NS);
        match [next_deadline(doms), poll].into_iter().flatten().min() {
            Some(t) => clock::arm(Some(t)),
            None => {
                // Every domain waits for an event no one can send.
                println!("All domains are blocked with no timer pending: halting machine");
                qemu::exit(qemu::ExitCode::Failure);
            }
        }
        cpu::idle_until_interrupt();
    }
}
