//! Self-tests: one `TEST <name> PASS|FAIL <why>` line each, then `N passed, N failed`.

use crate::arch::x86_64::hypercall::{self, Method};
use crate::cmdline::TestSelection;
use crate::println;
use core::fmt::{self, Write};
use xen_abi::xen::{StartInfo, SIF_INITDOMAIN, START_INFO_MAGIC_X86_64};

/// Why a test failed, formatted without allocation.
pub struct Failure {
    buf: [u8; 160],
    len: usize,
}

impl Failure {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Failure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

pub fn fail(args: fmt::Arguments<'_>) -> Failure {
    let mut f = Failure { buf: [0; 160], len: 0 };
    let _ = f.write_fmt(args);
    f
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(fail(format_args!($($arg)*)));
        }
    };
}

pub struct Env<'a> {
    pub start_info: &'a StartInfo,
}

type TestFn = fn(&Env<'_>) -> Result<(), Failure>;

const TESTS: &[(&str, TestFn)] = &[
    ("console", console),
    ("start_info", start_info),
    ("hypercall_entry", hypercall_entry),
    ("unknown_hypercall", unknown_hypercall),
];

/// Runs the selected tests; returns (passed, failed).
pub fn run(env: &Env<'_>, sel: TestSelection<'_>) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in TESTS.iter().filter(|(n, _)| sel.includes(n)) {
        match test(env) {
            Ok(()) => {
                passed += 1;
                println!("TEST {name} PASS");
            }
            Err(f) => {
                failed += 1;
                println!("TEST {name} FAIL {}", f.as_str());
            }
        }
    }
    (passed, failed)
}

fn console(_: &Env<'_>) -> Result<(), Failure> {
    let r = hypercall::console_write(b"pv-guest: console_io write\n");
    ensure!(r >= 0, "console_io write returned {r}");
    Ok(())
}

fn start_info(env: &Env<'_>) -> Result<(), Failure> {
    let si = env.start_info;
    ensure!(si.magic.starts_with(START_INFO_MAGIC_X86_64), "magic {:?}", &si.magic[..16]);
    ensure!(si.flags & SIF_INITDOMAIN != 0, "SIF_INITDOMAIN missing from flags {:#x}", si.flags);
    ensure!(si.nr_pages > 0 && si.nr_pt_frames > 0, "nr_pages {} nr_pt_frames {}", si.nr_pages, si.nr_pt_frames);
    ensure!(si.pt_base >= 0xffff_ffff_8000_0000, "pt_base {:#x} outside the initial mapping", si.pt_base);
    Ok(())
}

/// The hypercall page and a direct `syscall` reach the same hypervisor.
fn hypercall_entry(_: &Env<'_>) -> Result<(), Failure> {
    hypercall::set_method(Method::HypercallPage);
    let via_page = hypercall::xen_version_no_arg(xen_abi::version::XENVER_version);
    hypercall::set_method(Method::Syscall);
    let via_syscall = hypercall::xen_version_no_arg(xen_abi::version::XENVER_version);
    hypercall::set_method(Method::HypercallPage);
    ensure!(via_page == via_syscall, "page {via_page:#x} != syscall {via_syscall:#x}");
    ensure!(via_page >> 16 == 4 && via_page & 0xffff == 17, "version {via_page:#x}, wanted 4.17");
    Ok(())
}

/// Numbers Xen leaves unused answer -ENOSYS, through either entry.
fn unknown_hypercall(_: &Env<'_>) -> Result<(), Failure> {
    let enosys = -i64::from(xen_abi::errno::ENOSYS);
    for m in [Method::HypercallPage, Method::Syscall] {
        hypercall::set_method(m);
        for nr in [11u64, 43, 56, 63] {
            let r = hypercall::raw_no_args(nr);
            if r != enosys {
                hypercall::set_method(Method::HypercallPage);
                return Err(fail(format_args!("hypercall {nr} via {m:?} returned {r}, wanted {enosys}")));
            }
        }
    }
    hypercall::set_method(Method::HypercallPage);
    Ok(())
}
