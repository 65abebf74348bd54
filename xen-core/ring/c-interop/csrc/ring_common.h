/*
 * Shared definitions for the C side of the xen-ring interop test and benchmark.
 * Uses the REAL io/ring.h and io/blkif.h from libxen-dev.
 */
#ifndef RING_COMMON_H
#define RING_COMMON_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Barriers ring.h expects (x86_64, TSO): only a full barrier needs a fence; read and
 * write barriers just stop the compiler reordering. */
#define xen_mb()  __sync_synchronize()
#define xen_rmb() __asm__ __volatile__("" ::: "memory")
#define xen_wmb() __asm__ __volatile__("" ::: "memory")

#include <xen/io/ring.h>
#include <xen/io/blkif.h>

/* A ring of 64-byte entries for the benchmark. */
struct e64_request { uint64_t id; uint64_t data[7]; };
struct e64_response { uint64_t id; uint64_t data[7]; };
DEFINE_RING_TYPES(e64, struct e64_request, struct e64_response);

#define cpu_relax() __asm__ __volatile__("pause" ::: "memory")

/* Deterministic blkif payloads derived from the request id: must match the Rust side
 * (xen_ring_c_interop::payload). */
static inline void make_request(uint64_t id, struct blkif_request *r)
{
    memset(r, 0, sizeof(*r));
    r->operation = (uint8_t)(id % 7);
    r->nr_segments = (uint8_t)(id % 12);
    r->handle = (uint16_t)((uint16_t)(id >> 7) ^ 0x5a5a);
    r->id = id;
    r->sector_number = id * 0x9E3779B97F4A7C15ull;
    for (unsigned k = 0; k < BLKIF_MAX_SEGMENTS_PER_REQUEST; k++) {
        r->seg[k].gref = (uint32_t)id ^ (k * 0x01010101u);
        r->seg[k].first_sect = (uint8_t)((id + k) & 7);
        r->seg[k].last_sect = (uint8_t)(((id + k) >> 3) & 7);
    }
}

static inline int check_request(uint64_t id, const struct blkif_request *r)
{
    struct blkif_request e;
    make_request(id, &e);
    if (r->operation != e.operation || r->nr_segments != e.nr_segments ||
        r->handle != e.handle || r->id != e.id || r->sector_number != e.sector_number)
        return 0;
    for (unsigned k = 0; k < BLKIF_MAX_SEGMENTS_PER_REQUEST; k++)
        if (r->seg[k].gref != e.seg[k].gref || r->seg[k].first_sect != e.seg[k].first_sect ||
            r->seg[k].last_sect != e.seg[k].last_sect)
            return 0;
    return 1;
}

static inline void make_response(uint64_t id, struct blkif_response *r)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->operation = (uint8_t)(id % 7);
    r->status = (int16_t)((int16_t)(id % 3) - 2);
}

static inline int check_response(uint64_t id, const struct blkif_response *r)
{
    return r->id == id && r->operation == (uint8_t)(id % 7) &&
           r->status == (int16_t)((int16_t)(id % 3) - 2);
}

_Static_assert(sizeof(struct blkif_request) == 112, "blkif_request size");
_Static_assert(sizeof(struct blkif_response) == 16, "blkif_response size");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "ring header");
_Static_assert(__CONST_RING_SIZE(blkif, 4096) == 32, "blkif ring size");
_Static_assert(__CONST_RING_SIZE(e64, 4096) == 32, "e64 ring size");

#endif
