//! x86 port I/O: the `x86_64` crate's `Port<T>`, and which ports a hardware domain may use.

pub use x86_64::instructions::port::Port;

/// Ports the hypervisor keeps for itself even from the hardware domain: Xen's
/// `dom0_setup_permissions` list, plus our console UART and QEMU's exit device.
pub fn reserved(port: u16) -> bool {
    matches!(port,
        0x20..=0x21 | 0xa0..=0xa1 // PICs
        | 0x40..=0x43 | 0x61       // PIT, speaker / NMI status
        | 0x92 | 0xf0              // A20/INIT, IGNNE#
        | 0xcf8..=0xcff            // PCI configuration (0xcf8 is emulated per domain)
        | 0x3f8..=0x3ff            // COM1: the hypervisor's console
        | 0xf4..=0xf7)             // isa-debug-exit: the hypervisor's exit status
}

/// The legacy devices the hypervisor drives itself: COM1, the PICs, PIT channel 2 and
/// its gate, the CMOS RTC, QEMU's debug-exit device (all within [`reserved`], so no
/// domain reaches them). I/O to them only programs or reads those devices, so it is
/// offered as safe calls, with the one argument for all of them here; a write to any
/// other port through these is dropped (a read gives all ones, as an absent device).
fn own_device(port: u16) -> bool {
    matches!(port, 0x3f8..=0x3ff | 0x20 | 0x21 | 0xa0 | 0xa1 | 0x42 | 0x43 | 0x61 | 0x70 | 0x71 | 0xf4)
}

/// `out` of a byte to one of the hypervisor's own devices.
pub fn own_write_u8(port: u16, value: u8) {
    if own_device(port) {
        // SAFETY: one of the hypervisor's own legacy devices (own_device): the write
        // programs that device or hands it data, and touches no memory.
        unsafe { Port::<u8>::new(port).write(value) }
    }
}

/// `in` of a byte from one of the hypervisor's own devices.
pub fn own_read_u8(port: u16) -> u8 {
    if !own_device(port) {
        return 0xff;
    }
    // SAFETY: as for own_write_u8; reading a status or data register of that device.
    unsafe { Port::<u8>::new(port).read() }
}

/// `out` of a double word to one of the hypervisor's own devices (the debug-exit port).
pub fn own_write_u32(port: u16, value: u32) {
    if own_device(port) {
        // SAFETY: as for own_write_u8.
        unsafe { Port::<u32>::new(port).write(value) }
    }
}

fn range_free(port: u16, size: u8) -> bool {
    (0..u16::from(size)).all(|i| port.checked_add(i).is_some_and(|p| !reserved(p)))
}

/// A hardware domain's `in` of `size` (1, 2, 4) bytes; None for a port the hypervisor keeps.
pub fn passthrough_read(port: u16, size: u8) -> Option<u32> {
    if !range_free(port, size) {
        return None;
    }
    // SAFETY: the port range is none of the hypervisor's own devices (reserved()), so
    // the read can only affect devices the hardware domain drives, as on Xen.
    Some(unsafe {
        match size {
            1 => u32::from(Port::<u8>::new(port).read()),
            2 => u32::from(Port::<u16>::new(port).read()),
            _ => Port::<u32>::new(port).read(),
        }
    })
}

/// A hardware domain's `out`; dropped for a port the hypervisor keeps.
pub fn passthrough_write(port: u16, size: u8, value: u32) {
    if !range_free(port, size) {
        return;
    }
    // SAFETY: as for passthrough_read.
    unsafe {
        match size {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}
