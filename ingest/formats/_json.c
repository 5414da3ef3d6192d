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
 * gives what DuckDB gives, and it never rejects a line.
 *
 * Part of the optional extension module ingest.formats._scan; called through ctypes.
 */
#include <stdint.h>
#include <string.h>
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
    int32_t width;
} Trie;

typedef struct {
    const uint8_t *s;
    int64_t p, len;
    int64_t base;       /* where the line is, as a location (see LOCATION) */
    uint8_t *scratch;   /* decoded strings, shared by the batch */
    int64_t scratch_base; /* the scratch buffer's location */
    int64_t *used;
    int64_t *starts;    /* this line's [width]: the values' locations, -1 for none */
    int32_t *lengths;
    int32_t ranks[MAX_COLUMNS];
} Cursor;

/* Bytes that end a run of plain string content: the quote, the backslash, control bytes. */
static uint8_t special[256];

static void init_special(void) {
    for (int b = 0; b < 0x20; b++) special[b] = 1;
    special['"'] = 1;
    special['\\'] = 1;
}

static inline void skip_space(Cursor *c) {
    while (c->p < c->len) {
        const uint8_t b = c->s[c->p];
        if (b != ' ' && b != '\t' && b != '\n' && b != '\r') return;
        c->p++;
    }
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

/* At an opening quote: moves past the closing one. 0 when the string is not strict JSON.
 * *escaped tells whether it holds a backslash escape. */
static int skip_string(Cursor *c, int *escaped) {
    const uint8_t *s = c->s;
    int64_t p = c->p + 1;
    *escaped = 0;
    for (;;) {
        p = next_special(s, p, c->len);
        if (p >= c->len || s[p] < 0x20) return 0;
        if (s[p] == '"') break;
        /* a backslash */
        if (p + 1 >= c->len) return 0;
        *escaped = 1;
        switch (s[p + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            /* an unpaired surrogate makes the line invalid to DuckDB: its call */
            uint32_t unit, low;
            if (!read_hex4(s, p + 2, c->len, &unit) || (unit >= 0xDC00 && unit <= 0xDFFF))
                return 0;
            p += 6;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (p + 1 >= c->len || s[p] != '\\' || s[p + 1] != 'u' ||
                    !read_hex4(s, p + 2, c->len, &low) || low < 0xDC00 || low > 0xDFFF)
                    return 0;
                p += 6;
            }
            break;
        }
        default:
            return 0;
        }
    }
    c->p = p + 1;
    return 1;
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
static int skip_number(Cursor *c, int *plain) {
    const uint8_t *s = c->s;
    int64_t p = c->p;
    const int64_t start = p;
    if (s[p] == '-') p++;
    const int64_t digits = p;
    if (p >= c->len || s[p] < '0' || s[p] > '9') return 0;
    if (s[p] == '0') {
        p++;
    } else {
        while (p < c->len && s[p] >= '0' && s[p] <= '9') p++;
    }
    if (p - digits > 18) return 0;
    *plain = !(p - start == 2 && s[start] == '-' && s[start + 1] == '0');
    if (p < c->len && s[p] == '.') {
        *plain = 0;
        p++;
        const int64_t fraction = p;
        while (p < c->len && s[p] >= '0' && s[p] <= '9') p++;
        if (p == fraction) return 0;
    }
    if (p < c->len && (s[p] == 'e' || s[p] == 'E')) return 0;
    c->p = p;
    return 1;
}

/* Sets the node's columns to a value, where it outranks what they hold. */
static void record(Cursor *c, const Trie *t, int32_t node, int64_t start, int32_t length) {
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

static int scan_value(Cursor *c, const Trie *t, int32_t node, int depth);

static int scan_object(Cursor *c, const Trie *t, int32_t node, int depth) {
    const int32_t first_edge = node >= 0 ? t->nodes[4 * node] : 0;
    const int32_t edges = node >= 0 ? t->nodes[4 * node + 1] : 0;
    uint64_t seen = 0;
    c->p++;
    skip_space(c);
    if (c->p < c->len && c->s[c->p] == '}') {
        c->p++;
        return 1;
    }
    for (;;) {
        int escaped;
        if (c->p >= c->len || c->s[c->p] != '"') return 0;
        const int64_t key = c->p + 1;
        if (!skip_string(c, &escaped)) return 0;
        const int64_t key_length = c->p - 1 - key;
        int32_t child = -1;
        if (edges > 0) {
            if (escaped) return 0; /* an escaped key might spell a wanted one */
            const int32_t signature = key_signature(c->s + key, key_length);
            for (int32_t e = 0; e < edges; e++) {
                const int32_t *edge = t->edges + 4 * (first_edge + e);
                if (edge[3] == signature &&
                    memcmp(t->keys + edge[0], c->s + key, (size_t)key_length) == 0) {
                    if (seen >> e & 1) return 0; /* a duplicate: which one counts is DuckDB's call */
                    seen |= (uint64_t)1 << e;
                    child = edge[2];
                    break;
                }
            }
        }
        skip_space(c);
        if (c->p >= c->len || c->s[c->p] != ':') return 0;
        c->p++;
        if (!scan_value(c, t, child, depth)) return 0;
        skip_space(c);
        if (c->p >= c->len) return 0;
        if (c->s[c->p] == '}') {
            c->p++;
            return 1;
        }
        if (c->s[c->p] != ',') return 0;
        c->p++;
        skip_space(c);
    }
}

static int scan_array(Cursor *c, const Trie *t, int depth) {
    c->p++;
    skip_space(c);
    if (c->p < c->len && c->s[c->p] == ']') {
        c->p++;
        return 1;
    }
    for (;;) {
        if (!scan_value(c, t, -1, depth)) return 0;
        skip_space(c);
        if (c->p >= c->len) return 0;
        if (c->s[c->p] == ']') {
            c->p++;
            return 1;
        }
        if (c->s[c->p] != ',') return 0;
        c->p++;
    }
}

static int literal(Cursor *c, const char *word, int64_t length) {
    if (c->p + length > c->len || memcmp(c->s + c->p, word, (size_t)length) != 0) return 0;
    c->p += length;
    return 1;
}

static int scan_value(Cursor *c, const Trie *t, int32_t node, int depth) {
    if (depth > MAX_DEPTH) return 0;
    skip_space(c);
    if (c->p >= c->len) return 0;
    const int wanted = node >= 0 && t->nodes[4 * node + 3] > 0;
    const int64_t start = c->p;
    int escaped, plain;
    switch (c->s[c->p]) {
    case '{':
        if (wanted) return 0; /* DuckDB gives an object as re-written JSON text */
        return scan_object(c, t, node, depth + 1);
    case '[':
        if (wanted) return 0;
        return scan_array(c, t, depth + 1);
    case '"':
        if (!skip_string(c, &escaped)) return 0;
        if (!wanted) return 1;
        if (!escaped) {
            record(c, t, node, c->base + start + 1, (int32_t)(c->p - start - 2));
            return 1;
        }
        {
            uint8_t *out = c->scratch + *c->used;
            uint8_t *end = decode_string(c->s, start + 1, c->p - 1, out);
            if (end == NULL) return 0;
            record(c, t, node, c->scratch_base + *c->used, (int32_t)(end - out));
            *c->used += end - out;
        }
        return 1;
    case 't':
        if (!literal(c, "true", 4)) return 0;
        break;
    case 'f':
        if (!literal(c, "false", 5)) return 0;
        break;
    case 'n':
        return literal(c, "null", 4); /* null is no value */
    default:
        if (!skip_number(c, &plain)) return 0;
        if (wanted && !plain && !leaves_all_numeric(t, node)) return 0;
    }
    if (wanted) record(c, t, node, c->base + start, (int32_t)(c->p - start));
    return 1;
}

/* Arrow string views (16 bytes each: length, then the bytes inline up to 12, or a prefix,
 * a buffer index and an offset). */
static inline int32_t view_int(const uint8_t *view, int at) {
    int32_t value;
    memcpy(&value, view + at, 4);
    return value;
}

/* Line i is the string view views[16 * i ...] into buffers[0 .. n_buffers); its values'
 * locations are starts/lengths[width * i ...], where the scratch buffer is buffer n_buffers.
 * accepted[i] is 1 when the scanner read line i, 0 when DuckDB must. scratch holds at least
 * as many bytes as the lines together. Returns -1 when the trie is too wide for the scanner.
 */
int json_scan_views(const uint8_t *views, int64_t lines, const uint8_t *const *buffers,
                    int32_t n_buffers, const int32_t *nodes, const int32_t *edges,
                    const uint8_t *keys, const int32_t *leaves, const uint8_t *numeric,
                    int32_t width, uint8_t *scratch, int64_t *starts, int32_t *lengths,
                    uint8_t *accepted) {
    if (width > MAX_COLUMNS) return -1;
    if (!special['"']) init_special();
    const Trie trie = {nodes, edges, keys, leaves, numeric, width};
    int64_t used = 0;
    Cursor c;
    c.scratch = scratch;
    c.scratch_base = LOCATION(n_buffers, 0);
    c.used = &used;
    for (int64_t i = 0; i < lines; i++) {
        const uint8_t *view = views + 16 * i;
        c.len = view_int(view, 0);
        if (c.len <= 12) { /* inline: scanned from a copy in scratch, where values can point */
            memcpy(scratch + used, view + 4, (size_t)c.len);
            c.s = scratch + used;
            c.base = c.scratch_base + used;
            used += c.len;
        } else {
            const int32_t buffer = view_int(view, 8), offset = view_int(view, 12);
            c.s = buffers[buffer] + offset;
            c.base = LOCATION(buffer, offset);
        }
        c.p = 0;
        c.starts = starts + width * i;
        c.lengths = lengths + width * i;
        for (int32_t k = 0; k < width; k++) {
            c.ranks[k] = INT32_MAX;
            c.starts[k] = -1;
            c.lengths[k] = 0;
        }
        skip_space(&c);
        int ok = c.p < c.len && c.s[c.p] == '{' && scan_value(&c, &trie, 0, 0);
        if (ok) {
            skip_space(&c);
            ok = c.p == c.len;
        }
        accepted[i] = (uint8_t)ok;
        if (!ok) {
            for (int32_t k = 0; k < width; k++) {
                c.starts[k] = -1;
                c.lengths[k] = 0;
            }
        }
    }
    return 0;
}

/* Every column as string views into the same buffers (the scratch buffer last), in
 * views[k], with its validity bitmap (least significant bit first) in validity[k]: no value
 * is copied. */
void json_view_columns(const uint8_t *const *buffers, const int64_t *starts,
                       const int32_t *lengths, int64_t lines, int32_t width,
                       uint8_t *const *views, uint8_t *const *validity) {
    for (int32_t k = 0; k < width; k++) memset(validity[k], 0, (size_t)((lines + 7) / 8));
    for (int64_t i = 0; i < lines; i++) {
        for (int32_t k = 0; k < width; k++) {
            uint8_t *view = views[k] + 16 * i;
            const int64_t location = starts[width * i + k];
            memset(view, 0, 16);
            if (location == -1) continue;
            validity[k][i >> 3] |= (uint8_t)(1 << (i & 7));
            const int32_t length = lengths[width * i + k];
            const int32_t buffer = (int32_t)(location >> OFFSET_BITS);
            const int32_t offset = (int32_t)(location & (((int64_t)1 << OFFSET_BITS) - 1));
            const uint8_t *value = buffers[buffer] + offset;
            memcpy(view, &length, 4);
            if (length <= 12) {
                memcpy(view + 4, value, (size_t)length);
            } else {
                memcpy(view + 4, value, 4);
                memcpy(view + 8, &buffer, 4);
                memcpy(view + 12, &offset, 4);
            }
        }
    }
}

/* How many newlines data[0:length] holds, and with positions, where they are. */
int64_t find_newlines(const uint8_t *data, int64_t length, int64_t *positions) {
    int64_t count = 0;
    const uint8_t *at = data, *end = data + length;
    while (at < end) {
        const uint8_t *found = memchr(at, '\n', (size_t)(end - at));
        if (found == NULL) break;
        if (positions != NULL) positions[count] = found - data;
        count++;
        at = found + 1;
    }
    return count;
}
