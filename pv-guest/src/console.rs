//! Console output. The initial domain writes through `console_io` (Xen's own serial
//! line); a domU writes to its console ring (start_info `console.domU`) and notifies the
//! backend through the ring's event channel.

use crate::arch::x86_64::hypercall;
use crate::arch::x86_64::mem::WindowPage;
use crate::arch::x86_64::sync::SpinLock;
use core::fmt::{self, Write};
use core::sync::atomic::Ordering;
use frontend_drivers::console::ConsoleRing;
use frontend_drivers::{Notify, SharedPage};

/// A window page as a front-end's shared page.
#[derive(Clone, Copy, Debug)]
pub struct Shared(pub WindowPage);

impl SharedPage for Shared {
    fn load_u32(&self, off: usize) -> u32 {
        self.0.u32(off).load(Ordering::Acquire)
    }
    fn store_u32(&self, off: usize, v: u32) {
        self.0.u32(off).store(v, Ordering::Release)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        self.0.read_bytes(off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        self.0.write_bytes(off, data)
    }
}

/// An event channel to a backend: send to notify, yield to wait (bounded).
#[derive(Clone, Copy, Debug)]
pub struct Port(pub u32);

impl Notify for Port {
    fn notify(&self) {
        crate::hv::send(self.0);
    }
    fn wait(&self) -> bool {
        crate::hv::sched_yield();
        true
    }
}

enum Backend {
    ConsoleIo,
    Ring(ConsoleRing<Shared, Port>),
}

static CONSOLE: SpinLock<Backend> = SpinLock::new(Backend::ConsoleIo);

/// Switches output to the domU console ring.
pub fn use_ring(page: WindowPage, evtchn: u32) {
    *CONSOLE.lock() = Backend::Ring(ConsoleRing::new(Shared(page), Port(evtchn)));
}

pub fn is_ring() -> bool {
    matches!(*CONSOLE.lock(), Backend::Ring(_))
}

struct Out<'a>(&'a Backend);

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.0 {
            Backend::ConsoleIo => {
                if hypercall::console_write(s.as_bytes()) < 0 {
                    return Err(fmt::Error);
                }
            }
            Backend::Ring(r) => {
                if r.write(s.as_bytes()) < s.len() {
                    return Err(fmt::Error);
                }
            }
        }
        Ok(())
    }
}

pub fn print(args: fmt::Arguments<'_>) {
    match CONSOLE.try_lock() {
        Some(guard) => {
            let _ = Out(&guard).write_fmt(args);
        }
        // A fault or panic while printing: fall back to console_io.
        None => {
            let _ = Out(&Backend::ConsoleIo).write_fmt(args);
        }
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
