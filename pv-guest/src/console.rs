//! Console output. The initial domain writes through `console_io`; a domU's console ring
//! arrives with the xenstore/console work.

use crate::arch::x86_64::hypercall;
use core::fmt::{self, Write};

struct ConsoleIo;

impl Write for ConsoleIo {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if hypercall::console_write(s.as_bytes()) < 0 {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

pub fn print(args: fmt::Arguments<'_>) {
    let _ = ConsoleIo.write_fmt(args);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
