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
 *
 * Latency: the front takes one TSC reading before writing each batch and one per pass
 * that finds responses; each response adds (pass time - its batch's time) to `hist`, a
 * log-linear histogram (lat_bucket, the same function as ring-bench's `bucket`).
 *
 * The ring spans `bytes` (a multiple of 4096: multi-page rings as with blkif's
 * ring-page-order), so __RING_SIZE is computed from it at run time.
 */
#include <stdlib.h>
#include <x86intrin.h>
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

/* Log-linear latency bucket: exact below 64 ticks, then 32 buckets per power of two. */
static inline unsigned lat_bucket(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v);
    return 64 + (e - 6) * 32 + (unsigned)((v >> (e - 5)) & 31);
}

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

uint64_t c_bench_blkif_front(void *page, size_t bytes, uint32_t batch, const uint32_t *stop,
                             uint32_t *done, uint64_t *hist)
{
    blkif_front_ring_t fr;
    uint64_t sent = 0, recv = 0;
    FRONT_RING_INIT(&fr, (struct blkif_sring *)page, bytes);
    uint32_t mask = RING_SIZE(&fr) - 1;
    uint64_t *stamp = calloc(RING_SIZE(&fr), sizeof(uint64_t));
    if (!stamp)
        abort();
    for (;;) {
        int stopping = load_flag(stop);
        if (!stopping && RING_FREE_REQUESTS(&fr) >= batch) {
            uint64_t t = __rdtsc();
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
                stamp[fr.req_prod_pvt & mask] = t;
                *RING_GET_REQUEST(&fr, fr.req_prod_pvt) = r;
                fr.req_prod_pvt++;
                sent++;
            }
            RING_PUSH_REQUESTS(&fr);
        }
        RING_IDX rp = fr.sring->rsp_prod;
        xen_rmb();
        if (fr.rsp_cons != rp) {
            uint64_t now = __rdtsc();
            for (; fr.rsp_cons != rp; fr.rsp_cons++) {
                struct blkif_response rsp;
                RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
                if (rsp.id != recv)
                    abort();
                hist[lat_bucket(now - stamp[fr.rsp_cons & mask])]++;
                recv++;
            }
        }
        if (stopping && recv == sent)
            break;
    }
    free(stamp);
    __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    return recv;
}

void c_bench_blkif_back(void *page, size_t bytes, uint32_t batch, const uint32_t *done)
{
    blkif_back_ring_t br;
    RING_IDX rp = 0;
    BACK_RING_INIT(&br, (struct blkif_sring *)page, bytes);
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

uint64_t c_bench_e64_front(void *page, size_t bytes, uint32_t batch, const uint32_t *stop,
                           uint32_t *done, uint64_t *hist)
{
    e64_front_ring_t fr;
    uint64_t sent = 0, recv = 0;
    FRONT_RING_INIT(&fr, (struct e64_sring *)page, bytes);
    uint32_t mask = RING_SIZE(&fr) - 1;
    uint64_t *stamp = calloc(RING_SIZE(&fr), sizeof(uint64_t));
    if (!stamp)
        abort();
    for (;;) {
        int stopping = load_flag(stop);
        if (!stopping && RING_FREE_REQUESTS(&fr) >= batch) {
            uint64_t t = __rdtsc();
            for (uint32_t i = 0; i < batch; i++) {
                struct e64_request r;
                r.id = sent;
                for (unsigned k = 0; k < 7; k++)
                    r.data[k] = sent + k;
                stamp[fr.req_prod_pvt & mask] = t;
                *RING_GET_REQUEST(&fr, fr.req_prod_pvt) = r;
                fr.req_prod_pvt++;
                sent++;
            }
            RING_PUSH_REQUESTS(&fr);
        }
        RING_IDX rp = fr.sring->rsp_prod;
        xen_rmb();
        if (fr.rsp_cons != rp) {
            uint64_t now = __rdtsc();
            for (; fr.rsp_cons != rp; fr.rsp_cons++) {
                struct e64_response rsp;
                RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
                if (rsp.id != recv)
                    abort();
                hist[lat_bucket(now - stamp[fr.rsp_cons & mask])]++;
                recv++;
            }
        }
        if (stopping && recv == sent)
            break;
    }
    free(stamp);
    __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    return recv;
}

void c_bench_e64_back(void *page, size_t bytes, uint32_t batch, const uint32_t *done)
{
    e64_back_ring_t br;
    RING_IDX rp = 0;
    BACK_RING_INIT(&br, (struct e64_sring *)page, bytes);
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

/*
 * Single-threaded instruction counting (ring-bench --instr): `rounds` times, the front
 * writes BATCH requests and publishes them, the back consumes, answers and publishes
 * them, the front consumes the responses. The same ring.h code as the threaded loops,
 * minus polling and timing, so an instruction counter (callgrind) sees the ring's own
 * work per message.
 */
uint64_t c_steps_blkif(void *page, size_t bytes, uint32_t batch, uint64_t rounds)
{
    blkif_front_ring_t fr;
    blkif_back_ring_t br;
    uint64_t sent = 0, recv = 0, acc = 0;
    SHARED_RING_INIT((struct blkif_sring *)page);
    FRONT_RING_INIT(&fr, (struct blkif_sring *)page, bytes);
    BACK_RING_INIT(&br, (struct blkif_sring *)page, bytes);
    for (uint64_t round = 0; round < rounds; round++) {
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
        RING_IDX rp = br.sring->req_prod;
        xen_rmb();
        while (br.req_cons != rp) {
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
        }
        RING_PUSH_RESPONSES(&br);
        RING_IDX sp = fr.sring->rsp_prod;
        xen_rmb();
        for (; fr.rsp_cons != sp; fr.rsp_cons++) {
            struct blkif_response rsp;
            RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
            if (rsp.id != recv)
                abort();
            acc += (uint16_t)rsp.status;
            recv++;
        }
    }
    return recv + (acc & 1);
}

uint64_t c_steps_e64(void *page, size_t bytes, uint32_t batch, uint64_t rounds)
{
    e64_front_ring_t fr;
    e64_back_ring_t br;
    uint64_t sent = 0, recv = 0;
    SHARED_RING_INIT((struct e64_sring *)page);
    FRONT_RING_INIT(&fr, (struct e64_sring *)page, bytes);
    BACK_RING_INIT(&br, (struct e64_sring *)page, bytes);
    for (uint64_t round = 0; round < rounds; round++) {
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
        RING_IDX rp = br.sring->req_prod;
        xen_rmb();
        while (br.req_cons != rp) {
            struct e64_request req;
            RING_COPY_REQUEST(&br, br.req_cons, &req);
            br.req_cons++;
            struct e64_response rsp;
            rsp.id = req.id;
            for (unsigned k = 0; k < 7; k++)
                rsp.data[k] = req.data[k];
            *RING_GET_RESPONSE(&br, br.rsp_prod_pvt) = rsp;
            br.rsp_prod_pvt++;
        }
        RING_PUSH_RESPONSES(&br);
        RING_IDX sp = fr.sring->rsp_prod;
        xen_rmb();
        for (; fr.rsp_cons != sp; fr.rsp_cons++) {
            struct e64_response rsp;
            RING_COPY_RESPONSE(&fr, fr.rsp_cons, &rsp);
            if (rsp.id != recv)
                abort();
            recv++;
        }
    }
    return recv;
}
