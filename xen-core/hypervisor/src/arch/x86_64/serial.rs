//! The 16550 UART at COM1 (0x3f8), polled, 115200 8N1.

use super::port::{own_read_u8, own_write_u8};

const COM1: u16 = 0x3f8;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_DATA_READY: u8 = 1;

#[derive(Debug)]
pub struct Com1(());

impl Com1 {
    /// Programs the UART. Safe to call more than once.
    pub fn init() -> Self {
        // COM1 is a 16550 on every PC platform QEMU emulates; these writes only program
        // its divisor, line format and FIFO.
        for (reg, value) in [
            (1, 0x00),    // no interrupts
            (3, 0x80),    // DLAB on
            (0, 0x01),    // divisor 1: 115200 baud
            (1, 0x00),
            (3, 0x03),    // 8N1, DLAB off
            (2, 0xC7),    // FIFO on, cleared, 14-byte threshold
            (4, 0x0B),    // DTR, RTS, OUT2
        ] {
            own_write_u8(COM1 + reg, value);
        }
        Com1(())
    }

    /// A handle to the UART programmed by an earlier [`Com1::init`].
    pub fn handle() -> Self {
        Com1(())
    }

    pub fn write_byte(&mut self, b: u8) {
        while own_read_u8(COM1 + 5) & LSR_THR_EMPTY == 0 {}
        own_write_u8(COM1, b);
    }
}

impl Com1 {
    /// A received byte, if one is waiting (polled: the UART's interrupt is off).
    pub fn try_read_byte(&mut self) -> Option<u8> {
        (own_read_u8(COM1 + 5) & LSR_DATA_READY != 0).then(|| own_read_u8(COM1))
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
