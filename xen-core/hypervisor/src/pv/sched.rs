//! The domain table and a round-robin scheduler for one CPU: who runs next, context
//! switches (registers, FPU, segment bases, page tables, guest GDT), blocking and
//! waking, and the end of a domain.

use super::domain::{Domain, RunState};
use super::{events, traps};
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
    slots: Vec<Option<Domain>>,
    current: usize,
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
}

impl Domains {
    pub fn add(&mut self, d: Domain) {
        let id = d.id as usize;
        if self.slots.len() <= id {
            self.slots.resize_with(id + 1, || None);
        }
        self.slots[id] = Some(d);
    }

    pub fn current_id(&self) -> u16 {
        self.current as u16
    }

    pub fn cur(&mut self) -> &mut Domain {
        self.slots[self.current].as_mut().expect("the current domain exists")
    }

    pub fn get(&self, id: u16) -> Option<&Domain> {
        self.slots.get(id as usize).and_then(Option::as_ref).filter(|d| d.alive())
    }

    pub fn get_mut(&mut self, id: u16) -> Option<&mut Domain> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut).filter(|d| d.alive())
    }

    /// The current domain and, if it exists and is another one, domain `other`.
    pub fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>) {
        let cur = self.current;
        let o = other as usize;
        if o == cur || o >= self.slots.len() {
            return (self.cur(), None);
        }
        let (lo, hi) = self.slots.split_at_mut(cur.max(o));
        let (a, b) = if cur < o { (&mut lo[cur], &mut hi[0]) } else { (&mut hi[0], &mut lo[o]) };
        (a.as_mut().expect("the current domain exists"), b.as_mut().filter(|d| d.alive()))
    }

    pub fn ids(&self) -> Vec<u16> {
        self.slots.iter().flatten().filter(|d| d.alive()).map(|d| d.id).collect()
    }
}

/// Makes `id` the running domain at boot: its registers become the frame to enter.
pub fn start(doms: &mut Domains, id: u16) -> Regs {
    doms.current = id as usize;
    doms.slice_end = clock::now_ns() + TIME_SLICE_NS;
    let d = doms.cur();
    load(d);
    d.vcpu.saved
}

fn save(d: &mut Domain, regs: &Regs) {
    d.vcpu.saved = *regs;
    cpu::fpu_save(&mut d.vcpu.fpu);
    d.vcpu.fs_base = cpu::rdmsr(cpu::MSR_FS_BASE);
    let gs = cpu::rdmsr(cpu::MSR_GS_BASE);
    if d.vcpu.kernel_mode {
        d.vcpu.gs_base_kernel = gs;
    } else {
        d.vcpu.gs_base_user = gs;
    }
}

fn load(d: &mut Domain) {
    cpu::fpu_restore(&mut d.vcpu.fpu);
    cpu::set_fs_base(d.vcpu.fs_base);
    cpu::set_gs_base(if d.vcpu.kernel_mode { d.vcpu.gs_base_kernel } else { d.vcpu.gs_base_user });
    cpu::set_ts(d.vcpu.fpu_ts);
    gdt::load_guest_descriptors(&d.vcpu.gdt_shadow);
    cpu::write_cr3(d.vcpu.current_l4() << 12);
    events::update_time(d);
}

/// Wakes blocked or polling vCPUs that have something to do.
fn wake_all(doms: &mut Domains) {
    let now = clock::now_ns();
    for d in doms.slots.iter_mut().flatten().filter(|d| d.alive()) {
        events::fire_timer(d, now);
        if d.vcpu.run != RunState::Runnable && events::wants_to_run(d) {
            d.vcpu.run = RunState::Runnable;
        }
    }
}

fn next_deadline(doms: &Domains) -> Option<u64> {
    doms.slots.iter().flatten().filter(|d| d.alive()).filter_map(|d| d.vcpu.wake_deadline()).min()
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
    // shut down with SCHEDOP_remote_shutdown (bounded: one pass over the table).
    for slot in 0..doms.slots.len() {
        let Some(reason) = doms.slots[slot].as_ref().and_then(|d| d.ending) else { continue };
        let Some(d) = doms.slots[slot].take() else { continue };
        doms.any_crashed |= reason == super::domain::END_CRASH;
        if d.hardware {
            // The initial domain of a single-domain boot takes the machine with it.
            super::hypercall::hardware_domain_shutdown(&d, reason);
        }
        super::destroy::destroy(doms, d, reason);
    }
    wake_all(doms);
    let now = clock::now_ns();
    let cur_runnable = doms.slots[cur].as_ref().is_some_and(|d| d.alive() && d.vcpu.run == RunState::Runnable);
    let preempt = now >= doms.slice_end;
    let next = if cur_runnable && !preempt { Some(cur) } else { pick_after(doms, cur, cur_runnable) };
    let next = match next {
        Some(n) => n,
        None => idle(doms),
    };
    if next != cur || doms.slots[cur].is_none() {
        if let Some(d) = doms.slots[cur].as_mut() {
            save(d, regs);
        }
        doms.current = next;
        let d = doms.cur();
        load(d);
        *regs = d.vcpu.saved;
    }
    if next != cur || preempt {
        doms.slice_end = now + TIME_SLICE_NS;
    }
    let d = doms.cur();
    traps::deliver_events(d, regs);
    let deadline = [next_deadline(doms), (doms.ids().len() > 1).then_some(doms.slice_end)].into_iter().flatten().min();
    clock::arm(deadline);
}

/// The next runnable domain after `cur` in id order (or `cur` itself if it is the only).
fn pick_after(doms: &Domains, cur: usize, cur_runnable: bool) -> Option<usize> {
    let n = doms.slots.len();
    (1..=n)
        .map(|i| (cur + i) % n)
        .find(|&i| doms.slots[i].as_ref().is_some_and(|d| d.alive() && d.vcpu.run == RunState::Runnable))
        .or(cur_runnable.then_some(cur))
}

/// How often the serial line is polled for input while a domain listens for it.
const CONSOLE_POLL_NS: u64 = 10_000_000;

/// Whether someone reads the serial line: a hardware domain or a console ring.
fn console_listener(doms: &Domains) -> Option<u16> {
    doms.slots.iter().flatten().find(|d| d.alive() && (d.hardware || d.console_ring.is_some())).map(|d| d.id)
}

/// The domains serial input can go to, in Xen's switching order (by id), then the
/// hypervisor itself (None).
fn next_focus(doms: &Domains, cur: Option<u16>) -> Option<u16> {
    let ids: Vec<u16> = doms.slots.iter().flatten().filter(|d| d.alive() && (d.hardware || d.console_ring.is_some())).map(|d| d.id).collect();
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
        events::send_virq(d, xen_abi::xen::VIRQ_CONSOLE);
    } else {
        super::console_ring::feed_input(d, bytes);
    }
}

/// Nobody can run: sleep until a timer or event makes someone runnable.
fn idle(doms: &mut Domains) -> usize {
    loop {
        if doms.ids().is_empty() {
            all_gone(doms);
        }
        poll_console(doms);
        wake_all(doms);
        if let Some(n) = pick_after(doms, doms.current, false) {
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
