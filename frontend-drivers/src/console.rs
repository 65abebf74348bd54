//! The PV console ring (`io/console.h`): `out` carries guest output to the backend,
//! `in` carries input to the guest. Free-running u32 indices, masked by the ring size;
//! the producer writes data, then publishes the index (release), then notifies.
//!
//! Both ends live here: [`ConsoleRing`] is the guest's, [`take_output`], [`input_room`]
//! and [`put_input`] are the back-end's (xenconsoled's). The back-end treats the guest as
//! hostile: an index pair claiming more than the ring holds is [`Overrun`], and nothing
//! is read or written; every access is masked into the ring.

use crate::page::{Notify, SharedPage};
use core::mem::offset_of;
use xen_abi::console::{mask_xencons_in_idx, mask_xencons_out_idx, XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};

#[derive(Debug)]
pub struct ConsoleRing<P, N> {
    page: P,
    notify: N,
}

/// Offsets in the ring page.
const OUT: usize = offset_of!(XenconsInterface, out);
const IN: usize = offset_of!(XenconsInterface, in_);
const OUT_CONS: usize = offset_of!(XenconsInterface, out_cons);
const OUT_PROD: usize = offset_of!(XenconsInterface, out_prod);
const IN_CONS: usize = offset_of!(XenconsInterface, in_cons);
const IN_PROD: usize = offset_of!(XenconsInterface, in_prod);

impl<P: SharedPage, N: Notify> ConsoleRing<P, N> {
    pub fn new(page: P, notify: N) -> Self {
        Self { page, notify }
    }

    /// Writes all of `data`, waiting for room when the ring is full. Returns the bytes
    /// written: fewer when `Notify::wait` gives up or the backend's index is corrupt.
    pub fn write(&self, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            let cons = self.page.load_u32(OUT_CONS);
            let prod = self.page.load_u32(OUT_PROD);
            let used = prod.wrapping_sub(cons) as usize;
            if used > XENCONS_OUT_SIZE {
                return done; // the backend published nonsense: stop rather than overrun
            }
            let n = (XENCONS_OUT_SIZE - used).min(data.len() - done);
            if n == 0 {
                self.notify.notify();
                if !self.notify.wait() {
                    return done;
                }
                continue;
            }
            for (i, &b) in data[done..done + n].iter().enumerate() {
                self.page.write(OUT + mask_xencons_out_idx(prod.wrapping_add(i as u32)), &[b]);
            }
            self.page.store_u32(OUT_PROD, prod.wrapping_add(n as u32));
            done += n;
        }
        self.notify.notify();
        done
    }

    /// Reads what input is available (never waits).
    pub fn read(&self, buf: &mut [u8]) -> usize {
        let cons = self.page.load_u32(IN_CONS);
        let prod = self.page.load_u32(IN_PROD);
        let avail = (prod.wrapping_sub(cons) as usize).min(XENCONS_IN_SIZE);
        let n = avail.min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let mut one = [0];
            self.page.read(IN + mask_xencons_in_idx(cons.wrapping_add(i as u32)), &mut one);
            *b = one[0];
        }
        if n > 0 {
            self.page.store_u32(IN_CONS, cons.wrapping_add(n as u32));
            self.notify.notify();
        }
        n
    }
}

/// The guest published ring indices that claim more than the ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun;

/// Back-end: takes what the guest wrote to `out` (at most `buf.len()` bytes) and frees
/// that room. The caller notifies the guest when it took something.
pub fn take_output<P: SharedPage>(p: &P, buf: &mut [u8]) -> Result<usize, Overrun> {
    let cons = p.load_u32(OUT_CONS);
    let prod = p.load_u32(OUT_PROD);
    let avail = prod.wrapping_sub(cons) as usize;
    if avail > XENCONS_OUT_SIZE {
        return Err(Overrun);
    }
    let n = avail.min(buf.len());
    let mut done = 0;
    while done < n {
        let at = mask_xencons_out_idx(cons.wrapping_add(done as u32));
        let k = (XENCONS_OUT_SIZE - at).min(n - done);
        p.read(OUT + at, &mut buf[done..done + k]);
        done += k;
    }
    if n > 0 {
        p.store_u32(OUT_CONS, cons.wrapping_add(n as u32));
    }
    Ok(n)
}

/// Back-end: how many bytes of input the `in` ring has room for now.
pub fn input_room<P: SharedPage>(p: &P) -> Result<usize, Overrun> {
    let used = p.load_u32(IN_PROD).wrapping_sub(p.load_u32(IN_CONS)) as usize;
    if used > XENCONS_IN_SIZE {
        return Err(Overrun);
    }
    Ok(XENCONS_IN_SIZE - used)
}

/// Back-end: puts as much of `data` into the guest's `in` ring as fits (data first, then
/// `in_prod`) and returns how much. The caller notifies the guest when it put something.
pub fn put_input<P: SharedPage>(p: &P, data: &[u8]) -> Result<usize, Overrun> {
    let room = input_room(p)?;
    let prod = p.load_u32(IN_PROD);
    let n = room.min(data.len());
    let mut done = 0;
    while done < n {
        let at = mask_xencons_in_idx(prod.wrapping_add(done as u32));
        let k = (XENCONS_IN_SIZE - at).min(n - done);
        p.write(IN + at, &data[done..done + k]);
        done += k;
    }
    if n > 0 {
        p.store_u32(IN_PROD, prod.wrapping_add(n as u32));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::MemPage;
    use std::cell::{Cell, RefCell};
    use std::vec;
    use std::vec::Vec;

    /// A backend that drains `out` whenever the guest waits.
    struct Backend<'a> {
        page: &'a MemPage,
        got: RefCell<Vec<u8>>,
        notified: Cell<u32>,
        waits: Cell<u32>,
        drain: bool,
    }

    impl Notify for &Backend<'_> {
        fn notify(&self) {
            self.notified.set(self.notified.get() + 1);
        }
        fn wait(&self) -> bool {
            self.waits.set(self.waits.get() + 1);
            if !self.drain {
                return false;
            }
            self.consume();
            true
        }
    }

    impl Backend<'_> {
        fn consume(&self) {
            let (cons, prod) = (self.page.load_u32(OUT_CONS), self.page.load_u32(OUT_PROD));
            for i in 0..prod.wrapping_sub(cons) {
                let mut b = [0];
                self.page.read(OUT + mask_xencons_out_idx(cons.wrapping_add(i)), &mut b);
                self.got.borrow_mut().push(b[0]);
            }
            self.page.store_u32(OUT_CONS, prod);
        }
    }

    fn backend(page: &MemPage, drain: bool) -> Backend<'_> {
        Backend { page, got: RefCell::new(Vec::new()), notified: Cell::new(0), waits: Cell::new(0), drain }
    }

    #[test]
    fn output_wraps_and_waits_for_room() {
        let page = MemPage::new();
        // Start near the u32 wrap to exercise free-running indices.
        page.store_u32(OUT_CONS, u32::MAX - 10);
        page.store_u32(OUT_PROD, u32::MAX - 10);
        let be = backend(&page, true);
        let ring = ConsoleRing::new(&page, &be);
        let msg: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        assert_eq!(ring.write(&msg), 5000);
        be.consume();
        assert_eq!(*be.got.borrow(), msg);
        assert_eq!(be.waits.get(), 2);
        assert!(be.notified.get() >= 3);
    }

    #[test]
    fn gives_up_when_backend_stalls_or_lies() {
        let page = MemPage::new();
        let be = backend(&page, false);
        let ring = ConsoleRing::new(&page, &be);
        assert_eq!(ring.write(&[b'x'; 3000]), XENCONS_OUT_SIZE);
        page.store_u32(OUT_CONS, 0);
        page.store_u32(OUT_PROD, 5000); // more than the ring holds
        assert_eq!(ring.write(b"y"), 0);
    }

    #[test]
    fn input() {
        let page = MemPage::new();
        let be = backend(&page, false);
        let ring = ConsoleRing::new(&page, &be);
        page.write(IN, b"hi");
        page.store_u32(IN_PROD, 2);
        let mut buf = [0; 8];
        assert_eq!(ring.read(&mut buf), 2);
        assert_eq!(&buf[..2], b"hi");
        assert_eq!(page.load_u32(IN_CONS), 2);
        assert_eq!(ring.read(&mut buf), 0);
    }

    #[test]
    fn backend_output_wraps_and_rejects_overruns() {
        let page = MemPage::new();
        let guest = backend(&page, false);
        let ring = ConsoleRing::new(&page, &guest);
        // Start near the u32 wrap and near the end of the ring.
        page.store_u32(OUT_CONS, u32::MAX - 5);
        page.store_u32(OUT_PROD, u32::MAX - 5);
        assert_eq!(ring.write(b"hello, world"), 12);
        let mut buf = [0u8; XENCONS_OUT_SIZE];
        assert_eq!(take_output(&page, &mut buf[..5]), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(take_output(&page, &mut buf), Ok(7));
        assert_eq!(&buf[..7], b", world");
        assert_eq!(take_output(&page, &mut buf), Ok(0));
        // A hostile guest claims more than the ring holds: nothing is read or freed.
        page.store_u32(OUT_PROD, page.load_u32(OUT_CONS).wrapping_add(XENCONS_OUT_SIZE as u32 + 1));
        let cons = page.load_u32(OUT_CONS);
        assert_eq!(take_output(&page, &mut buf), Err(Overrun));
        assert_eq!(page.load_u32(OUT_CONS), cons);
        page.store_u32(OUT_PROD, cons.wrapping_sub(1)); // "behind" the consumer
        assert_eq!(take_output(&page, &mut buf), Err(Overrun));
        // Exactly full is fine.
        page.store_u32(OUT_PROD, cons.wrapping_add(XENCONS_OUT_SIZE as u32));
        assert_eq!(take_output(&page, &mut buf), Ok(XENCONS_OUT_SIZE));
    }

    #[test]
    fn backend_input_reaches_the_guest_and_waits_for_room() {
        let page = MemPage::new();
        let guest = backend(&page, false);
        let ring = ConsoleRing::new(&page, &guest);
        page.store_u32(IN_CONS, u32::MAX - 2);
        page.store_u32(IN_PROD, u32::MAX - 2);
        assert_eq!(input_room(&page), Ok(XENCONS_IN_SIZE));
        assert_eq!(put_input(&page, b"echo hi\n"), Ok(8));
        let mut buf = [0u8; 64];
        assert_eq!(ring.read(&mut buf), 8);
        assert_eq!(&buf[..8], b"echo hi\n");
        // Fill the ring: only what fits goes in, the rest waits for the guest.
        let big: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        assert_eq!(put_input(&page, &big), Ok(XENCONS_IN_SIZE));
        assert_eq!(input_room(&page), Ok(0));
        assert_eq!(put_input(&page, &big[XENCONS_IN_SIZE..]), Ok(0));
        let mut got = [0u8; XENCONS_IN_SIZE];
        assert_eq!(ring.read(&mut got), XENCONS_IN_SIZE);
        assert_eq!(&got[..], &big[..XENCONS_IN_SIZE]);
        assert_eq!(put_input(&page, &big[XENCONS_IN_SIZE..]), Ok(1500 - XENCONS_IN_SIZE));
    }

    #[test]
    fn backend_input_with_hostile_indices_writes_nothing() {
        let page = MemPage::new();
        let before: Vec<u8> = {
            let mut v = vec![0u8; 4096];
            page.read(0, &mut v);
            v
        };
        for (cons, prod) in [(0u32, 5000u32), (10, 0), (0, u32::MAX), (u32::MAX, 1025)] {
            page.store_u32(IN_CONS, cons);
            page.store_u32(IN_PROD, prod);
            assert_eq!(input_room(&page), Err(Overrun), "cons {cons} prod {prod}");
            assert_eq!(put_input(&page, b"x"), Err(Overrun));
            assert_eq!(page.load_u32(IN_PROD), prod);
            let mut now = vec![0u8; IN + XENCONS_IN_SIZE];
            page.read(0, &mut now);
            assert_eq!(&now[IN..], &before[IN..IN + XENCONS_IN_SIZE]);
        }
    }
}
