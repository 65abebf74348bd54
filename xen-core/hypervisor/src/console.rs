//! The hypervisor's console: `println!` to COM1 with Xen's `(XEN) ` line prefix, so logs
//! read like Xen's.

use crate::arch::x86_64::serial::Com1;
use core::fmt::Write;

/// One CPU and no interrupts yet, so a handle per call cannot interleave.
pub fn print(args: core::fmt::Arguments<'_>) {
    let _ = Com1::handle().write_fmt(args);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("(XEN) {}\n", format_args!($($arg)*)))
    };
}
