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
