/*
 * ring-c-peer: one end of a blkif ring, built from the real io/ring.h macros, for the
 * xen-ring interop test. The other end is the Rust test process.
 *
 *   ring-c-peer front|back MEMFD EVT_TO_PEER EVT_FROM_PEER COUNT WAIT_TIMEOUT_MS
 *
 * MEMFD is a 4096-byte shared memory file holding the ring page; EVT_* are eventfds
 * standing in for the event channel (we notify the peer through EVT_TO_PEER and sleep on
 * EVT_FROM_PEER). Notification hold-off follows ring.h: notify only when
 * RING_PUSH_*_AND_CHECK_NOTIFY says so, sleep only after RING_FINAL_CHECK_* finds nothing.
 *
 * front: XEN_FRONT_RING_INIT, then one "connected" event to the peer (not counted),
 *        then COUNT requests out and COUNT responses checked.
 * back:  waits for the peer's "connected" event, BACK_RING_INIT, then COUNT requests
 *        checked and answered.
 *
 * Prints "ok notifications=N waits=W" and exits 0 on success; exit 2 on a payload or
 * protocol error, 3 on a timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_common.h"

#define PAGE 4096

static int evt_out, evt_in, timeout_ms;
static uint64_t notifications, waits;

static void notify_peer(void)
{
    uint64_t one = 1;
    if (write(evt_out, &one, sizeof(one)) != sizeof(one)) {
        perror("eventfd write");
        exit(2);
    }
    notifications++;
}

static void wait_peer(const char *who)
{
    struct pollfd p = { .fd = evt_in, .events = POLLIN };
    int r;
    waits++;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        fprintf(stderr, "ring-c-peer %s: no notification within %d ms (lost wakeup?)\n", who,
                timeout_ms);
        exit(3);
    }
    uint64_t v;
    if (read(evt_in, &v, sizeof(v)) != sizeof(v)) {
        perror("eventfd read");
        exit(2);
    }
}

static void fail(const char *msg, uint64_t id)
{
    fprintf(stderr, "ring-c-peer: %s at id %" PRIu64 "\n", msg, id);
    exit(2);
}

static void run_front(struct blkif_sring *s, uint64_t count)
{
    blkif_front_ring_t fr;
    uint64_t sent = 0, received = 0;
    int notify, work;

    XEN_FRONT_RING_INIT(&fr, s, PAGE);
    /* "Connected": tell the back end the ring is initialised (not a ring notification). */
    {
        uint64_t one = 1;
        if (write(evt_out, &one, sizeof(one)) != sizeof(one))
            exit(2);
    }
    while (received < count) {
        unsigned want = (unsigned)(sent % 32) + 1, n = 0;
        while (sent < count && n < want && !RING_FULL(&fr)) {
            make_request(sent, RING_GET_REQUEST(&fr, fr.req_prod_pvt));
            fr.req_prod_pvt++;
            sent++;
            n++;
        }
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&fr, notify);
        if (notify)
            notify_peer();
        for (;;) {
            RING_IDX rp = fr.sring->rsp_prod;
            xen_rmb();
            if (RING_RESPONSE_PROD_OVERFLOW(&fr, rp))
                fail("rsp_prod overflow", received);
            if (rp == fr.rsp_cons)
                break;
            for (; fr.rsp_cons != rp; fr.rsp_cons++) {
                struct blkif_response rsp;
                RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
                if (!check_response(received, &rsp))
                    fail("bad response", received);
                received++;
            }
        }
        if (received < count && (sent == count || RING_FULL(&fr))) {
            RING_FINAL_CHECK_FOR_RESPONSES(&fr, work);
            if (!work)
                wait_peer("front");
        }
    }
}

static void run_back(struct blkif_sring *s, uint64_t count)
{
    blkif_back_ring_t br;
    uint64_t expected = 0;
    unsigned batch = 0;
    int notify, work;

    wait_peer("back (connect)");
    waits--;
    BACK_RING_INIT(&br, s, PAGE);
    while (expected < count) {
        RING_IDX rp = br.sring->req_prod;
        xen_rmb();
        if (RING_REQUEST_PROD_OVERFLOW(&br, rp))
            fail("req_prod overflow", expected);
        while (br.req_cons != rp && !RING_REQUEST_CONS_OVERFLOW(&br, br.req_cons)) {
            struct blkif_request req;
            RING_COPY_REQUEST(&br, br.req_cons, &req);
            br.req_cons++;
            if (!check_request(expected, &req))
                fail("bad request", expected);
            make_response(req.id, RING_GET_RESPONSE(&br, br.rsp_prod_pvt));
            br.rsp_prod_pvt++;
            expected++;
            if (++batch >= (unsigned)(expected % 8) + 1) {
                batch = 0;
                RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&br, notify);
                if (notify)
                    notify_peer();
            }
        }
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&br, notify);
        if (notify)
            notify_peer();
        if (expected < count) {
            RING_FINAL_CHECK_FOR_REQUESTS(&br, work);
            if (!work)
                wait_peer("back");
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s front|back MEMFD EVT_TO_PEER EVT_FROM_PEER COUNT TIMEOUT_MS\n",
                argv[0]);
        return 2;
    }
    int memfd = atoi(argv[2]);
    evt_out = atoi(argv[3]);
    evt_in = atoi(argv[4]);
    uint64_t count = strtoull(argv[5], NULL, 10);
    timeout_ms = atoi(argv[6]);
    /* Hard stop whatever happens. */
    alarm(300);

    void *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    if (strcmp(argv[1], "front") == 0)
        run_front(page, count);
    else if (strcmp(argv[1], "back") == 0)
        run_back(page, count);
    else
        return 2;
    printf("ok notifications=%" PRIu64 " waits=%" PRIu64 "\n", notifications, waits);
    return 0;
}
