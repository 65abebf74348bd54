//! The hypervisor's console: `println!` to COM1 with Xen's `(XEN) ` prefix on every line,
//! so logs read like Xen's.

use crate::arch::x86_64::serial::Com1;
use core::fmt::{self, Write};

struct Prefixed(Com1);

impl Write for Prefixed {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            self.0.write_str(first)?;
        }
        for line in lines {
            self.0.write_str("\n(XEN) ")?;
            self.0.write_str(line)?;
        }
        Ok(())
    }
}

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Writes one message; the lock keeps messages whole if an exception prints meanwhile
/// from another CPU (one CPU today).
pub fn print(args: fmt::Arguments<'_>) {
    let _g = LOCK.try_lock();
    let mut out = Prefixed(Com1::handle());
    let _ = out.write_str("(XEN) ");
    let _ = out.write_fmt(args);
    let _ = out.0.write_str("\n");
}

/// Writes guest console output verbatim (the initial domain's `console_io`, as Xen does).
pub fn write_raw(bytes: &[u8]) {
    let mut c = Com1::handle();
    for &b in bytes {
        if b == b'\n' {
            c.write_byte(b'\r');
        }
        c.write_byte(b);
    }
}

/// Bytes typed on the serial line, kept until the domain with the console input reads
/// them (`CONSOLEIO_read`); Xen's `serial_rx` ring, bounded the same way (older bytes are
/// kept, newer ones dropped when it is full).
static INPUT: spin::Mutex<alloc::collections::VecDeque<u8>> = spin::Mutex::new(alloc::collections::VecDeque::new());
const INPUT_MAX: usize = 4096;

/// Takes every byte waiting in the UART (at most `buf.len()`); returns how many.
pub fn poll_raw(buf: &mut [u8]) -> usize {
    let mut c = Com1::handle();
    let mut n = 0;
    while n < buf.len() {
        match c.try_read_byte() {
            Some(b) => {
                buf[n] = b;
                n += 1;
            }
            None => break,
        }
    }
    n
}

/// Queues bytes for the hardware domain's `CONSOLEIO_read`.
pub fn queue_input(bytes: &[u8]) {
    let mut input = INPUT.lock();
    for &b in bytes {
        if input.len() < INPUT_MAX {
            input.push_back(b);
        }
    }
}

/// Xen's console-input switch: three Ctrl-A in a row move the serial input to the next
/// domain; the three are eaten, a shorter run is passed on.
#[derive(Debug, Default)]
pub struct InputSwitch {
    ctrl_a: u8,
}

pub const SWITCH_CODE: u8 = 0x01;

impl InputSwitch {
    /// Feeds one typed byte; `emit` gets what goes to the focused domain, the result
    /// says whether to switch focus.
    pub fn feed(&mut self, b: u8, mut emit: impl FnMut(u8)) -> bool {
        if b == SWITCH_CODE {
            self.ctrl_a += 1;
            if self.ctrl_a == 3 {
                self.ctrl_a = 0;
                return true;
            }
            return false;
        }
        for _ in 0..core::mem::take(&mut self.ctrl_a) {
            emit(SWITCH_CODE);
        }
        emit(b);
        false
    }
}

/// Moves up to `buf.len()` input bytes into `buf`; returns how many.
pub fn read_input(buf: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    let n = buf.len().min(input.len());
    for (slot, b) in buf.iter_mut().zip(input.drain(..n)) {
        *slot = b;
    }
    n
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!($($arg)*))
    };
}
