//! The domain table and a round-robin scheduler for one CPU: who runs next, context
//! switches (registers, FPU, segment bases, page tables, guest GDT), blocking and
//! waking, and the end of a domain.

use super::domain::{Domain, RunState};
use super::{events, traps};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{clock, cpu, gdt, qemu};
use crate::println;
use alloc::vec::Vec;

/// How long a vCPU runs before another runnable one gets the CPU.
const TIME_SLICE_NS: u64 = 10_000_000;

#[derive(Debug, Default)]
pub struct Domains {
    slots: Vec<Option<Domain>>,
    current: usize,
    slice_end: u64,
    /// Whether any domain ended by crashing (the machine's exit status says so).
    any_crashed: bool,
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
    cpu::save_fpu(&mut d.vcpu.fpu);
    d.vcpu.fs_base = cpu::rdmsr(cpu::MSR_FS_BASE);
    let gs = cpu::rdmsr(cpu::MSR_GS_BASE);
    if d.vcpu.kernel_mode {
        d.vcpu.gs_base_kernel = gs;
    } else {
        d.vcpu.gs_base_user = gs;
    }
}

fn load(d: &mut Domain) {
    cpu::restore_fpu(&d.vcpu.fpu);
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
    println!("All domains have shut down: halting machine");
    qemu::exit(if doms.any_crashed { qemu::ExitCode::Failure } else { qemu::ExitCode::Success });
}

/// Called on every way back to a guest, with the frame that will be `iretq`'d: destroys
/// domains that ended, picks who runs (switching `regs` to them if needed), and
/// delivers their pending events.
pub fn exit_to_guest(doms: &mut Domains, regs: &mut Regs) {
    let cur = doms.current;
    if let Some(reason) = doms.cur().ending {
        let d = doms.slots[cur].take().expect("current domain");
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

/// Nobody can run: sleep until a timer or event makes someone runnable.
fn idle(doms: &mut Domains) -> usize {
    loop {
        if doms.ids().is_empty() {
            all_gone(doms);
        }
        wake_all(doms);
        if let Some(n) = pick_after(doms, doms.current, false) {
            return n;
        }
        match next_deadline(doms) {
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
