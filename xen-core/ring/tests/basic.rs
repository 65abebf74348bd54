//! Single-threaded behaviour of the front and back ends over one page.

mod common;

use common::{make_request, make_response, Page, PAGE_SIZE};
use xen_abi::blkif::{BlkifRequest, BlkifResponse};
use xen_ring::{BackRing, FrontRing, RingError};

type Front = FrontRing<BlkifRequest, BlkifResponse>;
type Back = BackRing<BlkifRequest, BlkifResponse>;

fn pair(page: &mut Page) -> (Front, Back) {
    let p = page.ptr();
    // SAFETY: the page is a live, aligned 4096-byte allocation that outlives both rings
    // (the tests keep the Box alive), and is accessed only through them.
    let front = unsafe { Front::init(p, PAGE_SIZE) }.unwrap();
    // SAFETY: as above.
    let back = unsafe { Back::init(p, PAGE_SIZE) }.unwrap();
    (front, back)
}

fn idx(page: &Page, off: usize) -> u32 {
    u32::from_ne_bytes(page.0[off..off + 4].try_into().unwrap())
}

fn set_idx(page: &mut Page, off: usize, v: u32) {
    page.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn init_writes_shared_ring_init_header() {
    let mut page = Page::new();
    page.0.fill(0xAA);
    let (front, _back) = pair(&mut page);
    assert_eq!(front.size(), 32);
    assert_eq!(idx(&page, 0), 0, "req_prod");
    assert_eq!(idx(&page, 4), 1, "req_event");
    assert_eq!(idx(&page, 8), 0, "rsp_prod");
    assert_eq!(idx(&page, 12), 1, "rsp_event");
    assert!(page.0[16..64].iter().all(|&b| b == 0), "pvt and pad zeroed");
    assert!(page.0[64..].iter().all(|&b| b == 0xAA), "entries untouched");
}

#[test]
fn back_attach_does_not_touch_page() {
    let mut page = Page::new();
    page.0.fill(0x55);
    let p = page.ptr();
    // SAFETY: live aligned page, only used through this ring.
    let back = unsafe { Back::init(p, PAGE_SIZE) }.unwrap();
    assert_eq!(back.size(), 32);
    assert!(page.0.iter().all(|&b| b == 0x55));
}

#[test]
fn round_trip_with_notifications() {
    let mut page = Page::new();
    let (mut front, mut back) = pair(&mut page);
    assert_eq!(front.free_requests(), 32);
    for id in 0..3 {
        front.write_request(make_request(id)).unwrap();
    }
    assert_eq!(front.unpushed_requests(), 3);
    // req_event is 1 after init: first push notifies.
    assert!(front.push_requests_and_check_notify());
    assert_eq!(idx(&page, 0), 3);
    // Nothing new: no notification, page untouched.
    assert!(!front.push_requests_and_check_notify());

    assert_eq!(back.unconsumed_requests().unwrap(), 3);
    for id in 0..3 {
        let req = back.read_request().unwrap().unwrap();
        assert_eq!(req, make_request(id));
        back.write_response(make_response(&req)).unwrap();
    }
    assert_eq!(back.read_request().unwrap(), None);
    assert!(back.push_responses_and_check_notify());
    assert_eq!(idx(&page, 8), 3);

    assert_eq!(front.unconsumed_responses().unwrap(), 3);
    for id in 0..3 {
        let rsp = front.read_response().unwrap().unwrap();
        assert_eq!(rsp, make_response(&make_request(id)));
    }
    assert_eq!(front.read_response().unwrap(), None);
    assert_eq!(front.free_requests(), 32);

    // Neither side re-armed its event: further pushes don't notify.
    front.write_request(make_request(3)).unwrap();
    assert!(!front.push_requests_and_check_notify());
    // Back finds work in its final check without arming.
    assert!(back.final_check_for_requests().unwrap());
    let req = back.read_request().unwrap().unwrap();
    back.write_response(make_response(&req)).unwrap();
    assert!(!back.push_responses_and_check_notify());
    // Back drained: final check arms req_event = req_cons + 1 and says "sleep".
    assert!(!back.final_check_for_requests().unwrap());
    assert_eq!(idx(&page, 4), 5);
    front.write_request(make_request(4)).unwrap();
    assert!(front.push_requests_and_check_notify());
    // Front drains and arms rsp_event.
    assert!(front.final_check_for_responses().unwrap());
    assert!(front.read_response().unwrap().is_some());
    assert!(!front.final_check_for_responses().unwrap());
    assert_eq!(idx(&page, 12), 5);
}

#[test]
fn full_ring_and_unanswered() {
    let mut page = Page::new();
    let (mut front, mut back) = pair(&mut page);
    for id in 0..32 {
        front.write_request(make_request(id)).unwrap();
    }
    assert!(front.is_full());
    assert_eq!(front.write_request(make_request(99)), Err(RingError::Full));
    front.push_requests();
    assert_eq!(
        back.write_response(BlkifResponse::default()),
        Err(RingError::NoRequestToAnswer)
    );
    for _ in 0..32 {
        back.read_request().unwrap().unwrap();
    }
    assert!(back.request_cons_overflow(back.req_cons()));
    assert_eq!(back.unanswered_requests(), 32);
    assert_eq!(back.read_request().unwrap(), None);
    for _ in 0..32 {
        back.write_response(BlkifResponse::default()).unwrap();
    }
    assert_eq!(
        back.write_response(BlkifResponse::default()),
        Err(RingError::NoRequestToAnswer)
    );
    back.push_responses();
    for _ in 0..32 {
        front.read_response().unwrap().unwrap();
    }
    assert_eq!(front.free_requests(), 32);
}

#[test]
fn hostile_req_prod_is_an_error() {
    let mut page = Page::new();
    let (_front, mut back) = pair(&mut page);
    set_idx(&mut page, 0, 33);
    assert!(matches!(
        back.unconsumed_requests(),
        Err(RingError::RequestProdOverflow { req_prod: 33, .. })
    ));
    assert!(back.read_request().is_err());
    assert!(back.final_check_for_requests().is_err());
    set_idx(&mut page, 0, u32::MAX);
    assert!(back.read_request().is_err());
    set_idx(&mut page, 0, 32);
    assert_eq!(back.unconsumed_requests(), Ok(32));
    // Consume some, then the front "moves req_prod backwards".
    for _ in 0..10 {
        back.read_request().unwrap().unwrap();
    }
    set_idx(&mut page, 0, 5);
    assert!(back.unconsumed_requests().is_err());
}

#[test]
fn hostile_rsp_prod_is_an_error() {
    let mut page = Page::new();
    let (mut front, _back) = pair(&mut page);
    // No requests published: any response is impossible.
    set_idx(&mut page, 8, 1);
    assert!(matches!(
        front.unconsumed_responses(),
        Err(RingError::ResponseProdOverflow { rsp_prod: 1, .. })
    ));
    assert!(front.read_response().is_err());
    assert!(front.final_check_for_responses().is_err());
    for id in 0..4 {
        front.write_request(make_request(id)).unwrap();
    }
    // Written but unpublished requests can't be answered either.
    assert!(front.read_response().is_err());
    front.push_requests();
    assert_eq!(front.unconsumed_responses(), Ok(1));
    set_idx(&mut page, 8, 5);
    assert!(front.unconsumed_responses().is_err());
    set_idx(&mut page, 8, u32::MAX);
    assert!(front.unconsumed_responses().is_err());
}

#[test]
fn wraps_around_u32() {
    let mut page = Page::new();
    let p = page.ptr();
    let start = u32::MAX - 40;
    // SAFETY: live aligned page, only used through these rings.
    unsafe { Front::init(p, PAGE_SIZE) }.unwrap();
    // Re-attach both sides at an index near the wrap, with the page's indices matching.
    set_idx(&mut page, 0, start);
    set_idx(&mut page, 8, start);
    // SAFETY: as above.
    let mut front = unsafe { Front::attach(p, PAGE_SIZE, start) }.unwrap();
    // SAFETY: as above.
    let mut back = unsafe { Back::attach(p, PAGE_SIZE, start) }.unwrap();
    let mut next_rsp = 0;
    for id in 0..200u64 {
        front.write_request(make_request(id)).unwrap();
        front.push_requests();
        let req = back.read_request().unwrap().unwrap();
        assert_eq!(req, make_request(id));
        back.write_response(make_response(&req)).unwrap();
        back.push_responses();
        if id % 3 == 0 {
            while let Some(rsp) = front.read_response().unwrap() {
                assert_eq!(rsp.id, next_rsp);
                next_rsp += 1;
            }
        }
    }
    while let Some(rsp) = front.read_response().unwrap() {
        assert_eq!(rsp.id, next_rsp);
        next_rsp += 1;
    }
    assert_eq!(next_rsp, 200);
    assert_eq!(front.req_prod_pvt(), start.wrapping_add(200));
}

#[test]
fn constructor_errors() {
    let mut page = Page::new();
    // SAFETY: null is rejected before any access.
    let r = unsafe { Front::init(core::ptr::null_mut(), PAGE_SIZE) };
    assert_eq!(r.unwrap_err(), RingError::NullPage);
    // SAFETY: misaligned pointer is rejected before any access.
    let r = unsafe { Front::init(page.ptr().wrapping_add(1), PAGE_SIZE - 1) };
    assert!(matches!(r, Err(RingError::Misaligned { .. })));
    // SAFETY: too-small size is rejected before any access.
    let r = unsafe { Front::init(page.ptr(), 64 + 111) };
    assert!(matches!(r, Err(RingError::PageTooSmall { .. })));
    // SAFETY: the first 176 bytes of the page are valid; one 112-byte slot fits.
    let r = unsafe { Back::init(page.ptr(), 64 + 112) }.unwrap();
    assert_eq!(r.size(), 1);
}

#[test]
fn wait_for_requests_arms_req_event_at_next_request() {
    let mut page = Page::new();
    let (mut front, mut back) = pair(&mut page);
    for i in 0..2 {
        front.write_request(make_request(i)).unwrap();
    }
    front.push_requests();
    assert_eq!(back.wait_for_requests(2), Ok(true));
    assert_eq!(back.wait_for_requests(3), Ok(false));
    // Asked for a notification on the next request (req_prod 2 + 1), nothing consumed.
    assert_eq!(idx(&page, 4), 3, "req_event");
    assert_eq!(back.req_cons(), 0);
    let (mut front, mut back) = pair(&mut page);
    front.write_request(make_request(7)).unwrap();
    // On an empty ring req_event becomes 1: publishing the first request notifies.
    assert_eq!(back.wait_for_requests(1), Ok(false));
    assert!(front.push_requests_and_check_notify());
    assert_eq!(back.wait_for_requests(1), Ok(true));
}

#[test]
fn unchecked_req_prod_past_the_ring_is_refused_by_the_back_end() {
    let mut page = Page::new();
    let (mut front, mut back) = pair(&mut page);
    front.publish_req_prod_unchecked(1000);
    assert!(matches!(back.unconsumed_requests(), Err(RingError::RequestProdOverflow { .. })));
    assert!(matches!(back.read_request(), Err(RingError::RequestProdOverflow { .. })));
    assert_eq!(idx(&page, 0), 1000, "req_prod published as given");
}
