//! Hardware access. The only place for assembly, port I/O and raw physical memory.
pub mod x86_64;
