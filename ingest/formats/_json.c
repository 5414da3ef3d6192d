/* JSON field scanner: the compiled-in fast path of a JSON format's extraction.
 *
 * A format's JSON paths (plain object keys only, such as $.request.uri) compile to a trie
 * (see ingest/formats/json_scan.py). json_scan_views walks each line once as strict JSON
 * (RFC 8259), follows the trie through the objects and records where each wanted value is:
 * a span of the line, or, for a string with escapes, its decoded text in a scratch buffer.
 * Each output column takes the value of its first candidate path that is present and not
 * null, as coalesce(json_extract_string(...)) does.
 *
 * A line this scanner is not sure to read exactly as DuckDB's JSON reader does is handed
 * over to DuckDB instead: anything that is not strict JSON (DuckDB decides whether it is
 * invalid), a wanted value that is an object or an array, a number with an exponent or too
 * many digits, a number other than a plain integer where a text field is wanted (DuckDB
 * re-formats numbers), \u0000 or an unpaired surrogate, a duplicate or escaped key on a
 * wanted path, nesting deeper than MAX_DEPTH. So on every line it accepts, the scanner
 * gives what DuckDB gives, and it never rejects a line. (With objects_absent, an object
 * where a value is wanted is no value instead: for callers that discard objects anyway.)
 *
 * Part of the optional extension module ingest.formats._scan; called through ctypes.
 */
#include <stdint.h>
#include <string.h>

#include "_views.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 64
#define MAX_COLUMNS 128
#define MAX_EDGES 64
/* A value's location: its buffer's index (the lines' data buffers, then the scratch buffer)
 * above OFFSET_BITS, its offset in that buffer below. */
#define OFFSET_BITS 40
#define LOCATION(buffer, offset) (((int64_t)(buffer) << OFFSET_BITS) | (int64_t)(offset))

typedef struct {
    const int32_t *nodes;   /* per node: first edge, edges, first leaf, leaves */
    const int32_t *edges;   /* per edge: key offset, key length, child node, key signature */
    const uint8_t *keys;    /* the keys' bytes */
    const int32_t *leaves;  /* per leaf: column, rank (0 = the column's first candidate) */
    const uint8_t *numeric; /* per column: 1 when a number is converted to a number */
    const int16_t *lookup;  /* per node, 256 slots by key_hash: the edge (from the node's
                               first), NO_EDGE, or MANY_EDGES (then every edge is tried) */
    int32_t width;
    int32_t objects_absent; /* 1: an object where a value is wanted counts as no value */
} Trie;

/* What is kept of one line while it is scanned: where its values are. */
typedef struct {
    int64_t base;         /* where the line is, as a location (see LOCATION) */
    const uint8_t *line;  /* and its first byte */
    uint8_t *scratch;     /* decoded strings and copied values, shared by the batch */
    int64_t scratch_base; /* the scratch buffer's location */
    int64_t used;         /* bytes of scratch used so far */
    int64_t capacity;     /* bytes of scratch */
    int64_t *starts;      /* this line's [width]: the values' locations, -1 for none */
    int32_t *lengths;
    int32_t ranks[MAX_COLUMNS];
} Line;

/* The scanning functions take the line (s, len) and a position, and return the position
 * after what they read, or FAIL: the line goes to DuckDB. Positions stay in registers. */
#define FAIL (-1)

/* Bytes that end a run of plain string content: the quote, the backslash, control bytes. */
static uint8_t special[256];

static void init_special(void) {
    for (int b = 0; b < 0x20; b++) special[b] = 1;
    special['"'] = 1;
    special['\\'] = 1;
}

static inline int64_t skip_space(const uint8_t *s, int64_t len, int64_t p) {
    while (p < len && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    return p;
}

static inline int hex_value(uint8_t b) {
    if (b >= '0' && b <= '9') return b - '0';
    if (b >= 'a' && b <= 'f') return b - 'a' + 10;
    if (b >= 'A' && b <= 'F') return b - 'A' + 10;
    return -1;
}

static int read_hex4(const uint8_t *s, int64_t at, int64_t len, uint32_t *out) {
    if (at + 4 > len) return 0;
    uint32_t value = 0;
    for (int k = 0; k < 4; k++) {
        const int h = hex_value(s[at + k]);
        if (h < 0) return 0;
        value = value << 4 | (uint32_t)h;
    }
    *out = value;
    return 1;
}

/* Bytes of x (eight at a time, first byte lowest) that are '"', '\\' or below 0x20: the
 * lowest flagged byte is exact (a borrow only carries upwards), which is all that is used. */
static inline uint64_t special_bytes(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    return ((quote - ones) & ~quote & highs) | ((backslash - ones) & ~backslash & highs) |
           ((x - ones * 0x20) & ~x & highs);
}

/* The first special byte at or after p (or len). */
static inline int64_t next_special(const uint8_t *s, int64_t p, int64_t len) {
#if defined(__SSE2__)
    /* sixteen bytes at a time (SSE2 is part of every x86-64) */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    while (p + 16 <= len) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(s + p));
        const __m128i hits = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
            _mm_cmpeq_epi8(_mm_max_epu8(x, control), control)); /* x <= 0x1F */
        const int mask = _mm_movemask_epi8(hits);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (p + 8 <= len) {
        uint64_t x;
        memcpy(&x, s + p, 8);
        const uint64_t found = special_bytes(x);
        if (found) return p + (__builtin_ctzll(found) >> 3);
        p += 8;
    }
#endif
    while (p < len && !special[s[p]]) p++;
    return p;
}

/* From a backslash at p inside a string: the position after the closing quote (see
 * skip_string), checking every escape. Kept out of line: most strings have none, and the
 * registers this needs made every call of skip_string save and restore six. */
static __attribute__((noinline)) int64_t skip_escaped_string(const uint8_t *s, int64_t len,
                                                              int64_t p) {
    for (;;) {
        /* a backslash */
        if (p + 1 >= len) return FAIL;
        switch (s[p + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            /* an unpaired surrogate makes the line invalid to DuckDB: its call */
            uint32_t unit, low;
            if (!read_hex4(s, p + 2, len, &unit) || (unit >= 0xDC00 && unit <= 0xDFFF))
                return FAIL;
            p += 6;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (p + 1 >= len || s[p] != '\\' || s[p + 1] != 'u' ||
                    !read_hex4(s, p + 2, len, &low) || low < 0xDC00 || low > 0xDFFF)
                    return FAIL;
                p += 6;
            }
            break;
        }
        default:
            return FAIL;
        }
        p = next_special(s, p, len);
        if (p >= len || s[p] < 0x20) return FAIL;
        if (s[p] == '"') return p + 1;
    }
}

/* At an opening quote: the position after the closing one. *escaped tells whether the
 * string holds a backslash escape. */
static inline __attribute__((always_inline)) int64_t skip_string(const uint8_t *s, int64_t len,
                                                                 int64_t p, int *escaped) {
    p = next_special(s, p + 1, len);
    *escaped = 0;
    if (p >= len || s[p] < 0x20) return FAIL;
    if (s[p] == '"') return p + 1;
    *escaped = 1;
    return skip_escaped_string(s, len, p);
}

static uint8_t *put_utf8(uint8_t *out, uint32_t code) {
    if (code < 0x80) {
        *out++ = (uint8_t)code;
    } else if (code < 0x800) {
        *out++ = (uint8_t)(0xC0 | code >> 6);
        *out++ = (uint8_t)(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        *out++ = (uint8_t)(0xE0 | code >> 12);
        *out++ = (uint8_t)(0x80 | (code >> 6 & 0x3F));
        *out++ = (uint8_t)(0x80 | (code & 0x3F));
    } else {
        *out++ = (uint8_t)(0xF0 | code >> 18);
        *out++ = (uint8_t)(0x80 | (code >> 12 & 0x3F));
        *out++ = (uint8_t)(0x80 | (code >> 6 & 0x3F));
        *out++ = (uint8_t)(0x80 | (code & 0x3F));
    }
    return out;
}

/* Decodes the (already checked) string content s[a:b] into out; returns the end of what it
 * wrote, or NULL at \u0000 or an unpaired surrogate. */
static uint8_t *decode_string(const uint8_t *s, int64_t a, int64_t b, uint8_t *out) {
    while (a < b) {
        if (s[a] != '\\') {
            *out++ = s[a++];
            continue;
        }
        const uint8_t kind = s[a + 1];
        a += 2;
        switch (kind) {
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            uint32_t code, low;
            read_hex4(s, a, b, &code);
            a += 4;
            if (code == 0 || (code >= 0xDC00 && code <= 0xDFFF)) return NULL;
            if (code >= 0xD800 && code <= 0xDBFF) {
                if (a + 6 > b || s[a] != '\\' || s[a + 1] != 'u' || !read_hex4(s, a + 2, b, &low))
                    return NULL;
                if (low < 0xDC00 || low > 0xDFFF) return NULL;
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                a += 6;
            }
            out = put_utf8(out, code);
            break;
        }
        default: *out++ = kind; /* " \ / */
        }
    }
    return out;
}

/* A number in JSON's grammar, without an exponent and with at most 18 digits before the
 * point. *plain: an integer that DuckDB writes back exactly as it is written (not -0). */
static int64_t skip_number(const uint8_t *s, int64_t len, int64_t p, int *plain) {
    const int64_t start = p;
    if (s[p] == '-') p++;
    const int64_t digits = p;
    if (p >= len || s[p] < '0' || s[p] > '9') return FAIL;
    if (s[p] == '0') {
        p++;
    } else {
        while (p < len && s[p] >= '0' && s[p] <= '9') p++;
    }
    if (p - digits > 18) return FAIL;
    *plain = !(p - start == 2 && s[start] == '-' && s[start + 1] == '0');
    if (p < len && s[p] == '.') {
        *plain = 0;
        p++;
        const int64_t fraction = p;
        while (p < len && s[p] >= '0' && s[p] <= '9') p++;
        if (p == fraction) return FAIL;
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) return FAIL;
    return p;
}

static inline int64_t skip_literal(const uint8_t *s, int64_t len, int64_t p, const char *word,
                                   int64_t length) {
    if (p + length > len || memcmp(s + p, word, (size_t)length) != 0) return FAIL;
    return p + length;
}

/* A value no wanted path goes through: only checked to be strict JSON. */
static int64_t skip_value(const uint8_t *s, int64_t len, int64_t p, int depth) {
    int escaped, plain;
    if (depth > MAX_DEPTH) return FAIL;
    p = skip_space(s, len, p);
    if (p >= len) return FAIL;
    switch (s[p]) {
    case '"':
        return skip_string(s, len, p, &escaped);
    case '{':
        p = skip_space(s, len, p + 1);
        if (p < len && s[p] == '}') return p + 1;
        for (;;) {
            if (p >= len || s[p] != '"') return FAIL;
            if ((p = skip_string(s, len, p, &escaped)) < 0) return FAIL;
            p = skip_space(s, len, p);
            if (p >= len || s[p] != ':') return FAIL;
            if ((p = skip_value(s, len, p + 1, depth + 1)) < 0) return FAIL;
            p = skip_space(s, len, p);
            if (p >= len) return FAIL;
            if (s[p] == '}') return p + 1;
            if (s[p] != ',') return FAIL;
            p = skip_space(s, len, p + 1);
        }
    case '[':
        p = skip_space(s, len, p + 1);
        if (p < len && s[p] == ']') return p + 1;
        for (;;) {
            if ((p = skip_value(s, len, p, depth + 1)) < 0) return FAIL;
            p = skip_space(s, len, p);
            if (p >= len) return FAIL;
            if (s[p] == ']') return p + 1;
            if (s[p] != ',') return FAIL;
            p++;
        }
    case 't':
        return skip_literal(s, len, p, "true", 4);
    case 'f':
        return skip_literal(s, len, p, "false", 5);
    case 'n':
        return skip_literal(s, len, p, "null", 4);
    default:
        return skip_number(s, len, p, &plain);
    }
}

/* Sets the node's columns to a value, where it outranks what they hold. */
static void record(Line *c, const Trie *t, int32_t node, int64_t start, int32_t length) {
    const int32_t first = t->nodes[4 * node + 2], count = t->nodes[4 * node + 3];
    for (int32_t k = first; k < first + count; k++) {
        const int32_t column = t->leaves[2 * k], rank = t->leaves[2 * k + 1];
        if (rank < c->ranks[column]) {
            c->ranks[column] = rank;
            c->starts[column] = start;
            c->lengths[column] = length;
        }
    }
}

static int leaves_all_numeric(const Trie *t, int32_t node) {
    const int32_t first = t->nodes[4 * node + 2], count = t->nodes[4 * node + 3];
    for (int32_t k = first; k < first + count; k++)
        if (!t->numeric[t->leaves[2 * k]]) return 0;
    return 1;
}

/* A key's length, first and last byte in one number: most keys are told apart from a
 * wanted one by it alone (as json_scan.key_signature computes it for the trie). */
static inline int32_t key_signature(const uint8_t *key, int64_t length) {
    if (length == 0) return 0;
    return (int32_t)((uint32_t)(length & 0xFFFF) | (uint32_t)key[0] << 16 |
                     (uint32_t)key[length - 1] << 24);
}

/* key_hash's slot of a node's lookup, as json_scan.py fills it: most keys of a line are
 * not wanted, and trying a node's twenty-odd edges for each was a fifth of a Traefik line. */
#define NO_EDGE (-1)
#define MANY_EDGES (-2)

static inline int32_t key_hash(const uint8_t *key, int64_t length) {
    if (length == 0) return 0;
    return (int32_t)(((length & 0xFF) * 0x9E + key[0] * 0x3B + key[length - 1] * 0x55) & 0xFF);
}

/* Keys are short: compared in place (a call to memcmp cost more). */
static inline int same_bytes(const uint8_t *a, const uint8_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int64_t scan_value(Line *c, const Trie *t, const uint8_t *s, int64_t len, int64_t p,
                          int32_t node, int depth);

/* An object that wanted paths go through (node): each key is looked up among its edges. */
static int64_t scan_object(Line *c, const Trie *t, const uint8_t *s, int64_t len, int64_t p,
                           int32_t node, int depth) {
    const int32_t first_edge = t->nodes[4 * node], edges = t->nodes[4 * node + 1];
    uint64_t seen = 0;
    int escaped;
    p = skip_space(s, len, p + 1);
    if (p < len && s[p] == '}') return p + 1;
    for (;;) {
        if (p >= len || s[p] != '"') return FAIL;
        const int64_t key = p + 1;
        if ((p = skip_string(s, len, p, &escaped)) < 0) return FAIL;
        if (escaped) return FAIL; /* an escaped key might spell a wanted one */
        const int64_t key_length = p - 1 - key;
        const int32_t signature = key_signature(s + key, key_length);
        const int16_t slot = t->lookup[256 * node + key_hash(s + key, key_length)];
        int32_t child = -1;
        for (int32_t e = slot >= 0 ? slot : 0; slot != NO_EDGE && e < edges; e++) {
            const int32_t *edge = t->edges + 4 * (first_edge + e);
            if (edge[3] == signature && same_bytes(t->keys + edge[0], s + key, key_length)) {
                if (seen >> e & 1) return FAIL; /* a duplicate: which one counts is DuckDB's call */
                seen |= (uint64_t)1 << e;
                child = edge[2];
                break;
            }
            if (slot >= 0) break; /* the one edge with this hash */
        }
        p = skip_space(s, len, p);
        if (p >= len || s[p] != ':') return FAIL;
        p = child >= 0 ? scan_value(c, t, s, len, p + 1, child, depth)
                       : skip_value(s, len, p + 1, depth);
        if (p < 0) return FAIL;
        p = skip_space(s, len, p);
        if (p >= len) return FAIL;
        if (s[p] == '}') return p + 1;
        if (s[p] != ',') return FAIL;
        p = skip_space(s, len, p + 1);
    }
}

/* A value on a wanted path (node): recorded when a column wants it, followed when it is an
 * object that paths go through. */
static int64_t scan_value(Line *c, const Trie *t, const uint8_t *s, int64_t len, int64_t p,
                          int32_t node, int depth) {
    int escaped, plain;
    if (depth > MAX_DEPTH) return FAIL;
    p = skip_space(s, len, p);
    if (p >= len) return FAIL;
    const int wanted = t->nodes[4 * node + 3] > 0;
    const int64_t start = p;
    switch (s[p]) {
    case '{':
        /* DuckDB gives an object as re-written JSON text: the line is its to read, unless the
         * caller counts an object as no value (and only looks into it) */
        if (wanted && !t->objects_absent) return FAIL;
        if (t->nodes[4 * node + 1] == 0) return skip_value(s, len, p, depth);
        return scan_object(c, t, s, len, p, node, depth + 1);
    case '[':
        if (wanted) return FAIL;
        return skip_value(s, len, p, depth);
    case '"':
        if ((p = skip_string(s, len, p, &escaped)) < 0) return FAIL;
        if (!wanted) return p;
        if (!escaped) {
            record(c, t, node, c->base + start + 1, (int32_t)(p - start - 2));
            return p;
        }
        {
            uint8_t *out = c->scratch + c->used;
            uint8_t *end = decode_string(s, start + 1, p - 1, out);
            if (end == NULL) return FAIL;
            record(c, t, node, c->scratch_base + c->used, (int32_t)(end - out));
            c->used += end - out;
        }
        return p;
    case 't':
        p = skip_literal(s, len, p, "true", 4);
        break;
    case 'f':
        p = skip_literal(s, len, p, "false", 5);
        break;
    case 'n':
        return skip_literal(s, len, p, "null", 4); /* null is no value */
    default:
        p = skip_number(s, len, p, &plain);
        if (p >= 0 && wanted && !plain && !leaves_all_numeric(t, node)) return FAIL;
    }
    if (p < 0) return FAIL;
    if (wanted) record(c, t, node, c->base + start, (int32_t)(p - start));
    return p;
}

/* Moves the line's values that are not inline in a view (more than 12 bytes) and still lie
 * in the line into scratch, side by side, while the line is in cache. Every later pass over a
 * column (times, paths, group keys) then reads a few dense megabytes instead of one cache
 * line per value strewn over the whole chunk: three times faster for the ISO times of Traefik's
 * 1 KB lines. A value two columns share is copied once; without room, a value stays put. */
static void gather_values(Line *c, int32_t width) {
    int64_t found[MAX_COLUMNS]; /* where each value was in the line */
    for (int32_t k = 0; k < width; k++) {
        const int64_t start = found[k] = c->starts[k];
        const int32_t length = c->lengths[k];
        if (start < 0 || length <= 12 || start >= c->scratch_base) continue;
        int32_t same = -1;
        for (int32_t j = 0; j < k && same < 0; j++)
            if (found[j] == start && c->lengths[j] == length) same = j;
        if (same >= 0) {
            c->starts[k] = c->starts[same]; /* moved (or not) with column `same` */
            continue;
        }
        if (c->used + length > c->capacity) continue;
        c->starts[k] = c->scratch_base + c->used;
        memcpy(c->scratch + c->used, c->line + (start - c->base), (size_t)length);
        c->used += length;
    }
}

/* The line's values as string views: out[k] + 16 * i, with bit i of validity[k] (zeroed by
 * the caller) set where column k has one. buffers[n_buffers] is the scratch buffer. */
static void write_values(const Line *c, int64_t i, int32_t width, const uint8_t *const *buffers,
                         uint8_t *const *out, uint8_t *const *validity) {
    for (int32_t k = 0; k < width; k++) {
        uint8_t *view = out[k] + 16 * i;
        const int64_t location = c->starts[k];
        if (location < 0) {
            memset(view, 0, 16);
            continue;
        }
        validity[k][i >> 3] |= (uint8_t)(1 << (i & 7));
        const int32_t buffer = (int32_t)(location >> OFFSET_BITS);
        const int32_t offset = (int32_t)(location & (((int64_t)1 << OFFSET_BITS) - 1));
        write_view(view, buffers[buffer] + offset, c->lengths[k], buffer, offset);
    }
}

/* Line i is the string view views[16 * i ...] into buffers[0 .. n_buffers); buffers holds
 * one more address, the scratch buffer's (scratch_size bytes, at least as many as the lines
 * together). Each column's values go to out[k] as string views into those buffers (written
 * as each line is read, not in a second pass over all lines), with validity bitmaps (least
 * significant bit first). accepted[i] is 1 when the scanner read line i, 0 when DuckDB must.
 * Returns -1 when the trie is too wide for the scanner.
 */
int json_scan_views(const uint8_t *views, int64_t lines, const uint8_t *const *buffers,
                    int32_t n_buffers, const int32_t *nodes, const int32_t *edges,
                    const uint8_t *keys, const int32_t *leaves, const uint8_t *numeric,
                    const int16_t *lookup, int32_t width, int32_t objects_absent,
                    uint8_t *scratch, int64_t scratch_size, uint8_t *const *out,
                    uint8_t *const *validity, uint8_t *accepted) {
    if (width > MAX_COLUMNS) return -1;
    if (!special['"']) init_special();
    const Trie trie = {nodes, edges, keys, leaves, numeric, lookup, width, objects_absent};
    int64_t starts[MAX_COLUMNS];
    int32_t lengths[MAX_COLUMNS];
    Line c;
    c.scratch = scratch;
    c.scratch_base = LOCATION(n_buffers, 0);
    c.used = 0;
    c.capacity = scratch_size;
    c.starts = starts;
    c.lengths = lengths;
    for (int32_t k = 0; k < width; k++) memset(validity[k], 0, (size_t)((lines + 7) / 8));
    for (int64_t i = 0; i < lines; i++) {
        const uint8_t *view = views + 16 * i;
        const int64_t len = view_int(view, 0);
        const uint8_t *s;
        if (len <= 12) { /* inline: scanned from a copy in scratch, where values can point */
            memcpy(scratch + c.used, view + 4, (size_t)len);
            s = scratch + c.used;
            c.base = c.scratch_base + c.used;
            c.used += len;
        } else {
            const int32_t buffer = view_int(view, 8), offset = view_int(view, 12);
            s = buffers[buffer] + offset;
            c.base = LOCATION(buffer, offset);
        }
        for (int32_t k = 0; k < width; k++) {
            c.ranks[k] = INT32_MAX;
            starts[k] = -1;
            lengths[k] = 0;
        }
        int64_t p = skip_space(s, len, 0);
        int ok = p < len && s[p] == '{' && (p = scan_value(&c, &trie, s, len, p, 0, 0)) >= 0;
        if (ok) ok = skip_space(s, len, p) == len;
        accepted[i] = (uint8_t)ok;
        if (ok) {
            c.line = s;
            gather_values(&c, width);
        } else {
            for (int32_t k = 0; k < width; k++) starts[k] = -1;
        }
        write_values(&c, i, width, buffers, out, validity);
    }
    return 0;
}
