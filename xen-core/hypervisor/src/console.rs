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

/// Takes every byte waiting in the UART into the input ring; true if any arrived.
pub fn poll_input() -> bool {
    let mut c = Com1::handle();
    let mut got = false;
    let mut input = INPUT.lock();
    while let Some(b) = c.try_read_byte() {
        got = true;
        if input.len() < INPUT_MAX {
            input.push_back(b);
        }
    }
    got
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
