//! Property tests: random operation sequences keep the ring invariants; random hostile
//! index values and entry bytes never panic, never index out of bounds, never loop.

mod common;

use common::{make_request, make_response, Page, PAGE_SIZE};
use proptest::prelude::*;
use xen_abi::blkif::{BlkifRequest, BlkifResponse};
use xen_ring::{BackRing, FrontRing, RingError};

type Front = FrontRing<BlkifRequest, BlkifResponse>;
type Back = BackRing<BlkifRequest, BlkifResponse>;

#[derive(Clone, Debug)]
enum Op {
    FrontWrite(u8),
    FrontPush,
    FrontPushNotify,
    FrontRead(u8),
    FrontFinalCheck,
    BackRead(u8),
    BackRespond(u8),
    BackPush,
    BackPushNotify,
    BackFinalCheck,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..40).prop_map(Op::FrontWrite),
        Just(Op::FrontPush),
        Just(Op::FrontPushNotify),
        (0u8..40).prop_map(Op::FrontRead),
        Just(Op::FrontFinalCheck),
        (0u8..40).prop_map(Op::BackRead),
        (0u8..40).prop_map(Op::BackRespond),
        Just(Op::BackPush),
        Just(Op::BackPushNotify),
        Just(Op::BackFinalCheck),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A well-behaved front and back, driven in any interleaving, never error (other than
    /// `Full` / `NoRequestToAnswer` where those are the truth), deliver every request and
    /// response exactly once and in order, and keep `free + outstanding == size`.
    #[test]
    fn random_sequences_keep_invariants(start in any::<u32>(), ops in proptest::collection::vec(op(), 1..200)) {
        let mut page = Page::new();
        let p = page.ptr();
        // SAFETY: live aligned page outliving the rings, accessed only through them.
        unsafe { Front::init(p, PAGE_SIZE) }.unwrap();
        page.0[0..4].copy_from_slice(&start.to_ne_bytes());
        page.0[8..12].copy_from_slice(&start.to_ne_bytes());
        // SAFETY: as above.
        let mut front = unsafe { Front::attach(p, PAGE_SIZE, start) }.unwrap();
        // SAFETY: as above.
        let mut back = unsafe { Back::attach(p, PAGE_SIZE, start) }.unwrap();
        let size = front.size();

        let (mut next_req, mut next_back_req, mut next_rsp) = (0u64, 0u64, 0u64);
        let mut pending: std::collections::VecDeque<BlkifRequest> = Default::default();
        let mut published_reqs = 0u64;

        for op in ops {
            match op {
                Op::FrontWrite(n) => for _ in 0..n {
                    let free = front.free_requests();
                    match front.write_request(make_request(next_req)) {
                        Ok(_) => { prop_assert!(free > 0); next_req += 1; }
                        Err(e) => { prop_assert_eq!(e, RingError::Full); prop_assert_eq!(free, 0); break; }
                    }
                },
                Op::FrontPush => { front.push_requests(); published_reqs = next_req; }
                Op::FrontPushNotify => { front.push_requests_and_check_notify(); published_reqs = next_req; }
                Op::FrontRead(n) => for _ in 0..n {
                    match front.read_response().unwrap() {
                        Some(rsp) => { prop_assert_eq!(rsp, make_response(&make_request(next_rsp))); next_rsp += 1; }
                        None => break,
                    }
                },
                Op::FrontFinalCheck => {
                    let work = front.final_check_for_responses().unwrap();
                    prop_assert_eq!(work, front.unconsumed_responses().unwrap() > 0);
                }
                Op::BackRead(n) => for _ in 0..n {
                    match back.read_request().unwrap() {
                        Some(req) => { prop_assert_eq!(req, make_request(next_back_req)); next_back_req += 1; pending.push_back(req); }
                        None => { prop_assert_eq!(next_back_req, published_reqs); break; }
                    }
                },
                Op::BackRespond(n) => for _ in 0..n {
                    match pending.pop_front() {
                        Some(req) => { back.write_response(make_response(&req)).unwrap(); }
                        None => { prop_assert_eq!(back.write_response(BlkifResponse::default()), Err(RingError::NoRequestToAnswer)); break; }
                    }
                },
                Op::BackPush => back.push_responses(),
                Op::BackPushNotify => { back.push_responses_and_check_notify(); }
                Op::BackFinalCheck => {
                    let work = back.final_check_for_requests().unwrap();
                    prop_assert_eq!(work, back.unconsumed_requests().unwrap() > 0);
                }
            }
            // Outstanding = written but not yet answered-and-consumed by the front.
            let outstanding = (next_req - next_rsp) as u32;
            prop_assert_eq!(front.free_requests() + outstanding, size);
            prop_assert!(outstanding <= size);
            prop_assert!(back.unanswered_requests() as usize == pending.len());
            prop_assert!(back.unanswered_requests() <= size);
        }
    }

    /// A hostile peer writes arbitrary indices and entry bytes. Every call returns (an error
    /// or a value) without panicking, and draining loops end within `size` iterations.
    #[test]
    fn hostile_peer_never_panics_or_loops(
        bytes in proptest::collection::vec(any::<u8>(), PAGE_SIZE),
        idx in proptest::array::uniform4(any::<u32>()),
        start in any::<u32>(),
        pre_writes in 0u32..33,
    ) {
        let mut page = Page::new();
        page.0.copy_from_slice(&bytes);
        let p = page.ptr();

        // The back end against a hostile front end.
        // SAFETY: live aligned page outliving the ring, accessed only through it.
        let mut back = unsafe { Back::attach(p, PAGE_SIZE, start) }.unwrap();
        for (i, v) in idx.iter().enumerate() {
            page.0[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let size = back.size();
        let claimed = idx[0].wrapping_sub(start);
        let mut n = 0u32;
        loop {
            match back.read_request() {
                Ok(Some(_req)) => {
                    n += 1;
                    prop_assert!(n <= size, "read more requests than the ring holds");
                    if n & 1 == 0 {
                        back.write_response(BlkifResponse::default()).unwrap();
                    }
                }
                Ok(None) => { prop_assert_eq!(n, claimed); break; }
                Err(e) => {
                    let is_overflow = matches!(e, RingError::RequestProdOverflow { .. });
                    prop_assert!(is_overflow);
                    prop_assert!(claimed > size);
                    break;
                }
            }
        }
        let _ = back.final_check_for_requests();
        let _ = back.push_responses_and_check_notify();

        // The front end against a hostile back end.
        // SAFETY: as above (the back ring is no longer used).
        let mut front = unsafe { Front::attach(p, PAGE_SIZE, start) }.unwrap();
        for _ in 0..pre_writes {
            let _ = front.write_request(make_request(7));
        }
        let _ = front.push_requests_and_check_notify();
        for (i, v) in idx.iter().enumerate() {
            page.0[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let claimed = idx[2].wrapping_sub(start);
        let mut n = 0u32;
        loop {
            match front.read_response() {
                Ok(Some(_rsp)) => { n += 1; prop_assert!(n <= pre_writes.min(size)); }
                Ok(None) => { prop_assert_eq!(n, claimed); break; }
                Err(e) => {
                    let is_overflow = matches!(e, RingError::ResponseProdOverflow { .. });
                    prop_assert!(is_overflow);
                    prop_assert!(claimed > pre_writes.min(size));
                    break;
                }
            }
        }
        let _ = front.final_check_for_responses();
        prop_assert!(front.free_requests() <= size);
    }
}
