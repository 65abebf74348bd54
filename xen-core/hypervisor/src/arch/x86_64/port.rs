//! x86 port I/O.

/// Writes a byte to an I/O port.
///
/// # Safety
/// The caller must know what the device behind `port` does with the write.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the device effect; `out` touches no memory.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller vouches for the device effect; `out` touches no memory.
    unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) };
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// The caller must know the read has no harmful side effect on the device.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the device effect; `in` touches no memory.
    unsafe { core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Writes a 16-bit value to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: the caller vouches for the device effect; `out` touches no memory.
    unsafe { core::arch::asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags)) };
}

/// Reads a 16-bit value from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inw(port: u16) -> u16 {
    let value: u16;
    // SAFETY: the caller vouches for the device effect; `in` touches no memory.
    unsafe { core::arch::asm!("in ax, dx", in("dx") port, out("ax") value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Reads a 32-bit value from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: the caller vouches for the device effect; `in` touches no memory.
    unsafe { core::arch::asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags)) };
    value
}

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
            1 => u32::from(inb(port)),
            2 => u32::from(inw(port)),
            _ => inl(port),
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
            1 => outb(port, value as u8),
            2 => outw(port, value as u16),
            _ => outl(port, value),
        }
    }
}
