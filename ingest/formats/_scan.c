/* Field scanner for the CLF family: the compiled-in fast path of ClfFormat.parse.
 *
 * A format string compiles to a small program (see ingest/formats/scan.py): literals to
 * compare and variables to scan, each variable of one of the few shapes that the format's
 * regex uses. scan_lines runs it over a whole batch of lines and records each captured
 * field's byte span. A line the program does not match exactly, or that holds anything the
 * regex would treat in a way this scanner does not copy (a backslash escape inside quotes,
 * non-ASCII bytes where \s and \S are tested), is marked for the regex instead: so on every
 * line it accepts, the scanner gives what the regex gives, and it never rejects a line.
 *
 * Built as an optional extension module; the functions are called through ctypes.
 */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_views.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    OP_LITERAL = 1,  /* a: offset in the literal pool, b: length */
    OP_QUOTED,       /* [^"\\]*, up to the closing quote */
    OP_DIGITS,       /* \d+ */
    OP_UNTIL_BYTE,   /* [^a]* where byte a follows */
    OP_NONSPACE,     /* \S* */
    OP_TIME_ZONE,    /* \S+ [+-]\d{4} */
    OP_ADDRESS_LIST, /* [^\s,]*(?:, [^\s,]+)* */
    OP_END_LENIENT,  /* (?s:\s.*)?$ */
    OP_END_STRICT,   /* \s*$ */
};

static inline int is_space(uint8_t c) { return c == ' ' || (c >= 9 && c <= 13); }
static inline int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Non-space ASCII from p on; returns the end, or -1 at a non-ASCII byte. */
static inline int64_t skip_nonspace(const uint8_t *s, int64_t p, int64_t len, int comma_ends) {
    while (p < len && !is_space(s[p]) && !(comma_ends && s[p] == ',')) {
        if (s[p] >= 0x80) return -1;
        p++;
    }
    return p;
}

/* 1 when the program matches the line (spans filled), 0 when the regex must decide. */
static int scan_line(const uint8_t *s, int64_t len, const int32_t *program, int64_t length,
                     const uint8_t *literals, int32_t *spans) {
    int64_t p = 0;
    for (int64_t k = 0; k < length; k += 4) {
        const int32_t op = program[k], a = program[k + 1], b = program[k + 2];
        const int32_t field = program[k + 3];
        const int64_t start = p;
        const uint8_t *found;
        switch (op) {
        case OP_LITERAL: /* a few bytes: compared in place (a call to memcmp cost more) */
            if (p + b > len) return 0;
            for (int32_t j = 0; j < b; j++)
                if (s[p + j] != literals[a + j]) return 0;
            p += b;
            continue;
        case OP_QUOTED:
            found = memchr(s + p, '"', (size_t)(len - p));
            if (found == NULL || memchr(s + p, '\\', (size_t)(found - (s + p))) != NULL) return 0;
            p = found - s;
            break;
        case OP_DIGITS:
            while (p < len && is_digit(s[p])) p++;
            if (p == start) return 0;
            break;
        case OP_UNTIL_BYTE:
            found = memchr(s + p, a, (size_t)(len - p));
            if (found == NULL) return 0;
            p = found - s;
            break;
        case OP_NONSPACE:
            if ((p = skip_nonspace(s, p, len, 0)) < 0) return 0;
            break;
        case OP_TIME_ZONE:
            if ((p = skip_nonspace(s, p, len, 0)) <= start || p + 6 > len) return 0;
            if (s[p] != ' ' || (s[p + 1] != '+' && s[p + 1] != '-')) return 0;
            for (int d = 2; d < 6; d++)
                if (!is_digit(s[p + d])) return 0;
            p += 6;
            break;
        case OP_ADDRESS_LIST:
            if ((p = skip_nonspace(s, p, len, 1)) < 0) return 0;
            while (p + 2 < len && s[p] == ',' && s[p + 1] == ' ' && !is_space(s[p + 2]) &&
                   s[p + 2] != ',') {
                if ((p = skip_nonspace(s, p + 2, len, 1)) < 0) return 0;
            }
            break;
        case OP_END_LENIENT: /* a non-ASCII first byte (Unicode white space?) is handed over */
            return p == len || is_space(s[p]);
        case OP_END_STRICT:
            for (; p < len; p++)
                if (!is_space(s[p])) return 0;
            return 1;
        default:
            return 0;
        }
        if (field >= 0) {
            spans[2 * field] = (int32_t)start;
            spans[2 * field + 1] = (int32_t)p;
        }
    }
    return 0;
}

/* Line i is the string view views[16 * i ...] into buffers; its spans are
 * spans[2 * fields * i ...], all -1 when it is not matched. */
void scan_views(const uint8_t *views, int64_t first, int64_t last,
                const uint8_t *const *buffers, const int32_t *program, int64_t length,
                const uint8_t *literals, int32_t fields, int32_t *spans, uint8_t *matched) {
    for (int64_t i = first; i < last; i++) {
        int32_t size, buffer, offset;
        const uint8_t *line = view_text(views, i, buffers, &size, &buffer, &offset);
        int32_t *own = spans + (int64_t)2 * fields * i;
        for (int32_t k = 0; k < 2 * fields; k++) own[k] = -1;
        matched[i] = (uint8_t)scan_line(line, size, program, length, literals, own);
        if (!matched[i])
            for (int32_t k = 0; k < 2 * fields; k++) own[k] = -1;
    }
}

static inline int is_alpha(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* ^[A-Za-z][A-Za-z0-9_-]*$ (fields.METHOD) */
static int method_like(const uint8_t *s, int32_t n) {
    if (n < 1 || !is_alpha(s[0])) return 0;
    for (int32_t i = 1; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* ^[A-Za-z]+/[0-9.]+$ (fields.PROTOCOL) */
static int protocol_like(const uint8_t *s, int32_t n) {
    int32_t i = 0;
    while (i < n && is_alpha(s[i])) i++;
    if (i < 1 || i >= n || s[i] != '/' || i + 1 >= n) return 0;
    for (i = i + 1; i < n; i++)
        if (!is_digit(s[i]) && s[i] != '.') return 0;
    return 1;
}

/* The request line in field f of each matched line, split as fields.split_request_line does
 * at its first two spaces: the method's and the target's spans go to parts[4 * i ...] (-1 for
 * none), and decided[i] says whether that is the answer. Undecided: an unmatched line, or a
 * request that is not METHOD TARGET [PROTOCOL] but holds a space (its regex retry is left to
 * split_request_line). */
void split_requests(const uint8_t *views, int64_t first, int64_t last,
                    const uint8_t *const *buffers, const int32_t *spans, int32_t fields,
                    int32_t f, int32_t *parts, uint8_t *decided) {
    for (int64_t i = first; i < last; i++) {
        int32_t size, buffer, offset;
        const uint8_t *line = view_text(views, i, buffers, &size, &buffer, &offset);
        const int32_t start = spans[2 * (fields * i + f)], end = spans[2 * (fields * i + f) + 1];
        int32_t *own = parts + 4 * i;
        own[0] = own[1] = own[2] = own[3] = -1;
        decided[i] = 0;
        if (start < 0) continue;
        const uint8_t *request = line + start;
        const int32_t n = end - start;
        const uint8_t *first = find_byte(request, n, ' ');
        if (first == NULL) { /* no space: no request (and nothing for the regex either) */
            decided[i] = 1;
            continue;
        }
        const int32_t a = (int32_t)(first - request);
        const uint8_t *second = find_byte(first + 1, n - a - 1, ' ');
        const int32_t b = second != NULL ? (int32_t)(second - request) : n;
        if (!method_like(request, a)) continue;
        if (second != NULL && !protocol_like(second + 1, n - b - 1)) continue;
        own[0] = start;
        own[1] = start + a;
        own[2] = start + a + 1;
        own[3] = start + b;
        decided[i] = 1;
    }
}

/* Every column of spans (pairs, width per line, -1 for none) of lines [first, last) as
 * string views, in out[k], setting bits of its validity bitmap (least significant bit first,
 * zeroed by the caller) in validity[k]: one pass over the lines for all columns. A value of a column with dense[k] set and more than 12 bytes is
 * copied into scratch (buffer n_buffers) at *scratch_used, side by side with the others: the passes over that
 * column then read a few dense MB instead of one cache line per value strewn over the chunk
 * (twice as fast for CLF times). Other values are views into the lines' own buffers. */
void span_views(const uint8_t *views, int64_t first, int64_t last,
                const uint8_t *const *buffers, int32_t n_buffers, const int32_t *spans,
                int32_t width, const uint8_t *dense, uint8_t *scratch, int64_t *scratch_used,
                uint8_t *const *out, uint8_t *const *validity) {
    int64_t used = *scratch_used;
    for (int64_t i = first; i < last; i++) {
        int32_t size, buffer, offset;
        const uint8_t *line = view_text(views, i, buffers, &size, &buffer, &offset);
        for (int32_t k = 0; k < width; k++) {
            const int32_t start = spans[2 * (width * i + k)], end = spans[2 * (width * i + k) + 1];
            uint8_t *view = out[k] + 16 * i;
            if (start < 0) {
                memset(view, 0, 16);
                continue;
            }
            validity[k][i >> 3] |= (uint8_t)(1 << (i & 7));
            const int32_t length = end - start;
            if (dense[k] && length > 12 && used + length <= INT32_MAX) {
                memcpy(scratch + used, line + start, (size_t)length);
                write_view(view, scratch + used, length, n_buffers, (int32_t)used);
                used += length;
                continue;
            }
            /* a value longer than 12 bytes comes from a line that lies in a buffer */
            write_view(view, line + start, length, buffer, offset + start);
        }
    }
    *scratch_used = used;
}

/* Each text cut at its first separator byte, as Polars' splitn(separator, 2) cuts it: the
 * part before it (the whole text when there is none) and the part after it (none when there
 * is none), both as string views into the texts' own buffers. */
void split_views(const uint8_t *views, int64_t count, const uint8_t *const *buffers,
                 uint8_t separator, uint8_t *before, uint8_t *after, uint8_t *after_valid) {
    memset(after_valid, 0, (size_t)((count + 7) / 8));
    for (int64_t i = 0; i < count; i++) {
        int32_t size, buffer, offset;
        const uint8_t *text = view_text(views, i, buffers, &size, &buffer, &offset);
        const uint8_t *found = find_byte(text, size, separator);
        const int32_t cut = found != NULL ? (int32_t)(found - text) : size;
        write_view(before + 16 * i, text, cut, buffer, offset);
        memset(after + 16 * i, 0, 16);
        if (found != NULL) {
            write_view(after + 16 * i, text + cut + 1, size - cut - 1, buffer, offset + cut + 1);
            after_valid[i >> 3] |= (uint8_t)(1 << (i & 7));
        }
    }
}

/* found[i] = 1 when text i holds a byte b with wanted[b] set (single: the only such byte, or
 * -1), else 0: the question that a Polars `str.contains` answered at 40-90 ns a text. */
void views_with_bytes(const uint8_t *views, int64_t count, const uint8_t *const *buffers,
                      const uint8_t *wanted, int32_t single, uint8_t *found) {
    for (int64_t i = 0; i < count; i++) {
        int32_t size, buffer, offset;
        const uint8_t *text = view_text(views, i, buffers, &size, &buffer, &offset);
        uint8_t hit = 0;
        if (single >= 0) { /* one byte: memchr's word-at-a-time search pays on long texts */
            hit = size > 0 && memchr(text, single, (size_t)size) != NULL;
        } else {
            for (int32_t j = 0; j < size && !hit; j++) hit = wanted[text[j]];
        }
        found[i] = hit;
    }
}

/* Whether s[0:n] is valid UTF-8, as Rust's str::from_utf8 (and Python's strict decoding)
 * has it: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const uint8_t *s, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* eight ASCII bytes at a time: most of every access log */
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (!(word & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        const uint8_t b = s[i];
        if (b < 0x80) {
            i++;
        } else if (b >= 0xC2 && b <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            if (i + 2 >= n) return 0;
            const uint8_t low = b == 0xE0 ? 0xA0 : 0x80, high = b == 0xED ? 0x9F : 0xBF;
            if (s[i + 1] < low || s[i + 1] > high || (s[i + 2] & 0xC0) != 0x80) return 0;
            i += 3;
        } else if (b >= 0xF0 && b <= 0xF4) {
            if (i + 3 >= n) return 0;
            const uint8_t low = b == 0xF0 ? 0x90 : 0x80, high = b == 0xF4 ? 0x8F : 0xBF;
            if (s[i + 1] < low || s[i + 1] > high || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Line i of cut_lines: data[start:end). */
static inline void put_line(const uint8_t *data, int64_t start, int64_t end, int ascii,
                            int64_t i, int64_t *starts, uint8_t *views, uint8_t *valid) {
    starts[i] = start;
    write_view(views + 16 * i, data + start, (int32_t)(end - start), 0, (int32_t)start);
    valid[i] = (uint8_t)(ascii || valid_utf8(data + start, end - start));
}

/* Cuts data[0:length] into lines, each with its newline (a last line without one is a line
 * too), in one pass: for the first `capacity` lines, where each starts (starts[i]), a string
 * view of it into buffer 0 (views[16 * i ...]) and whether it is valid UTF-8 (valid[i]).
 * Returns how many lines there are (more than capacity: call again with room for them).
 * Sixteen bytes at a time, a line's newline and whether it is all ASCII are found together
 * (the usual line then needs no UTF-8 check of its own). Finding the newlines, then having
 * Polars check and convert the lines, read every chunk three times. */
int64_t cut_lines(const uint8_t *data, int64_t length, int64_t capacity, int64_t *starts,
                  uint8_t *views, uint8_t *valid) {
    int64_t count = 0, start = 0, p = 0;
    int ascii = 1; /* no byte above 0x7F in data[start:p) */
#if defined(__SSE2__)
    const __m128i newline = _mm_set1_epi8('\n');
    while (p + 16 <= length) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(data + p));
        const unsigned found = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, newline));
        const unsigned high = (unsigned)_mm_movemask_epi8(x);
        if (!found) {
            ascii &= !high;
            p += 16;
            continue;
        }
        const int k = __builtin_ctz(found);
        ascii &= !(high & ((1u << k) - 1));
        const int64_t end = p + k + 1;
        if (count < capacity) put_line(data, start, end, ascii, count, starts, views, valid);
        count++;
        start = p = end;
        ascii = 1;
    }
#endif
    while (start < length) { /* the rest, and a last line without a newline */
        const uint8_t *next = p < length ? memchr(data + p, '\n', (size_t)(length - p)) : NULL;
        const int64_t end = next != NULL ? next - data + 1 : length;
        for (int64_t j = p; j < end && ascii; j++) ascii = data[j] < 0x80;
        if (count < capacity) put_line(data, start, end, ascii, count, starts, views, valid);
        count++;
        start = p = end;
        ascii = 1;
    }
    return count;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "CLF field scanner (called through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
