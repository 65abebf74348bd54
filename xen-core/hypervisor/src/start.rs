//! From `kmain` (called by boot.s in long mode) to the first domain.

use crate::arch::x86_64::{clock, gdt, mem, paging, phys, phys::DirectMap, pic, qemu, serial::Com1, smp, trap};
use crate::pv::event::Port;
use crate::pv::sched::{self, Domains};
use crate::pv::{domain::build, mmu::m2p, DOMAINS};
use boot_manifest::Manifest;
use crate::{boot_options, multiboot, println};
use alloc::string::String;

static CMDLINE: spin::Once<String> = spin::Once::new();

/// The hypervisor command line without the image name (`XENVER_commandline`).
pub fn hypervisor_cmdline() -> &'static str {
    CMDLINE.get().map_or("", String::as_str)
}

/// Drops the first word (the loader's file name) as Xen does.
fn without_image_name(s: &str) -> &str {
    s.trim_start().split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim_start())
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn fail(what: core::fmt::Arguments<'_>) -> ! {
    println!("panic: {what}");
    qemu::exit(qemu::ExitCode::Failure);
}

/// Where each other CPU begins in Rust (from `trampoline.s`).
extern "C" fn ap_main(cpu: usize) -> ! {
    smp::init_this_ap(cpu);
    sched::run_ap()
}

#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    Com1::init();
    // Xen's first line (`xl dmesg` users look for it), then what this really is.
    println!("Xen version 4.17.0-xen-core (xen-core {VERSION}: a Rust hypervisor with the Xen 4.17 PV interface)");
    let boot = multiboot::parse(&DirectMap, magic, u64::from(info))
        .unwrap_or_else(|e| fail(format_args!("multiboot: {e}")));
    println!("Command line: {}", without_image_name(boot.cmdline.as_str()));
    let opts = boot_options::parse(boot.cmdline.as_str(), |r| println!("{r}"));
    println!(
        "console={} dom0_mem={:?} dom0_max_vcpus={:?} loglvl={:?}",
        if opts.console_com1 { "com1" } else { "default" },
        opts.dom0_mem,
        opts.dom0_max_vcpus,
        opts.loglvl
    );
    let pool = crate::domain::credit::PoolParams::from_boot(opts.credit, |w| println!("{w}"));
    crate::pv::credit::set_boot_params(pool);
    println!("Using scheduler: SMP Credit Scheduler (credit)");
    println!("Pool-0: tslice={}ms ratelimit={}us migration-delay={}us", pool.tslice_ms, pool.ratelimit_us, pool.migr_delay_us);
    for r in boot.memory_map() {
        println!(" {:016x} - {:016x} ({:?})", r.base, r.base.saturating_add(r.len), r.kind);
    }
    println!("System RAM: {}MB", boot.ram_bytes() >> 20);
    for (i, m) in boot.modules().enumerate() {
        let cmdline = m.cmdline(&DirectMap).unwrap_or_else(|e| fail(format_args!("module {i}: {e}")));
        println!("module {i}: {:#x}-{:#x} {} bytes \"{}\"", m.start, m.end, m.len(), cmdline.as_str());
    }

    let (free, loader_end) = mem::init_frames(&boot, u64::from(info));
    phys::set_ram_limit(mem::ram_end(&boot));
    let pml4 = paging::init(mem::FRAMES.lock().as_mut().expect("just initialised"), mem::ram_end(&boot));
    mem::init_heap();
    pic::disable();
    gdt::init(0);
    crate::arch::x86_64::cpu::enable_fpu();
    clock::init();
    println!("TSC {} MHz, APIC timer {} MHz", clock::tsc_hz() / 1_000_000, clock::lapic_hz() / 1_000_000);
    // Every CPU the MADT lists (up to `maxcpus`); without ACPI, the boot CPU alone.
    let apic_ids = match crate::acpi::parse_madt(&DirectMap) {
        Ok(madt) => madt.apic_ids,
        Err(e) => {
            println!("ACPI: {e}: the boot CPU only");
            alloc::vec::Vec::new()
        }
    };
    let max_cpus = opts.maxcpus.map_or(usize::MAX, |n| n.max(1) as usize);
    let cpus = smp::start_aps(&apic_ids, max_cpus, pml4, ap_main);
    println!("Brought up {cpus} CPUs");
    println!(
        "Memory: {} MiB free after the loader's {} KiB; page tables at mfn {pml4:#x}, W^X image, direct map",
        free >> 8,
        loader_end >> 10
    );
    CMDLINE.call_once(|| String::from(without_image_name(boot.cmdline.as_str())));
    m2p::init(pml4, mem::ram_end(&boot) / 4096);
    let nr_frames = mem::ram_end(&boot) / 4096;
    mem::with_frames(|a| crate::pv::mmu::init(nr_frames, |m| !a.is_free(m)));
    record_machine_memory(&boot, nr_frames);

    let modules: alloc::vec::Vec<_> = boot.modules().copied().collect();
    let Some(first) = modules.first() else { fail(format_args!("no dom0 kernel module")) };
    let first_bytes = phys::module_bytes(first.start, first.len());
    let free = mem::with_frames(|a| a.free_frames());
    sched::FREE_BEFORE_DOMAINS.store(free, core::sync::atomic::Ordering::Relaxed);
    let mut doms = Domains::default();
    if Manifest::is_manifest(first_bytes) {
        let manifest = Manifest::decode(first_bytes, modules.len())
            .unwrap_or_else(|e| fail(format_args!("boot manifest: {e}")));
        println!("*** Building {} domains from the boot manifest ***", manifest.domains.len());
        for (i, spec) in manifest.domains.iter().enumerate() {
            let m = modules[spec.kernel_module as usize];
            let input = build::DomainInput {
                id: i as u16,
                name: &spec.name,
                privileged: spec.privileged,
                hardware: false,
                kernel: phys::module_bytes(m.start, m.len()),
                cmdline: &spec.cmdline,
                initrd: spec.initrd_module.and_then(|i| modules.get(i as usize)).map(|m| phys::module_bytes(m.start, m.len())),
                nr_pages: spec.memory_kib / 4,
                // vCPU 0 starts; the guest brings up the others (VCPUOP_initialise/up).
                vcpus: spec.vcpus,
            };
            let built = build::build_domain(&input)
                .unwrap_or_else(|e| fail(format_args!("Could not construct domain {i} ({}): {e}", spec.name)));
            println!(
                "Domain {i} ({}): {} MiB, entry {:#x}, cmdline \"{}\"{}",
                spec.name,
                spec.memory_kib >> 10,
                built.layout.entry,
                spec.cmdline,
                if spec.privileged { ", privileged" } else { "" }
            );
            let mut domain = built.domain;
            if let Err(why) = crate::pv::console_ring::setup(&mut domain) {
                fail(format_args!("console for d{i}: {why}"));
            }
            doms.add(domain);
        }
        for c in &manifest.channels {
            let (a, b) = (c.dom_a, c.dom_b);
            let bound = doms
                .get_mut(a)
                .map(|d| d.evtchn.bind_at(c.port_a, Port::Interdomain { remote_dom: b, remote_port: c.port_b }))
                .zip(doms.get_mut(b).map(|d| d.evtchn.bind_at(c.port_b, Port::Interdomain { remote_dom: a, remote_port: c.port_a })));
            match bound {
                Some((Ok(()), Ok(()))) => println!("Static event channel: d{a} port {} <-> d{b} port {}", c.port_a, c.port_b),
                _ => fail(format_args!("static event channel d{a}:{} <-> d{b}:{} could not be bound", c.port_a, c.port_b)),
            }
        }
        if let Some(xs) = manifest.xenstore {
            for id in doms.ids().into_iter().filter(|&i| i != xs.domain) {
                let xs_port = xs.port_base + u32::from(id);
                match crate::pv::domain::xenstore_setup::connect(&mut doms, id, xs.domain, xs_port) {
                    Ok((mfn, port)) => println!("xenstore: d{id} ring mfn {mfn:#x}, port {port} <-> d{} port {xs_port}, grant ref 1", xs.domain),
                    Err(why) => fail(format_args!("xenstore for d{id}: {why}")),
                }
            }
        }
    } else {
        let kernel_cmd = first.cmdline(&DirectMap).unwrap_or_else(|e| fail(format_args!("dom0 kernel: {e}")));
        let initrd = modules.get(1).map(|m| phys::module_bytes(m.start, m.len()));
        // Without dom0_mem, leave a sixteenth (at least 16 MiB) to the hypervisor, as Xen does.
        let free = free.saturating_sub(build::unpack_pages(first_bytes));
        let default_pages = free - (free / 16).max(4096);
        let nr_pages = opts.dom0_mem.amount.map_or(default_pages, |b| b / 4096).min(default_pages);
        let input = build::DomainInput {
            id: 0,
            name: "Domain-0",
            privileged: true,
            hardware: true,
            kernel: first_bytes,
            cmdline: without_image_name(kernel_cmd.as_str()),
            initrd,
            nr_pages,
            // As Xen: one vCPU per physical CPU unless `dom0_max_vcpus` says otherwise.
            vcpus: boot_options::dom0_vcpus(opts.dom0_max_vcpus, smp::online() as u32, crate::domain::control::MAX_VCPUS),
        };
        println!("*** Building a PV Dom0 ***");
        let built = build::build_domain(&input).unwrap_or_else(|e| fail(format_args!("Could not construct domain 0: {e}")));
        let l = &built.layout;
        println!("VIRTUAL MEMORY ARRANGEMENT:");
        println!(" Loaded kernel: {}", l.kernel);
        if let Some(r) = l.initrd {
            println!(" Init. ramdisk: {r}");
        }
        println!(" Phys-Mach map: {}", l.phys_mach);
        println!(" Start info:    {}", l.start_info);
        println!(" Page tables:   {}", l.page_tables);
        println!(" Boot stack:    {}", l.boot_stack);
        println!(" TOTAL:         {}", l.total());
        println!(" ENTRY ADDRESS: {:016x}", l.entry);
        println!("Dom0 has maximum {} VCPUs", built.domain.vcpus.len());
        // dom0_setup_permissions: every I/O frame but the local APIC / MSI window and
        // the IO-APIC, which stay the hypervisor's.
        let paddr_bits = crate::arch::x86_64::cpu::cpuid(0x8000_0008, 0).0 & 0xff;
        let limit = 1u64 << paddr_bits.clamp(32, 52).saturating_sub(12);
        crate::pv::mmu::with(|t, _| t.grant_io(xen_abi::DomId(0), limit, alloc::vec![(0xfec00, 0xfec00), (0xfee00, 0xfeeff)]));
        doms.add(built.domain);
    }
    let regs = sched::start(&mut doms, 0);
    *DOMAINS.write() = Some(doms);
    println!("Starting dom0");
    trap::enter_guest(&regs);
}

/// Keeps the machine E820 for the hardware domain and marks, as Xen's
/// `arch_init_memory`, the first MiB and every frame that is not RAM as I/O memory
/// (`dom_io`): the hardware domain may map it, nobody can own it.
fn record_machine_memory(boot: &crate::multiboot::BootInfo, nr_frames: u64) {
    use crate::multiboot::RegionKind;
    use xen_abi::memory::E820Entry;
    let e820: alloc::vec::Vec<E820Entry> = boot
        .memory_map()
        .map(|r| E820Entry {
            addr: r.base,
            size: r.len,
            type_: match r.kind {
                RegionKind::Ram => 1,
                RegionKind::Reserved => 2,
                RegionKind::AcpiReclaimable => 3,
                RegionKind::AcpiNvs => 4,
                RegionKind::Bad => 5,
                RegionKind::Other(n) => n,
            },
        })
        .collect();
    let ram = |mfn: u64| {
        boot.memory_map().any(|r| r.kind == RegionKind::Ram && r.base <= mfn * 4096 && (mfn + 1) * 4096 <= r.base.saturating_add(r.len))
    };
    crate::pv::mmu::with(|t, _| {
        for mfn in (0..nr_frames).filter(|&m| m < 0x100 || !ram(m)) {
            t.set_owner_at_boot(xen_abi::Mfn(mfn), crate::mm::Owner::Io);
        }
    });
    crate::pv::mmu::memory::MACHINE_E820.call_once(|| e820);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("Panic on CPU 0: {info}");
    qemu::exit(qemu::ExitCode::Failure);
}
