//! xenstored's end of a xenstore ring: it consumes `req` and produces `rsp` (the
//! opposite of the client in frontend-drivers), over any page with acquire/release index
//! access. Indices the peer publishes are checked: an overrun is a protocol error that
//! closes the connection instead of reading outside the ring.

use crate::{Header, WireError, HEADER_LEN, mask_xenstore_idx, XenstoreDomainInterface as Iface, XENSTORE_RING_SIZE};
use alloc::vec::Vec;
use core::mem::offset_of;

const REQ: usize = offset_of!(Iface, req);
const RSP: usize = offset_of!(Iface, rsp);
const REQ_CONS: usize = offset_of!(Iface, req_cons);
const REQ_PROD: usize = offset_of!(Iface, req_prod);
const RSP_CONS: usize = offset_of!(Iface, rsp_cons);
const RSP_PROD: usize = offset_of!(Iface, rsp_prod);
const SERVER_FEATURES: usize = offset_of!(Iface, server_features);
const CONNECTION: usize = offset_of!(Iface, connection);

/// The shared ring page, with acquire loads and release stores of the indices.
pub trait Page {
    fn load_u32(&self, off: usize) -> u32;
    fn store_u32(&self, off: usize, v: u32);
    fn read(&self, off: usize, buf: &mut [u8]);
    fn write(&self, off: usize, data: &[u8]);
}

#[derive(Debug, PartialEq, Eq)]
pub struct Overrun;

/// Advertises what this xenstored supports (nothing optional) and marks it connected.
pub fn init<P: Page>(p: &P) {
    p.store_u32(SERVER_FEATURES, 0);
    p.store_u32(CONNECTION, 0);
}

/// Moves every request byte the peer produced into `inbox`; returns how many.
pub fn take_requests<P: Page>(p: &P, inbox: &mut Vec<u8>) -> Result<usize, Overrun> {
    let cons = p.load_u32(REQ_CONS);
    let prod = p.load_u32(REQ_PROD);
    let avail = prod.wrapping_sub(cons) as usize;
    if avail > XENSTORE_RING_SIZE {
        return Err(Overrun);
    }
    let start = inbox.len();
    inbox.resize(start + avail, 0);
    let mut done = 0;
    while done < avail {
        let at = mask_xenstore_idx(cons.wrapping_add(done as u32));
        let n = (XENSTORE_RING_SIZE - at).min(avail - done);
        p.read(REQ + at, &mut inbox[start + done..start + done + n]);
        done += n;
    }
    if avail > 0 {
        p.store_u32(REQ_CONS, cons.wrapping_add(avail as u32));
    }
    Ok(avail)
}

/// Copies as much of `outbox` as fits into the response ring; returns how many bytes.
pub fn put_replies<P: Page>(p: &P, outbox: &mut Vec<u8>) -> Result<usize, Overrun> {
    let cons = p.load_u32(RSP_CONS);
    let prod = p.load_u32(RSP_PROD);
    let used = prod.wrapping_sub(cons) as usize;
    if used > XENSTORE_RING_SIZE {
        return Err(Overrun);
    }
    let n = (XENSTORE_RING_SIZE - used).min(outbox.len());
    let mut done = 0;
    while done < n {
        let at = mask_xenstore_idx(prod.wrapping_add(done as u32));
        let k = (XENSTORE_RING_SIZE - at).min(n - done);
        p.write(RSP + at, &outbox[done..done + k]);
        done += k;
    }
    if n > 0 {
        p.store_u32(RSP_PROD, prod.wrapping_add(n as u32));
        outbox.drain(..n);
    }
    Ok(n)
}

/// Takes the first complete message out of `inbox`: `Ok(None)` while it is incomplete,
/// an error (the connection must be closed) when the header is bad.
pub fn next_message(inbox: &mut Vec<u8>) -> Result<Option<(Header, Vec<u8>)>, WireError> {
    if inbox.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = Header::decode(inbox)?;
    let total = HEADER_LEN + h.payload_len();
    if inbox.len() < total {
        return Ok(None);
    }
    let payload = inbox[HEADER_LEN..total].to_vec();
    inbox.drain(..total);
    Ok(Some((h, payload)))
}

/// Appends a message (header and payload) to `outbox`.
pub fn queue_message(outbox: &mut Vec<u8>, h: &Header, payload: &[u8]) {
    outbox.extend_from_slice(&h.encode());
    outbox.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::cell::RefCell;

    struct Mem(RefCell<Vec<u8>>);
    impl Page for Mem {
        fn load_u32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
        }
        fn store_u32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes())
        }
        fn read(&self, off: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()])
        }
        fn write(&self, off: usize, data: &[u8]) {
            self.0.borrow_mut()[off..off + data.len()].copy_from_slice(data)
        }
    }

    #[test]
    fn wraps_and_rejects_overruns() {
        let m = Mem(RefCell::new(vec![0; 4096]));
        let start = u32::MAX - 3;
        for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD] {
            m.store_u32(off, start);
        }
        // The peer writes 10 bytes across the u32 wrap.
        for i in 0..10u32 {
            m.write(REQ + mask_xenstore_idx(start.wrapping_add(i)), &[i as u8]);
        }
        m.store_u32(REQ_PROD, start.wrapping_add(10));
        let mut inbox = Vec::new();
        assert_eq!(take_requests(&m, &mut inbox), Ok(10));
        assert_eq!(inbox, (0..10).collect::<Vec<u8>>());
        assert_eq!(m.load_u32(REQ_CONS), start.wrapping_add(10));
        let mut out: Vec<u8> = (0..2000).map(|i| i as u8).collect();
        assert_eq!(put_replies(&m, &mut out), Ok(1024));
        assert_eq!(out.len(), 2000 - 1024);
        assert_eq!(put_replies(&m, &mut out), Ok(0));
        m.store_u32(REQ_PROD, start.wrapping_add(5000));
        assert_eq!(take_requests(&m, &mut inbox), Err(Overrun));
    }

    #[test]
    fn messages_split_at_their_length() {
        let h = Header::new(crate::XsType::Read, 7, 0, 3);
        let mut inbox = Vec::new();
        queue_message(&mut inbox, &h, b"a/b");
        let whole = inbox.clone();
        inbox.truncate(10);
        assert_eq!(next_message(&mut inbox), Ok(None));
        inbox = whole.clone();
        inbox.extend_from_slice(&whole[..4]);
        assert_eq!(next_message(&mut inbox), Ok(Some((h, b"a/b".to_vec()))));
        assert_eq!(inbox.len(), 4);
        let mut bad = Header::new(crate::XsType::Read, 7, 0, 0).encode().to_vec();
        bad[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert!(next_message(&mut bad).is_err());
    }
}
