//! The hypercall layer (what libxenctrl is to Xen's tools): typed domctl, sysctl,
//! memory, event-channel and MMU operations over `/dev/xen/privcmd`, with the argument
//! structures from `xen-abi` (domctl/sysctl interface 0x15) copied through a bounce
//! buffer of `/dev/xen/hypercall` pages so Xen never faults on them.

use crate::sys::{Mapping, Privcmd, PAGE_SIZE};
use std::fmt;
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::event_channel::{EvtchnAllocUnbound, EVTCHNOP_alloc_unbound};
use xen_abi::hypercall::*;
use xen_abi::memory::{XenMemoryReservation, XENMEM_populate_physmap, XENMEM_set_memory_map};
use xen_abi::sched::{SchedRemoteShutdown, SCHEDOP_remote_shutdown};
use xen_abi::sysctl::*;
use xen_abi::version::*;
use xen_abi::xen::{MmuextOp, MMUEXT_PIN_L4_TABLE};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A failed hypercall: which, and Xen's errno.
#[derive(Debug)]
pub struct Error {
    pub what: &'static str,
    pub errno: i32,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Errno(self.errno).name().unwrap_or("error");
        write!(f, "{} failed: {} ({})", self.what, name, self.errno)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

const BOUNCE_PAGES: usize = 64;

#[derive(Debug)]
pub struct Xc {
    pc: Privcmd,
    buf: Mapping,
}

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;

/// One domain as `getdomaininfo` reports it.
pub type DomainInfo = XenDomctlGetdomaininfo;

impl Xc {
    pub fn open() -> std::io::Result<Xc> {
        Ok(Xc { pc: Privcmd::open()?, buf: Mapping::hypercall_buffer(BOUNCE_PAGES)? })
    }

    pub fn privcmd(&self) -> &Privcmd {
        &self.pc
    }

    fn raw(&self, what: &'static str, op: u64, args: [u64; 5]) -> Result<i64> {
        self.pc.hypercall(op, args).map_err(|e| Error { what, errno: e.raw_os_error().unwrap_or(5) })
    }

    /// Puts `v` into the bounce buffer at `off`; returns its address there.
    fn put<T: IntoBytes + Immutable + ?Sized>(&self, off: usize, v: &T) -> u64 {
        self.buf.write(off, v.as_bytes());
        self.buf.addr() + off as u64
    }

    fn get<T: FromBytes>(&self, off: usize) -> T {
        let mut b = vec![0u8; size_of::<T>()];
        self.buf.read(off, &mut b);
        T::read_from_bytes(&b).expect("sized read")
    }

    fn get_bytes(&self, off: usize, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.buf.read(off, &mut b);
        b
    }

    pub fn domctl(&self, what: &'static str, d: &mut XenDomctl) -> Result<()> {
        let a = self.put(0, d);
        self.raw(what, HYPERVISOR_domctl, [a, 0, 0, 0, 0])?;
        *d = self.get(0);
        Ok(())
    }

    pub fn sysctl(&self, what: &'static str, s: &mut XenSysctl) -> Result<()> {
        let a = self.put(0, s);
        self.raw(what, HYPERVISOR_sysctl, [a, 0, 0, 0, 0])?;
        *s = self.get(0);
        Ok(())
    }

    pub fn physinfo(&self) -> Result<XenSysctlPhysinfo> {
        let mut s = XenSysctl::new(XEN_SYSCTL_physinfo);
        self.sysctl("sysctl physinfo", &mut s)?;
        Ok(s.payload().expect("fits"))
    }

    /// Every domain, in domid order.
    pub fn domains(&self) -> Result<Vec<DomainInfo>> {
        let per = size_of::<DomainInfo>();
        let max = ((BOUNCE_PAGES - 1) * PAGE_SIZE / per) as u32;
        let mut out = Vec::new();
        let mut first = 0u16;
        loop {
            let mut s = XenSysctl::new(XEN_SYSCTL_getdomaininfolist);
            s.set_payload(&XenSysctlGetdomaininfolist {
                first_domain: first,
                max_domains: max,
                buffer: self.buf.addr() + PAGE_SIZE as u64,
                ..Default::default()
            });
            self.sysctl("sysctl getdomaininfolist", &mut s)?;
            let got: XenSysctlGetdomaininfolist = s.payload().expect("fits");
            for i in 0..got.num_domains as usize {
                out.push(self.get::<DomainInfo>(PAGE_SIZE + i * per));
            }
            if got.num_domains < max {
                return Ok(out);
            }
            first = out.last().map_or(0, |d| d.domain + 1);
        }
    }

    pub fn domain_info(&self, domid: u16) -> Result<Option<DomainInfo>> {
        let mut d = XenDomctl::new(XEN_DOMCTL_getdomaininfo, domid);
        match self.domctl("domctl getdomaininfo", &mut d) {
            Ok(()) => {
                let i: DomainInfo = d.payload().expect("fits");
                Ok((i.domain == domid).then_some(i))
            }
            Err(e) if e.errno == Errno::ESRCH.0 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `createdomain` for a PV guest; returns the new domid.
    pub fn create_domain(&self, handle: [u8; 16], max_vcpus: u32) -> Result<u16> {
        let mut d = XenDomctl::new(XEN_DOMCTL_createdomain, 0);
        d.set_payload(&XenDomctlCreatedomain {
            handle,
            flags: 0,
            max_vcpus,
            max_evtchn_port: 1023,
            max_grant_frames: 64,
            max_maptrack_frames: 1024,
            grant_opts: 1, // grant table version 1 (XEN_DOMCTL_GRANT_version)
            cpupool_id: 0,
            ..Default::default()
        });
        self.domctl("domctl createdomain", &mut d)?;
        Ok(d.domain)
    }

    fn simple(&self, what: &'static str, cmd: u32, domid: u16) -> Result<()> {
        let mut d = XenDomctl::new(cmd, domid);
        self.domctl(what, &mut d)
    }

    pub fn pause(&self, domid: u16) -> Result<()> {
        self.simple("domctl pausedomain", XEN_DOMCTL_pausedomain, domid)
    }

    pub fn unpause(&self, domid: u16) -> Result<()> {
        self.simple("domctl unpausedomain", XEN_DOMCTL_unpausedomain, domid)
    }

    /// Destroys `domid`; Xen answers `EAGAIN` while it frees memory, so retry.
    pub fn destroy(&self, domid: u16) -> Result<()> {
        loop {
            match self.simple("domctl destroydomain", XEN_DOMCTL_destroydomain, domid) {
                Err(e) if e.errno == Errno::EAGAIN.0 => continue,
                r => return r,
            }
        }
    }

    pub fn max_vcpus(&self, domid: u16, n: u32) -> Result<()> {
        let mut d = XenDomctl::new(XEN_DOMCTL_max_vcpus, domid);
        d.set_payload(&XenDomctlMaxVcpus { max: n });
        self.domctl("domctl max_vcpus", &mut d)
    }

    pub fn max_mem(&self, domid: u16, kib: u64) -> Result<()> {
        let mut d = XenDomctl::new(XEN_DOMCTL_max_mem, domid);
        d.set_payload(&XenDomctlMaxMem { max_memkb: kib });
        self.domctl("domctl max_mem", &mut d)
    }

    pub fn set_address_size(&self, domid: u16, bits: u32) -> Result<()> {
        let mut d = XenDomctl::new(XEN_DOMCTL_set_address_size, domid);
        d.set_payload(&XenDomctlAddressSize { size: bits });
        self.domctl("domctl set_address_size", &mut d)
    }

    pub fn hypercall_init(&self, domid: u16, gmfn: u64) -> Result<()> {
        let mut d = XenDomctl::new(XEN_DOMCTL_hypercall_init, domid);
        d.set_payload(&XenDomctlHypercallInit { gmfn });
        self.domctl("domctl hypercall_init", &mut d)
    }

    /// Loads vCPU `vcpu`'s context (the context goes after the domctl in the buffer).
    pub fn set_vcpu_context(&self, domid: u16, vcpu: u32, ctx: &xen_abi::arch_x86_64::VcpuGuestContext) -> Result<()> {
        let a = self.put(PAGE_SIZE, ctx);
        let mut d = XenDomctl::new(XEN_DOMCTL_setvcpucontext, domid);
        d.set_payload(&XenDomctlVcpucontext { vcpu, ctxt: a, ..Default::default() });
        self.domctl("domctl setvcpucontext", &mut d)
    }

    /// vCPU `vcpu`'s saved context (for diagnostics).
    pub fn vcpu_context(&self, domid: u16, vcpu: u32) -> Result<xen_abi::arch_x86_64::VcpuGuestContext> {
        let a = self.buf.addr() + PAGE_SIZE as u64;
        let mut d = XenDomctl::new(XEN_DOMCTL_getvcpucontext, domid);
        d.set_payload(&XenDomctlVcpucontext { vcpu, ctxt: a, ..Default::default() });
        self.domctl("domctl getvcpucontext", &mut d)?;
        Ok(self.get(PAGE_SIZE))
    }

    pub fn vcpu_info(&self, domid: u16, vcpu: u32) -> Result<XenDomctlGetvcpuinfo> {
        let mut d = XenDomctl::new(XEN_DOMCTL_getvcpuinfo, domid);
        d.set_payload(&XenDomctlGetvcpuinfo { vcpu, ..Default::default() });
        self.domctl("domctl getvcpuinfo", &mut d)?;
        Ok(d.payload().expect("fits"))
    }

    /// `XEN_SYSCTL_sched_id`: the scheduler (`XEN_SCHEDULER_*`).
    pub fn sched_id(&self) -> Result<u32> {
        let mut s = XenSysctl::new(XEN_SYSCTL_sched_id);
        self.sysctl("sysctl sched_id", &mut s)?;
        Ok(s.payload::<XenSysctlSchedId>().expect("fits").sched_id)
    }

    /// `XEN_SYSCTL_scheduler_op` getinfo: the credit parameters of pool `poolid`.
    pub fn sched_credit_params_get(&self, poolid: u32) -> Result<XenSysctlCreditSchedule> {
        let mut s = XenSysctl::new(XEN_SYSCTL_scheduler_op);
        s.set_payload(&XenSysctlSchedulerOp { cpupool_id: poolid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_SYSCTL_SCHEDOP_getinfo, ..Default::default() });
        self.sysctl("sysctl scheduler_op getinfo", &mut s)?;
        Ok(s.payload::<XenSysctlSchedulerOp>().expect("fits").credit())
    }

    /// `XEN_SYSCTL_scheduler_op` putinfo: sets pool `poolid`'s credit parameters; what
    /// the hypervisor reports back.
    pub fn sched_credit_params_set(&self, poolid: u32, p: XenSysctlCreditSchedule) -> Result<XenSysctlCreditSchedule> {
        let mut op = XenSysctlSchedulerOp { cpupool_id: poolid, sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_SYSCTL_SCHEDOP_putinfo, ..Default::default() };
        op.set_credit(p);
        let mut s = XenSysctl::new(XEN_SYSCTL_scheduler_op);
        s.set_payload(&op);
        self.sysctl("sysctl scheduler_op putinfo", &mut s)?;
        Ok(s.payload::<XenSysctlSchedulerOp>().expect("fits").credit())
    }

    /// The credit scheduler's (weight, cap) of `domid`.
    pub fn sched_credit_get(&self, domid: u16) -> Result<XenDomctlSchedCredit> {
        let mut d = XenDomctl::new(XEN_DOMCTL_scheduler_op, domid);
        d.set_payload(&XenDomctlSchedulerOp { sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_getinfo, u: [0; 2] });
        self.domctl("domctl scheduler_op getinfo", &mut d)?;
        Ok(d.payload::<XenDomctlSchedulerOp>().expect("fits").credit())
    }

    /// Sets the credit scheduler's weight and cap of `domid` (weight 0 and cap 0xffff
    /// leave that one as it is).
    pub fn sched_credit_set(&self, domid: u16, c: XenDomctlSchedCredit) -> Result<()> {
        let mut op = XenDomctlSchedulerOp { sched_id: XEN_SCHEDULER_CREDIT, cmd: XEN_DOMCTL_SCHEDOP_putinfo, u: [0; 2] };
        op.set_credit(c);
        let mut d = XenDomctl::new(XEN_DOMCTL_scheduler_op, domid);
        d.set_payload(&op);
        self.domctl("domctl scheduler_op putinfo", &mut d)
    }

    /// vCPU `vcpu`'s (hard, soft) affinity as `xenctl_bitmap` bytes of `nr_cpus` bits.
    pub fn vcpu_affinity(&self, domid: u16, vcpu: u32, nr_cpus: u32) -> Result<(Vec<u8>, Vec<u8>)> {
        let n = nr_cpus.div_ceil(8) as usize;
        self.buf.write(PAGE_SIZE, &vec![0u8; 2 * n]);
        let hard = XenctlBitmap { bitmap: self.buf.addr() + PAGE_SIZE as u64, nr_bits: nr_cpus, _pad: 0 };
        let soft = XenctlBitmap { bitmap: hard.bitmap + n as u64, ..hard };
        let mut d = XenDomctl::new(XEN_DOMCTL_getvcpuaffinity, domid);
        d.set_payload(&XenDomctlVcpuaffinity { vcpu, flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT, cpumap_hard: hard, cpumap_soft: soft });
        self.domctl("domctl getvcpuaffinity", &mut d)?;
        Ok((self.get_bytes(PAGE_SIZE, n), self.get_bytes(PAGE_SIZE + n, n)))
    }

    /// Sets vCPU `vcpu`'s hard affinity (`xenctl_bitmap` bytes of `nr_cpus` bits);
    /// returns the effective one Xen reports back.
    pub fn set_vcpu_hard_affinity(&self, domid: u16, vcpu: u32, nr_cpus: u32, mask: &[u8]) -> Result<Vec<u8>> {
        Ok(self.set_vcpu_affinity(domid, vcpu, nr_cpus, Some(mask), None)?.0)
    }

    /// Sets vCPU `vcpu`'s hard and/or soft affinity in one domctl, as libxl's
    /// `libxl_set_vcpuaffinity` (`xenctl_bitmap` bytes of `nr_cpus` bits); returns the
    /// effective masks Xen reports back (empty for one not given).
    pub fn set_vcpu_affinity(&self, domid: u16, vcpu: u32, nr_cpus: u32, hard: Option<&[u8]>, soft: Option<&[u8]>) -> Result<(Vec<u8>, Vec<u8>)> {
        let n = nr_cpus.div_ceil(8) as usize;
        let bitmap = |at: usize, mask: Option<&[u8]>| {
            mask.map_or(XenctlBitmap::default(), |m| {
                let mut bytes = m.to_vec();
                bytes.resize(n, 0);
                XenctlBitmap { bitmap: self.put(at, bytes.as_slice()), nr_bits: nr_cpus, _pad: 0 }
            })
        };
        let (cpumap_hard, cpumap_soft) = (bitmap(PAGE_SIZE, hard), bitmap(PAGE_SIZE + n, soft));
        let flags = if hard.is_some() { XEN_VCPUAFFINITY_HARD } else { 0 } | if soft.is_some() { XEN_VCPUAFFINITY_SOFT } else { 0 };
        let mut d = XenDomctl::new(XEN_DOMCTL_setvcpuaffinity, domid);
        d.set_payload(&XenDomctlVcpuaffinity { vcpu, flags, cpumap_hard, cpumap_soft });
        self.domctl("domctl setvcpuaffinity", &mut d)?;
        let back = |given: bool, at: usize| if given { self.get_bytes(at, n) } else { Vec::new() };
        Ok((back(hard.is_some(), PAGE_SIZE), back(soft.is_some(), PAGE_SIZE + n)))
    }

    /// Gives `domid` `nr` 4 KiB pages; returns their machine frames in PFN order.
    pub fn populate_physmap(&self, domid: u16, nr: u64) -> Result<Vec<u64>> {
        let per_call = ((BOUNCE_PAGES - 1) * PAGE_SIZE / 8) as u64;
        let mut mfns = Vec::with_capacity(nr as usize);
        let mut pfn = 0u64;
        while pfn < nr {
            let n = per_call.min(nr - pfn);
            let pfns: Vec<u64> = (pfn..pfn + n).collect();
            let list = self.put(PAGE_SIZE, pfns.as_slice());
            let r = XenMemoryReservation { extent_start: list, nr_extents: n, extent_order: 0, mem_flags: 0, domid, ..Default::default() };
            let a = self.put(0, &r);
            let done = self.raw("memory_op populate_physmap", HYPERVISOR_memory_op, [u64::from(XENMEM_populate_physmap), a, 0, 0, 0])?;
            if done as u64 != n {
                return Err(Error { what: "memory_op populate_physmap (short)", errno: Errno::ENOMEM.0 });
            }
            let b = self.get_bytes(PAGE_SIZE, n as usize * 8);
            mfns.extend(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))));
            pfn += n;
        }
        Ok(mfns)
    }

    /// One RAM region `[0, bytes)` (the 20-byte packed E820 format).
    pub fn set_memory_map(&self, domid: u16, bytes: u64) -> Result<()> {
        let mut e = Vec::with_capacity(20);
        e.extend_from_slice(&0u64.to_le_bytes());
        e.extend_from_slice(&bytes.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes()); // E820_RAM
        let entries = self.put(PAGE_SIZE, e.as_slice());
        // struct xen_foreign_memory_map { domid_t domid; struct xen_memory_map { uint nr_entries; handle buffer; } }
        let mut m = Vec::new();
        m.extend_from_slice(&domid.to_le_bytes());
        m.extend_from_slice(&[0u8; 6]);
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&[0u8; 4]);
        m.extend_from_slice(&entries.to_le_bytes());
        let a = self.put(0, m.as_slice());
        self.raw("memory_op set_memory_map", HYPERVISOR_memory_op, [u64::from(XENMEM_set_memory_map), a, 0, 0, 0]).map(|_| ())
    }

    /// A port of `domid` that `remote` may bind to.
    pub fn alloc_unbound(&self, domid: u16, remote: u16) -> Result<u32> {
        let a = self.put(0, &EvtchnAllocUnbound { dom: domid, remote_dom: remote, port: 0 });
        self.raw("evtchn alloc_unbound", HYPERVISOR_event_channel_op, [u64::from(EVTCHNOP_alloc_unbound), a, 0, 0, 0])?;
        Ok(self.get::<EvtchnAllocUnbound>(0).port)
    }

    /// Pins `mfn` as an L4 table of `domid`.
    pub fn pin_l4(&self, domid: u16, mfn: u64) -> Result<()> {
        let op = MmuextOp { cmd: MMUEXT_PIN_L4_TABLE, arg1: mfn, ..Default::default() };
        let a = self.put(0, &op);
        self.raw("mmuext_op pin_l4_table", HYPERVISOR_mmuext_op, [a, 1, 0, u64::from(domid), 0]).map(|_| ())
    }

    /// `SCHEDOP_remote_shutdown` with `reason` (`SHUTDOWN_*`).
    pub fn shutdown(&self, domid: u16, reason: u32) -> Result<()> {
        let a = self.put(0, &SchedRemoteShutdown { domain_id: domid, reason, ..Default::default() });
        self.raw("sched_op remote_shutdown", HYPERVISOR_sched_op, [u64::from(SCHEDOP_remote_shutdown), a, 0, 0, 0]).map(|_| ())
    }

    /// `(major, minor)`.
    pub fn version(&self) -> Result<(u32, u32)> {
        let v = self.raw("xen_version", HYPERVISOR_xen_version, [u64::from(XENVER_version), 0, 0, 0, 0])?;
        Ok(((v >> 16) as u32, (v & 0xffff) as u32))
    }

    fn version_string(&self, what: &'static str, cmd: u32, len: usize) -> Result<String> {
        self.buf.write(0, &vec![0u8; len]);
        self.raw(what, HYPERVISOR_xen_version, [u64::from(cmd), self.buf.addr(), 0, 0, 0])?;
        let b = self.get_bytes(0, len);
        let end = b.iter().position(|&c| c == 0).unwrap_or(len);
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }

    pub fn extraversion(&self) -> Result<String> {
        self.version_string("xen_version extraversion", XENVER_extraversion, 16)
    }

    pub fn capabilities(&self) -> Result<String> {
        self.version_string("xen_version capabilities", XENVER_capabilities, 1024)
    }

    pub fn commandline(&self) -> Result<String> {
        self.version_string("xen_version commandline", XENVER_commandline, 1024)
    }

    /// Xen's console ring (`xl dmesg`); `clear` empties it afterwards.
    pub fn read_console(&self, clear: bool) -> Result<String> {
        let cap = (BOUNCE_PAGES - 1) * PAGE_SIZE;
        let mut s = XenSysctl::new(XEN_SYSCTL_readconsole);
        s.set_payload(&XenSysctlReadconsole {
            clear: u8::from(clear),
            incremental: 0,
            index: 0,
            buffer: self.buf.addr() + PAGE_SIZE as u64,
            count: cap as u32,
            ..Default::default()
        });
        self.sysctl("sysctl readconsole", &mut s)?;
        let r: XenSysctlReadconsole = s.payload().expect("fits");
        Ok(String::from_utf8_lossy(&self.get_bytes(PAGE_SIZE, r.count as usize)).into_owned())
    }
}
