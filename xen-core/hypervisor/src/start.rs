//! From `kmain` (called by boot.s in long mode) to the first domain.

use crate::arch::x86_64::{gdt, mem, paging, phys::DirectMap, qemu, serial::Com1, trap::Regs};
use crate::{boot_options, multiboot, println};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn fail(what: core::fmt::Arguments<'_>) -> ! {
    println!("panic: {what}");
    qemu::exit(qemu::ExitCode::Failure);
}

#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    Com1::init();
    println!("xen-core {VERSION} (Xen 4.17 PV interface)");
    let boot = multiboot::parse(&DirectMap, magic, u64::from(info))
        .unwrap_or_else(|e| fail(format_args!("multiboot: {e}")));
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
        let cmdline = m.cmdline(&DirectMap).unwrap_or_else(|e| fail(format_args!("module {i}: {e}")));
        println!("module {i}: {:#x}-{:#x} {} bytes \"{}\"", m.start, m.end, m.len(), cmdline.as_str());
    }

    let (free, loader_end) = mem::init_frames(&boot, u64::from(info));
    let pml4 = paging::init(&mut mem::FRAMES.lock().as_mut().expect("just initialised"), mem::ram_end(&boot));
    mem::init_heap();
    gdt::init();
    println!(
        "Memory: {} MiB free after the loader's {} KiB; page tables at mfn {pml4:#x}, W^X image, direct map",
        free >> 8,
        loader_end >> 10
    );
    println!("no domain builder yet: stopping");
    qemu::exit(qemu::ExitCode::Success);
}

/// A trap from a guest (ring 3).
pub fn guest_trap(regs: &mut Regs) {
    println!("guest trap {} with no domain to deliver it to\n{regs}", regs.entry_vector);
    qemu::exit(qemu::ExitCode::Failure);
}

/// SYSCALL from a guest.
pub fn guest_syscall(regs: &mut Regs) {
    println!("guest SYSCALL {:#x} with no domain\n{regs}", regs.rax);
    qemu::exit(qemu::ExitCode::Failure);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("Panic on CPU 0: {info}");
    qemu::exit(qemu::ExitCode::Failure);
}
