//! Fixtures: transmit and receive ring pairs on leaked pages, and one fake grant table
//! that is both the front-end's page pool (netfront's `FrontGrants`) and the back-end's
//! view of it (netback's `GrantAccess`).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use frontend_drivers::netfront::{self, FrontGrants, NetFront, NetFrontConfig};
use netback_core::{CopyDir, CopySeg, GrantAccess, GrantError};
use xen_abi::netif::{NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse};
use xen_abi::GrantRef;
use xen_ring::{BackRing, FrontRing, RingIdx};

pub const PAGE: usize = 4096;

pub type TxF = FrontRing<NetifTxRequest, NetifTxResponse>;
pub type TxB = BackRing<NetifTxRequest, NetifTxResponse>;
pub type RxF = FrontRing<NetifRxRequest, NetifRxResponse>;
pub type RxB = BackRing<NetifRxRequest, NetifRxResponse>;

#[repr(C, align(4096))]
struct RingPage([u8; PAGE]);

fn ring_page() -> *mut u8 {
    Box::into_raw(Box::new(RingPage([0; PAGE]))).cast::<u8>()
}

/// A front and back end of ring type (Req, Rsp) on a new leaked page, the front end's
/// private indices starting at `idx`.
pub fn pair<Req, Rsp>(idx: RingIdx) -> (FrontRing<Req, Rsp>, BackRing<Req, Rsp>)
where
    Req: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::Immutable,
    Rsp: zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::Immutable,
{
    let page = ring_page();
    // SAFETY: `page` is a leaked (never freed) 4096-byte, 4096-aligned allocation: it
    // stays mapped, readable and writable for the rest of the process; no Rust reference
    // to it exists; only the rings made here drive it. The initialising front ring is
    // dropped before the attached one is made.
    let init = unsafe { FrontRing::<Req, Rsp>::init(page, PAGE) }.unwrap();
    let _ = init;
    // SAFETY: as above.
    let front = unsafe { FrontRing::attach(page, PAGE, idx) }.unwrap();
    // SAFETY: as above.
    let back = unsafe { BackRing::init(page, PAGE) }.unwrap();
    (front, back)
}

#[derive(Debug)]
pub struct Table {
    pub pages: Vec<[u8; PAGE]>,
    /// gref -> (page, read-only)
    pub entries: HashMap<u32, (usize, bool)>,
    pub next: u32,
}

/// The grant table, shared by both ends.
#[derive(Clone, Debug)]
pub struct Grants(pub Rc<RefCell<Table>>);

impl Grants {
    pub fn new(pages: usize) -> Self {
        Grants(Rc::new(RefCell::new(Table { pages: vec![[0; PAGE]; pages], entries: HashMap::new(), next: 8 })))
    }
    pub fn live(&self) -> usize {
        self.0.borrow().entries.len()
    }
}

impl FrontGrants for Grants {
    fn page_count(&self) -> usize {
        self.0.borrow().pages.len()
    }
    fn grant(&mut self, page: usize, readonly: bool) -> Result<GrantRef, netfront::GrantError> {
        let mut t = self.0.borrow_mut();
        let r = t.next;
        t.next += 1;
        t.entries.insert(r, (page, readonly));
        Ok(GrantRef(r))
    }
    fn end_access(&mut self, gref: GrantRef) -> Result<(), netfront::GrantError> {
        self.0.borrow_mut().entries.remove(&gref.0).map(|_| ()).ok_or(netfront::GrantError::Other(-4))
    }
    fn write_page(&mut self, page: usize, offset: usize, data: &[u8]) {
        self.0.borrow_mut().pages[page][offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_page(&mut self, page: usize, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0.borrow().pages[page][offset..offset + buf.len()]);
    }
}

impl GrantAccess for Grants {
    fn copy(&mut self, dir: CopyDir, segs: &mut [CopySeg], local: &mut [u8]) {
        let mut t = self.0.borrow_mut();
        for s in segs {
            let (off, len) = (usize::from(s.offset), usize::from(s.len));
            s.status = match t.entries.get(&s.gref.0).copied() {
                None => Err(GrantError::BadRef),
                Some(_) if off + len > PAGE || s.local + len > local.len() => Err(GrantError::OutOfBounds),
                Some((_, true)) if dir == CopyDir::ToGrant => Err(GrantError::ReadOnly),
                Some((p, _)) => {
                    match dir {
                        CopyDir::FromGrant => local[s.local..s.local + len].copy_from_slice(&t.pages[p][off..off + len]),
                        CopyDir::ToGrant => t.pages[p][off..off + len].copy_from_slice(&local[s.local..s.local + len]),
                    }
                    Ok(())
                }
            };
        }
    }
}

/// A netfront and the back ends of its rings, over one grant table.
pub fn netfront(cfg: NetFrontConfig) -> (NetFront<Grants>, TxB, RxB, Grants) {
    let (txf, txb) = pair::<NetifTxRequest, NetifTxResponse>(0);
    let (rxf, rxb) = pair::<NetifRxRequest, NetifRxResponse>(0);
    let g = Grants::new(cfg.tx_buffers + cfg.rx_buffers);
    let nf = NetFront::new(txf, rxf, g.clone(), cfg).unwrap();
    (nf, txb, rxb, g)
}

/// Deterministic frame contents: an Ethernet header then a pattern of `seed`.
pub fn frame(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|i| {
            if i == 12 {
                return 0x08;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
