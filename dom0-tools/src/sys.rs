//! The lowest layer: Linux's Xen devices (`/dev/xen/privcmd`, `/dev/xen/evtchn`,
//! `/proc/xen/xsd_kva`) through ioctl and mmap. Every `unsafe` block of dom0-tools lives
//! here; everything above sees safe types with checked offsets.

use std::fs::{File, OpenOptions};
use std::io;
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{fence, Ordering};

pub const PAGE_SIZE: usize = 4096;

/// `_IOC(_IOC_NONE, ty, nr, size)`.
const fn ioc_none(ty: u8, nr: u8, size: usize) -> libc::c_ulong {
    ((size as libc::c_ulong) << 16) | ((ty as libc::c_ulong) << 8) | nr as libc::c_ulong
}

/// `struct privcmd_hypercall`.
#[repr(C)]
struct PrivcmdHypercall {
    op: u64,
    arg: [u64; 5],
}

/// `struct privcmd_mmapbatch_v2`.
#[repr(C)]
struct PrivcmdMmapbatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut i32,
}

const IOCTL_PRIVCMD_HYPERCALL: libc::c_ulong = ioc_none(b'P', 0, size_of::<PrivcmdHypercall>());
const IOCTL_PRIVCMD_MMAPBATCH_V2: libc::c_ulong = ioc_none(b'P', 4, size_of::<PrivcmdMmapbatchV2>());
const IOCTL_EVTCHN_BIND_VIRQ: libc::c_ulong = ioc_none(b'E', 0, 4);
const IOCTL_EVTCHN_BIND_INTERDOMAIN: libc::c_ulong = ioc_none(b'E', 1, 8);
const IOCTL_EVTCHN_BIND_UNBOUND_PORT: libc::c_ulong = ioc_none(b'E', 2, 4);
const IOCTL_EVTCHN_UNBIND: libc::c_ulong = ioc_none(b'E', 3, 4);
const IOCTL_EVTCHN_NOTIFY: libc::c_ulong = ioc_none(b'E', 4, 4);

fn open_rw(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// `ioctl(fd, req, arg)` returning the non-negative result.
fn ioctl<T>(fd: RawFd, req: libc::c_ulong, arg: &mut T) -> io::Result<i64> {
    // SAFETY: `arg` is a live, exclusively borrowed `#[repr(C)]` value of the type the
    // request number encodes; the kernel reads/writes only within it (and memory it
    // points to, which callers keep alive for the call).
    let r = unsafe { libc::ioctl(fd, req as libc::Ioctl, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i64::from(r))
    }
}

/// Memory shared with Xen or another domain, mapped into this process.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through volatile or
// atomic operations with bounds checks, so moving it between threads is sound.
unsafe impl Send for Mapping {}

impl Mapping {
    fn mmap(fd: RawFd, len: usize, offset: u64) -> io::Result<Mapping> {
        Self::mmap_prot(fd, len, offset, ProtFlags::READ | ProtFlags::WRITE)
    }

    fn mmap_prot(fd: RawFd, len: usize, offset: u64, prot: ProtFlags) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL), owned by the
        // returned `Mapping` which unmaps it on drop; `fd` is open for the call (callers
        // pass their own open descriptor).
        let p = unsafe { mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, BorrowedFd::borrow_raw(fd), offset) }?;
        Ok(Mapping { ptr: p.cast(), len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The address it is mapped at in this process (for hypercall arguments).
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Buffers Xen may read and write during a hypercall without faulting: pages of
    /// `/dev/xen/hypercall` (Linux's privcmd-buf), locked in memory by the kernel.
    pub fn hypercall_buffer(pages: usize) -> io::Result<Mapping> {
        let f = open_rw("/dev/xen/hypercall")?;
        let m = Mapping::mmap(f.as_raw_fd(), pages * PAGE_SIZE, 0)?;
        // The mapping outlives the descriptor (privcmd-buf keeps it).
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, n: usize) {
        assert!(off.checked_add(n).is_some_and(|e| e <= self.len), "access {off}+{n} outside a {}-byte mapping", self.len);
    }

    /// Loads a u32 with acquire ordering (a ring index written by the peer).
    pub fn load_u32(&self, off: usize) -> u32 {
        self.check(off, 4);
        assert!(off.is_multiple_of(4));
        // SAFETY: in bounds and aligned (checked above); the memory stays mapped while
        // `self` lives; the peer may write concurrently, hence the volatile read.
        let v = unsafe { std::ptr::read_volatile(self.ptr.add(off).cast::<u32>()) };
        fence(Ordering::Acquire);
        v
    }

    /// Stores a u32 with release ordering (data before the index).
    pub fn store_u32(&self, off: usize, v: u32) {
        self.check(off, 4);
        assert!(off.is_multiple_of(4));
        fence(Ordering::Release);
        // SAFETY: in bounds and aligned (checked above); mapped while `self` lives.
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u32>(), v) };
        fence(Ordering::SeqCst);
    }

    pub fn read(&self, off: usize, buf: &mut [u8]) {
        self.check(off, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked above); mapped while `self` lives.
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(off + i)) };
        }
    }

    /// Bulk copy into memory nobody else is using yet (a domain being built): plain
    /// `memcpy` speed instead of byte-wise volatile stores.
    pub fn copy_in(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        // SAFETY: in bounds (checked above); `data` is ordinary memory that cannot
        // overlap a mapping of another domain's frames; mapped while `self` lives.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        fence(Ordering::SeqCst);
    }

    /// Bulk copy out of memory a peer may be writing concurrently (a persistently mapped
    /// grant): `memcpy` speed; the bytes are untrusted data, never a reference into the
    /// shared page.
    pub fn copy_out(&self, off: usize, buf: &mut [u8]) {
        self.check(off, buf.len());
        // SAFETY: in bounds (checked above) and mapped while `self` lives; `buf` is our
        // own memory, which cannot overlap a mapping of another domain's frame. A
        // concurrent write by the peer can only make the copied bytes arbitrary (u8 has
        // no invalid values); no Rust reference to the shared bytes is created.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), buf.as_mut_ptr(), buf.len()) };
    }

    /// Bulk copy into memory a peer may be reading concurrently (a persistently mapped
    /// grant), as [`Mapping::copy_out`].
    pub fn copy_to(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        // SAFETY: as in `copy_out`, the other way round; `data` is our own memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
        fence(Ordering::Release);
    }

    /// Bulk zeroing, as [`Mapping::copy_in`].
    pub fn zero(&self, off: usize, n: usize) {
        self.check(off, n);
        // SAFETY: in bounds (checked above); mapped while `self` lives.
        unsafe { std::ptr::write_bytes(self.ptr.add(off), 0, n) };
        fence(Ordering::SeqCst);
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: in bounds (checked above); mapped while `self` lives.
            unsafe { std::ptr::write_volatile(self.ptr.add(off + i), b) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and still owns.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// `/dev/xen/privcmd`: hypercalls and foreign mappings.
#[derive(Debug)]
pub struct Privcmd {
    file: File,
}

impl Privcmd {
    pub fn open() -> io::Result<Privcmd> {
        Ok(Privcmd { file: open_rw("/dev/xen/privcmd")? })
    }

    /// Issues hypercall `op`; pointers in `args` must point at memory that stays valid
    /// for the call (callers pass the addresses of their own buffers).
    pub fn hypercall(&self, op: u64, args: [u64; 5]) -> io::Result<i64> {
        let mut h = PrivcmdHypercall { op, arg: args };
        ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_HYPERCALL, &mut h)
    }

    /// Maps frames `gfns` of domain `dom` (machine frames for a PV domain) writable.
    pub fn map_foreign(&self, dom: u16, gfns: &[u64]) -> io::Result<Mapping> {
        self.map_foreign_prot(dom, gfns, true)
    }

    /// Maps frames of `dom` read-only (page-table frames can only be mapped so). Writes
    /// to a read-only mapping fault; callers only read it.
    pub fn map_foreign_ro(&self, dom: u16, gfns: &[u64]) -> io::Result<Mapping> {
        self.map_foreign_prot(dom, gfns, false)
    }

    fn map_foreign_prot(&self, dom: u16, gfns: &[u64], writable: bool) -> io::Result<Mapping> {
        let prot = if writable { ProtFlags::READ | ProtFlags::WRITE } else { ProtFlags::READ };
        let m = Mapping::mmap_prot(self.file.as_raw_fd(), gfns.len() * PAGE_SIZE, 0, prot)?;
        let mut errs = vec![0i32; gfns.len()];
        let mut b = PrivcmdMmapbatchV2 {
            num: gfns.len() as u32,
            dom,
            addr: m.ptr as u64,
            arr: gfns.as_ptr(),
            err: errs.as_mut_ptr(),
        };
        ioctl(self.file.as_raw_fd(), IOCTL_PRIVCMD_MMAPBATCH_V2, &mut b)?;
        if let Some(e) = errs.iter().find(|&&e| e != 0) {
            return Err(io::Error::from_raw_os_error(-e));
        }
        Ok(m)
    }
}

/// `/dev/xen/evtchn`: event channels for this process.
#[derive(Debug)]
pub struct Evtchn {
    file: File,
}

impl Evtchn {
    pub fn open() -> io::Result<Evtchn> {
        Ok(Evtchn { file: open_rw("/dev/xen/evtchn")? })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Binds to `remote_port` of `domid`; returns the local port.
    pub fn bind_interdomain(&self, domid: u32, remote_port: u32) -> io::Result<u32> {
        let mut a = [domid, remote_port];
        ioctl(self.fd(), IOCTL_EVTCHN_BIND_INTERDOMAIN, &mut a).map(|p| p as u32)
    }

    /// Allocates a port `domid` may bind to; returns the local port.
    pub fn bind_unbound(&self, domid: u32) -> io::Result<u32> {
        let mut a = [domid];
        ioctl(self.fd(), IOCTL_EVTCHN_BIND_UNBOUND_PORT, &mut a).map(|p| p as u32)
    }

    pub fn bind_virq(&self, virq: u32) -> io::Result<u32> {
        let mut a = [virq];
        ioctl(self.fd(), IOCTL_EVTCHN_BIND_VIRQ, &mut a).map(|p| p as u32)
    }

    pub fn unbind(&self, port: u32) -> io::Result<()> {
        let mut a = [port];
        ioctl(self.fd(), IOCTL_EVTCHN_UNBIND, &mut a).map(|_| ())
    }

    pub fn notify(&self, port: u32) -> io::Result<()> {
        let mut a = [port];
        ioctl(self.fd(), IOCTL_EVTCHN_NOTIFY, &mut a).map(|_| ())
    }

    /// Pending ports (non-blocking callers poll the fd first); each is re-enabled.
    pub fn pending(&self) -> io::Result<Vec<u32>> {
        use std::io::{Read, Write};
        let mut buf = [0u8; 4 * 64];
        let n = (&self.file).read(&mut buf)?;
        let ports: Vec<u32> = buf[..n].chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        if !ports.is_empty() {
            let raw: Vec<u8> = ports.iter().flat_map(|p| p.to_ne_bytes()).collect();
            (&self.file).write_all(&raw)?;
        }
        Ok(ports)
    }
}

/// dom0's own xenstore ring and its port, as Linux's xenfs publishes them when dom0
/// runs xenstored (`/proc/xen/xsd_kva`, `/proc/xen/xsd_port`).
pub fn dom0_store_ring() -> io::Result<(Mapping, u32)> {
    let port: u32 = std::fs::read_to_string("/proc/xen/xsd_port")?
        .trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "/proc/xen/xsd_port is not a number"))?;
    let f = open_rw("/proc/xen/xsd_kva")?;
    let m = Mapping::mmap(f.as_raw_fd(), PAGE_SIZE, 0)?;
    Ok((m, port))
}

/// Waits until one of `fds` is readable (or `timeout_ms` passes); returns which.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `p` is a live array of `p.len()` pollfd structs for the duration of the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0).collect())
}

/// Waits until one of `fds` has one of its `events` (`libc::POLLIN`, `POLLOUT`), or
/// `timeout_ms` passes; returns each one's `revents` (all 0 on a timeout or a signal).
pub fn poll_events(fds: &[(RawFd, i16)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds.iter().map(|&(fd, events)| libc::pollfd { fd, events, revents: 0 }).collect();
    // SAFETY: `p` is a live array of `p.len()` pollfd structs for the duration of the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![0; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents).collect())
}

// ---------------------------------------------------------------- /dev/xen/gntdev
//
// `include/uapi/xen/gntdev.h`: map a peer's grants into this process, and
// `GNTTABOP_copy` between a peer's grants and our own buffers.

/// `struct ioctl_gntdev_grant_ref`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GntdevGrantRef {
    domid: u32,
    gref: u32,
}

/// Most grants mapped by one [`Gntdev::map`] (a 16-page ring).
pub const GNTDEV_MAX_MAP: usize = 16;

/// `struct ioctl_gntdev_map_grant_ref` with room for [`GNTDEV_MAX_MAP`] references (the
/// kernel reads `count` of them; the ioctl number encodes the one-reference size).
#[repr(C)]
struct GntdevMapGrantRef {
    count: u32,
    pad: u32,
    index: u64,
    refs: [GntdevGrantRef; GNTDEV_MAX_MAP],
}

/// `struct ioctl_gntdev_unmap_grant_ref`.
#[repr(C)]
struct GntdevUnmapGrantRef {
    index: u64,
    count: u32,
    pad: u32,
}

/// `struct gntdev_grant_copy_segment`: `source`/`dest` are either a user pointer or
/// `{ u32 ref; u16 offset; u16 domid }` (flag `GNTCOPY_source_gref`/`GNTCOPY_dest_gref`).
#[repr(C)]
struct GntdevGrantCopySegment {
    source: u64,
    dest: u64,
    len: u16,
    flags: u16,
    status: i16,
    pad: u16,
}

/// `struct ioctl_gntdev_grant_copy`.
#[repr(C)]
struct GntdevGrantCopy {
    count: u32,
    pad: u32,
    segments: *mut GntdevGrantCopySegment,
}

const IOCTL_GNTDEV_MAP_GRANT_REF: libc::c_ulong = ioc_none(b'G', 0, 24);
const IOCTL_GNTDEV_UNMAP_GRANT_REF: libc::c_ulong = ioc_none(b'G', 1, size_of::<GntdevUnmapGrantRef>());
const IOCTL_GNTDEV_GRANT_COPY: libc::c_ulong = ioc_none(b'G', 8, size_of::<GntdevGrantCopy>());
const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
const GNTCOPY_DEST_GREF: u16 = 1 << 1;

fn foreign(gref: u32, offset: u16, domid: u16) -> u64 {
    u64::from(gref) | (u64::from(offset) << 32) | (u64::from(domid) << 48)
}

/// `/dev/xen/gntdev`, shared by a device's mappings (which unmap through it).
#[derive(Debug, Clone)]
pub struct Gntdev {
    file: std::rc::Rc<File>,
}

/// Why a grant copy failed.
#[derive(Debug)]
pub enum GrantCopyError {
    /// The ioctl itself failed.
    Io(io::Error),
    /// Xen's `GNTST_*` status for the segment.
    Status(i16),
}

impl Gntdev {
    pub fn open() -> io::Result<Gntdev> {
        Ok(Gntdev { file: std::rc::Rc::new(open_rw("/dev/xen/gntdev")?) })
    }

    /// Maps grants `refs` of `domid` contiguously, read-write.
    pub fn map(&self, domid: u16, refs: &[u32]) -> io::Result<GrantMapping> {
        if refs.is_empty() || refs.len() > GNTDEV_MAX_MAP {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "1 to 16 grant references"));
        }
        let mut op = GntdevMapGrantRef { count: refs.len() as u32, pad: 0, index: 0, refs: [GntdevGrantRef::default(); GNTDEV_MAX_MAP] };
        for (slot, &r) in op.refs.iter_mut().zip(refs) {
            *slot = GntdevGrantRef { domid: u32::from(domid), gref: r };
        }
        let fd = self.file.as_raw_fd();
        ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &mut op)?;
        let len = refs.len() * PAGE_SIZE;
        let unmap = |e: io::Error| {
            let mut u = GntdevUnmapGrantRef { index: op.index, count: refs.len() as u32, pad: 0 };
            let _ = ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut u);
            e
        };
        let offset = i64::try_from(op.index).map_err(|_| unmap(io::Error::new(io::ErrorKind::InvalidData, "gntdev index")))?;
        let m = Mapping::mmap(fd, len, offset as u64).map_err(unmap)?;
        Ok(GrantMapping { map: Some(m), index: op.index, count: refs.len() as u32, dev: self.clone() })
    }

    fn copy(&self, mut seg: GntdevGrantCopySegment) -> Result<(), GrantCopyError> {
        let mut op = GntdevGrantCopy { count: 1, pad: 0, segments: &mut seg };
        ioctl(self.file.as_raw_fd(), IOCTL_GNTDEV_GRANT_COPY, &mut op).map_err(GrantCopyError::Io)?;
        match seg.status {
            0 => Ok(()),
            s => Err(GrantCopyError::Status(s)),
        }
    }

    /// Batched grant copies: one `IOCTL_GNTDEV_GRANT_COPY` with `count` = `segs.len()`
    /// (the kernel walks them in batches of its own). Segment `i` moves `segs[i].len`
    /// bytes between its grant (`domid`'s `gref` at `offset`) and the next `len` bytes of
    /// `local`, the segments back to back. `status[i]` gets segment `i`'s `GNTST_*`
    /// (0 = copied); a segment running past its frame or past `local` gets
    /// `GNTST_bad_copy_arg` and is not submitted. `Err` only when the ioctl itself
    /// failed (then no status is meaningful).
    fn copy_batch(&self, domid: u16, segs: &[CopySeg], local: *mut u8, local_len: usize, to_grant: bool, status: &mut [i16]) -> io::Result<()> {
        assert_eq!(segs.len(), status.len(), "one status per segment");
        let mut ops: Vec<GntdevGrantCopySegment> = Vec::with_capacity(segs.len());
        let mut which: Vec<usize> = Vec::with_capacity(segs.len());
        let mut at = 0usize;
        for (i, s) in segs.iter().enumerate() {
            let len = usize::from(s.len);
            let end = at.checked_add(len);
            let fits = copy_args(usize::from(s.offset), len).is_ok() && end.is_some_and(|e| e <= local_len);
            if !fits {
                status[i] = GNTST_BAD_COPY_ARG;
                at = end.unwrap_or(usize::MAX);
                continue;
            }
            // `at + len <= local_len`: the address stays inside `local`'s allocation.
            let ptr = local.wrapping_add(at) as u64;
            let theirs = foreign(s.gref, s.offset, domid);
            ops.push(if to_grant {
                GntdevGrantCopySegment { source: ptr, dest: theirs, len: s.len, flags: GNTCOPY_DEST_GREF, status: 0, pad: 0 }
            } else {
                GntdevGrantCopySegment { source: theirs, dest: ptr, len: s.len, flags: GNTCOPY_SOURCE_GREF, status: 0, pad: 0 }
            });
            which.push(i);
            at += len;
        }
        if ops.is_empty() {
            return Ok(());
        }
        let mut op = GntdevGrantCopy { count: ops.len() as u32, pad: 0, segments: ops.as_mut_ptr() };
        // The kernel reads `count` segments at `segments` and writes through the local
        // pointers, which lie within `local` (checked above; callers pass a live, exclusively
        // borrowed buffer for writes and a live shared one for reads).
        ioctl(self.file.as_raw_fd(), IOCTL_GNTDEV_GRANT_COPY, &mut op)?;
        for (o, &i) in ops.iter().zip(&which) {
            status[i] = o.status;
        }
        Ok(())
    }

    /// Copies the segments' bytes out of `domid`'s grants into `buf`, back to back, with
    /// one ioctl; see [`Gntdev::copy_batch`] for `status`.
    pub fn copy_from_grants(&self, domid: u16, segs: &[CopySeg], buf: &mut [u8], status: &mut [i16]) -> io::Result<()> {
        self.copy_batch(domid, segs, buf.as_mut_ptr(), buf.len(), false, status)
    }

    /// Copies `data`, back to back, into the segments of `domid`'s grants with one ioctl.
    pub fn copy_to_grants(&self, domid: u16, segs: &[CopySeg], data: &[u8], status: &mut [i16]) -> io::Result<()> {
        // The kernel only reads the local side of a copy to a grant.
        self.copy_batch(domid, segs, data.as_ptr().cast_mut(), data.len(), true, status)
    }

    /// Copies `buf.len()` (at most a page, within it) bytes from `offset` of grant `gref`
    /// of `domid` into `buf`.
    pub fn copy_from_grant(&self, domid: u16, gref: u32, offset: usize, buf: &mut [u8]) -> Result<(), GrantCopyError> {
        let (off, len) = copy_args(offset, buf.len())?;
        self.copy(GntdevGrantCopySegment {
            source: foreign(gref, off, domid),
            dest: buf.as_mut_ptr() as u64,
            len,
            flags: GNTCOPY_SOURCE_GREF,
            status: 0,
            pad: 0,
        })
    }

    /// Copies `data` (at most a page, within it) to `offset` of grant `gref` of `domid`.
    pub fn copy_to_grant(&self, domid: u16, gref: u32, offset: usize, data: &[u8]) -> Result<(), GrantCopyError> {
        let (off, len) = copy_args(offset, data.len())?;
        self.copy(GntdevGrantCopySegment {
            source: data.as_ptr() as u64,
            dest: foreign(gref, off, domid),
            len,
            flags: GNTCOPY_DEST_GREF,
            status: 0,
            pad: 0,
        })
    }
}

/// One segment of a batched grant copy: `len` bytes at `offset` of grant `gref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySeg {
    pub gref: u32,
    pub offset: u16,
    pub len: u16,
}

/// `GNTST_bad_copy_arg`.
const GNTST_BAD_COPY_ARG: i16 = -10;

fn copy_args(offset: usize, len: usize) -> Result<(u16, u16), GrantCopyError> {
    if offset.checked_add(len).is_none_or(|e| e > PAGE_SIZE) {
        return Err(GrantCopyError::Status(GNTST_BAD_COPY_ARG));
    }
    Ok((offset as u16, len as u16))
}

/// Grants of another domain mapped into this process; unmapped (munmap, then
/// `IOCTL_GNTDEV_UNMAP_GRANT_REF`) on drop.
#[derive(Debug)]
pub struct GrantMapping {
    map: Option<Mapping>,
    index: u64,
    count: u32,
    dev: Gntdev,
}

impl GrantMapping {
    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, Mapping::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies from `off` of the mapped grants into `buf` (bounds-checked; panics outside).
    pub fn copy_out(&self, off: usize, buf: &mut [u8]) {
        if let Some(m) = &self.map {
            m.copy_out(off, buf);
        }
    }

    /// Copies `data` to `off` of the mapped grants (bounds-checked; panics outside).
    pub fn copy_to(&self, off: usize, data: &[u8]) {
        if let Some(m) = &self.map {
            m.copy_to(off, data);
        }
    }
}

/// `len` bytes at `offset` of a [`GrantMapping`]: one part of a vectored transfer
/// between a file and persistently mapped grants.
#[derive(Debug, Clone, Copy)]
pub struct MappedPart<'a> {
    pub map: &'a GrantMapping,
    pub offset: usize,
    pub len: usize,
}

/// Scratch `iovec`s for [`pread_into_grants`] / [`pwrite_from_grants`], kept between
/// calls so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct IoVecs(Vec<libc::iovec>);

impl IoVecs {
    /// Fills the list from `parts` (each bounds-checked against its mapping), which must
    /// add up to `len` bytes.
    fn fill<'a>(&mut self, parts: impl IntoIterator<Item = MappedPart<'a>>, len: usize) -> io::Result<()> {
        self.0.clear();
        let mut total = 0usize;
        for p in parts {
            let m = p.map.map.as_ref().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unmapped grant"))?;
            if p.offset.checked_add(p.len).is_none_or(|e| e > m.len) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "part outside its mapping"));
            }
            // In bounds (checked just above): the address stays inside the mapping.
            self.0.push(libc::iovec { iov_base: m.ptr.wrapping_add(p.offset).cast(), iov_len: p.len });
            total += p.len;
        }
        if self.0.len() > 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "more than IOV_MAX parts"));
        }
        if total != len {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "parts do not add up to the length"));
        }
        Ok(())
    }

    /// Drops the first `n` bytes of the list (after a short transfer).
    fn advance(&mut self, mut n: usize) {
        let mut skip = 0;
        for v in &mut self.0 {
            if n < v.iov_len {
                v.iov_base = v.iov_base.cast::<u8>().wrapping_add(n).cast();
                v.iov_len -= n;
                break;
            }
            n -= v.iov_len;
            skip += 1;
        }
        self.0.drain(..skip);
    }

    /// `preadv` (`read` false: `pwritev`) of the whole list at `pos`, looping over short
    /// transfers; end of file first is an error.
    fn transfer(&mut self, file: &File, mut pos: u64, total: usize, read: bool) -> io::Result<()> {
        let mut left = total;
        while left > 0 {
            let off = libc::off_t::try_from(pos).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
            let cnt = self.0.len() as libc::c_int;
            // SAFETY: every iovec lies within a grant mapping (bounds checked in `fill`,
            // advanced within them by `advance`); `transfer` runs only right after `fill`
            // inside `pread_into_grants`/`pwrite_from_grants`, whose `parts` borrow those
            // mappings beyond the call, so they stay mapped. The kernel writes (preadv) or
            // reads (pwritev) only those bytes. No Rust reference to the shared bytes exists; a peer writing them
            // concurrently can only make the data arbitrary.
            let r = unsafe {
                if read {
                    libc::preadv(file.as_raw_fd(), self.0.as_ptr(), cnt, off)
                } else {
                    libc::pwritev(file.as_raw_fd(), self.0.as_ptr(), cnt, off)
                }
            };
            match r {
                r if r < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                r => {
                    let n = (r as usize).min(left);
                    left -= n;
                    pos += n as u64;
                    self.advance(n);
                }
            }
        }
        Ok(())
    }
}

/// Reads `len` bytes of `file` at `pos` straight into the mapped grants of `parts` (back
/// to back, `len` bytes in all), one `preadv` (more only after a short read). Fails on end
/// of file.
pub fn pread_into_grants<'a>(file: &File, pos: u64, len: usize, parts: impl IntoIterator<Item = MappedPart<'a>>, iov: &mut IoVecs) -> io::Result<()> {
    // `parts` borrows its mappings for 'a, beyond this call: they stay mapped throughout.
    iov.fill(parts, len)?;
    let r = iov.transfer(file, pos, len, true);
    fence(Ordering::Release);
    r
}

/// Writes the mapped grants of `parts` (back to back, `len` bytes in all) to `file` at
/// `pos`, one `pwritev`.
pub fn pwrite_from_grants<'a>(file: &File, pos: u64, len: usize, parts: impl IntoIterator<Item = MappedPart<'a>>, iov: &mut IoVecs) -> io::Result<()> {
    fence(Ordering::Acquire);
    iov.fill(parts, len)?;
    iov.transfer(file, pos, len, false)
}

impl Drop for GrantMapping {
    fn drop(&mut self) {
        drop(self.map.take());
        let mut u = GntdevUnmapGrantRef { index: self.index, count: self.count, pad: 0 };
        let _ = ioctl(self.dev.file.as_raw_fd(), IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut u);
    }
}

/// A blkif back ring over granted pages: the ring is dropped before the mapping.
#[derive(Debug)]
pub struct MappedBlkRing {
    ring: xen_ring::BackRing<xen_abi::blkif::BlkifRequest, xen_abi::blkif::BlkifResponse>,
    // Declared after `ring`: dropped (unmapped) after it.
    _map: GrantMapping,
}

impl MappedBlkRing {
    /// Attaches a back ring (index 0) to the front-end's initialised ring pages.
    pub fn new(map: GrantMapping) -> Result<MappedBlkRing, xen_ring::RingError> {
        let m = map.map.as_ref().expect("mapped until drop");
        // SAFETY: `m` maps `m.len()` readable and writable bytes that stay mapped until
        // `_map` drops, which happens after `ring` (field order) — the ring is never used
        // after that, since it is private to this struct. Only the front-end (by design)
        // and this ring access the pages.
        let ring = unsafe { xen_ring::BackRing::init(m.ptr, m.len) }?;
        Ok(MappedBlkRing { ring, _map: map })
    }

    pub fn ring(&mut self) -> &mut xen_ring::BackRing<xen_abi::blkif::BlkifRequest, xen_abi::blkif::BlkifResponse> {
        &mut self.ring
    }
}

/// `BLKGETSIZE64`: `_IOR(0x12, 114, size_t)`.
const BLKGETSIZE64: libc::c_ulong = (2 << 30) | ((size_of::<u64>() as libc::c_ulong) << 16) | (0x12 << 8) | 114;

/// A block device's size in bytes and its logical and physical sector sizes (for a
/// block device `metadata().len()` is 0). Fails (ENOTTY) on anything else.
pub fn block_device_geometry(file: &File) -> io::Result<(u64, u32, u32)> {
    let fd = file.as_raw_fd();
    let mut bytes: u64 = 0;
    ioctl(fd, BLKGETSIZE64, &mut bytes)?;
    // BLKSSZGET and BLKPBSZGET: the logical and physical sector sizes.
    let lbs = rustix::fs::ioctl_blksszget(file)?;
    let pbs = rustix::fs::ioctl_blkpbszget(file)?;
    let lbs = Some(lbs).filter(|s| s.is_power_of_two() && *s >= 512).unwrap_or(512);
    let pbs = Some(pbs).filter(|s| s.is_power_of_two() && *s >= lbs).unwrap_or(lbs);
    Ok((bytes, lbs, pbs))
}

/// Deallocates `len` bytes at `offset` of `file` (`fallocate` punch-hole, keeping the
/// size): the range reads back as zeros.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "range too large"));
    };
    use rustix::fs::{fallocate, FallocateFlags};
    Ok(fallocate(file, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, off as u64, len as u64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Gntdev` over `/dev/null`: every real ioctl fails (ENOTTY), so only the argument
    /// checks made before the ioctl can succeed.
    fn null_gntdev() -> Gntdev {
        Gntdev { file: std::rc::Rc::new(File::open("/dev/null").unwrap()) }
    }

    #[test]
    fn batched_copy_checks_segments_before_the_ioctl() {
        let g = null_gntdev();
        let mut buf = [0u8; 8192];
        // Past its frame, past the local buffer: refused one by one, no ioctl made.
        let segs = [CopySeg { gref: 8, offset: 4000, len: 512 }, CopySeg { gref: 9, offset: 0, len: 4096 }];
        let mut st = [0i16; 2];
        g.copy_from_grants(1, &segs, &mut buf[..4096 + 100], &mut st).unwrap();
        assert_eq!(st, [GNTST_BAD_COPY_ARG, GNTST_BAD_COPY_ARG]);
        let mut st = [0i16; 2];
        g.copy_to_grants(1, &segs, &buf[..100], &mut st).unwrap();
        assert_eq!(st, [GNTST_BAD_COPY_ARG, GNTST_BAD_COPY_ARG]);
        // Empty batch: nothing to do.
        g.copy_from_grants(1, &[], &mut buf, &mut []).unwrap();
        // A valid segment reaches the ioctl (which /dev/null refuses).
        let ok = [CopySeg { gref: 8, offset: 0, len: 4096 }, CopySeg { gref: 9, offset: 4095, len: 2 }];
        let mut st = [0i16; 2];
        assert!(g.copy_from_grants(1, &ok, &mut buf, &mut st).is_err());
        assert_eq!(st[1], GNTST_BAD_COPY_ARG);
    }

    /// A "grant mapping" of shared anonymous memory (`/dev/zero`), for the vectored I/O.
    fn fake_mapping(pages: usize) -> GrantMapping {
        let zero = open_rw("/dev/zero").unwrap();
        let m = Mapping::mmap(zero.as_raw_fd(), pages * PAGE_SIZE, 0).unwrap();
        GrantMapping { map: Some(m), index: 0, count: pages as u32, dev: null_gntdev() }
    }

    #[test]
    fn vectored_io_between_a_file_and_mapped_grants() {
        let p = std::env::temp_dir().join(format!("sys-iov-{}.img", std::process::id()));
        let image: Vec<u8> = (0..4 * PAGE_SIZE).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&p, &image).unwrap();
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        let (a, b) = (fake_mapping(1), fake_mapping(2));
        let mut iov = IoVecs::default();
        let parts = [
            MappedPart { map: &b, offset: PAGE_SIZE + 512, len: 1024 },
            MappedPart { map: &a, offset: 0, len: PAGE_SIZE },
        ];
        pread_into_grants(&f, 512, 1024 + PAGE_SIZE, parts, &mut iov).unwrap();
        let mut got = vec![0u8; 1024];
        b.copy_out(PAGE_SIZE + 512, &mut got);
        assert_eq!(got, image[512..1536]);
        let mut got = vec![0u8; PAGE_SIZE];
        a.copy_out(0, &mut got);
        assert_eq!(got, image[1536..1536 + PAGE_SIZE]);
        // Back out, elsewhere in the file.
        pwrite_from_grants(&f, 3 * PAGE_SIZE as u64 - 1024, 1024 + PAGE_SIZE, parts, &mut iov).unwrap();
        let after = std::fs::read(&p).unwrap();
        assert_eq!(after[3 * PAGE_SIZE - 1024..], image[512..1536 + PAGE_SIZE]);
        // Refused: a part outside its mapping, parts not adding up, reading past the end.
        let outside = [MappedPart { map: &a, offset: PAGE_SIZE - 512, len: 1024 }];
        assert!(pread_into_grants(&f, 0, 1024, outside, &mut iov).is_err());
        assert!(pread_into_grants(&f, 0, 4096, parts, &mut iov).is_err());
        let eof = [MappedPart { map: &a, offset: 0, len: PAGE_SIZE }];
        let len = after.len() as u64;
        assert_eq!(pread_into_grants(&f, len - 512, PAGE_SIZE, eof, &mut iov).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn iovecs_advance_over_a_short_transfer() {
        let a = fake_mapping(1);
        let mut iov = IoVecs::default();
        let parts = [MappedPart { map: &a, offset: 0, len: 100 }, MappedPart { map: &a, offset: 200, len: 300 }];
        iov.fill(parts, 400).unwrap();
        iov.advance(150);
        assert_eq!(iov.0.len(), 1);
        assert_eq!(iov.0[0].iov_len, 250);
        assert_eq!(iov.0[0].iov_base as usize, a.map.as_ref().unwrap().ptr as usize + 250);
        iov.advance(250);
        assert!(iov.0.is_empty());
    }

    #[test]
    fn block_ioctl_numbers() {
        // As <linux/fs.h> defines them on x86_64.
        assert_eq!(BLKGETSIZE64, 0x8008_1272);
        // Not a block device: refused, not misread.
        let f = File::open("/dev/null").unwrap();
        assert!(block_device_geometry(&f).is_err());
    }
}
