//! Hardware and hypervisor access: the only place for assembly and raw pointers.
pub mod x86_64;
