/*
 * fastcdc_scan.h -- the pure FastCDC cut-point kernel (no Python.h).
 *
 * Concern: given a byte buffer and chunking parameters, say where the next
 * chunk ends.  Nothing here allocates, locks or knows about Python, so the
 * binding can run it with the GIL released and it can be tested on its own.
 *
 * Invariants (the executable spec is chunker/reference.py; tests prove the
 * two agree byte for byte):
 *   - a cut depends only on the bytes from the chunk start up to at most
 *     max_size bytes later, which is what lets a streamer cut as soon as it
 *     holds max_size bytes;
 *   - every chunk but the last of a buffer has min_size..max_size bytes;
 *   - the gear table is fixed: changing it (or anything else that moves cuts)
 *     silently ends deduplication against every image already stored.
 */
#ifndef CAS_GLANCE_FASTCDC_SCAN_H
#define CAS_GLANCE_FASTCDC_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t min_size;    /* bytes skipped before any cut is considered, >= 1 */
    size_t normal_size; /* below this length the strict mask_s applies     */
    size_t max_size;    /* forced cut here; >= min_size                    */
    uint64_t mask_s;    /* more bits: cuts less likely before normal_size  */
    uint64_t mask_l;    /* fewer bits: cuts more likely after normal_size  */
} fastcdc_params;

/* The 256-entry gear table (splitmix64, see fastcdc_scan.c). */
const uint64_t *fastcdc_gear_table(void);

/*
 * Length of the chunk starting at buf[0], in 1..len for len >= 1 (0 for 0).
 * Exactly len when len <= min_size or when no cut point is found before
 * min(len, max_size).
 */
size_t fastcdc_next_cut(const uint8_t *buf, size_t len, const fastcdc_params *p);

/*
 * Cut buf into chunks, writing up to cap chunk lengths to lengths[] and
 * returning how many were written; *consumed gets their total.
 * With final == 0 it stops while fewer than max_size bytes remain, because a
 * cut in that tail might move once more data arrives; with final != 0 it
 * cuts to the very end.  Call again on buf + *consumed when it fills cap.
 */
size_t fastcdc_cut_all(const uint8_t *buf, size_t len, const fastcdc_params *p,
                       int final, size_t *lengths, size_t cap, size_t *consumed);

#endif
