/* ISO-8601 and CLF timestamps, compiled: the fast path of reading time_iso and time_clf
 * (ingest/formats/times.py).
 *
 * Polars reads "%+" timestamps at 0.3 to 0.6 microseconds each when they carry fractions
 * (each is unique, so its cache does not help), a good part of a JSON line's cost.
 * parse_iso_times reads the one shape gateways write, YYYY-MM-DDTHH:MM:SS, an optional
 * fraction of 1 to 9 digits and Z or +HH:MM / -HH:MM, into microseconds since the epoch
 * (UTC, the fraction truncated, as Polars does). Anything else, or any field out of range
 * (a 60th second, a 31st of April, a year before 1970), is left to Polars.
 * parse_clf_times does the same for nginx's and Apache's 19/Nov/2026:10:00:00 +0000, which
 * Polars reads at 50-90 ns each from its cache of unique texts.
 *
 * Part of the optional extension module ingest.formats._scan; called through ctypes.
 */
#include <stdint.h>
#include <string.h>

#include "_views.h"

static inline __attribute__((always_inline)) int digits(const uint8_t *s, int n, int *value) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

static int days_in_month(int year, int month) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 ? 28 + leap : days[month - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 1 and the microseconds when s[0:n] has the one accepted shape, else 0. */
static int parse_one(const uint8_t *s, int64_t n, int64_t *micros) {
    int year, month, day, hour, minute, second;
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return 0;
    if (!digits(s, 4, &year) || !digits(s + 5, 2, &month) || !digits(s + 8, 2, &day) ||
        !digits(s + 11, 2, &hour) || !digits(s + 14, 2, &minute) || !digits(s + 17, 2, &second))
        return 0;
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return 0;
    int64_t p = 19, fraction = 0;
    if (s[p] == '.') {
        const int64_t first = ++p;
        while (p < n && s[p] >= '0' && s[p] <= '9') p++;
        const int64_t count = p - first;
        if (count < 1 || count > 9) return 0;
        for (int64_t i = 0; i < 6; i++) fraction = fraction * 10 + (i < count ? s[first + i] - '0' : 0);
    }
    int64_t offset = 0;
    if (p < n && s[p] == 'Z') {
        p++;
    } else if (p + 6 <= n && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':') {
        int zone_hour, zone_minute;
        if (!digits(s + p + 1, 2, &zone_hour) || !digits(s + p + 4, 2, &zone_minute) ||
            zone_hour > 23 || zone_minute > 59)
            return 0;
        offset = (zone_hour * 60 + zone_minute) * 60 * (s[p] == '-' ? -1 : 1);
        p += 6;
    } else {
        return 0;
    }
    if (p != n) return 0;
    const int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    *micros = seconds * 1000000 + fraction;
    return 1;
}

/* The last date read and its day number: lines come in time order, so most share the date
 * before them, and working a date out costs a dozen integer divisions (most of the time it
 * took to read a CLF time). */
typedef struct {
    uint8_t text[16];
    int64_t days;
    int valid;
} DateCache;

static void remember_date(DateCache *cache, const uint8_t *s, int length, int64_t days) {
    memcpy(cache->text, s, (size_t)length);
    cache->days = days;
    cache->valid = 1;
}

#define MONTH(a, b, c) ((uint32_t)(a) << 16 | (uint32_t)(b) << 8 | (uint32_t)(c))

/* 1 to 12 for an English month abbreviation (Jan ... Dec, in that case), else 0: one switch
 * (comparing with each name in turn cost most of a time's reading). */
static int month_number(const uint8_t *s) {
    switch (MONTH(s[0], s[1], s[2])) {
    case MONTH('J', 'a', 'n'): return 1;
    case MONTH('F', 'e', 'b'): return 2;
    case MONTH('M', 'a', 'r'): return 3;
    case MONTH('A', 'p', 'r'): return 4;
    case MONTH('M', 'a', 'y'): return 5;
    case MONTH('J', 'u', 'n'): return 6;
    case MONTH('J', 'u', 'l'): return 7;
    case MONTH('A', 'u', 'g'): return 8;
    case MONTH('S', 'e', 'p'): return 9;
    case MONTH('O', 'c', 't'): return 10;
    case MONTH('N', 'o', 'v'): return 11;
    case MONTH('D', 'e', 'c'): return 12;
    default: return 0;
    }
}

/* 1 and the microseconds when s[0:n] is a CLF time exactly as nginx and Apache write it,
 * DD/Mon/YYYY:HH:MM:SS +HHMM (a month's English abbreviation), else 0 (left to Polars). */
static int parse_one_clf(const uint8_t *s, int64_t n, int64_t *micros, DateCache *cache) {
    int hour, minute, second, zone_hour, zone_minute;
    if (n != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':' ||
        s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
        return 0;
    if (!cache->valid || memcmp(s, cache->text, 11) != 0) {
        int year, day;
        const int month = month_number(s + 3);
        if (month == 0 || !digits(s, 2, &day) || !digits(s + 7, 4, &year) || year < 1970 ||
            day < 1 || day > days_in_month(year, month))
            return 0;
        remember_date(cache, s, 11, days_from_civil(year, month, day));
    }
    if (!digits(s + 12, 2, &hour) || !digits(s + 15, 2, &minute) || !digits(s + 18, 2, &second) ||
        !digits(s + 22, 2, &zone_hour) || !digits(s + 24, 2, &zone_minute))
        return 0;
    if (hour > 23 || minute > 59 || second > 59 || zone_hour > 23 || zone_minute > 59) return 0;
    const int64_t offset = (zone_hour * 60 + zone_minute) * 60 * (s[21] == '-' ? -1 : 1);
    const int64_t seconds = cache->days * 86400 + hour * 3600 + minute * 60 + second - offset;
    *micros = seconds * 1000000;
    return 1;
}

/* As parse_iso_times, for CLF times. */
void parse_clf_times(const uint8_t *views, int64_t count, const uint8_t *const *buffers,
                     int64_t *micros, uint8_t *parsed) {
    DateCache cache = {.valid = 0};
    for (int64_t i = 0; i < count; i++) {
        int32_t length, buffer, offset;
        const uint8_t *text = view_text(views, i, buffers, &length, &buffer, &offset);
        parsed[i] = (uint8_t)parse_one_clf(text, length, &micros[i], &cache);
        if (!parsed[i]) micros[i] = 0;
    }
}

/* Text i is the string view views[16 * i ...] into buffers; micros[i] and parsed[i] say what
 * it reads as (parsed 0: left to Polars). */
void parse_iso_times(const uint8_t *views, int64_t count, const uint8_t *const *buffers,
                     int64_t *micros, uint8_t *parsed) {
    for (int64_t i = 0; i < count; i++) {
        int32_t length, buffer, offset;
        const uint8_t *text = view_text(views, i, buffers, &length, &buffer, &offset);
        parsed[i] = (uint8_t)parse_one(text, length, &micros[i]);
        if (!parsed[i]) micros[i] = 0;
    }
}
