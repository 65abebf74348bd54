//! The PV console ring (`io/console.h`): `out` carries guest output to the backend,
//! `in` carries input to the guest. Free-running u32 indices, masked by the ring size;
//! the producer writes data, then publishes the index (release), then notifies.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::MemPage;
    use std::cell::{Cell, RefCell};
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
}
