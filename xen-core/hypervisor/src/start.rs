//! From `kmain` (called by boot.s in long mode) to the first domain.

use crate::arch::x86_64::{phys::IdentityMapped, qemu, serial::Com1};
use crate::{boot_options, multiboot, println};

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    Com1::init();
    println!("xen-core {VERSION} (Xen 4.17 PV interface)");
    let boot = match multiboot::parse(&IdentityMapped, magic, u64::from(info)) {
        Ok(b) => b,
        Err(e) => {
            println!("panic: multiboot: {e}");
            qemu::exit(qemu::ExitCode::Failure);
        }
    };
    println!("Command line: {}", boot.cmdline.as_str());
    let opts = boot_options::parse(boot.cmdline.as_str(), |r| println!("{r}"));
    println!(
        "console={} dom0_mem={:?} dom0_max_vcpus={:?} loglvl={:?}",
        if opts.console_com1 { "com1" } else { "default" },
        opts.dom0_mem,
        opts.dom0_max_vcpus,
        opts.loglvl
    );
    for r in boot.memory_map() {
        println!(" {:016x} - {:016x} ({:?})", r.base, r.base.saturating_add(r.len), r.kind);
    }
    println!("System RAM: {}MB", boot.ram_bytes() >> 20);
    for (i, m) in boot.modules().enumerate() {
        let cmdline = m.cmdline(&IdentityMapped).unwrap_or_else(|e| panic!("module {i}: {e}"));
        println!("module {i}: {:#x}-{:#x} {} bytes \"{}\"", m.start, m.end, m.len(), cmdline.as_str());
    }
    println!("no domain builder yet: stopping");
    qemu::exit(qemu::ExitCode::Success);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    Com1::init();
    println!("panic: {info}");
    qemu::exit(qemu::ExitCode::Failure);
}
