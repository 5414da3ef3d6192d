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
        case OP_LITERAL:
            if (p + b > len || memcmp(s + p, literals + a, (size_t)b) != 0) return 0;
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

/* Line i is data[bounds[i]:bounds[i + 1]]; its spans are spans[2 * fields * i ...]. */
void scan_lines(const uint8_t *data, const int64_t *bounds, int64_t lines,
                const int32_t *program, int64_t length, const uint8_t *literals, int32_t fields,
                int32_t *spans, uint8_t *matched) {
    for (int64_t i = 0; i < lines; i++) {
        const int64_t size = bounds[i + 1] - bounds[i];
        matched[i] = size < INT32_MAX &&
                     scan_line(data + bounds[i], size, program, length, literals,
                               spans + (int64_t)2 * fields * i);
    }
}

/* Field f of each matched line, back to back in out; offsets[i + 1] ends line i's value
 * (an unmatched line's value is empty). */
void gather_field(const uint8_t *data, const int64_t *bounds, int64_t lines,
                  const int32_t *spans, int32_t fields, int32_t f, const uint8_t *matched,
                  int64_t *offsets, uint8_t *out) {
    int64_t at = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < lines; i++) {
        if (matched[i]) {
            const int32_t *span = spans + (int64_t)2 * fields * i + 2 * f;
            const int64_t size = span[1] - span[0];
            memcpy(out + at, data + bounds[i] + span[0], (size_t)size);
            at += size;
        }
        offsets[i + 1] = at;
    }
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan", "CLF field scanner (called through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
