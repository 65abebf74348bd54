//! Xen's error numbers (`xen/errno.h`, `enum xen_errno`). Hypercalls return them
//! negated in `RAX`; [`Errno`] carries the positive value and converts to the
//! negative return value.

macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $val:literal;)*) => {
        $( $(#[$doc])* pub const $name: i32 = $val; )*

        impl Errno {
            $( $(#[$doc])* pub const $name: Errno = Errno($val); )*

            /// The symbolic name, e.g. `"ENOSYS"` (for aliases, the first name).
            // The aliases (EWOULDBLOCK, EDEADLOCK) come after their originals, so the
            // first arm wins.
            #[allow(unreachable_patterns)]
            pub const fn name(self) -> Option<&'static str> {
                match self.0 { $($val => Some(stringify!($name)),)* _ => None }
            }

            /// Looks a symbolic name up, e.g. `"ENOENT"` -> `ENOENT`.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name { $(stringify!($name) => Some(Errno($val)),)* _ => None }
            }
        }
    };
}

/// A Xen errno value (positive). `Errno::ENOSYS.neg()` is what a hypercall returns.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

errnos! {
    /// `XEN_EPERM`: operation not permitted.
    EPERM = 1;
    /// `XEN_ENOENT`: no such file or directory.
    ENOENT = 2;
    /// `XEN_ESRCH`: no such process.
    ESRCH = 3;
    /// `XEN_EINTR`: interrupted system call (Xen-internal only, never exposed to guests).
    EINTR = 4;
    /// `XEN_EIO`: I/O error.
    EIO = 5;
    /// `XEN_ENXIO`: no such device or address.
    ENXIO = 6;
    /// `XEN_E2BIG`: argument list too long.
    E2BIG = 7;
    /// `XEN_ENOEXEC`: exec format error.
    ENOEXEC = 8;
    /// `XEN_EBADF`: bad file number.
    EBADF = 9;
    /// `XEN_ECHILD`: no child processes.
    ECHILD = 10;
    /// `XEN_EAGAIN`: try again.
    EAGAIN = 11;
    /// `XEN_EWOULDBLOCK`: alias of `EAGAIN`.
    EWOULDBLOCK = 11;
    /// `XEN_ENOMEM`: out of memory.
    ENOMEM = 12;
    /// `XEN_EACCES`: permission denied.
    EACCES = 13;
    /// `XEN_EFAULT`: bad address.
    EFAULT = 14;
    /// `XEN_EBUSY`: device or resource busy.
    EBUSY = 16;
    /// `XEN_EEXIST`: file exists.
    EEXIST = 17;
    /// `XEN_EXDEV`: cross-device link.
    EXDEV = 18;
    /// `XEN_ENODEV`: no such device.
    ENODEV = 19;
    /// `XEN_ENOTDIR`: not a directory.
    ENOTDIR = 20;
    /// `XEN_EISDIR`: is a directory.
    EISDIR = 21;
    /// `XEN_EINVAL`: invalid argument.
    EINVAL = 22;
    /// `XEN_ENFILE`: file table overflow.
    ENFILE = 23;
    /// `XEN_EMFILE`: too many open files.
    EMFILE = 24;
    /// `XEN_ENOSPC`: no space left on device.
    ENOSPC = 28;
    /// `XEN_EROFS`: read-only file system.
    EROFS = 30;
    /// `XEN_EMLINK`: too many links.
    EMLINK = 31;
    /// `XEN_EDOM`: math argument out of domain of func.
    EDOM = 33;
    /// `XEN_ERANGE`: math result not representable.
    ERANGE = 34;
    /// `XEN_EDEADLK`: resource deadlock would occur.
    EDEADLK = 35;
    /// `XEN_EDEADLOCK`: alias of `EDEADLK`.
    EDEADLOCK = 35;
    /// `XEN_ENAMETOOLONG`: file name too long.
    ENAMETOOLONG = 36;
    /// `XEN_ENOLCK`: no record locks available.
    ENOLCK = 37;
    /// `XEN_ENOSYS`: function not implemented (unknown hypercall or sub-op).
    ENOSYS = 38;
    /// `XEN_ENOTEMPTY`: directory not empty.
    ENOTEMPTY = 39;
    /// `XEN_ENODATA`: no data available.
    ENODATA = 61;
    /// `XEN_ETIME`: timer expired.
    ETIME = 62;
    /// `XEN_EBADMSG`: not a data message.
    EBADMSG = 74;
    /// `XEN_EOVERFLOW`: value too large for defined data type.
    EOVERFLOW = 75;
    /// `XEN_EILSEQ`: illegal byte sequence.
    EILSEQ = 84;
    /// `XEN_ERESTART`: restart the hypercall (Xen-internal only, never exposed to guests).
    ERESTART = 85;
    /// `XEN_ENOTSOCK`: socket operation on non-socket.
    ENOTSOCK = 88;
    /// `XEN_EMSGSIZE`: message too large.
    EMSGSIZE = 90;
    /// `XEN_EOPNOTSUPP`: operation not supported.
    EOPNOTSUPP = 95;
    /// `XEN_EADDRINUSE`: address already in use.
    EADDRINUSE = 98;
    /// `XEN_EADDRNOTAVAIL`: cannot assign requested address.
    EADDRNOTAVAIL = 99;
    /// `XEN_ENOBUFS`: no buffer space available.
    ENOBUFS = 105;
    /// `XEN_EISCONN`: transport endpoint is already connected.
    EISCONN = 106;
    /// `XEN_ENOTCONN`: transport endpoint is not connected.
    ENOTCONN = 107;
    /// `XEN_ETIMEDOUT`: connection timed out.
    ETIMEDOUT = 110;
    /// `XEN_ECONNREFUSED`: connection refused.
    ECONNREFUSED = 111;
}

impl Errno {
    /// The positive errno value.
    pub const fn get(self) -> i32 {
        self.0
    }

    /// The hypercall return value: `-errno` as a `long`.
    pub const fn neg(self) -> i64 {
        -(self.0 as i64)
    }

    /// The hypercall return value as the raw `RAX` bit pattern.
    pub const fn to_rax(self) -> u64 {
        self.neg() as u64
    }

    /// Interprets a hypercall return value: `Some(errno)` for `-4095..=-1`, `None`
    /// for success values (zero or positive counts).
    pub const fn from_ret(ret: i64) -> Option<Errno> {
        if ret < 0 && ret >= -4095 {
            Some(Errno(-ret as i32))
        } else {
            None
        }
    }

    /// `Ok(ret)` for non-negative returns, `Err(errno)` for negative ones.
    pub const fn result(ret: i64) -> Result<u64, Errno> {
        match Self::from_ret(ret) {
            Some(e) => Err(e),
            None => Ok(ret as u64),
        }
    }
}

impl From<Errno> for i64 {
    fn from(e: Errno) -> i64 {
        e.neg()
    }
}

impl core::fmt::Debug for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_and_names() {
        assert_eq!(Errno::ENOSYS.neg(), -38);
        assert_eq!(Errno::ENOSYS.get(), ENOSYS);
        assert_eq!(Errno::EINVAL.to_rax(), (-22i64) as u64);
        assert_eq!(i64::from(Errno::EPERM), -1);
        assert_eq!(Errno::from_ret(-38), Some(Errno::ENOSYS));
        assert_eq!(Errno::from_ret(0), None);
        assert_eq!(Errno::from_ret(5), None);
        assert_eq!(Errno::result(7), Ok(7));
        assert_eq!(Errno::result(-2), Err(Errno::ENOENT));
        assert_eq!(Errno::EAGAIN.name(), Some("EAGAIN"));
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
        assert_eq!(Errno::EDEADLOCK.name(), Some("EDEADLK"));
        assert_eq!(Errno(1000).name(), None);
        assert_eq!(Errno::from_name("ENOENT"), Some(Errno::ENOENT));
        assert_eq!(Errno::from_name("nope"), None);
    }

    #[test]
    fn formatting() {
        use core::fmt::Write;
        struct Buf([u8; 32], usize);
        impl Write for Buf {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                let end = self.1 + s.len();
                self.0[self.1..end].copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut b = Buf([0; 32], 0);
        write!(b, "{:?}", Errno::ENOSYS).unwrap();
        assert_eq!(&b.0[..b.1], b"ENOSYS(38)");
    }
}
