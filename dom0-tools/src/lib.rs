//! The dom0 toolstack. `unsafe` lives only in [`sys`] and [`netsys`] (ioctl and mmap
//! wrappers); the rest is safe Rust with host tests.

pub mod blkback;
pub mod builder;
pub mod console;
pub mod cpumap;
pub mod daemon;
pub mod netback;
pub mod netsys;
pub mod sys;
pub mod xenconsoled;
pub mod xenstored;
pub mod xs;
pub mod toolstack;
pub mod xc;
pub mod xlcfg;
