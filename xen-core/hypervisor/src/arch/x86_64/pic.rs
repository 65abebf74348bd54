//! The legacy 8259 PICs: the BIOS leaves IRQ 0 on vector 8 (#DF's). Remap them above the
//! exception vectors and mask every line; timers come from the local APIC.

use super::port::own_write_u8;

pub fn disable() {
    // The standard 8259 initialisation sequence on ports 0x20/0x21 and 0xa0/0xa1: ICW1
    // (init, ICW4 follows), ICW2 (vector base 0x20 / 0x28), ICW3 (cascade on IRQ 2), ICW4
    // (8086 mode), then mask all lines.
    for (port, value) in [
        (0x20, 0x11), (0xa0, 0x11), (0x21, 0x20), (0xa1, 0x28), (0x21, 0x04),
        (0xa1, 0x02), (0x21, 0x01), (0xa1, 0x01), (0x21, 0xff), (0xa1, 0xff),
    ] {
        own_write_u8(port, value);
    }
}
