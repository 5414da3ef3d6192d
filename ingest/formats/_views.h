/* Arrow string views as the compiled helpers read and write them: 16 bytes each, the length,
 * then the bytes inline when there are at most 12, else their first 4 bytes, the index of
 * the buffer that holds them and their offset in it. Values are always handed back as views
 * into the buffers they came from, so nothing is copied on its way to Polars.
 */
#ifndef CONFLICTLENS_VIEWS_H
#define CONFLICTLENS_VIEWS_H

#include <stdint.h>
#include <string.h>

static inline int32_t view_int(const uint8_t *view, int at) {
    int32_t value;
    memcpy(&value, view + at, 4);
    return value;
}

/* Text i of a batch of views: its bytes and length, and where it lies (buffer -1 and offset
 * 0 when it is inline, in the view itself). */
static inline const uint8_t *view_text(const uint8_t *views, int64_t i,
                                       const uint8_t *const *buffers, int32_t *length,
                                       int32_t *buffer, int32_t *offset) {
    const uint8_t *view = views + 16 * i;
    *length = view_int(view, 0);
    if (*length <= 12) {
        *buffer = -1;
        *offset = 0;
        return view + 4;
    }
    *buffer = view_int(view, 8);
    *offset = view_int(view, 12);
    return buffers[*buffer] + *offset;
}

/* A view of s[0:n], which lies in buffer at offset (inline when it is short enough). */
static inline void write_view(uint8_t *view, const uint8_t *s, int32_t n, int32_t buffer,
                              int32_t offset) {
    memset(view, 0, 16);
    memcpy(view, &n, 4);
    if (n <= 12) {
        memcpy(view + 4, s, (size_t)n);
    } else {
        memcpy(view + 4, s, 4);
        memcpy(view + 8, &buffer, 4);
        memcpy(view + 12, &offset, 4);
    }
}

/* The first byte b in s[0:n], or NULL: for the short texts (paths, request lines) that most
 * calls see, a plain loop costs less than a call to memchr. */
static inline const uint8_t *find_byte(const uint8_t *s, int64_t n, uint8_t b) {
    for (int64_t i = 0; i < n; i++)
        if (s[i] == b) return s + i;
    return NULL;
}

#endif
