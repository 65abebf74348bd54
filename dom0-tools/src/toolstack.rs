//! What `xl` does, as a library: create a domain from a configuration (build, xenstore
//! entries, introduce, unpause), destroy one (release, destroy, clean xenstore), find
//! domains by name, and the text of `xl list` / `xl info`.

use crate::builder::{self, BuildConfig, Built};
use crate::xc::{self, DomainInfo, Xc};
use crate::xlcfg::{vdev_number, Disk, DiskBackend, DomainConfig};
use crate::xs::{self, Xs};
use xen_abi::domctl::{XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_paused, XEN_DOMINF_running, XEN_DOMINF_shutdown};
use xenstore_wire::{Perm, PermKind};

/// Why a toolstack operation failed; messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Xen(#[from] xc::Error),
    #[error(transparent)]
    Store(#[from] xs::Error),
    #[error(transparent)]
    Build(#[from] builder::BuildError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A random-enough UUID (version 4 layout) from the clock and pid.
pub fn new_uuid() -> [u8; 16] {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut x = (t as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    let mut u = [0u8; 16];
    for b in u.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

pub use crate::xlcfg::uuid_string;

/// dom0's own entries (what Xen's `xen-init-dom0` writes).
pub fn init_dom0(xs: &mut Xs) -> Result<()> {
    xs.write(0, "/local/domain/0/name", b"Domain-0")?;
    xs.write(0, "/local/domain/0/domid", b"0")?;
    let uuid = "00000000-0000-0000-0000-000000000000";
    xs.write(0, "/local/domain/0/vm", format!("/vm/{uuid}").as_bytes())?;
    xs.write(0, &format!("/vm/{uuid}/name"), b"Domain-0")?;
    xs.write(0, &format!("/vm/{uuid}/uuid"), uuid.as_bytes())?;
    // The CPU pools by name, as xen-init-dom0 lists them (libxl checks a new domain's
    // pool here): Pool-0, the one pool at boot on Xen and the only one on xen-core.
    xs.write(0, "/local/pool/0/name", b"Pool-0")?;
    Ok(())
}

/// The domid of `name_or_id` (a number, or a name under `/local/domain/*/name`).
pub fn find_domain(xs: &mut Xs, name_or_id: &str) -> Result<u16> {
    if let Ok(d) = name_or_id.parse::<u16>() {
        return Ok(d);
    }
    if name_or_id == "Domain-0" {
        return Ok(0);
    }
    for d in xs.directory(0, "/local/domain").unwrap_or_default() {
        if xs.read_string(0, &format!("/local/domain/{d}/name")).ok().as_deref() == Some(name_or_id) {
            return d.parse().map_err(|_| Error::Other(format!("bad domid {d}")));
        }
    }
    Err(Error::Other(format!("domain `{name_or_id}` does not exist")))
}

pub fn domain_name(xs: &mut Xs, domid: u16) -> String {
    if domid == 0 {
        return "Domain-0".into();
    }
    xs.read_string(0, &format!("/local/domain/{domid}/name")).unwrap_or_else(|_| "(null)".into())
}

fn write_all(xs: &mut Xs, tx: u32, base: &str, kv: &[(&str, String)]) -> Result<()> {
    for (k, v) in kv {
        xs.write(tx, &format!("{base}/{k}"), v.as_bytes())?;
    }
    Ok(())
}

/// What Linux's kernel blkback needs for a `backendtype=phy` disk: the block device's
/// numbers (`physical-device`, `major:minor` in hex as libxl writes them) and its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalDevice {
    pub device: String,
    pub path: String,
    /// A loop device `xl` attached for a regular file (detached again on destroy).
    pub loop_attached: bool,
}

/// `params` as libxl writes it: `aio:<target>` for the userspace back-end (the raw
/// format's name), the bare target for the kernel's.
fn disk_params(disk: &Disk) -> String {
    match disk.backend {
        DiskBackend::Qdisk => format!("aio:{}", disk.target),
        DiskBackend::Phy => disk.target.clone(),
    }
}

fn disk_type(disk: &Disk) -> &'static str {
    match disk.backend {
        DiskBackend::Qdisk => "qdisk",
        DiskBackend::Phy => "phy",
    }
}

/// `major:minor` of a device number (glibc's encoding), in hex as libxl writes it.
fn device_numbers(rdev: u64) -> String {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    format!("{major:x}:{minor:x}")
}

fn losetup(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("losetup").args(args).output().map_err(|e| Error::Other(format!("losetup: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Other(format!("losetup {}: {msg}", args.join(" "))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// For a `backendtype=phy` disk: its block device, attaching a regular file to a free
/// loop device first (what Xen's `block` hotplug script does).
fn attach_physical(disk: &Disk) -> Result<Option<PhysicalDevice>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if disk.backend != DiskBackend::Phy {
        return Ok(None);
    }
    let meta = std::fs::metadata(&disk.target).map_err(|e| Error::Other(format!("disk {}: {}: {e}", disk.vdev, disk.target)))?;
    let (path, loop_attached) = if meta.file_type().is_block_device() {
        (disk.target.clone(), false)
    } else if meta.is_file() {
        let dev = losetup(&["-f"])?;
        let mut args = vec![];
        if !disk.writable {
            args.push("-r");
        }
        args.extend([dev.as_str(), disk.target.as_str()]);
        losetup(&args)?;
        (dev, true)
    } else {
        return Err(Error::Other(format!("disk {}: {} is neither a block device nor a file", disk.vdev, disk.target)));
    };
    let rdev = std::fs::metadata(&path).map_err(|e| Error::Other(format!("disk {}: {path}: {e}", disk.vdev)))?.rdev();
    Ok(Some(PhysicalDevice { device: device_numbers(rdev), path, loop_attached }))
}

fn detach_physical(phys: &[Option<PhysicalDevice>]) {
    for p in phys.iter().flatten().filter(|p| p.loop_attached) {
        let _ = losetup(&["-d", &p.path]);
    }
}

/// Writes the domain's xenstore entries (libxl's layout) in one transaction.
pub fn write_domain_entries(xs: &mut Xs, c: &DomainConfig, b: &Built, uuid: &str, phys: &[Option<PhysicalDevice>]) -> Result<()> {
    let d = b.domid;
    let dom = format!("/local/domain/{d}");
    let ro = [Perm::new(PermKind::None, 0), Perm::new(PermKind::Read, d)];
    let rw = [Perm::new(PermKind::None, d)];
    loop {
        let tx = xs.transaction_start()?;
        let vm = format!("/vm/{uuid}");
        xs.mkdir(tx, &dom)?;
        xs.set_perms(tx, &dom, &ro)?;
        xs.mkdir(tx, &vm)?;
        xs.set_perms(tx, &vm, &ro)?;
        write_all(xs, tx, &vm, &[("name", c.name.clone()), ("uuid", uuid.into())])?;
        write_all(
            xs,
            tx,
            &dom,
            &[
                ("name", c.name.clone()),
                ("domid", d.to_string()),
                ("vm", vm.clone()),
                ("memory/static-max", (c.maxmem_mib << 10).to_string()),
                ("memory/target", (c.memory_mib << 10).to_string()),
                ("store/port", b.store_port.to_string()),
                ("store/ring-ref", b.store_mfn.to_string()),
                ("console/port", b.console_port.to_string()),
                ("console/ring-ref", b.console_mfn.to_string()),
                ("console/limit", "1048576".into()),
                ("console/type", "xenconsoled".into()),
            ],
        )?;
        for v in 0..c.max_vcpus {
            let state: &[u8] = if v < c.vcpus { b"online" } else { b"offline" };
            xs.write(tx, &format!("{dom}/cpu/{v}/availability"), state)?;
        }
        for sub in ["device", "control"] {
            let p = format!("{dom}/{sub}");
            xs.mkdir(tx, &p)?;
            xs.set_perms(tx, &p, &ro)?;
        }
        for sub in ["control/shutdown", "data", "drivers", "feature", "attr", "error"] {
            let p = format!("{dom}/{sub}");
            xs.mkdir(tx, &p)?;
            xs.set_perms(tx, &p, &rw)?;
        }
        for (i, (disk, phy)) in c.disks.iter().zip(phys).enumerate() {
            let devid = vdev_number(&disk.vdev).unwrap_or(51712 + i as u32 * 16);
            let fe = format!("{dom}/device/vbd/{devid}");
            let be = format!("/local/domain/0/backend/{}/{d}/{devid}", disk.backend.xenstore_type());
            // Permissions first: keys written below inherit them (the front-end owns its
            // directory and may read the back-end's, as libxl sets them up).
            let fe_perms = [Perm::new(PermKind::None, d), Perm::new(PermKind::Read, 0)];
            xs.mkdir(tx, &fe)?;
            xs.set_perms(tx, &fe, &fe_perms)?;
            xs.mkdir(tx, &be)?;
            xs.set_perms(tx, &be, &ro)?;
            write_all(
                xs,
                tx,
                &fe,
                &[
                    ("backend", be.clone()),
                    ("backend-id", "0".into()),
                    ("state", "1".into()),
                    ("virtual-device", devid.to_string()),
                    ("device-type", if disk.cdrom { "cdrom" } else { "disk" }.into()),
                ],
            )?;
            write_all(
                xs,
                tx,
                &be,
                &[
                    ("frontend", fe.clone()),
                    ("frontend-id", d.to_string()),
                    ("online", "1".into()),
                    ("state", "1".into()),
                    ("params", disk_params(disk)),
                    ("type", disk_type(disk).into()),
                    ("mode", if disk.writable { "w" } else { "r" }.into()),
                    ("dev", disk.vdev.clone()),
                    ("device-type", if disk.cdrom { "cdrom" } else { "disk" }.into()),
                    ("removable", "0".into()),
                    ("bootable", "1".into()),
                ],
            )?;
            if let Some(p) = phy {
                write_all(xs, tx, &be, &[("physical-device", p.device.clone()), ("physical-device-path", p.path.clone())])?;
            }
        }
        for (i, vif) in c.vifs.iter().enumerate() {
            let fe = format!("{dom}/device/vif/{i}");
            let be = format!("/local/domain/0/backend/vif/{d}/{i}");
            let mac = vif.mac.clone().unwrap_or_else(|| format!("00:16:3e:00:{:02x}:{:02x}", d & 0xff, i));
            // Permissions first, as for vbd: the keys below inherit them, so the
            // front-end can write its own (ring references, state) and read ours.
            xs.mkdir(tx, &fe)?;
            xs.set_perms(tx, &fe, &[Perm::new(PermKind::None, d), Perm::new(PermKind::Read, 0)])?;
            xs.mkdir(tx, &be)?;
            xs.set_perms(tx, &be, &ro)?;
            write_all(
                xs,
                tx,
                &fe,
                &[("backend", be.clone()), ("backend-id", "0".into()), ("state", "1".into()), ("handle", i.to_string()), ("mac", mac.clone())],
            )?;
            let mut kv = vec![
                ("frontend", fe.clone()),
                ("frontend-id", d.to_string()),
                ("online", "1".to_string()),
                ("state", "1".to_string()),
                ("handle", i.to_string()),
                ("mac", mac),
                // libxl's keys: Linux's netback refuses a device without `script`
                // ("reading script"); nothing runs it here (the back-end writes
                // `hotplug-status` itself, or the admin does).
                ("script", vif.script.clone().unwrap_or_else(|| "/etc/xen/scripts/vif-bridge".to_string())),
                ("type", "vif".to_string()),
            ];
            if let Some(b) = &vif.bridge {
                kv.push(("bridge", b.clone()));
            }
            write_all(xs, tx, &be, &kv)?;
        }
        match xs.transaction_end(tx, true) {
            Err(xs::Error::Xs(xenstore_wire::Errno::EAGAIN)) => continue,
            r => return Ok(r?),
        }
    }
}

/// What xl.cfg can say that our back-ends can't serve: refused before anything is built.
fn check_servable(c: &DomainConfig) -> Result<()> {
    let dom0 = |b: &Option<String>| b.as_deref().is_none_or(|b| b == "0" || b == "Domain-0");
    for d in &c.disks {
        let refuse = |why: String| Err(Error::Other(format!("disk {}: {why}", d.vdev)));
        if d.format != "raw" {
            return refuse(format!("format `{}` is not supported (raw images and devices only)", d.format));
        }
        if let Some(s) = &d.script {
            return refuse(format!("block scripts (`{s}`) are not supported"));
        }
        if !dom0(&d.backend_domain) {
            return refuse("back-ends in driver domains are not supported".into());
        }
        if d.specification.as_deref() == Some("virtio") {
            return refuse("virtio disks are not supported".into());
        }
    }
    for (i, v) in c.vifs.iter().enumerate() {
        if !dom0(&v.backend_domain) {
            return Err(Error::Other(format!("vif {i}: back-ends in driver domains are not supported")));
        }
    }
    Ok(())
}

/// `xl create`: builds the domain, publishes it in xenstore, introduces it to
/// xenstored and (unless `paused`) unpauses it. Returns the domid.
pub fn create(xc: &Xc, xs: &mut Xs, c: &DomainConfig, paused: bool) -> Result<u16> {
    if find_domain(xs, &c.name).is_ok() {
        return Err(Error::Other(format!("domain `{}` already exists", c.name)));
    }
    check_servable(c)?;
    let read = |p: &str| std::fs::read(p).map_err(|e| Error::Other(format!("{p}: {e}")));
    let kernel = read(&c.kernel)?;
    let ramdisk = c.ramdisk.as_deref().map(read).transpose()?;
    let uuid = c.uuid.unwrap_or_else(new_uuid);
    let cfg = BuildConfig {
        memory_mib: c.memory_mib,
        maxmem_mib: c.maxmem_mib,
        vcpus: c.max_vcpus,
        kernel,
        ramdisk,
        cmdline: c.cmdline.clone(),
        handle: uuid,
    };
    let mut phys = Vec::new();
    for disk in &c.disks {
        match attach_physical(disk) {
            Ok(p) => phys.push(p),
            Err(e) => {
                detach_physical(&phys);
                return Err(e);
            }
        }
    }
    let b = match builder::build(xc, &cfg) {
        Ok(b) => b,
        Err(e) => {
            detach_physical(&phys);
            return Err(e.into());
        }
    };
    let finish = |xs: &mut Xs| -> Result<()> {
        apply_sched(xc, b.domid, c)?;
        write_domain_entries(xs, c, &b, &uuid_string(&uuid), &phys)?;
        xs.introduce(u32::from(b.domid), b.store_mfn, b.store_port)?;
        vif_hotplug(xs, b.domid, c)?;
        if !paused {
            xc.unpause(b.domid)?;
        }
        Ok(())
    };
    if let Err(e) = finish(xs) {
        let _ = destroy(xc, xs, b.domid);
        detach_physical(&phys);
        return Err(e);
    }
    Ok(b.domid)
}

/// The host's CPU count (`physinfo`'s `max_cpu_id + 1`, libxl's `libxl_get_max_cpus`).
pub fn host_cpus(xc: &Xc) -> Result<u32> {
    Ok(xc.physinfo()?.max_cpu_id + 1)
}

/// `cpus=`, `cpus_soft=`, `cpu_weight=` and `cap=` of a new domain (libxl's
/// `libxl__build_pre`): each vCPU's hard and soft affinity in one domctl, then the
/// credit parameters.
pub fn apply_sched(xc: &Xc, domid: u16, c: &DomainConfig) -> Result<()> {
    if c.cpus.is_some() || c.cpus_soft.is_some() {
        let n = host_cpus(xc)?;
        let mask = |key: &str, a: &Option<crate::xlcfg::CpuAffinity>, v: u32| -> Result<Option<u64>> {
            let Some(spec) = a.as_ref().and_then(|a| a.for_vcpu(v)) else { return Ok(None) };
            let m = crate::cpumap::parse_cpurange(spec, n).map_err(|e| Error::Other(format!("{key}: `{spec}`: {e}")))?;
            if m & crate::cpumap::parse_cpurange("all", n).unwrap_or(u64::MAX) == 0 {
                return Err(Error::Other(format!("{key}: `{spec}` names no CPU of this host (CPUs 0-{})", n - 1)));
            }
            Ok(Some(m))
        };
        for v in 0..c.max_vcpus {
            let (hard, soft) = (mask("cpus", &c.cpus, v)?, mask("cpus_soft", &c.cpus_soft, v)?);
            if hard.is_none() && soft.is_none() {
                continue;
            }
            let bytes = |m: Option<u64>| m.map(|m| crate::cpumap::to_bytes(m, n));
            let (hb, sb) = (bytes(hard), bytes(soft));
            xc.set_vcpu_affinity(domid, v, n, hb.as_deref(), sb.as_deref())?;
        }
    }
    if c.cpu_weight.is_some() || c.cap.is_some() {
        xc.sched_credit_set(
            domid,
            xen_abi::domctl::XenDomctlSchedCredit { weight: c.cpu_weight.unwrap_or(0), cap: c.cap.unwrap_or(0xffff) },
        )?;
    }
    Ok(())
}

/// `xl destroy`: releases the domain from xenstored, destroys it, removes its entries.
pub fn destroy(xc: &Xc, xs: &mut Xs, domid: u16) -> Result<()> {
    if domid == 0 {
        return Err(Error::Other("cannot destroy Domain-0".into()));
    }
    let _ = xs.release(u32::from(domid));
    let vm = xs.read_string(0, &format!("/local/domain/{domid}/vm")).ok();
    let _ = xc.pause(domid);
    let r = xc.destroy(domid);
    let loops = attached_loops(xs, domid);
    for p in [
        format!("/local/domain/{domid}"),
        format!("/local/domain/0/backend/vbd/{domid}"),
        format!("/local/domain/0/backend/qdisk/{domid}"),
        format!("/local/domain/0/backend/vif/{domid}"),
    ] {
        let _ = xs.rm(0, &p);
    }
    // After the back-end directories are gone: the kernel drops the device, and a loop
    // device still open then detaches itself on its last close.
    detach_physical(&loops);
    if let Some(vm) = vm.filter(|v| v.starts_with("/vm/")) {
        let _ = xs.rm(0, &vm);
    }
    r.map_err(Error::from)
}

/// What Xen's `vif-bridge` hotplug script does when Linux's kernel netback serves the
/// vifs: bring `vif<domid>.<devid>` up, join the bridge the vif names, write
/// `hotplug-status` = `connected` (kernel netback waits for it before `Connected`). Our
/// `netback` daemon does this itself for its TAP devices, so only the kernel's count.
fn vif_hotplug(xs: &mut Xs, domid: u16, c: &DomainConfig) -> Result<()> {
    if c.vifs.is_empty() || !std::path::Path::new("/sys/module/xen_netback").exists() {
        return Ok(());
    }
    for (i, vif) in c.vifs.iter().enumerate() {
        let name = format!("vif{domid}.{i}");
        let dev = std::path::PathBuf::from(format!("/sys/class/net/{name}"));
        // Linux's netback creates the interface when it probes the new back-end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dev.exists() {
            if std::time::Instant::now() > deadline {
                return Err(Error::Other(format!("vif {i}: Linux's netback made no {name} within 10 s")));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if dev.join("tun_flags").exists() {
            continue; // a TAP: our netback's, which does its own hotplug
        }
        crate::netsys::link_up(&name).map_err(|e| Error::Other(format!("vif {i}: bringing {name} up: {e}")))?;
        if let Some(b) = vif.bridge.as_deref().filter(|b| crate::netsys::bridge_exists(b)) {
            crate::netsys::bridge_add(b, &name).map_err(|e| Error::Other(format!("vif {i}: adding {name} to bridge {b}: {e}")))?;
        }
        xs.write(0, &format!("/local/domain/0/backend/vif/{domid}/{i}/hotplug-status"), b"connected")?;
    }
    Ok(())
}

/// The loop devices `xl create` attached for the domain's `backendtype=phy` file disks
/// (the `physical-device-path` of a disk whose `params` is a regular file).
fn attached_loops(xs: &mut Xs, domid: u16) -> Vec<Option<PhysicalDevice>> {
    let base = format!("/local/domain/0/backend/vbd/{domid}");
    let mut out = Vec::new();
    for dev in xs.directory(0, &base).unwrap_or_default() {
        let rd = |xs: &mut Xs, k: &str| xs.read_string(0, &format!("{base}/{dev}/{k}")).ok();
        let (Some(params), Some(path)) = (rd(xs, "params"), rd(xs, "physical-device-path")) else { continue };
        if path.starts_with("/dev/loop") && std::fs::metadata(&params).is_ok_and(|m| m.is_file()) {
            out.push(Some(PhysicalDevice { device: String::new(), path, loop_attached: true }));
        }
    }
    out
}

/// The state column of `xl list`: r b p s c d.
pub fn state_string(i: &DomainInfo) -> String {
    let f = i.flags;
    let reason = (f >> 16) & 0xff;
    let shut = f & XEN_DOMINF_shutdown != 0;
    [
        (f & XEN_DOMINF_running != 0, 'r'),
        (f & XEN_DOMINF_blocked != 0, 'b'),
        (f & XEN_DOMINF_paused != 0, 'p'),
        (shut && reason != 3, 's'),
        (shut && reason == 3, 'c'),
        (f & XEN_DOMINF_dying != 0, 'd'),
    ]
    .iter()
    .map(|&(on, c)| if on { c } else { '-' })
    .collect()
}

/// One `xl list` line (Xen's format).
pub fn list_line(name: &str, i: &DomainInfo) -> String {
    let mem_mib = (i.tot_pages * 4) >> 10;
    let vcpus = i.nr_online_vcpus;
    format!("{:<40} {:>5} {:>5} {:>5}     {}  {:>8.1}", name, i.domain, mem_mib, vcpus, state_string(i), i.cpu_time as f64 / 1e9)
}

pub const LIST_HEADER: &str = "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// `xl info`'s `key : value` lines.
pub fn info_lines(xc: &Xc) -> Result<Vec<(String, String)>> {
    let p = xc.physinfo()?;
    let (maj, min) = xc.version()?;
    let extra = xc.extraversion()?;
    let uname = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mib = |pages: u64| ((pages * 4096) >> 20).to_string();
    Ok(vec![
        ("host".into(), host.trim().into()),
        ("release".into(), uname.trim().into()),
        ("machine".into(), "x86_64".into()),
        ("nr_cpus".into(), p.nr_cpus.to_string()),
        ("max_cpu_id".into(), p.max_cpu_id.to_string()),
        ("nr_nodes".into(), p.nr_nodes.to_string()),
        ("cores_per_socket".into(), p.cores_per_socket.to_string()),
        ("threads_per_core".into(), p.threads_per_core.to_string()),
        ("cpu_mhz".into(), format!("{}.{:03}", p.cpu_khz / 1000, p.cpu_khz % 1000)),
        ("total_memory".into(), mib(p.total_pages)),
        ("free_memory".into(), mib(p.free_pages)),
        ("outstanding_claims".into(), mib(p.outstanding_pages)),
        ("xen_major".into(), maj.to_string()),
        ("xen_minor".into(), min.to_string()),
        ("xen_extra".into(), extra.clone()),
        ("xen_version".into(), format!("{maj}.{min}{extra}")),
        ("xen_caps".into(), xc.capabilities()?),
        ("xen_pagesize".into(), "4096".into()),
        ("xen_commandline".into(), xc.commandline()?),
        ("free_pages".into(), p.free_pages.to_string()),
    ])
}

/// C's `strtol(s, NULL, 10)` as xl reads `-w`/`-c`: leading blanks, a sign, the digits
/// that follow (0 when there are none; saturating).
pub fn strtol(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = t.bytes().take_while(u8::is_ascii_digit).fold(0i64, |v, d| v.saturating_mul(10).saturating_add(i64::from(d - b'0')));
    if neg {
        -v
    } else {
        v
    }
}

/// libxl's range check of a credit weight (`sched_credit_domain_set`), with its words.
pub fn check_weight(w: i64) -> Result<u16> {
    u16::try_from(w)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or_else(|| Error::Other("Cpu weight out of range, valid values are within range from 1 to 65535".into()))
}

/// libxl's range check of a credit cap: 0 to 100 per vCPU.
pub fn check_cap(c: i64, vcpus: u32) -> Result<u16> {
    let max = i64::from(vcpus) * 100;
    if (0..=max).contains(&c) {
        Ok(c as u16)
    } else {
        Err(Error::Other(format!("Cpu cap out of range, valid range is from 0 to {max} for specified number of vcpus")))
    }
}

/// libxl's checks of a credit pool's parameters (`libxl_sched_credit_params_set`), on
/// its `int`s and with its words: the slice 1..=1000 ms, the rate limit 0 or
/// 100..=500000 µs and not past the slice, the migration delay at most 100000 µs (a
/// negative one passes libxl, as there, and the hypervisor refuses it).
pub fn check_credit_params(tslice_ms: i32, ratelimit_us: i32, migr_delay_us: i32) -> Result<xen_abi::sysctl::XenSysctlCreditSchedule> {
    use xen_abi::sysctl::*;
    let (tmin, tmax) = (XEN_SYSCTL_CSCHED_TSLICE_MIN as i32, XEN_SYSCTL_CSCHED_TSLICE_MAX as i32);
    if !(tmin..=tmax).contains(&tslice_ms) {
        return Err(Error::Other(format!("Time slice out of range, valid range is from {tmin} to {tmax}")));
    }
    let (rmin, rmax) = (XEN_SYSCTL_SCHED_RATELIMIT_MIN as i32, XEN_SYSCTL_SCHED_RATELIMIT_MAX as i32);
    if ratelimit_us != 0 && !(rmin..=rmax).contains(&ratelimit_us) {
        return Err(Error::Other(format!("Ratelimit out of range, valid range is from {rmin} to {rmax}")));
    }
    if ratelimit_us > tslice_ms * 1000 {
        return Err(Error::Other("Ratelimit cannot be greater than timeslice".into()));
    }
    if migr_delay_us > XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US as i32 {
        return Err(Error::Other(format!("vcpu migration delay should be >= 0 and <= {XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US}us")));
    }
    Ok(XenSysctlCreditSchedule { tslice_ms: tslice_ms as u32, ratelimit_us: ratelimit_us as u32, vcpu_migr_delay_us: migr_delay_us as u32 })
}

/// `xl sched-credit`'s line for a pool (`sched_credit_pool_output`): its parameters, or
/// that they could not be read.
pub fn sched_credit_pool_line(pool: &str, p: Option<&xen_abi::sysctl::XenSysctlCreditSchedule>) -> String {
    match p {
        Some(p) => format!("Cpupool {pool}: tslice={}ms ratelimit={}us migration-delay={}us", p.tslice_ms, p.ratelimit_us, p.vcpu_migr_delay_us),
        None => format!("Cpupool {pool}: [sched params unavailable]"),
    }
}

/// A pool's name as libxl reads it (`/local/pool/<id>/name`).
pub fn pool_name(xs: &mut Xs, poolid: u32) -> String {
    xs.read_string(0, &format!("/local/pool/{poolid}/name")).unwrap_or_else(|_| "(null)".into())
}

/// `xl`'s `-p` argument (`libxl_cpupool_qualifier_to_cpupoolid`): a pool id or name;
/// the one pool is Pool-0 (id 0).
pub fn find_pool(xs: &mut Xs, q: &str) -> Result<u32> {
    let by_id = q.parse::<u32>().ok().filter(|&id| id == 0);
    by_id
        .or_else(|| (pool_name(xs, 0) == q).then_some(0))
        .ok_or_else(|| Error::Other(format!("unknown cpupool '{q}'")))
}

/// `xl sched-credit`'s header and one domain's line (`sched_credit_domain_output`).
pub const SCHED_CREDIT_HEADER: &str = "Name                                ID Weight  Cap";

pub fn sched_credit_line(name: &str, domid: u16, weight: u16, cap: u16) -> String {
    format!("{name:<33} {domid:>4} {weight:>6} {cap:>4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_params_checked_as_libxl() {
        let err = |t, r, m| check_credit_params(t, r, m).unwrap_err().to_string();
        let p = check_credit_params(30, 1000, 0).unwrap();
        assert_eq!((p.tslice_ms, p.ratelimit_us, p.vcpu_migr_delay_us), (30, 1000, 0));
        assert_eq!(err(0, 0, 0), "Time slice out of range, valid range is from 1 to 1000");
        assert_eq!(err(1001, 0, 0), "Time slice out of range, valid range is from 1 to 1000");
        assert_eq!(err(-5, 0, 0), "Time slice out of range, valid range is from 1 to 1000");
        assert_eq!(err(30, 99, 0), "Ratelimit out of range, valid range is from 100 to 500000");
        assert_eq!(err(1000, 500_001, 0), "Ratelimit out of range, valid range is from 100 to 500000");
        assert_eq!(err(30, 30_001, 0), "Ratelimit cannot be greater than timeslice");
        assert_eq!(err(30, 1000, 100_001), "vcpu migration delay should be >= 0 and <= 100000us");
        assert!(check_credit_params(1, 0, 100_000).is_ok() && check_credit_params(1000, 500_000, 0).is_ok());
        // libxl lets a negative delay through (its check is only the upper bound).
        assert_eq!(check_credit_params(30, 0, -1).unwrap().vcpu_migr_delay_us, u32::MAX);
        let p = xen_abi::sysctl::XenSysctlCreditSchedule { tslice_ms: 30, ratelimit_us: 1000, vcpu_migr_delay_us: 0 };
        assert_eq!(sched_credit_pool_line("Pool-0", Some(&p)), "Cpupool Pool-0: tslice=30ms ratelimit=1000us migration-delay=0us");
        assert_eq!(sched_credit_pool_line("Pool-0", None), "Cpupool Pool-0: [sched params unavailable]");
    }

    #[test]
    fn sched_credit_as_xl() {
        assert_eq!(SCHED_CREDIT_HEADER, format!("{:<33} {:>4} {:>6} {:>4}", "Name", "ID", "Weight", "Cap"));
        assert_eq!(sched_credit_line("Domain-0", 0, 256, 0), "Domain-0                             0    256    0");
        assert_eq!(strtol("512"), 512);
        assert_eq!(strtol(" -3x"), -3);
        assert_eq!(strtol("abc"), 0);
        assert_eq!(check_weight(strtol("70000")).unwrap_err().to_string(), "Cpu weight out of range, valid values are within range from 1 to 65535");
        assert!(check_weight(0).is_err());
        assert_eq!(check_weight(65535).unwrap(), 65535);
        assert_eq!(check_cap(200, 2).unwrap(), 200);
        assert_eq!(check_cap(201, 2).unwrap_err().to_string(), "Cpu cap out of range, valid range is from 0 to 200 for specified number of vcpus");
        assert!(check_cap(-1, 1).is_err());
    }

    #[test]
    fn device_numbers_as_libxl_writes_them() {
        assert_eq!(device_numbers(0x0700), "7:0");
        assert_eq!(device_numbers(0x0803), "8:3");
        // major 259 (blkext), minor 300: glibc's split encoding of both halves
        assert_eq!(device_numbers((259 << 8) | (300 & 0xff) | ((300 & !0xff) << 12)), "103:12c");
    }

    #[test]
    fn params_and_type_by_backend() {
        let mut d = Disk { target: "/tmp/a.img".into(), vdev: "xvda".into(), ..Disk::default() };
        assert_eq!((disk_params(&d), disk_type(&d)), ("aio:/tmp/a.img".to_string(), "qdisk"));
        d.backend = DiskBackend::Phy;
        assert_eq!((disk_params(&d), disk_type(&d)), ("/tmp/a.img".to_string(), "phy"));
    }
}
