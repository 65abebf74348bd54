//! Support code for checking `xen-ring` against the real `io/ring.h` macros:
//!
//! * [`payload`]: deterministic blkif request/response contents derived from the request
//!   id (the C side in `csrc/ring_common.h` derives the same bytes);
//! * [`sys`]: a memfd-backed shared page, eventfds standing in for event channels, CPU
//!   pinning;
//! * [`cbench`]: FFI to the C ring.h front/back ends used by `ring-bench`;
//! * [`C_PEER`]: path of the `ring-c-peer` executable built by `build.rs`.

/// Path of the `ring-c-peer` executable (C ring.h peer process) built by `build.rs`.
pub const C_PEER: &str = env!("RING_C_PEER");

/// The size of the shared ring page.
pub const PAGE_SIZE: usize = 4096;

pub mod payload {
    //! Deterministic blkif contents; must match `make_request`/`make_response` in
    //! `csrc/ring_common.h`.
    use xen_abi::blkif::{BlkifRequest, BlkifRequestSegment, BlkifResponse};

    /// The request with id `id`.
    pub fn make_request(id: u64) -> BlkifRequest {
        let mut seg = [BlkifRequestSegment::default(); 11];
        for (k, s) in seg.iter_mut().enumerate() {
            let k64 = k as u64;
            s.gref = (id as u32) ^ (k as u32).wrapping_mul(0x0101_0101);
            s.first_sect = (id.wrapping_add(k64) & 7) as u8;
            s.last_sect = ((id.wrapping_add(k64) >> 3) & 7) as u8;
        }
        BlkifRequest {
            operation: (id % 7) as u8,
            nr_segments: (id % 12) as u8,
            handle: ((id >> 7) as u16) ^ 0x5a5a,
            _pad: [0; 4],
            id,
            sector_number: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            seg,
        }
    }

    /// Does `req` carry exactly the fields of request `id`? (Padding is not compared: the
    /// C side leaves it unspecified.)
    pub fn check_request(id: u64, req: &BlkifRequest) -> bool {
        let e = make_request(id);
        req.operation == e.operation
            && req.nr_segments == e.nr_segments
            && req.handle == e.handle
            && req.id == e.id
            && req.sector_number == e.sector_number
            && req.seg.iter().zip(e.seg.iter()).all(|(a, b)| {
                a.gref == b.gref && a.first_sect == b.first_sect && a.last_sect == b.last_sect
            })
    }

    /// The response to request `id`.
    pub fn make_response(id: u64) -> BlkifResponse {
        BlkifResponse {
            id,
            operation: (id % 7) as u8,
            _pad0: 0,
            status: (id % 3) as i16 - 2,
            _pad1: [0; 4],
        }
    }

    /// Does `rsp` carry exactly the fields of the response to request `id`?
    pub fn check_response(id: u64, rsp: &BlkifResponse) -> bool {
        let e = make_response(id);
        rsp.id == e.id && rsp.operation == e.operation && rsp.status == e.status
    }
}

pub mod sys {
    //! Thin wrappers over the Linux calls the interop test and benchmark need.
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// A page of shared memory (memfd, `MAP_SHARED`): the "granted" ring page. The memfd
    /// is inheritable (no close-on-exec) so a child process can map it too.
    #[derive(Debug)]
    pub struct SharedPage {
        fd: OwnedFd,
        ptr: *mut u8,
        len: usize,
    }

    impl SharedPage {
        pub fn new(len: usize) -> io::Result<Self> {
            // SAFETY: the name is a valid NUL-terminated string; flags 0 (inheritable).
            let fd = check(unsafe { libc::memfd_create(c"xen-ring".as_ptr(), 0) })?;
            // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let size = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
            // SAFETY: plain syscall on a valid fd.
            check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
            // SAFETY: mapping a fresh shared region of `len` bytes of a valid fd; the kernel
            // picks the address.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(Self {
                fd,
                ptr: ptr.cast(),
                len,
            })
        }

        /// Start of the mapping (page aligned, `len` bytes, zero filled when created). Valid
        /// until `self` is dropped.
        pub fn as_ptr(&self) -> *mut u8 {
            self.ptr
        }

        pub fn len(&self) -> usize {
            self.len
        }

        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        pub fn fd(&self) -> RawFd {
            self.fd.as_raw_fd()
        }
    }

    impl Drop for SharedPage {
        fn drop(&mut self) {
            // SAFETY: `ptr`/`len` is the mapping created in `new`, unmapped exactly once;
            // callers must not use rings built on it afterwards (documented on `as_ptr`).
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    // SAFETY: the page is plain shared memory; all access goes through raw pointers handed
    // out by `as_ptr`, whose users synchronise through the ring protocol.
    unsafe impl Send for SharedPage {}
    // SAFETY: as above; `&SharedPage` only exposes the pointer value and the fd number.
    unsafe impl Sync for SharedPage {}

    /// An eventfd standing in for one direction of an event channel. Inheritable.
    #[derive(Debug)]
    pub struct EventFd(OwnedFd);

    impl EventFd {
        pub fn new() -> io::Result<Self> {
            // SAFETY: plain syscall; flags 0 (blocking, inheritable).
            let fd = check(unsafe { libc::eventfd(0, 0) })?;
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        pub fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        /// Sends one notification.
        pub fn notify(&self) -> io::Result<()> {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to a valid eventfd.
            let n = unsafe { libc::write(self.fd(), (&one as *const u64).cast(), 8) };
            if n != 8 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Waits for at least one notification (and consumes all pending ones). Returns
        /// `Ok(false)` on timeout.
        pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
            let mut p = libc::pollfd {
                fd: self.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            loop {
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, ms) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                if r == 0 {
                    return Ok(false);
                }
                break;
            }
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from a valid, readable eventfd.
            let n = unsafe { libc::read(self.fd(), (&mut v as *mut u64).cast(), 8) };
            if n != 8 {
                return Err(io::Error::last_os_error());
            }
            Ok(true)
        }
    }

    /// Pins the calling thread to `cpu` (sched_setaffinity).
    pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
        // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes a bit inside `set` (it bounds-checks `cpu`).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the given size.
        check(unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) })?;
        Ok(())
    }
}

pub mod cbench {
    //! The C ring.h front and back ends of `ring-bench` (csrc/bench.c).
    use std::sync::atomic::AtomicU32;

    /// Buckets of the latency histogram the C front end fills (`lat_bucket` in
    /// csrc/bench.c): exact below 64 ticks, then 32 per power of two.
    pub const HIST_BUCKETS: usize = 64 + 58 * 32;

    mod ffi {
        extern "C" {
            pub fn c_bench_init_blkif(page: *mut u8);
            pub fn c_bench_init_e64(page: *mut u8);
            pub fn c_bench_blkif_front(
                page: *mut u8,
                bytes: usize,
                batch: u32,
                stop: *const u32,
                done: *mut u32,
                hist: *mut u64,
            ) -> u64;
            pub fn c_bench_blkif_back(page: *mut u8, bytes: usize, batch: u32, done: *const u32);
            pub fn c_bench_e64_front(
                page: *mut u8,
                bytes: usize,
                batch: u32,
                stop: *const u32,
                done: *mut u32,
                hist: *mut u64,
            ) -> u64;
            pub fn c_bench_e64_back(page: *mut u8, bytes: usize, batch: u32, done: *const u32);
            pub fn c_steps_blkif(page: *mut u8, bytes: usize, batch: u32, rounds: u64) -> u64;
            pub fn c_steps_e64(page: *mut u8, bytes: usize, batch: u32, rounds: u64) -> u64;
        }
    }

    /// Which C ring the benchmark drives.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Entry {
        /// `blkif` (112-byte request, 16-byte response).
        Blkif,
        /// 64-byte request and response.
        E64,
    }

    /// `SHARED_RING_INIT` on `page`.
    ///
    /// # Safety
    /// `page` must be a valid, writable page (at least 4096 bytes) not in use by any
    /// running ring.
    pub unsafe fn init(entry: Entry, page: *mut u8) {
        match entry {
            // SAFETY: forwarded caller contract.
            Entry::Blkif => unsafe { ffi::c_bench_init_blkif(page) },
            // SAFETY: forwarded caller contract.
            Entry::E64 => unsafe { ffi::c_bench_init_e64(page) },
        }
    }

    /// Runs the C front end until `stop` is set, drains, sets `done`; returns completed
    /// request/response pairs, and adds each one's round trip (TSC ticks) to `hist`.
    ///
    /// # Safety
    /// `page` must be a valid `bytes`-byte ring initialised with [`init`], stay valid
    /// until return, and be driven by exactly one back end ([`back`]) on another thread.
    pub unsafe fn front(
        entry: Entry,
        page: *mut u8,
        bytes: usize,
        batch: u32,
        stop: &AtomicU32,
        done: &AtomicU32,
        hist: &mut [u64; HIST_BUCKETS],
    ) -> u64 {
        let h = hist.as_mut_ptr();
        match entry {
            // SAFETY: forwarded caller contract; the flags are live atomics accessed by C
            // with __atomic builtins only; `hist` has every bucket lat_bucket can return.
            Entry::Blkif => unsafe {
                ffi::c_bench_blkif_front(page, bytes, batch, stop.as_ptr(), done.as_ptr(), h)
            },
            // SAFETY: as above.
            Entry::E64 => unsafe {
                ffi::c_bench_e64_front(page, bytes, batch, stop.as_ptr(), done.as_ptr(), h)
            },
        }
    }

    /// Runs the C back end until `done` is set.
    ///
    /// # Safety
    /// As [`front`], for the back end.
    pub unsafe fn back(entry: Entry, page: *mut u8, bytes: usize, batch: u32, done: &AtomicU32) {
        match entry {
            // SAFETY: forwarded caller contract.
            Entry::Blkif => unsafe { ffi::c_bench_blkif_back(page, bytes, batch, done.as_ptr()) },
            // SAFETY: forwarded caller contract.
            Entry::E64 => unsafe { ffi::c_bench_e64_back(page, bytes, batch, done.as_ptr()) },
        }
    }

    /// Single-threaded: `rounds` times, the front writes and publishes `batch` requests,
    /// the back answers them all, the front consumes the responses (for instruction
    /// counts). Returns the messages completed.
    ///
    /// # Safety
    /// `page` must be a valid, writable `bytes`-byte ring page used by nothing else
    /// meanwhile; `batch` must not exceed the ring's slots.
    pub unsafe fn steps(entry: Entry, page: *mut u8, bytes: usize, batch: u32, rounds: u64) -> u64 {
        match entry {
            // SAFETY: forwarded caller contract.
            Entry::Blkif => unsafe { ffi::c_steps_blkif(page, bytes, batch, rounds) },
            // SAFETY: forwarded caller contract.
            Entry::E64 => unsafe { ffi::c_steps_e64(page, bytes, batch, rounds) },
        }
    }
}
