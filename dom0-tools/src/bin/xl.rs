//! `xl`: Xen's domain-management CLI (the PV subset), over our hypercall layer and
//! xenstored. Errors are one line on stderr and exit status 1.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use dom0_tools::toolstack::{self, Error, Result};
use dom0_tools::xc::Xc;
use dom0_tools::xlcfg;
use dom0_tools::xs::Xs;
use dom0_tools::console;
use dom0_tools::cpumap;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "xl", about = "Xen domain management (PV guests)", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a domain from a config file (extra `key=value` arguments override it).
    Create {
        /// Attach to the console after creating.
        #[arg(short = 'c')]
        console: bool,
        /// Leave the domain paused.
        #[arg(short = 'p')]
        paused: bool,
        /// Check the configuration only.
        #[arg(short = 'n', long = "dry-run")]
        dry_run: bool,
        config: String,
        overrides: Vec<String>,
    },
    /// List domains.
    List {
        #[arg(short = 'l', long = "long")]
        long: bool,
        domains: Vec<String>,
    },
    /// Destroy a domain at once.
    Destroy { domain: String },
    /// Attach to a domain's console: what you type goes to the guest, `Ctrl-]` detaches.
    Console {
        /// Console type (`pv`; `serial` is refused: PV guests have none).
        #[arg(short = 't')]
        console_type: Option<String>,
        /// Console number (0, the only PV console).
        #[arg(short = 'n', default_value_t = 0)]
        num: u32,
        domain: String,
        /// Print the console log so far and return (for scripts).
        #[arg(long = "no-follow")]
        no_follow: bool,
    },
    Pause { domain: String },
    /// Print a domain's id.
    Domid { domain: String },
    /// Print a domain's name.
    Domname { domid: u16 },
    Unpause { domain: String },
    /// Ask a domain to shut down (PV control/shutdown, then a remote shutdown).
    Shutdown {
        #[arg(short = 'w')]
        wait: bool,
        domain: String,
    },
    Reboot { domain: String },
    /// Host and hypervisor information.
    Info,
    #[command(name = "vcpu-list")]
    VcpuList { domains: Vec<String> },
    /// Set a vCPU's CPU affinity: `xl vcpu-pin <Domain> <VCPU|all> <Hard CPUs|-> [Soft CPUs|-]`.
    #[command(name = "vcpu-pin")]
    VcpuPin {
        /// Accepted as xl does (undoes a guest's pin override; none here).
        #[arg(short = 'f', long = "force")]
        force: bool,
        domain: String,
        vcpu: String,
        hard: String,
        /// Soft affinity (`-` or absent: unchanged).
        soft: Option<String>,
    },
    /// The credit scheduler: list the pool's parameters and every domain's weight and
    /// cap, set a domain's (`-d`), or show or set the pool's (`-s`, with `-t/-r/-m`).
    #[command(name = "sched-credit")]
    SchedCredit {
        #[arg(short = 'd', long = "domain")]
        domain: Option<String>,
        #[arg(short = 'w', long = "weight", allow_hyphen_values = true)]
        weight: Option<String>,
        #[arg(short = 'c', long = "cap", allow_hyphen_values = true)]
        cap: Option<String>,
        /// The pool's parameters rather than a domain's.
        #[arg(short = 's', long = "schedparam")]
        schedparam: bool,
        /// Time slice, ms (with -s).
        #[arg(short = 't', long = "tslice_ms", allow_hyphen_values = true)]
        tslice: Option<String>,
        /// Context-switch rate limit, µs (with -s; 0: none).
        #[arg(short = 'r', long = "ratelimit_us", allow_hyphen_values = true)]
        ratelimit: Option<String>,
        /// vCPU migration delay, µs (with -s).
        #[arg(short = 'm', long = "migration_delay_us", allow_hyphen_values = true)]
        migration_delay: Option<String>,
        /// The pool (its name or id): Pool-0, the only one.
        #[arg(short = 'p', long = "cpupool")]
        cpupool: Option<String>,
    },
    #[command(name = "mem-set")]
    MemSet { domain: String, memory: String },
    /// Xen's console ring.
    Dmesg {
        #[arg(short = 'c')]
        clear: bool,
    },
    /// Print vCPU 0's registers (diagnostics).
    #[command(name = "debug-vcpu", hide = true)]
    DebugVcpu { domain: String },
    /// Print guest memory at a kernel virtual address as text (diagnostics).
    #[command(name = "debug-mem", hide = true)]
    DebugMem { domain: String, va: String, len: usize },
    /// The scheduler domctls' answers to odd requests, one line each (the dom0 tier
    /// compares them on Xen and xen-core).
    #[command(name = "debug-sched", hide = true)]
    DebugSched { domain: String },
    /// Write dom0's xenstore entries (what xen-init-dom0 does).
    #[command(name = "init-dom0", hide = true)]
    InitDom0,
    /// Watch a domain and apply its on_poweroff/on_reboot/on_crash/on_watchdog actions
    /// (started by create, with create's config file and overrides).
    #[command(hide = true)]
    Monitor { domid: u16, config: String, overrides: Vec<String> },
}

fn xc() -> Result<Xc> {
    Xc::open().map_err(|e| Error::Other(format!("cannot open the hypercall interface: {e}")))
}

fn xs() -> Result<Xs> {
    Xs::open().map_err(Error::from)
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli.cmd) {
        eprintln!("xl: {e}");
        std::process::exit(1);
    }
}

fn log_path(name: &str) -> String {
    format!("/var/log/xen/console/guest-{name}.log")
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Create { console, paused, dry_run, config, overrides } => {
            let c = load_config(&config, &overrides)?;
            for w in &c.warnings {
                eprintln!("xl: warning: {w}");
            }
            if dry_run {
                println!("{}", c.to_libxl_json());
                return Ok(());
            }
            let xc = xc()?;
            let mut xs = xs()?;
            let domid = toolstack::create(&xc, &mut xs, &c, paused)?;
            eprintln!("Parsing config from {config}");
            // The monitor applies on_poweroff/on_crash when the guest stops.
            if let Ok(exe) = std::env::current_exe() {
                let _ = std::process::Command::new(exe)
                    .args(["monitor", &domid.to_string(), &config])
                    .args(&overrides)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
            }
            if console {
                return attach_console(domid);
            }
            Ok(())
        }
        Cmd::List { long, domains } => {
            let xc = xc()?;
            let mut xs = xs()?;
            let mut all = xc.domains()?;
            if !domains.is_empty() {
                let want: Vec<u16> = domains.iter().map(|d| toolstack::find_domain(&mut xs, d)).collect::<Result<_>>()?;
                all.retain(|i| want.contains(&i.domain));
            }
            if long {
                println!("[");
                for (n, i) in all.iter().enumerate() {
                    let name = toolstack::domain_name(&mut xs, i.domain);
                    let comma = if n + 1 < all.len() { "," } else { "" };
                    println!(
                        "    {{\n        \"domid\": {},\n        \"config\": {{\n            \"c_info\": {{ \"type\": \"pv\", \"name\": \"{}\" }},\n            \"b_info\": {{ \"max_vcpus\": {}, \"max_memkb\": {}, \"target_memkb\": {} }}\n        }}\n    }}{comma}",
                        i.domain,
                        name,
                        i.max_vcpu_id + 1,
                        i.max_pages * 4,
                        i.tot_pages * 4
                    );
                }
                println!("]");
            } else {
                println!("{}", toolstack::LIST_HEADER);
                for i in &all {
                    let name = toolstack::domain_name(&mut xs, i.domain);
                    println!("{}", toolstack::list_line(&name, i));
                }
            }
            Ok(())
        }
        Cmd::Destroy { domain } => {
            let mut xs = xs()?;
            let d = toolstack::find_domain(&mut xs, &domain)?;
            toolstack::destroy(&xc()?, &mut xs, d)
        }
        Cmd::Console { console_type, num, domain, no_follow } => {
            if console_type.as_deref().is_some_and(|t| t != "pv") || num != 0 {
                return Err(Error::Other("only the PV console 0 exists for a PV domain".into()));
            }
            let mut xs = xs()?;
            let d = toolstack::find_domain(&mut xs, &domain)?;
            if no_follow {
                let name = toolstack::domain_name(&mut xs, d);
                return print_log(&name);
            }
            attach_console(d)
        }
        Cmd::Domid { domain } => {
            println!("{}", toolstack::find_domain(&mut xs()?, &domain)?);
            Ok(())
        }
        Cmd::Domname { domid } => {
            let mut x = xs()?;
            if domid != 0 && x.read_string(0, &format!("/local/domain/{domid}/name")).is_err() {
                return Err(Error::Other(format!("domain {domid} does not exist")));
            }
            println!("{}", toolstack::domain_name(&mut x, domid));
            Ok(())
        }
        Cmd::Pause { domain } => {
            let d = toolstack::find_domain(&mut xs()?, &domain)?;
            Ok(xc()?.pause(d)?)
        }
        Cmd::Unpause { domain } => {
            let d = toolstack::find_domain(&mut xs()?, &domain)?;
            Ok(xc()?.unpause(d)?)
        }
        Cmd::Shutdown { wait, domain } => shutdown(&domain, "poweroff", 0, wait),
        Cmd::Reboot { domain } => shutdown(&domain, "reboot", 1, false),
        Cmd::Info => {
            for (k, v) in toolstack::info_lines(&xc()?)? {
                println!("{k:<23}: {v}");
            }
            Ok(())
        }
        Cmd::VcpuList { domains } => {
            let xc = xc()?;
            let mut xs = xs()?;
            let ncpus = toolstack::host_cpus(&xc)?;
            println!("Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)");
            for i in xc.domains()? {
                if !domains.is_empty() && !domains.iter().any(|d| toolstack::find_domain(&mut xs, d).ok() == Some(i.domain)) {
                    continue;
                }
                let name = toolstack::domain_name(&mut xs, i.domain);
                for v in 0..=i.max_vcpu_id {
                    let vi = xc.vcpu_info(i.domain, v)?;
                    let (hard, soft) = xc.vcpu_affinity(i.domain, v, ncpus)?;
                    let (hard, soft) = (cpumap::format(cpumap::from_bytes(&hard), ncpus), cpumap::format(cpumap::from_bytes(&soft), ncpus));
                    // xl's print_vcpuinfo: "%-32s %5u %5u" then "%5u %3c%c- " (or
                    // "%5c %3c%cp " offline), "%9.1f  ", hard " / " soft.
                    let (cpu, r, b, p) = if vi.online == 0 {
                        ("-".to_string(), '-', '-', 'p')
                    } else {
                        (vi.cpu.to_string(), if vi.running != 0 { 'r' } else { '-' }, if vi.blocked != 0 { 'b' } else { '-' }, '-')
                    };
                    println!("{:<32} {:>5} {:>5}{:>5} {:>3}{}{} {:>9.1}  {} / {}", name, i.domain, v, cpu, r, b, p, vi.cpu_time as f64 / 1e9, hard, soft);
                }
            }
            Ok(())
        }
        Cmd::VcpuPin { force: _, domain, vcpu, hard, soft } => {
            let xc = xc()?;
            let d = toolstack::find_domain(&mut xs()?, &domain)?;
            let info = xc.domain_info(d)?.ok_or_else(|| Error::Other(format!("domain {d} does not exist")))?;
            let vcpus: Vec<u32> = if vcpu == "all" {
                (0..=info.max_vcpu_id).collect()
            } else {
                let v = vcpu.parse::<u32>().map_err(|_| Error::Other(format!("Invalid vcpu `{vcpu}` (a number or all)")))?;
                vec![v]
            };
            // `-` (or no soft argument) leaves that affinity as it is, as xl's vcpupin.
            let n = toolstack::host_cpus(&xc)?;
            let mask = |spec: Option<&str>| -> Result<Option<Vec<u8>>> {
                match spec {
                    None | Some("-") => Ok(None),
                    Some(s) => Ok(Some(cpumap::to_bytes(cpumap::parse_cpurange(s, n).map_err(Error::Other)?, n))),
                }
            };
            let (hard, soft) = (mask(Some(&hard))?, mask(soft.as_deref())?);
            if hard.is_none() && soft.is_none() {
                return Ok(());
            }
            for v in vcpus {
                let (_, eff_soft) = xc
                    .set_vcpu_affinity(d, v, n, hard.as_deref(), soft.as_deref())
                    .map_err(|e| Error::Other(format!("Setting vcpu affinity: {e}")))?;
                // libxl's warning when the soft affinity has no CPU the vCPU may use.
                if soft.is_some() && eff_soft.iter().all(|&b| b == 0) {
                    eprintln!("libxl: warning: Domain {d}:All cpus in soft affinity of vcpu {v} are unreachable. Only hard affinity will be considered for scheduling");
                }
            }
            Ok(())
        }
        Cmd::SchedCredit { domain, weight, cap, schedparam, tslice, ratelimit, migration_delay, cpupool } => {
            // xl's own argument rules, in its order.
            if (cpupool.is_some() || schedparam) && (domain.is_some() || weight.is_some() || cap.is_some()) {
                return Err(Error::Other("Specifying a cpupool or schedparam is not allowed with domain options.".into()));
            }
            if domain.is_none() && (weight.is_some() || cap.is_some()) {
                return Err(Error::Other("Must specify a domain.".into()));
            }
            let pool_set = tslice.is_some() || ratelimit.is_some() || migration_delay.is_some();
            if !schedparam && pool_set {
                return Err(Error::Other("Must specify schedparam to set schedule parameter values.".into()));
            }
            let xc = xc()?;
            let mut xs = xs()?;
            if xc.sched_id()? != xen_abi::domctl::XEN_SCHEDULER_CREDIT {
                return Err(Error::Other("the hypervisor's scheduler is not credit".into()));
            }
            let poolid = match &cpupool {
                Some(q) => toolstack::find_pool(&mut xs, q)?,
                None => 0,
            };
            // The pool's line (`sched_credit_pool_output`): its parameters, or, as xl, a
            // note that they are unavailable (and the error on stderr).
            let pool_line = |xs: &mut dom0_tools::xs::Xs| {
                let p = xc.sched_credit_params_get(poolid).map_err(|e| eprintln!("xl: getting Credit scheduler parameters: {e}")).ok();
                println!("{}", toolstack::sched_credit_pool_line(&toolstack::pool_name(xs, poolid), p.as_ref()));
            };
            if schedparam {
                if !pool_set {
                    pool_line(&mut xs);
                    return Ok(());
                }
                // libxl reads the current values, takes the new ones, checks all three
                // (as `int`s, strtol'd as xl does) and writes them.
                let cur = xc.sched_credit_params_get(poolid).map_err(|e| Error::Other(format!("getting Credit scheduler parameters: {e}")))?;
                let arg = |a: &Option<String>, cur: u32| a.as_deref().map_or(cur as i32, |v| toolstack::strtol(v) as i32);
                let p = toolstack::check_credit_params(
                    arg(&tslice, cur.tslice_ms),
                    arg(&ratelimit, cur.ratelimit_us),
                    arg(&migration_delay, cur.vcpu_migr_delay_us),
                )?;
                xc.sched_credit_params_set(poolid, p).map_err(|e| Error::Other(format!("Setting Credit scheduler parameters: {e}")))?;
                return Ok(());
            }
            let Some(dom) = domain else {
                pool_line(&mut xs);
                println!("{}", toolstack::SCHED_CREDIT_HEADER);
                for i in xc.domains()? {
                    let c = xc.sched_credit_get(i.domain)?;
                    println!("{}", toolstack::sched_credit_line(&toolstack::domain_name(&mut xs, i.domain), i.domain, c.weight, c.cap));
                }
                return Ok(());
            };
            let d = toolstack::find_domain(&mut xs, &dom)?;
            if weight.is_none() && cap.is_none() {
                let c = xc.sched_credit_get(d)?;
                println!("{}", toolstack::SCHED_CREDIT_HEADER);
                println!("{}", toolstack::sched_credit_line(&toolstack::domain_name(&mut xs, d), d, c.weight, c.cap));
                return Ok(());
            }
            let info = xc.domain_info(d)?.ok_or_else(|| Error::Other(format!("domain {d} does not exist")))?;
            // libxl reads the current values, checks the new ones, writes both.
            let mut c = xc.sched_credit_get(d)?;
            if let Some(w) = weight {
                c.weight = toolstack::check_weight(toolstack::strtol(&w))?;
            }
            if let Some(k) = cap {
                c.cap = toolstack::check_cap(toolstack::strtol(&k), info.max_vcpu_id + 1)?;
            }
            xc.sched_credit_set(d, c)?;
            Ok(())
        }
        Cmd::MemSet { domain, memory } => {
            let mib = parse_mem(&memory).ok_or_else(|| Error::Other(format!("bad memory size `{memory}` (e.g. 256m, 1g)")))?;
            let mut xs = xs()?;
            let d = toolstack::find_domain(&mut xs, &domain)?;
            xs.write(0, &format!("/local/domain/{d}/memory/target"), (mib << 10).to_string().as_bytes())?;
            Ok(())
        }
        Cmd::Dmesg { clear } => {
            print!("{}", xc()?.read_console(clear)?);
            Ok(())
        }
        Cmd::DebugVcpu { domain } => {
            let d = toolstack::find_domain(&mut xs()?, &domain)?;
            let xc = xc()?;
            let c = xc.vcpu_context(d, 0)?;
            let r = &c.user_regs;
            println!("rip {:#x} rsp {:#x} rflags {:#x} cs {:#x} rax {:#x} rdi {:#x} rsi {:#x} cr3 {:#x} flags {:#x}", r.rip, r.rsp, r.rflags, r.cs, r.rax, r.rdi, r.rsi, c.ctrlreg[3], c.flags);
            if let Some(i) = xc.domain_info(d)? {
                println!("domain flags {:#x} state {}", i.flags, toolstack::state_string(&i));
            }
            // The stack, through the guest's own page tables.
            let read = |va: u64| -> Option<u64> {
                let mut b = [0u8; 8];
                guest_read(&xc, d, c.ctrlreg[3] >> 12, va, &mut b)?;
                Some(u64::from_le_bytes(b))
            };
            for i in 0..64u64 {
                if let Some(w) = read(r.rsp + i * 8) {
                    if w >> 40 == 0xff_ffff {
                        println!("stack {w:016x}");
                    }
                }
            }
            Ok(())
        }
        Cmd::DebugMem { domain, va, len } => {
            let d = toolstack::find_domain(&mut xs()?, &domain)?;
            let xc = xc()?;
            let va = u64::from_str_radix(va.trim_start_matches("0x"), 16).map_err(|_| Error::Other(format!("bad address {va}")))?;
            let cr3 = xc.vcpu_context(d, 0)?.ctrlreg[3] >> 12;
            let mut out = Vec::new();
            let mut page = vec![0u8; 4096];
            let mut a = va;
            while a < va + len as u64 {
                let n = (4096 - (a & 0xfff) as usize).min((va + len as u64 - a) as usize);
                if guest_read(&xc, d, cr3, a, &mut page[..n]).is_some() {
                    out.extend(page[..n].iter().map(|&c| if c == b'\n' || (0x20..0x7f).contains(&c) { c } else { b'\n' }));
                }
                a += n as u64;
            }
            let text = String::from_utf8_lossy(&out);
            for l in text.lines().filter(|l| l.len() >= 8) {
                println!("{l}");
            }
            Ok(())
        }
        Cmd::DebugSched { domain } => debug_sched(&domain),
        Cmd::InitDom0 => toolstack::init_dom0(&mut xs()?),
        Cmd::Monitor { domid, config, overrides } => monitor(domid, &config, &overrides),
    }
}

/// `xl debug-sched`: raw scheduler_op and vcpuaffinity domctls with arguments Xen
/// refuses or treats specially; prints `name: ok` or `name: ERRNO` (and values read).
fn debug_sched(domain: &str) -> Result<()> {
    use xen_abi::domctl::*;
    let xc = xc()?;
    let d = toolstack::find_domain(&mut xs()?, domain)?;
    let n = toolstack::host_cpus(&xc)?;
    let show = |name: &str, r: std::result::Result<(), dom0_tools::xc::Error>| {
        let e = r.err().map(|e| xen_abi::errno::Errno(e.errno).name().unwrap_or("?").to_string());
        println!("{name}: {}", e.as_deref().unwrap_or("ok"));
    };
    let sched = |id: u32, cmd: u32, c: XenDomctlSchedCredit| {
        let mut op = XenDomctlSchedulerOp { sched_id: id, cmd, u: [0; 2] };
        op.set_credit(c);
        let mut x = XenDomctl::new(XEN_DOMCTL_scheduler_op, d);
        x.set_payload(&op);
        xc.domctl("domctl scheduler_op", &mut x)
    };
    let zero = XenDomctlSchedCredit::default();
    show("getinfo-credit2-id", sched(XEN_SCHEDULER_CREDIT2, XEN_DOMCTL_SCHEDOP_getinfo, zero));
    show("getinfo-rtds-id", sched(XEN_SCHEDULER_RTDS, XEN_DOMCTL_SCHEDOP_getinfo, zero));
    show("putvcpuinfo", sched(XEN_SCHEDULER_CREDIT, XEN_DOMCTL_SCHEDOP_putvcpuinfo, zero));
    show("bad-cmd", sched(XEN_SCHEDULER_CREDIT, 9, zero));
    let before = xc.sched_credit_get(d)?;
    show("putinfo-weight-0-cap-ffff", sched(XEN_SCHEDULER_CREDIT, XEN_DOMCTL_SCHEDOP_putinfo, XenDomctlSchedCredit { weight: 0, cap: 0xffff }));
    let after = xc.sched_credit_get(d)?;
    println!("putinfo-weight-0-cap-ffff-keeps: {}", before == after);
    show("putinfo-weight-65535-cap-9999", sched(XEN_SCHEDULER_CREDIT, XEN_DOMCTL_SCHEDOP_putinfo, XenDomctlSchedCredit { weight: 65535, cap: 9999 }));
    let c = xc.sched_credit_get(d)?;
    println!("getinfo: {} {}", c.weight, c.cap);
    xc.sched_credit_set(d, before)?;
    let aff = |cmd: u32, a: XenDomctlVcpuaffinity| {
        let mut x = XenDomctl::new(cmd, d);
        x.set_payload(&a);
        xc.domctl("domctl vcpuaffinity", &mut x)
    };
    show("setvcpuaffinity-no-flags", aff(XEN_DOMCTL_setvcpuaffinity, XenDomctlVcpuaffinity::default()));
    show("setvcpuaffinity-null-hard-bitmap", aff(XEN_DOMCTL_setvcpuaffinity, XenDomctlVcpuaffinity { flags: XEN_VCPUAFFINITY_HARD, ..Default::default() }));
    show("getvcpuaffinity-null-soft-bitmap", aff(XEN_DOMCTL_getvcpuaffinity, XenDomctlVcpuaffinity { flags: XEN_VCPUAFFINITY_SOFT, ..Default::default() }));
    show("setvcpuaffinity-vcpu-past-max", xc.set_vcpu_hard_affinity(d, 4096, n, &[1]).map(|_| ()));
    show("setvcpuaffinity-empty-mask", xc.set_vcpu_hard_affinity(d, 0, n, &[0]).map(|_| ()));
    let eff = xc.set_vcpu_hard_affinity(d, 0, n, &[0xff]);
    println!("setvcpuaffinity-all-effective: {}", eff.map(|b| cpumap::format(cpumap::from_bytes(&b), n)).unwrap_or_else(|e| e.to_string()));
    Ok(())
}

/// `256`, `256m`, `1g`, `131072k` -> MiB.
fn parse_mem(s: &str) -> Option<u64> {
    let (num, mul_kib) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1),
        'm' | 'M' => (&s[..s.len() - 1], 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1024),
    };
    let kib = num.parse::<u64>().ok()?.checked_mul(mul_kib)?;
    Some(kib >> 10)
}

fn shutdown(domain: &str, what: &str, reason: u32, wait: bool) -> Result<()> {
    let xc = xc()?;
    let mut xs = xs()?;
    let d = toolstack::find_domain(&mut xs, domain)?;
    // PV guests watch control/shutdown; xl falls back to the hypercall for guests
    // without PV control (libxl: "PV control interface not available").
    let feature = xs.read_string(0, &format!("/local/domain/{d}/control/feature-{what}")).ok();
    if feature.as_deref() == Some("1") {
        xs.write(0, &format!("/local/domain/{d}/control/shutdown"), what.as_bytes())?;
    } else {
        xc.shutdown(d, reason)?;
    }
    if wait {
        let start = Instant::now();
        while xc.domain_info(d)?.is_some() {
            if start.elapsed() > Duration::from_secs(60) {
                return Err(Error::Other(format!("domain {d} did not shut down within 60 s")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Prints the guest's console log so far (xenconsoled's `guest-<name>.log`).
fn print_log(name: &str) -> Result<()> {
    let path = log_path(name);
    let start = Instant::now();
    let mut f = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if start.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::Other(format!("{path}: {e} (is xenconsoled running?)"))),
        }
    };
    let mut out = std::io::stdout();
    std::io::copy(&mut f, &mut out).map_err(|e| Error::Other(format!("{path}: {e}")))?;
    Ok(())
}

/// Attaches to the domain's console as xl does: opens the pty xenconsoled publishes at
/// `/local/domain/<id>/console/tty` (waiting for it after `xl create -c`), makes a
/// terminal on stdin raw, and moves bytes both ways until `Ctrl-]`, the end of stdin, or
/// the domain's end. The terminal is restored before returning.
fn attach_console(domid: u16) -> Result<()> {
    let xc = xc()?;
    let mut xs = xs()?;
    let key = format!("/local/domain/{domid}/console/tty");
    let start = Instant::now();
    let path = loop {
        match xs.read_string(0, &key) {
            Ok(p) if !p.is_empty() => break p,
            _ if start.elapsed() < Duration::from_secs(10) && xc.domain_info(domid)?.is_some() => std::thread::sleep(Duration::from_millis(50)),
            _ => return Err(Error::Other(format!("{key}: no console tty (is xenconsoled running?)"))),
        }
    };
    let tty = console::open_tty(&path).map_err(|e| Error::Other(format!("{path}: {e}")))?;
    let stdin = std::io::stdin();
    let raw = console::RawTerminal::enter(stdin.as_fd()).map_err(|e| Error::Other(format!("stdin: {e}")))?;
    let alive = || matches!(xc.domain_info(domid), Ok(Some(i)) if i.flags & xen_abi::domctl::XEN_DOMINF_dying == 0);
    let r = console::attach(&tty, stdin.as_fd(), &mut std::io::stdout(), alive);
    drop(raw);
    r.map(|_| ()).map_err(|e| Error::Other(format!("console: {e}")))
}

/// The configuration `xl create` reads: the file, then the command line's overrides.
fn load_config(config: &str, overrides: &[String]) -> Result<xlcfg::DomainConfig> {
    let text = std::fs::read_to_string(config).map_err(|e| Error::Other(format!("{config}: {e}")))?;
    let settings = xlcfg::parse(config, &text).map_err(|e| Error::Other(e.to_string()))?;
    let ov = xlcfg::parse_overrides(overrides).map_err(|e| Error::Other(e.to_string()))?;
    xlcfg::domain_config(config, &settings, &ov).map_err(|e| Error::Other(e.to_string()))
}

/// Applies the configured action when the domain shuts down (Xen's shutdown codes:
/// 0 poweroff, 1 reboot, 2 suspend, 3 crash, 4 watchdog, 5 soft reset). A restart
/// action destroys the domain and creates it again from the same configuration, under
/// a new id, and goes on watching that one; `rename-restart` keeps the old domain,
/// renamed `<name>-<old id>`. Exits when the domain is gone.
fn monitor(mut domid: u16, config: &str, overrides: &[String]) -> Result<()> {
    use xlcfg::OnEvent;
    let xc = xc()?;
    let c = load_config(config, overrides)?;
    let note = |msg: String| {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/var/log/xen/xl-monitor.log")
            .and_then(|mut f| writeln!(f, "{}: {msg}", c.name));
    };
    loop {
        let Some(i) = xc.domain_info(domid)? else { return Ok(()) };
        if i.flags & xen_abi::domctl::XEN_DOMINF_shutdown == 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let reason = (i.flags >> 16) & 0xff;
        let action = match reason {
            0 => c.on_poweroff,
            1 => c.on_reboot,
            3 => c.on_crash,
            4 => c.on_watchdog,
            _ => OnEvent::Destroy,
        };
        if let Ok(v) = xc.vcpu_context(domid, 0) {
            note(format!("domain {domid} shut down, reason {reason}, action {}, rip {:#x} rsp {:#x}", action.name(), v.user_regs.rip, v.user_regs.rsp));
        }
        let mut xs = xs()?;
        match action {
            OnEvent::Preserve => return Ok(()),
            OnEvent::Destroy | OnEvent::CoredumpDestroy | OnEvent::SoftReset => {
                toolstack::destroy(&xc, &mut xs, domid)?;
                return Ok(());
            }
            OnEvent::RenameRestart => {
                xs.write(0, &format!("/local/domain/{domid}/name"), format!("{}-{domid}", c.name).as_bytes())?;
            }
            OnEvent::Restart | OnEvent::CoredumpRestart => toolstack::destroy(&xc, &mut xs, domid)?,
        }
        let old = domid;
        domid = toolstack::create(&xc, &mut xs, &c, false)?;
        note(format!("domain {old} restarted as domain {domid}"));
    }
}

/// Reads guest memory at `va` (within one page) through the guest's page tables
/// rooted at L4 frame `l4`: diagnostics for a guest that died before its console.
fn guest_read(xc: &Xc, d: u16, l4: u64, va: u64, buf: &mut [u8]) -> Option<()> {
    let mut table = l4;
    for shift in [39u32, 30, 21] {
        let m = xc.privcmd().map_foreign_ro(d, &[table]).ok()?;
        let mut b = [0u8; 8];
        m.read((((va >> shift) & 511) * 8) as usize, &mut b);
        let e = u64::from_le_bytes(b);
        if e & 1 == 0 {
            return None;
        }
        if shift == 21 && e & 0x80 != 0 {
            table = ((e & 0x000f_ffff_ffe0_0000) >> 12) + ((va >> 12) & 511);
            let m = xc.privcmd().map_foreign_ro(d, &[table]).ok()?;
            m.read((va & 0xfff) as usize, buf);
            return Some(());
        }
        table = (e & 0x000f_ffff_ffff_f000) >> 12;
    }
    let m = xc.privcmd().map_foreign_ro(d, &[table]).ok()?;
    let mut b = [0u8; 8];
    m.read((((va >> 12) & 511) * 8) as usize, &mut b);
    let e = u64::from_le_bytes(b);
    if e & 1 == 0 {
        return None;
    }
    let m = xc.privcmd().map_foreign_ro(d, &[(e & 0x000f_ffff_ffff_f000) >> 12]).ok()?;
    m.read((va & 0xfff) as usize, buf);
    Some(())
}
