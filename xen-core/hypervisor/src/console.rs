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

/// A message's text with `(XEN) ` after each newline inside it.
struct Prefixed<'a>(&'a mut Buf);

impl Write for Prefixed<'_> {
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

/// Who writes the serial line and what waits: everything that writes it takes this lock,
/// so messages from different CPUs never mix byte by byte.
static LOCK: spin::Mutex<Line> = spin::Mutex::new(Line { open_since: None, held: [0; HELD_MAX], held_len: 0 });

/// Room for output held back while the hardware domain's line is open.
const HELD_MAX: usize = 4096;

/// How long an open line (a shell prompt, say) holds other output back.
const HOLD_NS: u64 = 100_000_000;

struct Line {
    /// The hardware domain's output left a line open (its last byte was not a newline),
    /// since this system time: the hypervisor's messages and other domains' lines wait
    /// for it to end, so a line a test harness reads is never cut in two.
    open_since: Option<u64>,
    held: [u8; HELD_MAX],
    held_len: usize,
}

/// Puts `bytes` on the serial line (a newline as CR LF) and in the console ring.
fn emit(bytes: &[u8]) {
    record(bytes);
    let mut c = Com1::handle();
    for &b in bytes {
        if b == b'\n' {
            c.write_byte(b'\r');
        }
        c.write_byte(b);
    }
}

impl Line {
    /// Whole lines from a writer other than the open line's: now, or once it ends.
    fn whole(&mut self, bytes: &[u8]) {
        if self.open_since.is_none() {
            return emit(bytes);
        }
        let n = bytes.len().min(HELD_MAX - self.held_len);
        self.held[self.held_len..self.held_len + n].copy_from_slice(&bytes[..n]);
        self.held_len += n;
    }

    fn release(&mut self) {
        emit(&self.held[..self.held_len]);
        self.held_len = 0;
    }
}

/// Takes the console lock. An exception that prints while this CPU holds it (or a CPU
/// that holds it for long) must still be heard: after about 10 ms, None.
fn lock() -> Option<spin::MutexGuard<'static, Line>> {
    let since = crate::arch::x86_64::cpu::rdtsc();
    loop {
        if let Some(g) = LOCK.try_lock() {
            return Some(g);
        }
        if crate::arch::x86_64::cpu::rdtsc().wrapping_sub(since) > crate::arch::x86_64::clock::tsc_hz() / 100 {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// A message formatted into a fixed buffer (no heap: the console must work without it).
struct Buf {
    bytes: [u8; 4096],
    len: usize,
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one message, `(XEN) ` before each of its lines.
pub fn print(args: fmt::Arguments<'_>) {
    let mut b = Buf { bytes: [0; 4096], len: 0 };
    let _ = Prefixed(&mut b).write_fmt(args);
    let msg = &b.bytes[..b.len];
    match lock() {
        Some(mut line) => {
            line.whole(b"(XEN) ");
            line.whole(msg);
            line.whole(b"\n");
        }
        None => {
            emit(b"(XEN) ");
            emit(msg);
            emit(b"\n");
        }
    }
}

/// Writes the hardware domain's console output verbatim (its `console_io`, as Xen
/// does); while it leaves a line open, other output waits (`HOLD_NS` at most).
pub fn write_raw(bytes: &[u8]) {
    let Some(last) = bytes.last() else { return };
    let Some(mut line) = lock() else { return };
    emit(bytes);
    if *last == b'\n' {
        line.open_since = None;
        line.release();
    } else if line.open_since.is_none() {
        line.open_since = Some(crate::arch::x86_64::clock::now_ns());
    }
}

/// Writes one whole line made of `parts` (a domain's `(dN) ` prefix, its text, the
/// newline) without other output inside it.
pub fn write_line(parts: &[&[u8]]) {
    let Some(mut line) = lock() else { return };
    for p in parts {
        line.whole(p);
    }
}

/// Lets held output out once the hardware domain's open line has held it for
/// `HOLD_NS` (a prompt waiting for input): on a new line, and the line counts as ended.
pub fn release_stale(now_ns: u64) {
    let Some(mut line) = LOCK.try_lock() else { return };
    if line.held_len > 0 && line.open_since.is_some_and(|t| now_ns.saturating_sub(t) > HOLD_NS) {
        line.open_since = None;
        emit(b"\n");
        line.release();
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
