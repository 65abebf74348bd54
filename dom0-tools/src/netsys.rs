//! The network back-end's Linux devices, through ioctl and mmap (with `sys`, the only
//! `unsafe` of dom0-tools): `/dev/xen/gntdev` for the two rings and batched grant
//! copies, `/dev/net/tun` for the TAP device, and the interface ioctls (flags, MAC,
//! bridge port).

use netback_core::{CopyDir, CopySeg, GrantError};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use xen_abi::netif::{NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse};
use xen_ring::{BackRing, RingError};

const PAGE_SIZE: usize = 4096;

/// `_IOC(dir, ty, nr, size)`.
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> libc::c_ulong {
    ((dir as libc::c_ulong) << 30) | ((size as libc::c_ulong) << 16) | ((ty as libc::c_ulong) << 8) | nr as libc::c_ulong
}
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;

/// `ioctl(fd, req, arg)`.
fn ioctl<T>(fd: RawFd, req: libc::c_ulong, arg: *mut T) -> io::Result<i32> {
    // SAFETY: every caller passes a pointer to a live `#[repr(C)]` value of the layout the
    // request number expects (or an integer for by-value requests, see `ioctl_val`); the
    // kernel accesses only that memory, during the call.
    let r = unsafe { libc::ioctl(fd, req as libc::Ioctl, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `ioctl(fd, req, value)` for requests that take an integer argument.
fn ioctl_val(fd: RawFd, req: libc::c_ulong, v: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the request takes its argument by value (TUNSETOFFLOAD): no memory passed.
    let r = unsafe { libc::ioctl(fd, req as libc::Ioctl, v) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

// ---------------------------------------------------------------- /dev/xen/gntdev

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GrantRefArg {
    domid: u32,
    gref: u32,
}

/// `struct ioctl_gntdev_map_grant_ref` with one reference.
#[repr(C)]
struct MapGrantRef {
    count: u32,
    pad: u32,
    index: u64,
    refs: [GrantRefArg; 1],
}

/// `struct ioctl_gntdev_unmap_grant_ref`.
#[repr(C)]
struct UnmapGrantRef {
    index: u64,
    count: u32,
    pad: u32,
}

/// `struct gntdev_grant_copy_segment`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CopySegment {
    source: u64,
    dest: u64,
    len: u16,
    flags: u16,
    status: i16,
    pad: u16,
}

/// `struct ioctl_gntdev_grant_copy`.
#[repr(C)]
struct GrantCopy {
    count: u32,
    pad: u32,
    segments: *mut CopySegment,
}

const IOCTL_GNTDEV_MAP_GRANT_REF: libc::c_ulong = ioc(IOC_NONE, b'G', 0, size_of::<MapGrantRef>());
const IOCTL_GNTDEV_UNMAP_GRANT_REF: libc::c_ulong = ioc(IOC_NONE, b'G', 1, size_of::<UnmapGrantRef>());
const IOCTL_GNTDEV_GRANT_COPY: libc::c_ulong = ioc(IOC_NONE, b'G', 8, size_of::<GrantCopy>());
const GNTCOPY_SOURCE_GREF: u16 = 1;
const GNTCOPY_DEST_GREF: u16 = 2;
/// Segments per `IOCTL_GNTDEV_GRANT_COPY` (a batch of packets' slots fit in one).
const COPY_BATCH: usize = 256;

/// A gntdev handle for one front-end domain: ring mappings and batched copies.
#[derive(Debug)]
pub struct NetGntdev {
    file: File,
    domid: u16,
    /// `IOCTL_GNTDEV_GRANT_COPY` calls made.
    copies: std::cell::Cell<u64>,
}

/// One page of another domain mapped here; unmapped on drop.
#[derive(Debug)]
pub struct PageMapping {
    ptr: *mut u8,
    index: u64,
    fd: RawFd,
}

impl Drop for PageMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a PAGE_SIZE mapping this value created and still owns.
        unsafe { libc::munmap(self.ptr.cast(), PAGE_SIZE) };
        let mut u = UnmapGrantRef { index: self.index, count: 1, pad: 0 };
        let _ = ioctl(self.fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut u);
    }
}

fn foreign(gref: u32, offset: u16, domid: u16) -> u64 {
    u64::from(gref) | (u64::from(offset) << 32) | (u64::from(domid) << 48)
}


impl NetGntdev {
    pub fn open(domid: u16) -> io::Result<NetGntdev> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/xen/gntdev").map_err(|e| io::Error::new(e.kind(), format!("/dev/xen/gntdev: {e}")))?;
        Ok(NetGntdev { file, domid, copies: std::cell::Cell::new(0) })
    }

    /// Maps the front-end's page granted as `gref`, read-write.
    pub fn map(&self, gref: u32) -> io::Result<PageMapping> {
        let fd = self.file.as_raw_fd();
        let mut op = MapGrantRef { count: 1, pad: 0, index: 0, refs: [GrantRefArg { domid: u32::from(self.domid), gref }] };
        ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &mut op)?;
        let unmap = |e: io::Error| {
            let mut u = UnmapGrantRef { index: op.index, count: 1, pad: 0 };
            let _ = ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut u);
            e
        };
        let offset = libc::off_t::try_from(op.index).map_err(|_| unmap(io::Error::new(io::ErrorKind::InvalidData, "gntdev index")))?;
        // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL) of the grant
        // just mapped at `offset`; the result is checked, and owned by the returned
        // value, which unmaps it on drop.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, offset) };
        if p == libc::MAP_FAILED {
            return Err(unmap(io::Error::last_os_error()));
        }
        Ok(PageMapping { ptr: p.cast(), index: op.index, fd })
    }

    /// `IOCTL_GNTDEV_GRANT_COPY` calls made so far.
    pub fn copy_ioctls(&self) -> u64 {
        self.copies.get()
    }

    /// Copies every segment between the front-end's grants and `local`, setting each
    /// segment's status (`GNTTABOP_copy` in batches).
    pub fn copy(&self, dir: CopyDir, segs: &mut [CopySeg], local: &mut [u8]) {
        let base = local.as_mut_ptr() as u64;
        for chunk in segs.chunks_mut(COPY_BATCH) {
            let mut raw = [CopySegment::default(); COPY_BATCH];
            let mut n = 0;
            let mut idx = [usize::MAX; COPY_BATCH];
            for (i, s) in chunk.iter_mut().enumerate() {
                let (off, len) = (usize::from(s.offset), usize::from(s.len));
                if off + len > PAGE_SIZE || s.local.checked_add(len).is_none_or(|e| e > local.len()) {
                    s.status = Err(GrantError::OutOfBounds);
                    continue;
                }
                let theirs = foreign(s.gref.0, s.offset, self.domid);
                let ours = base + s.local as u64;
                raw[n] = match dir {
                    CopyDir::FromGrant => CopySegment { source: theirs, dest: ours, len: s.len, flags: GNTCOPY_SOURCE_GREF, ..Default::default() },
                    CopyDir::ToGrant => CopySegment { source: ours, dest: theirs, len: s.len, flags: GNTCOPY_DEST_GREF, ..Default::default() },
                };
                idx[n] = i;
                n += 1;
            }
            if n == 0 {
                continue;
            }
            let mut op = GrantCopy { count: n as u32, pad: 0, segments: raw.as_mut_ptr() };
            // `raw` and `local` (which the segments point into, in bounds as checked
            // above) stay alive and unaliased across the call.
            let r = ioctl(self.file.as_raw_fd(), IOCTL_GNTDEV_GRANT_COPY, &mut op);
            self.copies.set(self.copies.get() + 1);
            for (k, &i) in idx[..n].iter().enumerate() {
                chunk[i].status = match (&r, raw[k].status) {
                    (Err(_), _) => Err(GrantError::Other(-1)),
                    (Ok(_), 0) => Ok(()),
                    (Ok(_), s) => Err(GrantError::from_status(s)),
                };
            }
        }
    }
}

/// The transmit and receive rings of one interface over granted pages; the rings are
/// dropped before the mappings.
#[derive(Debug)]
pub struct MappedNetRings {
    pub tx: BackRing<NetifTxRequest, NetifTxResponse>,
    pub rx: BackRing<NetifRxRequest, NetifRxResponse>,
    // Declared after the rings: dropped (unmapped) after them.
    _tx_map: PageMapping,
    _rx_map: PageMapping,
}

impl MappedNetRings {
    /// Attaches back rings (index 0) to the front-end's initialised ring pages.
    pub fn new(tx_map: PageMapping, rx_map: PageMapping) -> Result<MappedNetRings, RingError> {
        // SAFETY: each mapping is PAGE_SIZE readable and writable bytes that stay mapped
        // until the `_*_map` fields drop, after the rings (field order); the rings are
        // private to this struct, so never used after that. Only the front-end (by
        // design) and these rings access the pages.
        let tx = unsafe { BackRing::init(tx_map.ptr, PAGE_SIZE) }?;
        // SAFETY: as above.
        let rx = unsafe { BackRing::init(rx_map.ptr, PAGE_SIZE) }?;
        Ok(MappedNetRings { tx, rx, _tx_map: tx_map, _rx_map: rx_map })
    }
}

// ---------------------------------------------------------------- TAP and interfaces

const IFNAMSIZ: usize = 16;

/// `struct ifreq`: the name and a 24-byte union.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("interface name `{name}`")));
        }
        let mut r = IfReq { name: [0; IFNAMSIZ], data: [0; 24] };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(r)
    }
}

const TUNSETIFF: libc::c_ulong = ioc(IOC_WRITE, b'T', 202, size_of::<libc::c_int>());
const TUNSETOFFLOAD: libc::c_ulong = ioc(IOC_WRITE, b'T', 208, size_of::<libc::c_uint>());
const IFF_TAP: u16 = 0x0002;
const IFF_NO_PI: u16 = 0x1000;
const IFF_VNET_HDR: u16 = 0x4000;
/// `TUN_F_CSUM`: the TAP may hand over frames with partial checksums.
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: the TAP may hand over TCPv4 GSO frames (with `TUN_F_CSUM`).
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: the TAP may hand over TCPv6 GSO frames (with `TUN_F_CSUM`).
pub const TUN_F_TSO6: u32 = 0x04;
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
const SIOCSIFHWADDR: libc::c_ulong = 0x8924;
const SIOCGIFINDEX: libc::c_ulong = 0x8933;
const SIOCBRADDIF: libc::c_ulong = 0x89a2;
const IFF_UP: u16 = 0x1;
const ARPHRD_ETHER: u16 = 1;

/// A TAP device (`IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`), non-blocking. The interface
/// disappears when this closes (it is not made persistent).
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    pub fn create(name: &str) -> io::Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        let mut r = IfReq::new(name)?;
        r.data[..2].copy_from_slice(&(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR).to_ne_bytes());
        ioctl(file.as_raw_fd(), TUNSETIFF, &mut r).map_err(|e| io::Error::new(e.kind(), format!("TUNSETIFF {name}: {e}")))?;
        Ok(Tap { file, name: name.to_string() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// `TUNSETOFFLOAD`: which offloads the kernel may use in frames it hands over.
    pub fn set_offload(&self, flags: u32) -> io::Result<()> {
        ioctl_val(self.fd(), TUNSETOFFLOAD, libc::c_ulong::from(flags)).map(|_| ())
    }

    /// Reads one frame (with its virtio-net header); `Ok(None)` when none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        use std::io::Read;
        match (&self.file).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes one frame (with its virtio-net header).
    pub fn write(&self, frame: &[u8]) -> io::Result<()> {
        use std::io::Write;
        (&self.file).write(frame).map(|_| ())
    }
}

/// A datagram socket for interface ioctls.
fn ctl_socket() -> io::Result<OwnedFd> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    Ok(socket_with(AddressFamily::INET, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?)
}

/// Brings interface `name` up.
pub fn link_up(name: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    ioctl(s.as_raw_fd(), SIOCGIFFLAGS, &mut r)?;
    let flags = u16::from_ne_bytes([r.data[0], r.data[1]]) | IFF_UP;
    r.data[..2].copy_from_slice(&flags.to_ne_bytes());
    ioctl(s.as_raw_fd(), SIOCSIFFLAGS, &mut r).map(|_| ())
}

/// Sets interface `name`'s MAC address.
pub fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(name)?;
    // struct sockaddr: sa_family, then the address bytes.
    r.data[..2].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
    r.data[2..8].copy_from_slice(&mac);
    ioctl(s.as_raw_fd(), SIOCSIFHWADDR, &mut r).map(|_| ())
}

/// Adds interface `port` to bridge `bridge` (`SIOCBRADDIF`).
pub fn bridge_add(bridge: &str, port: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut r = IfReq::new(port)?;
    ioctl(s.as_raw_fd(), SIOCGIFINDEX, &mut r)?;
    let index = i32::from_ne_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]);
    let mut b = IfReq::new(bridge)?;
    b.data[..4].copy_from_slice(&index.to_ne_bytes());
    ioctl(s.as_raw_fd(), SIOCBRADDIF, &mut b).map(|_| ())
}

/// Does a bridge called `name` exist?
pub fn bridge_exists(name: &str) -> bool {
    !name.contains('/') && std::path::Path::new(&format!("/sys/class/net/{name}/bridge")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux() {
        // Values from Linux's uapi headers on x86_64.
        assert_eq!(TUNSETIFF, 0x4004_54ca);
        assert_eq!(TUNSETOFFLOAD, 0x4004_54d0);
        assert_eq!(IOCTL_GNTDEV_MAP_GRANT_REF, 0x0018_4700);
        assert_eq!(IOCTL_GNTDEV_UNMAP_GRANT_REF, 0x0010_4701);
        assert_eq!(IOCTL_GNTDEV_GRANT_COPY, 0x0010_4708);
        assert_eq!(size_of::<CopySegment>(), 24);
        assert_eq!(size_of::<IfReq>(), 40);
    }

    #[test]
    fn interface_names() {
        assert!(IfReq::new("vif3.0").is_ok());
        assert!(IfReq::new("").is_err());
        assert!(IfReq::new("a-very-long-name").is_err());
        assert!(!bridge_exists("../x"));
    }
}
