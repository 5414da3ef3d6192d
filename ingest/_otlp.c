/* The walk over an OTLP ExportLogsServiceRequest (protobuf): the compiled twin of
 * python_walk in ingest/otlp_decode.py, which is the reference it is tested against.
 *
 * otlp_walk reads the request once and writes, per log record, its resource index, its two
 * times and its string body (an Arrow string view into the request), and per attribute (of
 * a record, of a record's map body, of a resource) its owner, where it was found, its key
 * and its scalar value. Called with NULL arrays it only counts, so that the caller can size
 * them; strings are checked to be UTF-8 as Python's strict decoding checks them.
 *
 * Built into the optional extension module; called through ctypes.
 */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "formats/_views.h"

enum { RECORD = 0, BODY = 1, RESOURCE = 2 };
enum { K_EMPTY = 0, K_STRING, K_BOOL, K_INT, K_DOUBLE, K_OTHER };

typedef struct {
    const uint8_t *buf;
    int64_t *counts; /* records, attributes: how many were written (or counted) */
    int32_t *resource;
    int64_t *times;
    uint8_t *bodies;
    uint8_t *has_body;
    int32_t *owner;
    int8_t *where;
    uint8_t *keys;
    int8_t *kind;
    uint8_t *texts;
    int64_t *numbers;
    char *error; /* 200 bytes */
} Walk;

typedef struct {
    uint32_t number;
    uint32_t wire;
    uint64_t value; /* a varint or fixed value, or a length */
    int64_t start, stop; /* a length-delimited field's bytes */
} Field;

static int fail(Walk *w, const char *reason) {
    snprintf(w->error, 200, "protobuf: %s", reason);
    return -1;
}

static int varint(Walk *w, int64_t *pos, int64_t end, uint64_t *out) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= end) return fail(w, "truncated varint");
        const uint8_t byte = w->buf[(*pos)++];
        if (shift < 64) result |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = result;
            return 0;
        }
    }
    return fail(w, "varint longer than 10 bytes");
}

/* The next field of the message ending at end: 1, 0 at its end, -1 on an error. */
static int next_field(Walk *w, int64_t *pos, int64_t end, Field *f) {
    if (*pos >= end) return 0;
    uint64_t tag, size = 0;
    if (varint(w, pos, end, &tag) < 0) return -1;
    f->number = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    if ((tag >> 3) == 0) return fail(w, "field number 0");
    f->start = f->stop = 0;
    if (f->wire == 0) return varint(w, pos, end, &f->value) < 0 ? -1 : 1;
    if (f->wire == 1) size = 8;
    else if (f->wire == 5) size = 4;
    else if (f->wire == 2) {
        if (varint(w, pos, end, &size) < 0) return -1;
    } else {
        snprintf(w->error, 200, "protobuf: wire type %u is not used by OTLP", f->wire);
        return -1;
    }
    if (size > (uint64_t)(end - *pos)) return fail(w, "a field runs past the end of its message");
    f->start = *pos;
    f->stop = *pos + (int64_t)size;
    if (f->wire == 2) f->value = size;
    else {
        uint64_t value = 0;
        for (int i = (int)size - 1; i >= 0; i--) value = (value << 8) | w->buf[*pos + i];
        f->value = value;
    }
    *pos = f->stop;
    return 1;
}

/* Strict UTF-8, as Python decodes it: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
static int valid_utf8(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        const uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int extra;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, cp = c & 0x07;
        else return 0;
        if (i + extra >= n) return 0;
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += extra + 1;
    }
    return 1;
}

static int text(Walk *w, const Field *f) {
    if (f->stop - f->start > INT32_MAX) return fail(w, "a string longer than 2 GiB");
    if (!valid_utf8(w->buf + f->start, f->stop - f->start))
        return fail(w, "a string is not valid UTF-8");
    return 0;
}

static void view(Walk *w, uint8_t *out, const Field *f) {
    write_view(out, w->buf + f->start, (int32_t)(f->stop - f->start), 0, (int32_t)f->start);
}

/* An AnyValue: the last case set wins. */
static int any_value(Walk *w, int64_t pos, int64_t end, int64_t at) {
    Field f;
    int status;
    int8_t kind = K_EMPTY;
    Field string = {0};
    uint64_t number = 0;
    while ((status = next_field(w, &pos, end, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (text(w, &f) < 0) return -1;
            kind = K_STRING, string = f;
        } else if (f.number == 2 && f.wire == 0) {
            kind = K_BOOL, number = f.value != 0;
        } else if (f.number == 3 && f.wire == 0) {
            kind = K_INT, number = f.value;
        } else if (f.number == 4 && f.wire == 1) {
            kind = K_DOUBLE, number = f.value;
        } else if ((f.number == 5 || f.number == 6 || f.number == 7) && f.wire == 2) {
            kind = K_OTHER;
        }
    }
    if (status < 0) return -1;
    if (w->kind != NULL) {
        w->kind[at] = kind;
        memset(w->texts + 16 * at, 0, 16);
        if (kind == K_STRING) view(w, w->texts + 16 * at, &string);
        w->numbers[at] = (int64_t)number;
    }
    return 0;
}

static int key_value(Walk *w, int64_t pos, int64_t end, int32_t owner, int8_t where) {
    const int64_t at = w->counts[1]++;
    Field f, key = {0};
    int status, has_value = 0;
    int64_t value_start = 0, value_stop = 0;
    while ((status = next_field(w, &pos, end, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (text(w, &f) < 0) return -1;
            key = f;
        } else if (f.number == 2 && f.wire == 2) {
            has_value = 1, value_start = f.start, value_stop = f.stop;
        }
    }
    if (status < 0) return -1;
    if (w->owner != NULL) {
        w->owner[at] = owner;
        w->where[at] = where;
        memset(w->keys + 16 * at, 0, 16);
        if (key.stop > key.start) view(w, w->keys + 16 * at, &key);
        w->kind[at] = K_EMPTY;
        memset(w->texts + 16 * at, 0, 16);
        w->numbers[at] = 0;
    }
    /* (a KeyValue's value is read once, the last one: protobuf merges a repeated message,
     * which for a oneof of scalars means the last case wins, as here) */
    if (has_value) return any_value(w, value_start, value_stop, at);
    return 0;
}

static int entries(Walk *w, int64_t pos, int64_t end, uint32_t number, int32_t owner,
                   int8_t where) {
    Field f;
    int status;
    while ((status = next_field(w, &pos, end, &f)) > 0)
        if (f.number == number && f.wire == 2 && key_value(w, f.start, f.stop, owner, where) < 0)
            return -1;
    return status;
}

static int64_t real_time(uint64_t value) { return value < (UINT64_C(1) << 63) ? (int64_t)value : 0; }

static int log_record(Walk *w, int64_t pos, int64_t end, int32_t resource) {
    const int64_t index = w->counts[0]++;
    int64_t times[2] = {0, 0};
    Field f, part, body = {0};
    int status, has_body = 0;
    while ((status = next_field(w, &pos, end, &f)) > 0) {
        if ((f.number == 1 || f.number == 11) && f.wire == 1) {
            times[f.number == 11] = real_time(f.value);
        } else if (f.number == 5 && f.wire == 2) {
            has_body = 0;
            int64_t at = f.start;
            int inner;
            while ((inner = next_field(w, &at, f.stop, &part)) > 0) {
                if (part.number == 1 && part.wire == 2) {
                    if (text(w, &part) < 0) return -1;
                    has_body = 1, body = part;
                } else if (part.number == 6 && part.wire == 2) {
                    has_body = 0;
                    if (entries(w, part.start, part.stop, 1, (int32_t)index, BODY) < 0) return -1;
                } else if (part.number >= 2 && part.number <= 7 && part.number != 6) {
                    has_body = 0;
                }
            }
            if (inner < 0) return -1;
        } else if (f.number == 6 && f.wire == 2) {
            if (key_value(w, f.start, f.stop, (int32_t)index, RECORD) < 0) return -1;
        }
    }
    if (status < 0) return -1;
    if (w->resource != NULL) {
        w->resource[index] = resource;
        w->times[2 * index] = times[0];
        w->times[2 * index + 1] = times[1];
        memset(w->bodies + 16 * index, 0, 16);
        w->has_body[index] = (uint8_t)has_body;
        if (has_body) view(w, w->bodies + 16 * index, &body);
    }
    return 0;
}

static int resource_logs(Walk *w, int64_t pos, int64_t end, int32_t resource) {
    Field f, g;
    int status, inner;
    while ((status = next_field(w, &pos, end, &f)) > 0) {
        if (f.number == 1 && f.wire == 2) {
            if (entries(w, f.start, f.stop, 1, resource, RESOURCE) < 0) return -1;
        } else if (f.number == 2 && f.wire == 2) {
            int64_t at = f.start;
            while ((inner = next_field(w, &at, f.stop, &g)) > 0)
                if (g.number == 2 && g.wire == 2 && log_record(w, g.start, g.stop, resource) < 0)
                    return -1;
            if (inner < 0) return -1;
        }
    }
    return status;
}

int otlp_walk(const uint8_t *buf, int64_t len, int64_t *counts, int32_t *resource,
              int64_t *times, uint8_t *bodies, uint8_t *has_body, int32_t *owner, int8_t *where,
              uint8_t *keys, int8_t *kind, uint8_t *texts, int64_t *numbers, char *error) {
    Walk w = {buf, counts, resource, times, bodies, has_body, owner, where, keys, kind, texts,
              numbers, error};
    if (len > INT32_MAX) return fail(&w, "a request over 2 GiB");
    counts[0] = counts[1] = 0;
    int64_t pos = 0;
    int32_t index = 0;
    Field f;
    int status;
    /* The top level's fields are all framed before any is read, as python_walk does. */
    while ((status = next_field(&w, &pos, len, &f)) > 0) {
    }
    if (status < 0) return -1;
    pos = 0;
    while ((status = next_field(&w, &pos, len, &f)) > 0)
        if (f.number == 1 && f.wire == 2 && resource_logs(&w, f.start, f.stop, index++) < 0)
            return -1;
    return status < 0 ? -1 : 0;
}
