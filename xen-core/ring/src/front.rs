//! The front end: produces requests, consumes responses.

use core::sync::atomic::{fence, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::shared::{Index, Shared};
use crate::{needs_notify, RingError, RingIdx, PREFETCH_SLOTS};

/// Front end of a shared ring (`struct *_front_ring`): `req_prod_pvt`, `rsp_cons`, and a
/// few cached values so that shared indices are read and written only when needed.
///
/// Aligned to a cache line so that this side's private indices never share a line with
/// the peer's (or with the shared page).
#[repr(align(64))]
pub struct FrontRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    req_prod_pvt: RingIdx,
    rsp_cons: RingIdx,
    /// The `req_prod` value we last published (the `__old` of `RING_PUSH_REQUESTS_*`;
    /// kept privately so a peer scribbling on `req_prod` cannot confuse us).
    req_prod_published: RingIdx,
    /// The last `rsp_prod` read from the page and validated; responses up to it can be
    /// read without touching the shared cache line again.
    rsp_prod_seen: RingIdx,
    /// Slots from `rsp_cons` up to this index have been prefetched for writing
    /// (`rsp_cons <= prefetched <= rsp_prod_seen`).
    prefetched: RingIdx,
}

impl<Req, Rsp> core::fmt::Debug for FrontRing<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrontRing")
            .field("shared", &self.shared)
            .field("req_prod_pvt", &self.req_prod_pvt)
            .field("rsp_cons", &self.rsp_cons)
            .field("req_prod_published", &self.req_prod_published)
            .field("rsp_prod_seen", &self.rsp_prod_seen)
            .field("prefetched", &self.prefetched)
            .finish()
    }
}

impl<Req, Rsp> FrontRing<Req, Rsp>
where
    Req: FromBytes + IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes + Immutable,
{
    /// `XEN_FRONT_RING_INIT`: initialises the shared page (`SHARED_RING_INIT`: producers 0,
    /// events 1, `pvt` and padding zeroed) and attaches a front end at index 0.
    ///
    /// # Safety
    /// `page` must point to `page_size` bytes that stay mapped, readable and writable for
    /// the whole life of the returned ring, and that nobody accesses other than as this Xen
    /// shared ring (the peer may write them concurrently at any time; that is allowed).
    /// Only one `FrontRing` may drive a given page at a time.
    pub unsafe fn init(page: *mut u8, page_size: usize) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        let shared = unsafe { Shared::new(page, page_size) }?;
        shared.init_header();
        Ok(Self::from_shared(shared, 0))
    }

    /// `FRONT_RING_ATTACH`: attaches to an already initialised page, with private indices
    /// starting at `idx` (e.g. after a resume). The page is not modified.
    ///
    /// # Safety
    /// As [`FrontRing::init`].
    pub unsafe fn attach(page: *mut u8, page_size: usize, idx: RingIdx) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        let shared = unsafe { Shared::new(page, page_size) }?;
        Ok(Self::from_shared(shared, idx))
    }

    fn from_shared(shared: Shared<Req, Rsp>, idx: RingIdx) -> Self {
        Self {
            shared,
            req_prod_pvt: idx,
            rsp_cons: idx,
            req_prod_published: idx,
            rsp_prod_seen: idx,
            prefetched: idx,
        }
    }

    /// `RING_SIZE`: number of slots.
    #[inline]
    pub fn size(&self) -> u32 {
        self.shared.size()
    }

    /// Private producer index: the next request goes here.
    #[inline]
    pub fn req_prod_pvt(&self) -> RingIdx {
        self.req_prod_pvt
    }

    /// Private consumer index: the next response is read from here.
    #[inline]
    pub fn rsp_cons(&self) -> RingIdx {
        self.rsp_cons
    }

    /// `RING_FREE_REQUESTS`: slots that can take a new request.
    #[inline]
    pub fn free_requests(&self) -> u32 {
        self.size() - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// `RING_FULL`.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Writes `req` into the next free slot (`*RING_GET_REQUEST(r, req_prod_pvt++) = req`)
    /// and returns its index. Not visible to the back end until published with
    /// [`push_requests`](Self::push_requests) or
    /// [`push_requests_and_check_notify`](Self::push_requests_and_check_notify).
    #[inline]
    pub fn write_request(&mut self, req: Req) -> Result<RingIdx, RingError> {
        if self.is_full() {
            return Err(RingError::Full);
        }
        let idx = self.req_prod_pvt;
        self.shared.write_req(idx, &req);
        self.req_prod_pvt = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Requests written but not yet published.
    #[inline]
    pub fn unpushed_requests(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.req_prod_published)
    }

    /// `RING_PUSH_REQUESTS`: publishes all written requests (write barrier, then
    /// `req_prod = req_prod_pvt`), without the notification check. For busy-polling
    /// peers only: a peer that may sleep needs
    /// [`push_requests_and_check_notify`](Self::push_requests_and_check_notify).
    #[inline]
    pub fn push_requests(&mut self) {
        if self.req_prod_pvt != self.req_prod_published {
            self.shared.prefetch_header();
            self.shared
                .demote_slots(self.req_prod_published, self.req_prod_pvt);
            self.shared
                .store(Index::ReqProd, self.req_prod_pvt, Ordering::Release);
            self.req_prod_published = self.req_prod_pvt;
        }
    }

    /// Publishes `idx` as the request producer whatever was written: what a hostile (or
    /// broken) front end does. For tests of back ends, which must treat an index past
    /// the ring as a protocol error rather than trust it.
    pub fn publish_req_prod_unchecked(&mut self, idx: RingIdx) {
        self.shared.store(Index::ReqProd, idx, Ordering::Release);
        self.req_prod_published = idx;
        self.req_prod_pvt = idx;
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publishes all written requests and returns
    /// whether the back end asked to be notified (its `req_event` lies in the newly
    /// published range). Returns `false` without touching the page if nothing is new.
    #[inline]
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        let old = self.req_prod_published;
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        // xen_wmb(): the back end sees the requests before the new producer index.
        self.shared.prefetch_header();
        self.shared.demote_slots(old, new);
        self.shared.store(Index::ReqProd, new, Ordering::Release);
        self.req_prod_published = new;
        // xen_mb(): the back end sees the new index before we read its event index.
        fence(Ordering::SeqCst);
        let event = self.shared.load(Index::ReqEvent, Ordering::Relaxed);
        needs_notify(old, new, event)
    }

    /// Prefetches for writing the next (up to) [`PREFETCH_SLOTS`] seen slots not yet
    /// prefetched (see `Shared::prefetch_slots`); called when new slots are seen and when
    /// consumption comes within half a window of the prefetched ones, so a long batch
    /// streams in a window at a time.
    #[inline(always)]
    fn prefetch_more(&mut self) {
        let end = if self.rsp_prod_seen.wrapping_sub(self.prefetched) > PREFETCH_SLOTS {
            self.prefetched.wrapping_add(PREFETCH_SLOTS)
        } else {
            self.rsp_prod_seen
        };
        self.shared.prefetch_slots(self.prefetched, end);
        self.prefetched = end;
    }

    /// Reads and validates `rsp_prod` (then `xen_rmb()`, as an acquire load).
    #[inline]
    fn refresh_rsp_prod(&mut self) -> Result<RingIdx, RingError> {
        let prod = self.shared.load(Index::RspProd, Ordering::Acquire);
        // Responses answer requests: there can never be more unconsumed responses than
        // requests published and not yet answered-and-consumed (which is <= size). This
        // also rejects an index that moved backwards (huge wrapping difference).
        if prod.wrapping_sub(self.rsp_cons) > self.req_prod_published.wrapping_sub(self.rsp_cons) {
            return Err(RingError::ResponseProdOverflow {
                rsp_prod: prod,
                rsp_cons: self.rsp_cons,
                req_prod: self.req_prod_published,
                size: self.size(),
            });
        }
        if prod != self.rsp_prod_seen {
            // New work from the peer: this side publishes its own index soon.
            self.shared.prefetch_header();
            self.rsp_prod_seen = prod;
            if self.prefetched.wrapping_sub(self.rsp_cons) > prod.wrapping_sub(self.rsp_cons) {
                // Only if the peer moved its index back: keep cons <= prefetched <= seen.
                self.prefetched = self.rsp_cons;
            }
            self.prefetch_more();
        }
        Ok(prod)
    }

    /// `RING_HAS_UNCONSUMED_RESPONSES` (as a count): reads `rsp_prod` from the page.
    #[inline]
    pub fn unconsumed_responses(&mut self) -> Result<u32, RingError> {
        let prod = self.refresh_rsp_prod()?;
        Ok(prod.wrapping_sub(self.rsp_cons))
    }

    /// Copies the next response out of the ring (`RING_COPY_RESPONSE`) and advances
    /// `rsp_cons`, or returns `None` if there is none. `rsp_prod` is re-read from the page
    /// only when the responses seen last time are used up, so draining a batch costs one
    /// shared read.
    #[inline]
    pub fn read_response(&mut self) -> Result<Option<Rsp>, RingError> {
        if self.rsp_cons == self.rsp_prod_seen && self.refresh_rsp_prod()? == self.rsp_cons {
            return Ok(None);
        }
        let rsp = self.shared.read_rsp(self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        if self.prefetched != self.rsp_prod_seen
            && self.prefetched.wrapping_sub(self.rsp_cons) <= PREFETCH_SLOTS / 2
        {
            self.prefetch_more();
        }
        Ok(Some(rsp))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: returns `true` if responses are pending;
    /// otherwise sets `rsp_event = rsp_cons + 1` (asking for a notification on the next
    /// response), issues a full barrier and checks once more. Sleep only on `Ok(false)`.
    #[inline]
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? != 0 {
            return Ok(true);
        }
        self.shared.store(
            Index::RspEvent,
            self.rsp_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_responses()? != 0)
    }

    /// The back end's `req_event` as currently in the page (diagnostics only).
    #[inline]
    pub fn peer_req_event(&self) -> RingIdx {
        self.shared.load(Index::ReqEvent, Ordering::Relaxed)
    }
}
