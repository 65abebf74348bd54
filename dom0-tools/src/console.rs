//! Interactive guest consoles, as Xen has them: `xenconsoled` opens a pty per domain
//! ([`Pty`]), writes its slave's path to `/local/domain/<id>/console/tty`, and moves
//! bytes between the pty's master and the guest's console ring; `xl console` (or
//! `screen`, or anything else that opens a tty) attaches to the slave ([`attach`]).
//! `Ctrl-]` detaches; while attached, a terminal on stdin is raw ([`RawTerminal`]).
//! Safe code over `rustix` (pty, termios) and `sys::poll_events`.

use crate::sys;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::termios::{self, OptionalActions, Termios};

/// `Ctrl-]`: xl's (and telnet's) detach character.
pub const ESCAPE: u8 = 0x1d;

/// Bytes kept for a pty nobody reads (xenconsoled's output) or that will not take them
/// (xl's input to a guest that does not read): beyond this the oldest are dropped.
pub const PENDING_LIMIT: usize = 64 * 1024;

/// Splits input typed at `xl console` at the detach character: what goes to the guest,
/// and whether to detach after it.
pub fn split_at_escape(data: &[u8]) -> (&[u8], bool) {
    match data.iter().position(|&b| b == ESCAPE) {
        Some(i) => (&data[..i], true),
        None => (data, false),
    }
}

/// Bytes waiting for a non-blocking fd to take them, bounded by [`PENDING_LIMIT`].
#[derive(Debug, Default)]
pub struct Pending(VecDeque<u8>);

impl Pending {
    pub fn push(&mut self, data: &[u8]) {
        self.0.extend(data);
        let over = self.0.len().saturating_sub(PENDING_LIMIT);
        self.0.drain(..over);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Writes as much as `fd` takes without blocking. An error other than "would block"
    /// is returned (and the bytes kept).
    pub fn flush_to(&mut self, fd: impl AsFd) -> io::Result<()> {
        while !self.0.is_empty() {
            let (a, _) = self.0.as_slices();
            match rustix::io::write(&fd, a) {
                Ok(0) => break,
                Ok(n) => {
                    self.0.drain(..n);
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A pseudo-terminal for one guest console. The master is non-blocking; the slave is raw
/// (no echo, no line editing: the guest's own tty does that) and kept open here, so the
/// master never sees a hang-up while no one is attached.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    _slave: OwnedFd,
    pub path: String,
}

impl Pty {
    pub fn open() -> io::Result<Pty> {
        let master = rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)?;
        rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let path = rustix::pty::ptsname(&master, Vec::new())?.into_string().map_err(|_| io::Error::other("pty name is not UTF-8"))?;
        let slave = open_tty(&path)?;
        let mut t = termios::tcgetattr(&slave)?;
        t.make_raw();
        termios::tcsetattr(&slave, OptionalActions::Now, &t)?;
        rustix::io::ioctl_fionbio(&master, true)?;
        Ok(Pty { master, _slave: slave, path })
    }

    /// Reads what the attached side typed (never blocks; 0 when there is nothing).
    pub fn read_input(&self, buf: &mut [u8]) -> usize {
        loop {
            match rustix::io::read(&self.master, &mut *buf) {
                Ok(n) => return n,
                Err(Errno::INTR) => continue,
                Err(_) => return 0,
            }
        }
    }
}

/// Opens a tty read-write, non-blocking, without making it our controlling terminal.
pub fn open_tty(path: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK, Mode::empty())?)
}

/// A terminal switched to raw mode, restored when dropped.
#[derive(Debug)]
pub struct RawTerminal<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawTerminal<'a> {
    /// Raw mode on `fd` if it is a terminal (`None` if it is not).
    pub fn enter(fd: BorrowedFd<'a>) -> io::Result<Option<RawTerminal<'a>>> {
        if !termios::isatty(fd) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Flush, &raw)?;
        Ok(Some(RawTerminal { fd, saved }))
    }
}

impl Drop for RawTerminal<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, OptionalActions::Flush, &self.saved);
    }
}

/// Why [`attach`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// The user typed `Ctrl-]`.
    Escape,
    /// Input ended (a script's stdin).
    InputClosed,
    /// The console went away (xenconsoled closed it) or `alive` said the domain is gone.
    ConsoleClosed,
}

/// Attached to a guest's console tty: what `input` delivers goes to the guest, what the
/// guest writes goes to `output`, until `Ctrl-]` in the input, the input's end, or the
/// console's. `alive` is asked every half second while nothing happens.
pub fn attach(tty: &OwnedFd, input: BorrowedFd<'_>, output: &mut dyn Write, mut alive: impl FnMut() -> bool) -> io::Result<Detach> {
    let mut to_guest = Pending::default();
    let mut buf = vec![0u8; 16384];
    let mut input_open = true;
    loop {
        let mut fds = vec![(tty.as_raw_fd(), libc::POLLIN | if to_guest.is_empty() { 0 } else { libc::POLLOUT })];
        if input_open {
            fds.push((input.as_raw_fd(), libc::POLLIN));
        }
        let ready = sys::poll_events(&fds, 500)?;
        if ready.iter().all(|&r| r == 0) {
            if !alive() {
                return Ok(Detach::ConsoleClosed);
            }
            continue;
        }
        if ready[0] & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match rustix::io::read(tty, &mut buf[..]) {
                Ok(0) => return Ok(Detach::ConsoleClosed),
                Ok(n) => {
                    output.write_all(&buf[..n])?;
                    output.flush()?;
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                // EIO: the master is closed, the domain is gone.
                Err(_) => return Ok(Detach::ConsoleClosed),
            }
        }
        if input_open && ready[1] & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match rustix::io::read(input, &mut buf[..]) {
                Ok(0) | Err(Errno::BADF | Errno::IO) => input_open = false,
                Ok(n) => {
                    let (data, escape) = split_at_escape(&buf[..n]);
                    to_guest.push(data);
                    if escape {
                        let _ = to_guest.flush_to(tty);
                        return Ok(Detach::Escape);
                    }
                }
                Err(_) => {}
            }
        }
        if !to_guest.is_empty() && to_guest.flush_to(tty).is_err() {
            return Ok(Detach::ConsoleClosed);
        }
        if !input_open && to_guest.is_empty() {
            return Ok(Detach::InputClosed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn escape_splits_input() {
        assert_eq!(split_at_escape(b"ls\n"), (&b"ls\n"[..], false));
        assert_eq!(split_at_escape(b"ls\n\x1drest"), (&b"ls\n"[..], true));
        assert_eq!(split_at_escape(b"\x1d"), (&b""[..], true));
    }

    #[test]
    fn pending_keeps_the_newest_bytes() {
        let mut p = Pending::default();
        p.push(&vec![1u8; PENDING_LIMIT]);
        p.push(b"abc");
        assert_eq!(p.len(), PENDING_LIMIT);
        assert_eq!(p.0.iter().rev().take(3).copied().collect::<Vec<_>>(), b"cba");
    }

    /// Reads the pty master until `want` has arrived (or 5 s pass).
    fn read_master(pty: &Pty, want: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let t = Instant::now();
        while !got.windows(want.len()).any(|w| w == want) && t.elapsed() < Duration::from_secs(5) {
            let mut b = [0u8; 256];
            let n = pty.read_input(&mut b);
            got.extend_from_slice(&b[..n]);
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn pty_is_raw_and_carries_both_ways() {
        let pty = Pty::open().unwrap();
        assert!(pty.path.starts_with("/dev/pts/"), "{}", pty.path);
        let tty = open_tty(&pty.path).unwrap();
        rustix::io::write(&tty, b"typed\r\n\x03").unwrap();
        // Raw: no echo back to the slave, no CR/NL translation, ^C is a byte.
        assert_eq!(read_master(&pty, b"\x03"), b"typed\r\n\x03");
        let mut b = [0u8; 16];
        assert!(matches!(rustix::io::read(&tty, &mut b[..]), Err(Errno::AGAIN)));
        rustix::io::write(&pty.master, b"guest\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rustix::io::read(&tty, &mut b[..]).unwrap(), 6);
        assert_eq!(&b[..6], b"guest\n");
    }

    #[test]
    fn raw_terminal_is_restored_on_drop() {
        let pty = Pty::open().unwrap();
        let tty = open_tty(&pty.path).unwrap();
        let mut cooked = termios::tcgetattr(&tty).unwrap();
        cooked.local_modes |= termios::LocalModes::ECHO | termios::LocalModes::ICANON;
        termios::tcsetattr(&tty, OptionalActions::Now, &cooked).unwrap();
        {
            let _raw = RawTerminal::enter(tty.as_fd()).unwrap().expect("a pty is a terminal");
            let now = termios::tcgetattr(&tty).unwrap();
            assert!(!now.local_modes.intersects(termios::LocalModes::ECHO | termios::LocalModes::ICANON));
        }
        let back = termios::tcgetattr(&tty).unwrap();
        assert!(back.local_modes.contains(termios::LocalModes::ECHO | termios::LocalModes::ICANON));
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        assert!(RawTerminal::enter(rd.as_fd()).unwrap().is_none(), "a pipe is left alone");
    }

    #[test]
    fn attach_sends_input_shows_output_and_detaches_on_ctrl_close_bracket() {
        let pty = Pty::open().unwrap();
        let tty = open_tty(&pty.path).unwrap();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&pty.master, b"login: ").unwrap();
        rustix::io::write(&wr, b"echo $((6*7))\n").unwrap();
        let h = std::thread::spawn(move || {
            let mut out = Vec::new();
            let r = attach(&tty, rd.as_fd(), &mut out, || true);
            (r.unwrap(), out)
        });
        assert_eq!(read_master(&pty, b"\n"), b"echo $((6*7))\n");
        rustix::io::write(&pty.master, b"42\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        rustix::io::write(&wr, b"x\x1dnot sent").unwrap();
        let (r, out) = h.join().unwrap();
        assert_eq!(r, Detach::Escape);
        assert_eq!(out, b"login: 42\n");
        assert_eq!(read_master(&pty, b"x"), b"x");
    }

    #[test]
    fn attach_ends_with_its_input_or_the_console() {
        let pty = Pty::open().unwrap();
        let tty = open_tty(&pty.path).unwrap();
        let (rd, wr) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&wr, b"last\n").unwrap();
        drop(wr);
        let mut out = Vec::new();
        assert_eq!(attach(&tty, rd.as_fd(), &mut out, || true).unwrap(), Detach::InputClosed);
        assert_eq!(read_master(&pty, b"\n"), b"last\n");
        // The domain goes away while nothing happens.
        let (rd, _wr) = rustix::pipe::pipe().unwrap();
        assert_eq!(attach(&tty, rd.as_fd(), &mut out, || false).unwrap(), Detach::ConsoleClosed);
        // xenconsoled closes the pty.
        drop(pty);
        assert_eq!(attach(&tty, rd.as_fd(), &mut out, || true).unwrap(), Detach::ConsoleClosed);
    }
}
