//! The domain table (a reader-writer lock over per-domain locks: `pv::local` says who
//! takes which) and a round-robin scheduler of vCPUs over every CPU: which vCPU of
//! which domain runs next on a CPU, context switches (registers, FPU, segment bases, page
//! tables, guest GDT, run-state accounting), blocking and waking (a vCPU an event wakes
//! runs at once, as Xen's credit scheduler boosts it, unless the running one has had
//! less than the pool's rate limit), and the end of a domain. The time slice and the
//! rate limit are Pool-0's (`pv::credit::pool_params`, Xen's 30 ms and 1000 µs unless
//! `XEN_SYSCTL_scheduler_op` changed them).

use crate::domain::runstate::GuestWrite;
use crate::pv::domain::{Domain, RunState, Vcpu};
use crate::arch::x86_64::guest::GuestView;
use xen_abi::vcpu::{RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running};
use crate::domain::credit::{CpuMask, MASK_BITS};
use crate::pv::{credit, event, trap};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu, gdt, percpu, percpu::MAX_CPUS, qemu, smp};
use crate::println;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Free frames just before the first domain was built: with every domain gone, the
/// allocator must be back to this count (each domain returned every frame).
pub static FREE_BEFORE_DOMAINS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default)]
pub struct Domains {
    /// Every domain by id: a hash map, so memory follows the number of domains rather
    /// than the highest id (ids are sparse once domains come and go).
    /// Each behind its own lock: a vCPU's entry that touches only its own domain takes
    /// that lock under the table's read lock (`local`); work across domains takes the
    /// table's write lock and reaches every domain without locking it (`get_mut`).
    by_id: hashbrown::HashMap<u16, spin::Mutex<Domain>>,
    /// The domain this entry into the hypervisor works for (`enter` sets it from what
    /// this CPU runs; on the write side, entries are one at a time).
    current: u16,
    /// What each physical CPU runs (None: idle), and when its time slice ends.
    running: [Option<VcpuRef>; MAX_CPUS],
    slice_end: [u64; MAX_CPUS],
    /// When each CPU's vCPU was switched in (the rate limit counts from there).
    switched_in: [u64; MAX_CPUS],
    /// A woken vCPU whose boost the rate limit held back on each CPU: it preempts once
    /// the running one has had its rate limit.
    deferred: [Option<VcpuRef>; MAX_CPUS],
    /// Whether any domain ended by crashing (the machine's exit status says so).
    any_crashed: bool,
    /// System time of the next serial-input poll.
    next_console_poll: u64,
    /// The domain that gets serial input (None: the hypervisor, which ignores it).
    console_focus: Option<u16>,
    input_switch: crate::console::InputSwitch,
    /// The user switched the input to the hypervisor (so an absent focus is not reset).
    focus_on_xen: bool,
}

/// The domains and the scheduler, once built (`start::kmain`). An entry into the
/// hypervisor that works for its own domain only (most traps and hypercalls) holds the
/// read side and that domain's own lock (`local`), so vCPUs of different domains do
/// such work at once; scheduling, and work that reaches other domains, holds the write
/// side (`lock`).
pub static DOMAINS: spin::RwLock<Option<Domains>> = spin::RwLock::new(None);

/// The vCPU each CPU runs asked to give the CPU away (`SCHEDOP_yield`, on the read
/// side): another runnable vCPU gets it at the scheduler's next look.
static YIELD: [core::sync::atomic::AtomicBool; MAX_CPUS] = [const { core::sync::atomic::AtomicBool::new(false) }; MAX_CPUS];

/// `SCHEDOP_yield` from the vCPU this CPU runs.
pub fn yield_this_cpu() {
    YIELD[percpu::cpu_index()].store(true, Ordering::Relaxed);
}

/// CPUs waiting for the write side: new readers hold back while there are any, so a
/// CPU whose guest enters the hypervisor back to back can't keep the scheduler out.
static WRITERS_WAITING: AtomicUsize = AtomicUsize::new(0);

/// Takes the domain table's write side.
pub fn lock() -> spin::RwLockWriteGuard<'static, Option<Domains>> {
    if let Some(g) = DOMAINS.try_write() {
        return g;
    }
    WRITERS_WAITING.fetch_add(1, Ordering::SeqCst);
    let g = smp::spin_for("the domain table", || DOMAINS.try_write());
    WRITERS_WAITING.fetch_sub(1, Ordering::SeqCst);
    g
}

/// Takes the domain table's read side.
pub fn read() -> spin::RwLockReadGuard<'static, Option<Domains>> {
    smp::spin_for("the domain table (read)", || {
        if WRITERS_WAITING.load(Ordering::SeqCst) != 0 {
            return None;
        }
        DOMAINS.try_read()
    })
}

/// Takes one domain's own lock (under the table's read side).
pub fn lock_domain(m: &spin::Mutex<Domain>) -> spin::MutexGuard<'_, Domain> {
    smp::spin_for("a domain", || m.try_lock())
}

/// A vCPU as the scheduler names it: domain id and vCPU number.
pub type VcpuRef = (u16, usize);

impl Domains {
    pub fn add(&mut self, d: Domain) {
        self.by_id.insert(d.id, spin::Mutex::new(d));
    }

    pub fn current_id(&self) -> u16 {
        self.current
    }

    /// Starts an entry from a guest on this CPU: the domain and vCPU it runs become the
    /// ones hypercalls and traps act on.
    pub fn enter(&mut self) {
        if let Some((id, v)) = self.running[percpu::cpu_index()] {
            self.current = id;
            if let Some(d) = self.by_id.get_mut(&id) {
                d.get_mut().cur_vcpu = v;
            }
        }
    }

    /// Whether vCPU `e` runs on a CPU other than this one.
    fn running_elsewhere(&self, e: VcpuRef) -> bool {
        let me = percpu::cpu_index();
        self.running.iter().enumerate().any(|(c, r)| c != me && *r == Some(e))
    }

    /// Whether some vCPU of domain `id` runs on a CPU other than this one.
    fn domain_running_elsewhere(&self, id: u16) -> Option<usize> {
        let me = percpu::cpu_index();
        self.running.iter().enumerate().find(|&(c, r)| c != me && r.is_some_and(|(d, _)| d == id)).map(|(c, _)| c)
    }

    /// Whether vCPU `v` of domain `id` is on a CPU now (for `getvcpuinfo`).
    pub fn vcpu_running(&self, id: u16, v: usize) -> bool {
        self.running.contains(&Some((id, v)))
    }

    /// The CPU vCPU `v` of domain `id` runs on, if it runs.
    pub fn vcpu_cpu(&self, id: u16, v: usize) -> Option<usize> {
        self.running.iter().position(|r| *r == Some((id, v)))
    }

    /// Whether vCPU `e` may run on `cpu` (`pv::credit`: hard affinity, cap).
    /// The online CPUs but `except` that run nothing.
    fn idle_cpus(&self, except: usize) -> CpuMask {
        idle_mask(&self.running, except)
    }

    fn allowed(&mut self, e: VcpuRef, cpu: usize) -> bool {
        self.any_mut(e.0).is_some_and(|d| credit::may_run_on(d, e.1, cpu))
    }

    pub fn cur(&mut self) -> &mut Domain {
        self.by_id.get_mut(&self.current).expect("the current domain exists").get_mut()
    }

    /// Domain `id` if it is alive. Under the write side no CPU holds a domain's own
    /// lock, so every domain is reached directly.
    pub fn get(&mut self, id: u16) -> Option<&Domain> {
        self.get_mut(id).map(|d| &*d)
    }

    pub fn get_mut(&mut self, id: u16) -> Option<&mut Domain> {
        self.by_id.get_mut(&id).map(spin::Mutex::get_mut).filter(|d| d.alive())
    }

    /// Domain `id`, alive or being torn down.
    fn any_mut(&mut self, id: u16) -> Option<&mut Domain> {
        self.by_id.get_mut(&id).map(spin::Mutex::get_mut)
    }

    /// Whether id `id` names a domain, alive or being torn down (read side).
    pub fn exists(&self, id: u16) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The locks of the domains among `ids` that exist, taken in ascending id order,
    /// the one order every CPU holding more than one domain's lock takes them in
    /// (read side; `ids` sorted, without repeats).
    pub fn lock_ids(&self, ids: &[u16]) -> Vec<(u16, spin::MutexGuard<'_, Domain>)> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        ids.iter().filter_map(|&id| Some((id, lock_domain(self.by_id.get(&id)?)))).collect()
    }

    /// Domain `id`'s lock, if it is alive (read side).
    pub fn lock_id(&self, id: u16) -> Option<spin::MutexGuard<'_, Domain>> {
        self.by_id.get(&id).map(lock_domain).filter(|d| d.alive())
    }

    /// After an event for vCPU `v` of `d` was raised under the read side: sends the
    /// CPU that must act a reschedule IPI — the one running the vCPU, if its upcall is
    /// now deliverable, or an idle one of its affinity if the vCPU was waiting for this. True if no CPU
    /// is idle for a woken vCPU: this CPU must schedule before its guest resumes.
    pub fn notify_vcpu(&self, d: &Domain, v: usize) -> bool {
        let me = percpu::cpu_index();
        let cpus = &self.running[..smp::online()];
        if let Some(c) = cpus.iter().position(|r| *r == Some((d.id, v))) {
            if c != me && event::upcall_deliverable(d, v) {
                smp::kick(c);
            }
            return false;
        }
        if !(runnable_if_woken(d, v) && event::wants_to_run(d, v)) {
            return false;
        }
        let idle = |c: usize| c != me && cpus[c].is_none() && credit::may_run_on(d, v, c);
        let preferred = (0..cpus.len()).find(|&c| idle(c) && credit::prefers(d, v, c));
        match preferred.or_else(|| (0..cpus.len()).find(|&c| idle(c))) {
            Some(c) => {
                smp::kick(c);
                false
            }
            None => true,
        }
    }

    /// What this CPU runs, and whether its time slice is over (read side).
    pub fn this_cpu(&self) -> Option<(VcpuRef, bool)> {
        let me = percpu::cpu_index();
        self.running[me].map(|e| (e, clock::now_ns() >= self.slice_end[me]))
    }

    /// The current domain and, if it exists and is another one, domain `other`.
    pub fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>) {
        if other == self.current {
            return (self.cur(), None);
        }
        let [a, b] = self.by_id.get_disjoint_mut([&self.current, &other]);
        (a.expect("the current domain exists").get_mut(), b.map(spin::Mutex::get_mut).filter(|d| d.alive()))
    }

    /// Whether id `id` is taken, by a live domain or one still to be torn down.
    pub fn slot_taken(&self, id: u16) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The living domains' ids, in id order.
    pub fn ids(&mut self) -> Vec<u16> {
        let mut ids: Vec<u16> = self.alive().map(|d| d.id).collect();
        ids.sort_unstable();
        ids
    }

    fn alive(&mut self) -> impl Iterator<Item = &Domain> {
        live(&mut self.by_id)
    }
}

/// The living domains of a table the caller holds the write side of.
fn live(by_id: &mut hashbrown::HashMap<u16, spin::Mutex<Domain>>) -> impl Iterator<Item = &Domain> {
    by_id.values_mut().map(|d| &*d.get_mut()).filter(|d| d.alive())
}

/// Every domain (alive or not) of a table the caller holds the write side of.
fn all(by_id: &mut hashbrown::HashMap<u16, spin::Mutex<Domain>>) -> impl Iterator<Item = &mut Domain> {
    by_id.values_mut().map(spin::Mutex::get_mut)
}

/// Makes `id` the running domain at boot: its registers become the frame to enter.
pub fn start(doms: &mut Domains, id: u16) -> Regs {
    doms.current = id;
    doms.running[0] = Some((id, 0));
    smp::set_running_domain(Some(id));
    let now = clock::now_ns();
    doms.slice_end[0] = now + credit::pool_params().tslice_ns();
    doms.switched_in[0] = now;
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
    // The guest's CR4 bits (TSD, DE, FSGSBASE) are the vCPU's, not the CPU's.
    cpu::apply_guest_cr4(v.cr4_guest);
    gdt::load_guest_descriptors(&v.gdt_shadow);
    gdt::load_ldt(v.mm.ldt_ents, &v.ldt_pages);
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

/// Wakes blocked or polling vCPUs that have something to do; those woken, to run next.
fn wake_all(doms: &mut Domains) -> Vec<VcpuRef> {
    let now = clock::now_ns();
    let mut woken = Vec::new();
    for d in all(&mut doms.by_id).filter(|d| d.alive()) {
        for v in 0..d.vcpus.len() {
            event::fire_timer(d, v, now);
            if d.vcpus[v].run != RunState::Runnable && event::wants_to_run(d, v) {
                d.vcpus[v].run = RunState::Runnable;
                if d.vcpus[v].online {
                    set_runstate(d, v, RUNSTATE_runnable, now);
                }
                if runnable(d, v) {
                    woken.push((d.id, v));
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

/// The earliest timer this CPU must wake up for: its own vCPU's, and those of vCPUs no
/// CPU runs if this CPU watches them (an idle one, or CPU 0 when none is idle), so that
/// each deadline interrupts one CPU rather than all. A watcher whose guest enters the
/// hypervisor only on the read side (`pv::local`) does not re-arm by itself: a CPU that
/// sees a parked deadline earlier than the watcher's timer sends it a reschedule IPI,
/// and the watcher re-arms on its way back to its guest.
fn next_deadline(doms: &mut Domains) -> Option<u64> {
    let me = percpu::cpu_index();
    let online = smp::online();
    let watcher = (0..online).find(|&c| doms.running[c].is_none()).unwrap_or(0);
    let own = doms.running[me].and_then(|(id, v)| doms.any_mut(id)?.vcpus.get(v)?.wake_deadline());
    let credit = credit::deadline(doms.running[me].and_then(|(id, v)| Some((&*doms.any_mut(id)?, v))), clock::now_ns());
    let own = [own, credit].into_iter().flatten().min();
    let running = &doms.running;
    let parked = live(&mut doms.by_id)
        .flat_map(|d| d.vcpus.iter().enumerate().map(move |(v, vc)| (d.id, v, vc)))
        .filter(|&(id, v, vc)| vc.online && !running[..online].contains(&Some((id, v))))
        .filter_map(|(_, _, vc)| vc.wake_deadline())
        .min();
    if watcher == me {
        return [own, parked].into_iter().flatten().min();
    }
    if parked.is_some_and(|p| !clock::fires_by(watcher, p)) {
        smp::kick(watcher);
    }
    own
}

/// Ends the machine when no domain is left, with Xen's words for the hardware domain.
fn all_gone(doms: &mut Domains) -> ! {
    println!(
        "Frames free: {}, {} before the first domain was built",
        crate::arch::x86_64::mem::with_frames(|a| a.free_frames()),
        FREE_BEFORE_DOMAINS.load(Ordering::Relaxed)
    );
    println!("All domains have shut down: halting machine");
    qemu::exit(if doms.any_crashed { qemu::ExitCode::Failure } else { qemu::ExitCode::Success });
}

/// Called on every way back to a guest, with the frame that will be `iretq`'d: destroys
/// domains that ended, picks what this CPU runs (switching `regs` to it if needed), and
/// delivers its pending events. False when this CPU has nothing to run: the caller lets
/// go of the domain lock and waits (`idle`).
pub fn exit_to_guest(doms: &mut Domains, regs: &mut Regs) -> bool {
    poll_console(doms);
    let me = percpu::cpu_index();
    let cur_ent = doms.running[me];
    // Every domain that ended: the current one, or another one a privileged domain
    // shut down with SCHEDOP_remote_shutdown, lowest id first. A toolstack's domain
    // stays, shut down, until destroyed (`pv::domctl::lifecycle`). A domain still on
    // another CPU goes once that CPU has left it (it is asked to).
    let mut ending: Vec<u16> = all(&mut doms.by_id).filter(|d| d.ending.is_some()).map(|d| d.id).collect();
    ending.sort_unstable();
    let dom_exc = !ending.is_empty();
    for id in ending {
        if doms.any_mut(id).is_some_and(crate::pv::domctl::lifecycle::keep_shut_down) {
            continue;
        }
        if let Some(c) = doms.domain_running_elsewhere(id) {
            smp::kick(c);
            continue;
        }
        if cur_ent.is_some_and(|(d, _)| d == id) {
            // Leaving it: its registers are not needed any more, and its page tables are
            // about to be freed.
            doms.running[me] = None;
            smp::set_running_domain(None);
            smp::load_idle_page_tables();
            gdt::unload_ldt();
        }
        let Some(d) = doms.by_id.remove(&id).map(spin::Mutex::into_inner) else { continue };
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
    pick_and_enter(doms, regs, woken)
}

/// Chooses what this CPU runs next and loads it into `regs` (the frame of what ran
/// before, if anything, is saved first); kicks idle CPUs when more is runnable than
/// runs. False when there is nothing.
fn pick_and_enter(doms: &mut Domains, regs: &mut Regs, mut woken: Vec<VcpuRef>) -> bool {
    let me = percpu::cpu_index();
    let now = clock::now_ns();
    let params = credit::pool_params();
    // A boost the rate limit held back comes back as a wake-up, if the vCPU still waits.
    if let Some(w) = doms.deferred[me].take() {
        if !woken.contains(&w) && doms.any_mut(w.0).is_some_and(|d| runnable(d, w.1)) {
            woken.push(w);
        }
    }
    credit::account(&mut doms.by_id, &doms.running, now, runnable);
    let cur_ent = doms.running[me].filter(|(id, _)| doms.by_id.contains_key(id));
    let cur_runnable = cur_ent.is_some_and(|e| doms.allowed(e, me) && doms.any_mut(e.0).is_some_and(|d| runnable(d, e.1)));
    // A woken vCPU goes to an idle CPU of its affinity if there is one (kicked below;
    // one of its soft affinity first), else it takes this one at once if its affinity
    // allows. Xen's credit1 boosts only a vCPU with credit left; doing only that was
    // tried, and in one boot-tier fuzz run in about ten a fuzzer's vCPU then went
    // unserved for a second (cause not found), so every woken vCPU is boosted.
    let mut boost = None;
    let idle = doms.idle_cpus(me);
    for &w in &woken {
        if Some(w) == cur_ent || doms.running_elsewhere(w) || !doms.allowed(w, me) {
            continue;
        }
        let Some(d) = doms.any_mut(w.0) else { continue };
        if credit::better_elsewhere(d, w.1, me, idle) {
            continue;
        }
        let idle_for = (0..smp::online()).any(|c| idle.contains(c) && doms.allowed(w, c));
        if cur_ent.is_none() || !idle_for {
            boost = Some(w);
            break;
        }
    }
    let slice_over = now >= doms.slice_end[me];
    let yielded = YIELD[me].swap(false, Ordering::Relaxed);
    // Credit1's rate limit (`csched_schedule`): a runnable vCPU that has run less than
    // the rate limit since it was switched in, and did not yield, keeps the CPU until it
    // has; the woken one preempts it then.
    if boost.is_some() && cur_runnable && !slice_over && params.holds_back(now.saturating_sub(doms.switched_in[me]), yielded) {
        doms.deferred[me] = boost.take();
    }
    let preempt = slice_over || yielded || boost.is_some();
    let next = if cur_runnable && !preempt {
        cur_ent
    } else {
        boost.or_else(|| pick_after(doms, cur_ent.unwrap_or((doms.current, 0)), cur_runnable))
    };
    if next != cur_ent {
        if let Some((id, v)) = cur_ent {
            if let Some(d) = doms.any_mut(id) {
                d.cur_vcpu = v;
                save(d, regs);
                let state = state_after_running(&d.vcpus[v]);
                set_runstate(d, v, state, now);
            }
        }
        doms.running[me] = next;
        smp::set_running_domain(next.map(|(id, _)| id));
        let Some((id, v)) = next else {
            smp::load_idle_page_tables();
            gdt::unload_ldt();
            kick_others(doms);
            return false;
        };
        doms.current = id;
        doms.switched_in[me] = now;
        let d = doms.cur();
        d.cur_vcpu = v;
        load(d);
        *regs = d.vcpus[v].saved;
    }
    let Some((id, v)) = next else { return false };
    if next != cur_ent || preempt {
        doms.slice_end[me] = now + params.tslice_ns();
    }
    doms.current = id;
    let d = doms.cur();
    d.cur_vcpu = v;
    let periodic = periodic_timer(d, now);
    trap::deliver_events(d, regs);
    kick_others(doms);
    let others = doms.alive().flat_map(|d| d.vcpus.iter()).filter(|v| v.online).count() > smp::online();
    let rate_limit_end = doms.deferred[me].map(|_| params.rate_limit_end(doms.switched_in[me], now));
    let deadline = [next_deadline(doms), periodic, others.then_some(doms.slice_end[me]), rate_limit_end].into_iter().flatten().min();
    clock::arm(deadline);
    true
}

/// Sends other CPUs a reschedule IPI where they have something to do: an idle one while
/// runnable vCPUs wait, a busy one whose vCPU has an event to take or may not run any
/// more (paused, shut down, taken down).
fn kick_others(doms: &mut Domains) {
    kick_idle(doms);
    let me = percpu::cpu_index();
    for c in 0..MAX_CPUS {
        let Some((id, v)) = doms.running[c] else { continue };
        if c == me {
            continue;
        }
        let stale = doms.any_mut(id).is_none_or(|d| !runnable(d, v) || event::upcall_deliverable(d, v)) || !doms.allowed((id, v), c);
        if stale {
            smp::kick(c);
        }
    }
}

/// Sends idle CPUs a reschedule IPI while runnable vCPUs that may run there wait.
fn kick_idle(doms: &mut Domains) {
    let running = &doms.running;
    let waiting: Vec<VcpuRef> = all(&mut doms.by_id)
        .map(|d| &*d)
        .flat_map(|d| (0..d.vcpus.len()).filter(|&v| runnable(d, v)).map(|v| (d.id, v)))
        .filter(|&e| !running.contains(&Some(e)))
        .collect();
    let me = percpu::cpu_index();
    let mut left = waiting.len();
    let mut kicked = CpuMask(0);
    // CPUs in a waiting vCPU's soft affinity first, then any it may run on.
    for soft_pass in [true, false] {
        for c in 0..smp::online().min(MASK_BITS) {
            if left == 0 {
                return;
            }
            if c == me || kicked.contains(c) || doms.running[c].is_some() {
                continue;
            }
            let wanted = waiting.iter().any(|&w| doms.any_mut(w.0).is_some_and(|d| credit::may_run_on(d, w.1, c) && (!soft_pass || credit::prefers(d, w.1, c))));
            if wanted {
                left -= 1;
                kicked.0 |= 1 << c;
                smp::kick(c);
            }
        }
    }
}

/// Whether vCPU `v` of `d` would run if it were woken (all of `runnable` but the
/// run state).
fn runnable_if_woken(d: &Domain, v: usize) -> bool {
    d.alive() && d.ctl.can_run() && d.vcpus.get(v).is_some_and(|v| v.initialised && v.online)
}

/// Whether vCPU `v` of `d` may run now: the domain alive and not paused or shut down
/// for its toolstack, the vCPU loaded, up and not blocked.
pub fn runnable(d: &Domain, v: usize) -> bool {
    runnable_if_woken(d, v) && d.vcpus[v].run == RunState::Runnable
}

/// The next runnable vCPU this CPU may run: those with credit first (`pv::credit`),
/// among those the ones whose soft affinity has this CPU, then after `cur` in (domain
/// id, vCPU) order, wrapping round (or `cur` itself if it is the only).
fn pick_after(doms: &mut Domains, cur: VcpuRef, cur_runnable: bool) -> Option<VcpuRef> {
    let me = percpu::cpu_index();
    let idle = doms.idle_cpus(me);
    let running = &doms.running;
    // A vCPU whose soft affinity has an idle CPU is left for that one (kicked after the
    // pick), the current one too.
    let mut cur_elsewhere = false;
    let best = all(&mut doms.by_id)
        .map(|d| &*d)
        .flat_map(|d| {
            (0..d.vcpus.len())
                .filter(move |&v| runnable(d, v) && credit::may_run_on(d, v, me))
                .map(move |v| (d.id, v, (credit::priority(d, v), !credit::prefers(d, v, me)), credit::better_elsewhere(d, v, me, idle)))
        })
        .filter(|&(id, v, _, elsewhere)| {
            cur_elsewhere |= elsewhere && (id, v) == cur;
            !elsewhere && !running.iter().enumerate().any(|(c, r)| c != me && *r == Some((id, v)))
        })
        .min_by_key(|&(id, v, p, _)| (p, (id, v) <= cur, (id, v)))
        .map(|(id, v, _, _)| (id, v));
    best.or((cur_runnable && !cur_elsewhere).then_some(cur))
}

/// The CPUs of `running` (the online ones) but `except` that run nothing.
fn idle_mask(running: &[Option<VcpuRef>], except: usize) -> CpuMask {
    let mut m = CpuMask(0);
    for (c, r) in running.iter().enumerate().take(smp::online().min(MASK_BITS)) {
        if c != except && r.is_none() {
            m.0 |= 1 << c;
        }
    }
    m
}

/// How often the serial line is polled for input while a domain listens for it.
const CONSOLE_POLL_NS: u64 = 10_000_000;

/// Whether someone reads the serial line: a hardware domain or a console ring.
fn console_listener(doms: &mut Domains) -> Option<u16> {
    doms.alive().filter(|d| d.hardware || d.console_ring.is_some()).map(|d| d.id).min()
}

/// The domains serial input can go to, in Xen's switching order (by id), then the
/// hypervisor itself (None).
fn next_focus(doms: &mut Domains, cur: Option<u16>) -> Option<u16> {
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
    crate::console::release_stale(now);
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

/// This CPU has nothing to run: waits, without the domain lock, until something is
/// runnable (a timer, an event another CPU sent, a reschedule IPI), then loads it into
/// `regs` for the exit path.
pub fn idle(regs: &mut Regs) {
    loop {
        {
            let mut guard = lock();
            if let Some(doms) = guard.as_mut() {
                if doms.alive().next().is_none() {
                    all_gone(doms);
                }
                poll_console(doms);
                let woken = wake_all(doms);
                if pick_and_enter(doms, regs, woken) {
                    return;
                }
                // While a domain listens to the serial line, wake up to poll it.
                let poll = console_listener(doms).map(|_| clock::now_ns() + CONSOLE_POLL_NS);
                match [next_deadline(doms), poll].into_iter().flatten().min() {
                    Some(t) => clock::arm(Some(t)),
                    None if doms.running.iter().all(Option::is_none)
                        && doms.alive().flat_map(|d| d.vcpus.iter()).all(|v| !v.online || v.wake_deadline().is_none()) =>
                    {
                        // Every domain waits for an event no one can send.
                        println!("All domains are blocked with no timer pending: halting machine");
                        qemu::exit(qemu::ExitCode::Failure);
                    }
                    None => clock::arm(None),
                }
            }
        }
        cpu::idle_until_interrupt();
    }
}

/// Where another CPU goes once it is up: it waits for vCPUs to run.
pub fn run_ap() -> ! {
    let mut regs = Regs::default();
    idle(&mut regs);
    crate::arch::x86_64::trap::enter_guest(&regs)
}
