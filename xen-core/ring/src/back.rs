//! The back end: consumes requests, produces responses.

use core::sync::atomic::{fence, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::shared::{Index, Shared};
use crate::{needs_notify, RingError, RingIdx, PREFETCH_SLOTS};

/// Back end of a shared ring (`struct *_back_ring`): `rsp_prod_pvt`, `req_cons`, and
/// cached values so that shared indices are read and written only when needed.
///
/// Aligned to a cache line so that this side's private indices never share a line with
/// the peer's (or with the shared page).
#[repr(align(64))]
pub struct BackRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    rsp_prod_pvt: RingIdx,
    req_cons: RingIdx,
    /// The `rsp_prod` value we last published.
    rsp_prod_published: RingIdx,
    /// The last `req_prod` read from the page and validated.
    req_prod_seen: RingIdx,
    /// Slots from `req_cons` up to this index have been prefetched for writing
    /// (`req_cons <= prefetched <= req_prod_seen`).
    prefetched: RingIdx,
}

impl<Req, Rsp> core::fmt::Debug for BackRing<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BackRing")
            .field("shared", &self.shared)
            .field("rsp_prod_pvt", &self.rsp_prod_pvt)
            .field("req_cons", &self.req_cons)
            .field("rsp_prod_published", &self.rsp_prod_published)
            .field("req_prod_seen", &self.req_prod_seen)
            .field("prefetched", &self.prefetched)
            .finish()
    }
}

impl<Req, Rsp> BackRing<Req, Rsp>
where
    Req: FromBytes + IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes + Immutable,
{
    /// `BACK_RING_INIT`: attaches at index 0 to a page the front end has initialised.
    /// The page is not modified (only the front end initialises the shared ring).
    ///
    /// # Safety
    /// `page` must point to `page_size` bytes that stay mapped, readable and writable for
    /// the whole life of the returned ring, and that nobody accesses other than as this Xen
    /// shared ring (the peer may write them concurrently at any time; that is allowed).
    /// Only one `BackRing` may drive a given page at a time.
    pub unsafe fn init(page: *mut u8, page_size: usize) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        unsafe { Self::attach(page, page_size, 0) }
    }

    /// `BACK_RING_ATTACH`: attaches with private indices starting at `idx`.
    ///
    /// # Safety
    /// As [`BackRing::init`].
    pub unsafe fn attach(page: *mut u8, page_size: usize, idx: RingIdx) -> Result<Self, RingError> {
        // SAFETY: forwarded caller contract.
        let shared = unsafe { Shared::new(page, page_size) }?;
        Ok(Self {
            shared,
            rsp_prod_pvt: idx,
            req_cons: idx,
            rsp_prod_published: idx,
            req_prod_seen: idx,
            prefetched: idx,
        })
    }

    /// `RING_SIZE`: number of slots.
    #[inline]
    pub fn size(&self) -> u32 {
        self.shared.size()
    }

    /// Private consumer index: the next request is read from here.
    #[inline]
    pub fn req_cons(&self) -> RingIdx {
        self.req_cons
    }

    /// Private producer index: the next response goes here.
    #[inline]
    pub fn rsp_prod_pvt(&self) -> RingIdx {
        self.rsp_prod_pvt
    }

    /// `RING_REQUEST_CONS_OVERFLOW`: would consuming index `cons` overrun slots whose
    /// responses have not been produced yet?
    #[inline]
    pub fn request_cons_overflow(&self, cons: RingIdx) -> bool {
        cons.wrapping_sub(self.rsp_prod_pvt) >= self.size()
    }

    /// Requests consumed but not yet answered.
    #[inline]
    pub fn unanswered_requests(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Prefetches for writing the next (up to) [`PREFETCH_SLOTS`] seen slots not yet
    /// prefetched (see `Shared::prefetch_slots`); called when new slots are seen and when
    /// consumption comes within half a window of the prefetched ones, so a long batch
    /// streams in a window at a time.
    #[inline(always)]
    fn prefetch_more(&mut self) {
        let end = if self.req_prod_seen.wrapping_sub(self.prefetched) > PREFETCH_SLOTS {
            self.prefetched.wrapping_add(PREFETCH_SLOTS)
        } else {
            self.req_prod_seen
        };
        self.shared.prefetch_slots(self.prefetched, end);
        self.prefetched = end;
    }

    /// Reads and validates `req_prod` (then `xen_rmb()`, as an acquire load).
    #[inline]
    fn refresh_req_prod(&mut self) -> Result<RingIdx, RingError> {
        let prod = self.shared.load(Index::ReqProd, Ordering::Acquire);
        let in_flight = prod.wrapping_sub(self.rsp_prod_pvt);
        // RING_REQUEST_PROD_OVERFLOW (more unanswered requests than slots), or the index
        // moved back behind requests we already consumed.
        if in_flight > self.size() || in_flight < self.unanswered_requests() {
            return Err(RingError::RequestProdOverflow {
                req_prod: prod,
                req_cons: self.req_cons,
                rsp_prod_pvt: self.rsp_prod_pvt,
                size: self.size(),
            });
        }
        if prod != self.req_prod_seen {
            // New work from the peer: this side publishes its own index soon.
            self.shared.prefetch_header();
            self.req_prod_seen = prod;
            if self.prefetched.wrapping_sub(self.req_cons) > prod.wrapping_sub(self.req_cons) {
                // Only if the peer moved its index back: keep cons <= prefetched <= seen.
                self.prefetched = self.req_cons;
            }
            self.prefetch_more();
        }
        Ok(prod)
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS` (as a count): reads `req_prod` from the page. The
    /// result never exceeds the slots not holding unanswered requests.
    #[inline]
    pub fn unconsumed_requests(&mut self) -> Result<u32, RingError> {
        let prod = self.refresh_req_prod()?;
        // Validation above makes this <= size - unanswered, the second term of ring.h's min.
        Ok(prod.wrapping_sub(self.req_cons))
    }

    /// Copies the next request out of the ring (`RING_COPY_REQUEST`: one copy into private
    /// memory, so validation never re-reads shared memory — XSA-155) and advances
    /// `req_cons`, or returns `None` if there is none. `req_prod` is re-read only when the
    /// requests seen last time are used up.
    #[inline]
    pub fn read_request(&mut self) -> Result<Option<Req>, RingError> {
        if self.req_cons == self.req_prod_seen && self.refresh_req_prod()? == self.req_cons {
            return Ok(None);
        }
        // Invariant from validation: req_cons - rsp_prod_pvt < size here.
        debug_assert!(!self.request_cons_overflow(self.req_cons));
        let req = self.shared.read_req(self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        if self.prefetched != self.req_prod_seen
            && self.prefetched.wrapping_sub(self.req_cons) <= PREFETCH_SLOTS / 2
        {
            self.prefetch_more();
        }
        Ok(Some(req))
    }

    /// Writes `rsp` into the slot of the oldest unanswered request
    /// (`*RING_GET_RESPONSE(r, rsp_prod_pvt++) = rsp`) and returns its index. Not visible to
    /// the front end until published.
    #[inline]
    pub fn write_response(&mut self, rsp: Rsp) -> Result<RingIdx, RingError> {
        if self.rsp_prod_pvt == self.req_cons {
            return Err(RingError::NoRequestToAnswer);
        }
        let idx = self.rsp_prod_pvt;
        self.shared.write_rsp(idx, &rsp);
        self.rsp_prod_pvt = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Responses written but not yet published.
    #[inline]
    pub fn unpushed_responses(&self) -> u32 {
        self.rsp_prod_pvt.wrapping_sub(self.rsp_prod_published)
    }

    /// `RING_PUSH_RESPONSES`: publishes all written responses without the notification
    /// check (for busy-polling peers only).
    #[inline]
    pub fn push_responses(&mut self) {
        if self.rsp_prod_pvt != self.rsp_prod_published {
            self.shared.prefetch_header();
            self.shared
                .demote_slots(self.rsp_prod_published, self.rsp_prod_pvt);
            self.shared
                .store(Index::RspProd, self.rsp_prod_pvt, Ordering::Release);
            self.rsp_prod_published = self.rsp_prod_pvt;
        }
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publishes all written responses and returns
    /// whether the front end asked to be notified. Returns `false` without touching the
    /// page if nothing is new.
    #[inline]
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        let old = self.rsp_prod_published;
        let new = self.rsp_prod_pvt;
        if old == new {
            return false;
        }
        // xen_wmb(): the front end sees the responses before the new producer index.
        self.shared.prefetch_header();
        self.shared.demote_slots(old, new);
        self.shared.store(Index::RspProd, new, Ordering::Release);
        self.rsp_prod_published = new;
        // xen_mb(): the front end sees the new index before we read its event index.
        fence(Ordering::SeqCst);
        let event = self.shared.load(Index::RspEvent, Ordering::Relaxed);
        needs_notify(old, new, event)
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: returns `true` if requests are pending; otherwise
    /// sets `req_event = req_cons + 1`, issues a full barrier and checks once more. Sleep
    /// only on `Ok(false)`.
    #[inline]
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? != 0 {
            return Ok(true);
        }
        self.shared.store(
            Index::ReqEvent,
            self.req_cons.wrapping_add(1),
            Ordering::Relaxed,
        );
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_requests()? != 0)
    }

    /// Waits for `needed` unconsumed requests without consuming any (netback's
    /// `xenvif_rx_ring_slots_available`: a packet needs several receive buffers at once).
    /// Returns `Ok(true)` if they are there; otherwise sets `req_event` to the published
    /// `req_prod + 1` (a notification on the front-end's next request), issues a full
    /// barrier and checks again, returning `Ok(false)` only when still short, so the
    /// caller may sleep until the next event and then ask again.
    #[inline]
    pub fn wait_for_requests(&mut self, needed: u32) -> Result<bool, RingError> {
        loop {
            let prod = self.refresh_req_prod()?;
            if prod.wrapping_sub(self.req_cons) >= needed {
                return Ok(true);
            }
            self.shared
                .store(Index::ReqEvent, prod.wrapping_add(1), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.refresh_req_prod()? == prod {
                return Ok(false);
            }
        }
    }
}
