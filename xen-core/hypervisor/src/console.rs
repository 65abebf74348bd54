//! The hypervisor's console: `println!` to COM1 with Xen's `(XEN) ` prefix on every line,
//! so logs read like Xen's.

use crate::arch::x86_64::serial::Com1;
use core::fmt::{self, Write};

/// Xen's console ring (`conring`): the last CONRING_SIZE bytes the console printed, for
/// `XEN_SYSCTL_readconsole`. Producer and consumer count bytes since boot.
pub struct Conring {
    buf: [u8; CONRING_SIZE],
    prod: u32,
    cons: u32,
}

pub const CONRING_SIZE: usize = 16384;

pub static CONRING: spin::Mutex<Conring> = spin::Mutex::new(Conring { buf: [0; CONRING_SIZE], prod: 0, cons: 0 });

impl Conring {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[self.prod as usize % CONRING_SIZE] = b;
            self.prod = self.prod.wrapping_add(1);
        }
        if self.prod.wrapping_sub(self.cons) as usize > CONRING_SIZE {
            self.cons = self.prod.wrapping_sub(CONRING_SIZE as u32);
        }
    }

    /// Xen's `read_console_ring`: from `index` (incremental) or the consumer, at most
    /// `out.len()` bytes; `clear` moves the consumer to the producer. Returns (bytes
    /// copied, the index to continue from).
    pub fn read(&mut self, out: &mut [u8], incremental: bool, index: u32, clear: bool) -> (usize, u32) {
        let oldest = self.prod.wrapping_sub((self.prod.wrapping_sub(self.cons) as usize).min(CONRING_SIZE) as u32);
        let mut c = if incremental && self.prod.wrapping_sub(index) <= self.prod.wrapping_sub(oldest) { index } else if incremental { oldest } else { self.cons };
        let mut n = 0;
        while c != self.prod && n < out.len() {
            out[n] = self.buf[c as usize % CONRING_SIZE];
            c = c.wrapping_add(1);
            n += 1;
        }
        if clear {
            self.cons = self.prod;
        }
        (n, c)
    }
}

fn record(bytes: &[u8]) {
    if let Some(mut r) = CONRING.try_lock() {
        r.push(bytes);
    }
}

struct Prefixed(Com1);

impl Write for Prefixed {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            record(first.as_bytes());
            self.0.write_str(first)?;
        }
        for line in lines {
            record(b"\n(XEN) ");
            record(line.as_bytes());
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
    record(b"(XEN) ");
    let _ = out.0.write_str("(XEN) ");
    let _ = out.write_fmt(args);
    let _ = out.0.write_str("\n");
    record(b"\n");
}

/// Writes guest console output verbatim (the initial domain's `console_io`, as Xen does).
pub fn write_raw(bytes: &[u8]) {
    record(bytes);
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
