//! The control domain's calls (`priv=1`: the fuzzer runs as a privileged domain):
//! structured `domctl` and `sysctl` requests from allow-lists, so that a privileged
//! fuzzer exercises the toolstack interface without doing what only a control domain
//! may legitimately do to others (pausing, destroying or shrinking the honest domains
//! and the other fuzzers is its right, and would only prove that it has it).
//!
//! - Commands that change a domain go only to domains this fuzzer created
//!   (`createdomain` with structured random configurations, at most [`MAX_CREATED`]
//!   alive), to free ids, and to special ids; commands that only read go anywhere.
//! - `sysctl`: only commands that read (`readconsole` without clearing, `physinfo`,
//!   `sched_id`, `getdomaininfolist`, `getcpuinfo`, `availheap`, CPU topology and
//!   policy queries, the cpupool and scheduler queries) and unknown ones.
//! - Every other hypercall keeps the fuzzer's domain ids away from the other domains
//!   (`Fuzz::domid`), since a control domain's foreign memory, event-channel and
//!   shutdown operations on them would succeed.
//!
//! Invariant checked with the others: no other domain is paused. At the end every
//! domain the fuzzer created is destroyed, and the boot's frame count must come back.

use super::{put, Call, Fuzz};
use crate::{hv, println};
use xen_abi::domctl::*;
use xen_abi::hypercall::{HYPERVISOR_domctl, HYPERVISOR_sysctl};
use xen_abi::sysctl::*;

/// Domains created and not yet destroyed, at most.
pub const MAX_CREATED: usize = 4;

/// `XEN_SYSCTL_SCHEDOP_getinfo`.
const SYSCTL_SCHEDOP_getinfo: u32 = 1;

/// What the control calls did (printed at the end).
#[derive(Default, Debug)]
pub struct Stats {
    pub domctl: u64,
    pub domctl_ok: u64,
    pub sysctl: u64,
    pub sysctl_ok: u64,
    /// Domains created by single calls, and createdomain requests refused.
    pub created: u64,
    pub create_refused: u64,
    /// destroydomain of a domain it created: done, refused.
    pub destroyed: u64,
    pub destroy_refused: u64,
}

/// The domctl commands a control domain's fuzzer issues (unknown ones too).
const DOMCTLS: [u32; 20] = [
    XEN_DOMCTL_createdomain,
    XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_pausedomain,
    XEN_DOMCTL_unpausedomain,
    XEN_DOMCTL_getdomaininfo,
    XEN_DOMCTL_setvcpuaffinity,
    XEN_DOMCTL_max_mem,
    XEN_DOMCTL_setvcpucontext,
    XEN_DOMCTL_getvcpucontext,
    XEN_DOMCTL_getvcpuinfo,
    XEN_DOMCTL_max_vcpus,
    XEN_DOMCTL_scheduler_op,
    XEN_DOMCTL_hypercall_init,
    XEN_DOMCTL_getvcpuaffinity,
    XEN_DOMCTL_set_address_size,
    XEN_DOMCTL_get_address_size,
    XEN_DOMCTL_settscinfo,
    XEN_DOMCTL_gettscinfo,
    0,
    1000,
];

/// Commands that only read the target domain.
fn reads_only(cmd: u32, sched_cmd: u32) -> bool {
    matches!(cmd, XEN_DOMCTL_getdomaininfo | XEN_DOMCTL_getvcpucontext | XEN_DOMCTL_getvcpuinfo | XEN_DOMCTL_getvcpuaffinity | XEN_DOMCTL_get_address_size | XEN_DOMCTL_gettscinfo)
        || (cmd == XEN_DOMCTL_scheduler_op && sched_cmd == XEN_DOMCTL_SCHEDOP_getinfo)
}

/// Removes `id` from the first `n` entries of `list`.
fn forget(list: &mut [u16; 8], n: &mut usize, id: u16) {
    if let Some(k) = list[..*n].iter().position(|&d| d == id) {
        list.copy_within(k + 1..*n, k);
        *n -= 1;
    }
}

impl Fuzz {
    /// Whether `id` is another domain of the boot (an honest one or another fuzzer).
    pub(super) fn is_protected(&self, id: u16) -> bool {
        self.peers[..self.nr_peers].contains(&id) || self.honest[..self.nr_honest].contains(&id)
    }

    /// An id no domain has (nor one we created, as far as we know).
    fn free_id(&mut self) -> u16 {
        for _ in 0..8 {
            let id = 0x100 + self.rng.below(0x7e00) as u16;
            if !self.is_protected(id) && !self.created[..self.nr_created].contains(&id) {
                return id;
            }
        }
        0x7ef0
    }

    /// The target of a domctl: one we created, ourselves or another domain (when the
    /// command only reads), a special id, or a free one.
    fn ctl_target(&mut self, read_only: bool) -> u16 {
        match self.rng.below(8) {
            0..=2 if self.nr_created > 0 => self.created[self.rng.below(self.nr_created as u64) as usize],
            3 if read_only => self.self_id,
            4 if read_only && self.nr_peers > 0 => self.peers[self.rng.below(self.nr_peers as u64) as usize],
            5 => 0x7ff0 + self.rng.below(16) as u16,
            _ => self.free_id(),
        }
    }

    /// Writes `words` (the request's 144 or 136 bytes) to slot `i` of page A.
    fn put_request(&self, i: usize, words: &[u64]) -> u64 {
        let base = self.slot_a(i);
        for (k, w) in words.iter().enumerate() {
            put(base + k as u64 * 8, *w);
        }
        base
    }

    /// A 32-bit field: a small number, a boundary, or anything.
    fn field(&mut self, small: u64) -> u64 {
        match self.rng.below(4) {
            0 => self.rng.below(small),
            1 => [0, 1, 0x7fff_ffff, 0xffff_ffff][self.rng.below(4) as usize],
            _ => self.rng.below(small.max(2) * 2),
        }
    }

    /// A structured `XEN_DOMCTL_*` request (see the module comment).
    pub(super) fn gen_domctl(&mut self, c: &mut Call, i: usize) {
        // A full table of created domains makes room first.
        let mut cmd = if self.nr_created >= MAX_CREATED && self.rng.chance(2) {
            XEN_DOMCTL_destroydomain
        } else if self.nr_created < MAX_CREATED && self.rng.chance(6) {
            XEN_DOMCTL_createdomain
        } else {
            DOMCTLS[self.rng.below(DOMCTLS.len() as u64) as usize]
        };
        // Only single calls create (`i` 0): the new id is read back and remembered,
        // which a multicall entry's would not be (it may reuse a finished boot
        // domain's id, and must not then pass for that domain).
        if cmd == XEN_DOMCTL_createdomain && (i != 0 || self.nr_created >= MAX_CREATED) {
            cmd = XEN_DOMCTL_getdomaininfo;
        }
        let mut u = [0u64; 16];
        let sched_cmd = if self.rng.chance(2) { XEN_DOMCTL_SCHEDOP_getinfo } else { self.field(4) as u32 };
        let mut domain = if cmd == XEN_DOMCTL_createdomain {
            // 0: the next free id (Xen's rover); or a chosen one; or a reserved one.
            [0, 0, 0, self.free_id(), 0x7ff0 + self.rng.below(16) as u16][self.rng.below(5) as usize]
        } else if cmd == XEN_DOMCTL_destroydomain && self.nr_created >= MAX_CREATED {
            self.created[0]
        } else {
            self.ctl_target(reads_only(cmd, sched_cmd))
        };
        match cmd {
            XEN_DOMCTL_createdomain if self.rng.below(4) != 0 => {
                // A configuration a toolstack would send (so that domains exist for
                // the other commands): no flags, a few vCPUs, default or small limits,
                // grant version 1 or 2.
                u[2] = self.rng.next() & 0xffff_ffff;
                u[3] = (1 + self.rng.below(4)) << 32;
                u[4] = [1023, 0xffff_ffff][self.rng.below(2) as usize] | ([0xffff_ffff, 1 + self.rng.below(64)][self.rng.below(2) as usize] << 32);
                u[5] = [0xffff_ffff, self.rng.below(1025)][self.rng.below(2) as usize] | ((1 + self.rng.below(2)) << 32);
            }
            XEN_DOMCTL_createdomain => {
                let flags = [0, 0, u64::from(XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap), u64::from(XEN_DOMCTL_CDF_iommu), self.rng.below(0x200)][self.rng.below(5) as usize];
                let max_vcpus = [1, 2, 4, 128, 129, 0, self.field(4096)][self.rng.below(7) as usize];
                let evtchn = [1023, 0, 4095, 0xffff_ffff, self.field(1 << 17)][self.rng.below(5) as usize];
                let grant = [0xffff_ffff, 1, 64, 65, 0x7fff_ffff][self.rng.below(5) as usize];
                let maptrack = [0xffff_ffff, 0, 1024, 1025, 0x7fff_ffff][self.rng.below(5) as usize];
                let grant_opts = [1, 1, 2, 0, self.field(64)][self.rng.below(5) as usize];
                let pool = if self.rng.chance(4) { self.field(8) } else { 0 };
                let emul = if self.rng.chance(4) { self.field(1 << 12) } else { 0 };
                // ssidref, handle (16 bytes), flags, iommu_opts, max_vcpus, ...
                u[0] = self.rng.next() << 32;
                u[1] = self.rng.next();
                u[2] = (self.rng.next() & 0xffff_ffff) | (flags << 32);
                u[3] = (if self.rng.chance(8) { self.field(4) } else { 0 }) | (max_vcpus << 32);
                u[4] = evtchn | (grant << 32);
                u[5] = maptrack | (grant_opts << 32);
                u[6] = (if self.rng.chance(8) { self.field(1 << 20) } else { 0 }) | (pool << 32);
                u[7] = emul | ((if self.rng.chance(8) { self.field(4) } else { 0 }) << 32);
            }
            XEN_DOMCTL_setvcpuaffinity | XEN_DOMCTL_getvcpuaffinity => {
                let flags = [1, 2, 3, 0, self.field(16)][self.rng.below(5) as usize];
                let bits = [2, 8, 64, 65, 0, 4096, 0xffff_ffff][self.rng.below(7) as usize];
                // The masks: in page B's upper half (random bytes there), or anywhere.
                let mask = |f: &mut Fuzz| if f.rng.chance(4) { f.ptr() } else { f.arg_b + 2048 + f.rng.below(256) * 8 };
                u[0] = self.field(4) | (flags << 32);
                u[1] = mask(self);
                u[2] = bits;
                u[3] = mask(self);
                u[4] = bits;
                if cmd == XEN_DOMCTL_setvcpuaffinity {
                    for k in 0..8 {
                        let v = self.rng.next();
                        put(self.arg_b + 2048 + self.rng.below(256) * 8, if k % 2 == 0 { v } else { v & 3 });
                    }
                }
            }
            XEN_DOMCTL_setvcpucontext | XEN_DOMCTL_getvcpucontext => {
                // A context (about 5 KiB) read from, or written to, any pointer; a null
                // one asks to reset (set) or is refused (get).
                u[0] = self.field(4);
                u[1] = if self.rng.chance(6) { 0 } else { self.ptr() };
            }
            XEN_DOMCTL_getvcpuinfo => u[0] = self.field(4),
            XEN_DOMCTL_max_mem => u[0] = [0, 1024, 1 << 20, u64::MAX, self.word()][self.rng.below(5) as usize],
            XEN_DOMCTL_max_vcpus => u[0] = [1, 2, 128, 129, 0, self.field(4096)][self.rng.below(6) as usize],
            XEN_DOMCTL_scheduler_op => {
                let id = if self.rng.chance(4) { self.field(8) } else { u64::from(XEN_SCHEDULER_CREDIT) };
                u[0] = id | (u64::from(sched_cmd) << 32);
                u[1] = self.field(1 << 16) | (self.field(1 << 16) << 16);
            }
            XEN_DOMCTL_hypercall_init => u[0] = self.any_frame().0,
            XEN_DOMCTL_set_address_size => u[0] = [32, 64, 0, 48, self.field(128)][self.rng.below(5) as usize],
            _ => {
                for w in u.iter_mut() {
                    *w = self.word();
                }
            }
        }
        // Never a domain of the boot but for commands that only read.
        if self.is_protected(domain) && !reads_only(cmd, sched_cmd) {
            domain = self.free_id();
        }
        let version = if self.rng.chance(16) { self.field(0x20) } else { u64::from(XEN_DOMCTL_INTERFACE_VERSION) };
        let mut words = [0u64; 18];
        words[0] = u64::from(cmd) | (version << 32);
        words[1] = u64::from(domain);
        words[2..].copy_from_slice(&u);
        let s = self.put_request(i, &words);
        c.nr = HYPERVISOR_domctl;
        c.args = [if self.rng.chance(16) { self.bad_ptr() } else { s }, self.word(), 0, 0, 0];
    }

    /// A structured `XEN_SYSCTL_*` request that only reads (see the module comment).
    pub(super) fn gen_sysctl(&mut self, c: &mut Call, i: usize) {
        const CMDS: [u32; 15] = [
            XEN_SYSCTL_readconsole,
            XEN_SYSCTL_physinfo,
            XEN_SYSCTL_sched_id,
            XEN_SYSCTL_getdomaininfolist,
            XEN_SYSCTL_getcpuinfo,
            XEN_SYSCTL_availheap,
            XEN_SYSCTL_cputopoinfo,
            XEN_SYSCTL_numainfo,
            XEN_SYSCTL_cpupool_op,
            XEN_SYSCTL_scheduler_op,
            XEN_SYSCTL_get_cpu_levelling_caps,
            XEN_SYSCTL_get_cpu_featureset,
            XEN_SYSCTL_get_cpu_policy,
            0,
            99,
        ];
        let cmd = CMDS[self.rng.below(CMDS.len() as u64) as usize];
        let mut u = [0u64; 16];
        match cmd {
            XEN_SYSCTL_readconsole => {
                // clear = 0 (reading must not empty the log), incremental, index; a
                // buffer and a count.
                u[0] = (self.rng.below(2) << 8) | (self.field(1 << 16) << 32);
                u[1] = self.ptr();
                u[2] = self.count();
            }
            XEN_SYSCTL_getdomaininfolist => {
                u[0] = self.rng.below(16) | (self.count() << 32);
                u[1] = self.ptr();
            }
            XEN_SYSCTL_getcpuinfo | XEN_SYSCTL_cputopoinfo | XEN_SYSCTL_numainfo | XEN_SYSCTL_get_cpu_featureset => {
                u[0] = self.count();
                u[1] = self.ptr();
                u[2] = self.ptr();
                u[3] = self.ptr();
            }
            XEN_SYSCTL_cpupool_op => {
                // op: info or freeinfo only (the others move CPUs and domains).
                let op = if self.rng.chance(2) { XEN_SYSCTL_CPUPOOL_OP_INFO } else { XEN_SYSCTL_CPUPOOL_OP_FREEINFO };
                u[0] = u64::from(op) | (self.field(8) << 32);
                u[1] = self.field(8) | (self.field(16) << 32);
                u[2] = self.ptr();
                u[3] = self.field(4096);
            }
            XEN_SYSCTL_scheduler_op => {
                u[0] = self.field(8) | (u64::from(XEN_SCHEDULER_CREDIT) << 32);
                u[1] = u64::from(SYSCTL_SCHEDOP_getinfo);
            }
            XEN_SYSCTL_get_cpu_policy => {
                u[0] = self.field(16) | (self.field(64) << 32);
                u[1] = self.ptr();
                u[2] = self.field(64);
                u[3] = self.ptr();
            }
            _ => {
                for w in u.iter_mut().take(4) {
                    *w = self.word();
                }
                if cmd == XEN_SYSCTL_availheap || cmd == XEN_SYSCTL_get_cpu_levelling_caps {
                    u[0] = self.field(64);
                }
            }
        }
        let version = if self.rng.chance(16) { self.field(0x20) } else { u64::from(XEN_SYSCTL_INTERFACE_VERSION) };
        let mut words = [0u64; 17];
        words[0] = u64::from(cmd) | (version << 32);
        words[1..].copy_from_slice(&u);
        let s = self.put_request(i, &words);
        c.nr = HYPERVISOR_sysctl;
        c.args = [if self.rng.chance(16) { self.bad_ptr() } else { s }, self.word(), 0, 0, 0];
    }

    /// After a single call: counts control calls and their successes, remembers a
    /// domain it created, forgets one it destroyed.
    pub(super) fn note_control(&mut self, c: &Call, r: i64) {
        match c.nr {
            HYPERVISOR_domctl => self.ctl.domctl += 1,
            HYPERVISOR_sysctl => self.ctl.sysctl += 1,
            _ => return,
        }
        if r == 0 {
            if c.nr == HYPERVISOR_domctl {
                self.ctl.domctl_ok += 1;
            } else {
                self.ctl.sysctl_ok += 1;
            }
        }
        if c.nr != HYPERVISOR_domctl || !(self.arg_a..self.arg_a + 4096).contains(&c.args[0]) {
            return;
        }
        if r != 0 {
            let cmd = crate::arch::x86_64::traps::read_u64(c.args[0]).unwrap_or(0);
            let dom = crate::arch::x86_64::traps::read_u64(c.args[0] + 8).unwrap_or(0) as u16;
            let valid = |c: u32| u64::from(c) | (u64::from(XEN_DOMCTL_INTERFACE_VERSION) << 32);
            if cmd == valid(XEN_DOMCTL_createdomain) {
                self.ctl.create_refused += 1;
            }
            if cmd == valid(XEN_DOMCTL_destroydomain) && self.created[..self.nr_created].contains(&dom) {
                self.ctl.destroy_refused += 1;
                if self.ctl.destroy_refused <= 4 {
                    println!("FUZZ destroydomain of d{dom}, which it created, refused: {r}");
                }
            }
            return;
        }
        let (cmd, domain) = (crate::arch::x86_64::traps::read_u64(c.args[0]).unwrap_or(0) as u32, crate::arch::x86_64::traps::read_u64(c.args[0] + 8).unwrap_or(0) as u16);
        match cmd {
            XEN_DOMCTL_createdomain => {
                self.ctl.created += 1;
                if self.nr_created < MAX_CREATED && !self.created[..self.nr_created].contains(&domain) {
                    self.created[self.nr_created] = domain;
                    self.nr_created += 1;
                }
                // Ids are unique among live domains: a boot domain that had this id
                // has finished, and the id is ours now.
                forget(&mut self.peers, &mut self.nr_peers, domain);
                forget(&mut self.honest, &mut self.nr_honest, domain);
            }
            XEN_DOMCTL_destroydomain => {
                self.ctl.destroyed += u64::from(self.created[..self.nr_created].contains(&domain));
                if let Some(k) = self.created[..self.nr_created].iter().position(|&d| d == domain) {
                    self.created.copy_within(k + 1..self.nr_created, k);
                    self.nr_created -= 1;
                }
            }
            _ => {}
        }
    }

    /// Forgets created domains that are gone (a multicall entry may have destroyed
    /// one; its result is not read back).
    pub(super) fn prune_created(&mut self) {
        let mut k = 0;
        while k < self.nr_created {
            if matches!(crate::hostile::domain_flags(self.created[k]), Ok(None)) {
                self.created.copy_within(k + 1..self.nr_created, k);
                self.nr_created -= 1;
            } else {
                k += 1;
            }
        }
    }

    /// The other domains of the boot that are still there are not paused (a control
    /// domain's fuzzer must not have paused one): the first that is, if any.
    pub(super) fn paused_peer(&self) -> Option<u16> {
        let ids = self.peers[..self.nr_peers].iter().chain(&self.honest[..self.nr_honest]);
        ids.copied().find(|&id| crate::hostile::domain_flags(id).ok().flatten().is_some_and(|f| f & XEN_DOMINF_paused != 0))
    }

    /// Destroys every domain that is neither us nor one of the boot's still running
    /// (those this fuzzer created, even past the [`MAX_CREATED`] it tracks), and waits
    /// until they are gone: how many it destroyed, or the first error.
    pub(super) fn destroy_created(&mut self) -> Result<u32, i64> {
        let mut destroyed = 0;
        let mut next = 0u16;
        // getdomaininfolist answers from the domain asked for upwards.
        while let Some(id) = crate::hostile::next_domain(next)? {
            if id != self.self_id && !self.is_protected(id) {
                let mut d = XenDomctl::new(XEN_DOMCTL_destroydomain, id);
                let r = crate::hostile::domctl(&mut d);
                if r != 0 {
                    return Err(r);
                }
                destroyed += 1;
            }
            next = id + 1;
        }
        self.nr_created = 0;
        // Destruction completes at the hypervisor's next scheduling point.
        for _ in 0..1000 {
            if self.created_left()? == 0 {
                return Ok(destroyed);
            }
            hv::sched_yield();
        }
        Err(-1000)
    }

    fn created_left(&self) -> Result<u32, i64> {
        let mut left = 0;
        let mut next = 0u16;
        while let Some(id) = crate::hostile::next_domain(next)? {
            if id != self.self_id && !self.is_protected(id) {
                left += 1;
            }
            next = id + 1;
        }
        Ok(left)
    }
}
