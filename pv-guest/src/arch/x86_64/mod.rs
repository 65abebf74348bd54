//! x86_64 PV: entry, hypercalls.

pub mod hypercall;

core::arch::global_asm!(include_str!("head.s"), options(att_syntax));
