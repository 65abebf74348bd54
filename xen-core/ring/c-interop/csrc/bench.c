/*
 * The C ring.h side of ring-bench: a front end and a back end built from the real
 * io/ring.h macros, each run (busy-polling) on its own thread by the Rust benchmark.
 *
 * Workload (identical for every implementation in ring-bench): the front end waits for
 * BATCH free slots, writes BATCH requests and publishes them once (RING_PUSH_REQUESTS),
 * then consumes every available response; the back end consumes up to BATCH requests,
 * answers each with a response (blkif: carrying a fold of every request word; 64-byte
 * entries: an echo) and publishes them once. Busy-polling, so no notification
 * checks. The front stops producing when *stop is set, drains, then sets *done.
 */
#include <stdlib.h>
#include "ring_common.h"

/* The back end reads the whole request: it answers with a 16-bit fold of all 14 words
 * (the same on the Rust side), so no implementation can skip copying any of it. */
static inline int16_t fold_request(const struct blkif_request *req)
{
    uint64_t w[sizeof(*req) / 8], acc = 0;
    memcpy(w, req, sizeof(w));
    for (unsigned i = 0; i < sizeof(w) / 8; i++)
        acc ^= w[i];
    acc ^= acc >> 32;
    acc ^= acc >> 16;
    return (int16_t)acc;
}

#define PAGE 4096

void c_bench_init_blkif(void *page)
{
    SHARED_RING_INIT((struct blkif_sring *)page);
}

void c_bench_init_e64(void *page)
{
    SHARED_RING_INIT((struct e64_sring *)page);
}

static inline int load_flag(const uint32_t *f)
{
    return __atomic_load_n(f, __ATOMIC_ACQUIRE) != 0;
}

uint64_t c_bench_blkif_front(void *page, uint32_t batch, const uint32_t *stop, uint32_t *done)
{
    blkif_front_ring_t fr;
    uint64_t sent = 0, recv = 0;
    FRONT_RING_INIT(&fr, (struct blkif_sring *)page, PAGE);
    for (;;) {
        int stopping = load_flag(stop);
        if (!stopping && RING_FREE_REQUESTS(&fr) >= batch) {
            for (uint32_t i = 0; i < batch; i++) {
                struct blkif_request r;
                memset(&r, 0, sizeof(r));
                r.operation = BLKIF_OP_READ;
                r.nr_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST;
                r.id = sent;
                r.sector_number = sent;
                for (unsigned k = 0; k < BLKIF_MAX_SEGMENTS_PER_REQUEST; k++) {
                    r.seg[k].gref = (uint32_t)sent + k;
                    r.seg[k].last_sect = 7;
                }
                *RING_GET_REQUEST(&fr, fr.req_prod_pvt) = r;
                fr.req_prod_pvt++;
                sent++;
            }
            RING_PUSH_REQUESTS(&fr);
        }
        RING_IDX rp = fr.sring->rsp_prod;
        xen_rmb();
        for (; fr.rsp_cons != rp; fr.rsp_cons++) {
            struct blkif_response rsp;
            RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
            if (rsp.id != recv)
                abort();
            recv++;
        }
        if (stopping && recv == sent)
            break;
    }
    __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    return recv;
}

void c_bench_blkif_back(void *page, uint32_t batch, const uint32_t *done)
{
    blkif_back_ring_t br;
    RING_IDX rp = 0;
    BACK_RING_INIT(&br, (struct blkif_sring *)page, PAGE);
    while (!load_flag(done)) {
        /* Like blkback: re-read req_prod only once the requests seen last time are used. */
        if (br.req_cons == rp) {
            rp = br.sring->req_prod;
            xen_rmb();
        }
        uint32_t n = 0;
        while (br.req_cons != rp && n < batch) {
            struct blkif_request req;
            RING_COPY_REQUEST(&br, br.req_cons, &req);
            br.req_cons++;
            struct blkif_response rsp;
            memset(&rsp, 0, sizeof(rsp));
            rsp.id = req.id;
            rsp.operation = req.operation;
            rsp.status = fold_request(&req);
            *RING_GET_RESPONSE(&br, br.rsp_prod_pvt) = rsp;
            br.rsp_prod_pvt++;
            n++;
        }
        if (n)
            RING_PUSH_RESPONSES(&br);
    }
}

uint64_t c_bench_e64_front(void *page, uint32_t batch, const uint32_t *stop, uint32_t *done)
{
    e64_front_ring_t fr;
    uint64_t sent = 0, recv = 0;
    FRONT_RING_INIT(&fr, (struct e64_sring *)page, PAGE);
    for (;;) {
        int stopping = load_flag(stop);
        if (!stopping && RING_FREE_REQUESTS(&fr) >= batch) {
            for (uint32_t i = 0; i < batch; i++) {
                struct e64_request r;
                r.id = sent;
                for (unsigned k = 0; k < 7; k++)
                    r.data[k] = sent + k;
                *RING_GET_REQUEST(&fr, fr.req_prod_pvt) = r;
                fr.req_prod_pvt++;
                sent++;
            }
            RING_PUSH_REQUESTS(&fr);
        }
        RING_IDX rp = fr.sring->rsp_prod;
        xen_rmb();
        for (; fr.rsp_cons != rp; fr.rsp_cons++) {
            struct e64_response rsp;
            RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
            if (rsp.id != recv)
                abort();
            recv++;
        }
        if (stopping && recv == sent)
            break;
    }
    __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    return recv;
}

void c_bench_e64_back(void *page, uint32_t batch, const uint32_t *done)
{
    e64_back_ring_t br;
    RING_IDX rp = 0;
    BACK_RING_INIT(&br, (struct e64_sring *)page, PAGE);
    while (!load_flag(done)) {
        /* Like blkback: re-read req_prod only once the requests seen last time are used. */
        if (br.req_cons == rp) {
            rp = br.sring->req_prod;
            xen_rmb();
        }
        uint32_t n = 0;
        while (br.req_cons != rp && n < batch) {
            struct e64_request req;
            RING_COPY_REQUEST(&br, br.req_cons, &req);
            br.req_cons++;
            struct e64_response rsp;
            rsp.id = req.id;
            for (unsigned k = 0; k < 7; k++)
                rsp.data[k] = req.data[k];
            *RING_GET_RESPONSE(&br, br.rsp_prod_pvt) = rsp;
            br.rsp_prod_pvt++;
            n++;
        }
        if (n)
            RING_PUSH_RESPONSES(&br);
    }
}
