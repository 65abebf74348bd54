//! The 16550 UART at COM1 (0x3f8), polled, 115200 8N1.

use super::port::{inb, outb};

const COM1: u16 = 0x3f8;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_DATA_READY: u8 = 1;

#[derive(Debug)]
pub struct Com1(());

impl Com1 {
    /// Programs the UART. Safe to call more than once.
    pub fn init() -> Self {
        // SAFETY: COM1 is a 16550 on every PC platform QEMU emulates; these writes only
        // program its divisor, line format and FIFO.
        unsafe {
            outb(COM1 + 1, 0x00); // no interrupts
            outb(COM1 + 3, 0x80); // DLAB on
            outb(COM1, 0x01); // divisor 1: 115200 baud
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x03); // 8N1, DLAB off
            outb(COM1 + 2, 0xC7); // FIFO on, cleared, 14-byte threshold
            outb(COM1 + 4, 0x0B); // DTR, RTS, OUT2
        }
        Com1(())
    }

    /// A handle to the UART programmed by an earlier [`Com1::init`].
    pub fn handle() -> Self {
        Com1(())
    }

    pub fn write_byte(&mut self, b: u8) {
        // SAFETY: reading the line status register and writing the transmit holding
        // register of COM1 have no effect beyond sending the byte.
        unsafe {
            while inb(COM1 + 5) & LSR_THR_EMPTY == 0 {}
            outb(COM1, b);
        }
    }
}

impl Com1 {
    /// A received byte, if one is waiting (polled: the UART's interrupt is off).
    pub fn try_read_byte(&mut self) -> Option<u8> {
        // SAFETY: reading COM1's line status and receive buffer registers only takes a
        // received byte out of the UART's FIFO.
        unsafe { (inb(COM1 + 5) & LSR_DATA_READY != 0).then(|| inb(COM1)) }
    }
}

impl core::fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}
