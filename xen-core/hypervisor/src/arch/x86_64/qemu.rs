//! QEMU's `isa-debug-exit` device (iobase 0xf4): a write of `v` ends QEMU with exit status
//! `(v << 1) | 1`. The test harness reads that status; on real hardware (no device) the
//! write is ignored and we halt.

use super::port::own_write_u32;

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Exit codes agreed with xtask's QEMU harness (QEMU status = code * 2 + 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failure = 0x11,
}

pub fn exit(code: ExitCode) -> ! {
    // Port 0xf4 is QEMU's debug-exit device when present (xtask always adds it) and
    // unassigned otherwise.
    own_write_u32(DEBUG_EXIT_PORT, code as u32);
    super::halt_forever()
}
