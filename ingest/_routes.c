/* Route templating, compiled: the fast path of ingest/routes.py.
 *
 * template_paths cuts each path at its slashes and gives every segment the class that
 * routes.SEGMENT_CLASSES would give it (the tests below are those regexes, written out),
 * then writes the route (identifier segments replaced by their placeholders) and the
 * removed segments (the resource ids). tests/test_routes_compiled.py checks that it agrees
 * with the numpy and regex implementation on generated and mutated segments.
 *
 * Part of the optional extension module ingest.formats._scan; called through ctypes.
 */
#include <stdint.h>
#include <string.h>

#include "formats/_views.h"

enum { KEEP, ID, UUID, ULID, DATE, EMAIL, HEX, PREFIXED_ID, TOKEN };

/* As routes._SHORTEST_NON_NUMERIC_ID */
#define SHORTEST_NON_NUMERIC_ID 5

static inline int is_digit(uint8_t b) { return b >= '0' && b <= '9'; }
static inline int is_alpha(uint8_t b) { return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'); }
static inline int is_alnum(uint8_t b) { return is_digit(b) || is_alpha(b); }
static inline int is_hex(uint8_t b) {
    return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static int all_hex(const uint8_t *s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!is_hex(s[i])) return 0;
    return 1;
}

/* ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ */
static int uuid_like(const uint8_t *s, int64_t n) {
    if (n != 36) return 0;
    for (int64_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$ (Crockford base32: no I, L, O, U) */
static int ulid_like(const uint8_t *s, int64_t n) {
    if (n != 26 || s[0] < '0' || s[0] > '7') return 0;
    for (int64_t i = 1; i < 26; i++) {
        const uint8_t b = s[i], upper = (b >= 'a' && b <= 'z') ? (uint8_t)(b - 32) : b;
        if (!is_alnum(b) || upper == 'I' || upper == 'L' || upper == 'O' || upper == 'U')
            return 0;
    }
    return 1;
}

/* ^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?$ */
static int date_like(const uint8_t *s, int64_t n) {
    if (n < 10) return 0;
    for (int64_t i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-') return 0;
        } else if (!is_digit(s[i])) {
            return 0;
        }
    }
    if (n == 10) return 1;
    if (s[10] != 'T' && s[10] != ' ') return 0;
    int64_t p = 11;
    while (p < n && (is_digit(s[p]) || s[p] == ':' || s[p] == '.')) p++;
    if (p == 11) return 0;
    if (p == n) return 1;
    if (s[p] == 'Z') return p + 1 == n;
    if (s[p] != '+' && s[p] != '-') return 0;
    const int64_t zone = ++p;
    while (p < n && (is_digit(s[p]) || s[p] == ':')) p++;
    return p > zone && p == n;
}

/* What follows the @ of an address: [^@/]+\.[A-Za-z]{2,}$ (the caller saw no other @). */
static int domain_like(const uint8_t *s, int64_t n) {
    int64_t dot = n - 1;
    while (dot >= 0 && s[dot] != '.') dot--;
    if (dot < 1 || n - dot - 1 < 2) return 0;
    for (int64_t i = dot + 1; i < n; i++)
        if (!is_alpha(s[i])) return 0;
    return 1;
}

/* ^[^@/]+(?:@|%40)[^@/]+\.[A-Za-z]{2,}$ (a segment holds no slash) */
static int email_like(const uint8_t *s, int64_t n) {
    const uint8_t *at = memchr(s, '@', (size_t)n);
    if (at != NULL) {
        const int64_t i = at - s;
        if (i < 1 || memchr(at + 1, '@', (size_t)(n - i - 1)) != NULL) return 0;
        return domain_like(at + 1, n - i - 1);
    }
    for (int64_t i = 1; i + 3 <= n; i++)
        if (s[i] == '%' && s[i + 1] == '4' && s[i + 2] == '0' && domain_like(s + i + 3, n - i - 3))
            return 1;
    return 0;
}

/* ^(?:0x)?[0-9a-fA-F]{8,}$ */
static int hex_like(const uint8_t *s, int64_t n) {
    if (n >= 10 && s[0] == '0' && s[1] == 'x' && all_hex(s + 2, n - 2)) return 1;
    return n >= 8 && all_hex(s, n);
}

/* ^[A-Za-z]{1,8}[_-][A-Za-z0-9]{4,}$ */
static int prefixed_id_like(const uint8_t *s, int64_t n) {
    int64_t k = 0;
    while (k < n && is_alpha(s[k])) k++;
    if (k < 1 || k > 8 || k >= n || (s[k] != '_' && s[k] != '-') || n - k - 1 < 4) return 0;
    for (int64_t i = k + 1; i < n; i++)
        if (!is_alnum(s[i])) return 0;
    return 1;
}

/* ^[A-Za-z0-9_~.=-]{16,}$ */
static int token_like(const uint8_t *s, int64_t n) {
    if (n < 16) return 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t b = s[i];
        if (!is_alnum(b) && b != '_' && b != '~' && b != '.' && b != '=' && b != '-') return 0;
    }
    return 1;
}

/* The class of one segment (KEEP when it is no identifier), as routes._classes decides. */
static int segment_class(const uint8_t *s, int64_t n) {
    int64_t digits = 0, marks = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_digit(s[i])) digits++;
        else if (s[i] == '@') marks++;
    }
    if (n > 0 && digits == n) return ID;
    for (int64_t i = 0; i + 3 <= n && marks == 0 && digits == 0; i++)
        if (s[i] == '%' && s[i + 1] == '4' && s[i + 2] == '0') marks++;
    if (digits + marks == 0 || n < SHORTEST_NON_NUMERIC_ID) return KEEP;
    const int digit = digits > 0;
    if (uuid_like(s, n)) return UUID;
    if (digit && ulid_like(s, n)) return ULID;
    if (date_like(s, n)) return DATE;
    if (email_like(s, n)) return EMAIL;
    if (digit && hex_like(s, n)) return HEX;
    if (digit && prefixed_id_like(s, n)) return PREFIXED_ID;
    if (digit && token_like(s, n)) return TOKEN;
    return KEEP;
}

/* Path i is the string view views[16 * i ...] into buffers. Its route is written to
 * route_data (at most 8 bytes per path byte plus 8 per path) with a view of it in
 * route_views (buffer 0); its resource ids, as views into the paths' own buffers, go to
 * id_views from id_offsets[i] to id_offsets[i + 1]. Returns how many ids there are; when
 * that is more than id_capacity, only the offsets are complete and the call must be made
 * again with room for them all. placeholders[bounds[c - 1]:bounds[c]] is class c's text. */
int64_t template_paths(const uint8_t *views, int64_t count, const uint8_t *const *buffers,
                       int32_t max_segments, const uint8_t *placeholders,
                       const int32_t *bounds, uint8_t *route_data, uint8_t *route_views,
                       int64_t *id_offsets, uint8_t *id_views, int64_t id_capacity) {
    int64_t written = 0, ids = 0;
    id_offsets[0] = 0;
    for (int64_t i = 0; i < count; i++) {
        int32_t length, buffer, offset;
        const uint8_t *path = view_text(views, i, buffers, &length, &buffer, &offset);
        const int64_t route_start = written;
        int32_t start = 0, position = 0;
        for (;;) {
            const uint8_t *slash = find_byte(path + start, length - start, '/');
            const int32_t end = slash != NULL ? (int32_t)(slash - path) : length;
            const int cls = position < max_segments ? segment_class(path + start, end - start) : KEEP;
            if (cls == KEEP) {
                memcpy(route_data + written, path + start, (size_t)(end - start));
                written += end - start;
            } else {
                const int32_t from = cls > 1 ? bounds[cls - 2] : 0, to = bounds[cls - 1];
                memcpy(route_data + written, placeholders + from, (size_t)(to - from));
                written += to - from;
                if (ids < id_capacity)
                    write_view(id_views + 16 * ids, path + start, end - start, buffer,
                               offset + start);
                ids++;
            }
            if (slash == NULL) break;
            route_data[written++] = '/';
            start = end + 1;
            position++;
        }
        write_view(route_views + 16 * i, route_data + route_start,
                   (int32_t)(written - route_start), 0, (int32_t)route_start);
        id_offsets[i + 1] = ids;
    }
    return ids;
}
