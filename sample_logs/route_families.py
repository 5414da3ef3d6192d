"""Traffic over 50 route families whose ids have many shapes, with each path's true template.

The test bench of route learning: file names (``report-2026-q3.pdf``), slugs, user names,
SKUs (``AB-1234-X``), mixed-case codes, short hashes, dates in odd forms ... that templating at
import does not recognise, beside ids it does (numbers, UUIDs, prefixed ids, e-mails), some
families mixing both, and static siblings (``/api/v1/users/me``) that must stay literal.

    frame = route_family_paths(30_000, seed=7)     # path, template, family
    write_route_family_log("access.log", 30_000)   # nginx combined lines, same columns back

Deterministic by seed. A family's paths come from a pool of distinct values, requested with a
mild skew (a few values busy, most seen a few times), as ids are in real traffic.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

Maker = Callable[[random.Random], str]

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
    "xena", "yusuf", "zoe", "amir", "bea", "chen", "dmitri", "elif", "farah", "goran", "hana",
)  # fmt: skip
WORDS = (
    "blue", "red", "green", "small", "large", "quick", "quiet", "bright", "dark", "smart",
    "widget", "gadget", "lamp", "chair", "table", "kettle", "phone", "cable", "mug", "desk",
    "river", "stone", "cloud", "forest", "ocean", "summer", "winter", "north", "south", "city",
)  # fmt: skip
TAGS = (
    "python", "rust", "golang", "java", "kotlin", "swift", "ruby", "elixir", "haskell", "scala",
    "docker", "kubernetes", "terraform", "ansible", "nginx", "postgres", "redis", "kafka",
    "linux", "windows", "macos", "android", "ios", "react", "vue", "angular", "svelte", "django",
    "flask", "rails", "spring", "laravel", "graphql", "grpc", "websocket", "oauth", "jwt", "tls",
    "dns", "http", "cache", "queue", "cron", "backup", "logging", "metrics", "tracing", "alerts",
    "security", "testing", "fuzzing", "profiling", "compilers", "databases", "networking",
    "frontend", "backend", "devops", "mobile", "embedded", "gaming", "audio", "video", "maps",
    "payments", "billing", "search", "analytics", "design", "accessibility", "privacy", "ai",
    "robotics", "iot", "blockchain", "quantum", "math", "physics", "chemistry", "biology",
)  # fmt: skip
CITIES = (
    "berlin", "paris", "london", "madrid", "rome", "vienna", "prague", "warsaw", "oslo",
    "lisbon", "dublin", "athens", "zurich", "munich", "hamburg", "milan", "porto", "seville",
    "new-york", "los-angeles", "san-francisco", "sao-paulo", "buenos-aires", "mexico-city",
    "hong-kong", "kuala-lumpur", "cape-town", "tel-aviv", "abu-dhabi", "st-petersburg",
    "rio-de-janeiro", "salt-lake-city", "las-vegas", "san-diego", "new-delhi", "addis-ababa",
)  # fmt: skip
LOCALES = (
    "en-US", "en-GB", "de-DE", "de-AT", "fr-FR", "fr-CA", "es-ES", "es-MX", "pt-BR", "pt-PT",
    "it-IT", "nl-NL", "sv-SE", "nb-NO", "da-DK", "fi-FI", "pl-PL", "cs-CZ", "tr-TR", "ru-RU",
    "ja-JP", "ko-KR", "zh-CN", "zh-TW", "ar-SA", "he-IL", "hi-IN", "th-TH", "vi-VN", "id-ID",
)  # fmt: skip
REGIONS = tuple(
    f"{area}-{side}-{n}"
    for area in ("us", "eu", "ap", "sa", "ca", "me", "af")
    for side in ("east", "west", "central", "north", "south")
    for n in (1, 2)
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
B36 = string.ascii_lowercase + string.digits
MIXED = string.ascii_letters + string.digits


def _pick(values: tuple[str, ...]) -> Maker:
    return lambda r: r.choice(values)


def _chars(alphabet: str, low: int, high: int) -> Maker:
    return lambda r: "".join(r.choices(alphabet, k=r.randint(low, high)))


def _digits(r: random.Random, count: int) -> str:
    return "".join(r.choices(string.digits, k=count))


def _upper(r: random.Random, count: int) -> str:
    return "".join(r.choices(string.ascii_uppercase, k=count))


def _day(r: random.Random) -> dt.date:
    return dt.date(2025, 1, 1) + dt.timedelta(days=r.randrange(700))


def report_file(r: random.Random) -> str:
    word = r.choice(("report", "invoice", "summary", "statement", "minutes", "budget"))
    ext = r.choice(("pdf", "pdf", "csv", "xlsx", "docx"))
    shapes = (
        f"{word}-{r.randint(2019, 2027)}-q{r.randint(1, 4)}.{ext}",
        f"{word}_{r.randint(2019, 2027)}{r.randint(1, 12):02d}.{ext}",
        f"{r.choice(WORDS)}-{word}.{ext}",
        f"{word}-v{r.randint(1, 9)}.{ext}",
        f"{word}.{ext}",
    )
    return r.choice(shapes)


def username(r: random.Random) -> str:
    name = r.choice(FIRST_NAMES)
    return r.choice(
        (
            name,
            f"{name}{r.randint(1, 999)}",
            f"{name}.{r.choice(FIRST_NAMES)}",
            f"{name}_{r.choice(string.ascii_lowercase)}",
            f"{name[0]}{r.choice(FIRST_NAMES)}",
        )
    )


def slug(r: random.Random) -> str:
    words = "-".join(r.sample(WORDS, r.randint(2, 4)))
    return f"{words}-{r.randint(2, 99)}" if r.random() < 0.3 else words


def sku(r: random.Random) -> str:
    return f"{_upper(r, 2)}-{_digits(r, 4)}-{_upper(r, 1)}"


def odd_date(r: random.Random) -> str:
    d = _day(r)
    return r.choice(
        (
            f"{d.year}_{d.month:02d}_{d.day:02d}",
            f"{d.day:02d}-{d.month:02d}-{d.year}",
            f"{MONTHS[d.month - 1]}-{d.day}-{d.year}",
            f"{d.year}.{d.month:02d}.{d.day:02d}",
            f"{d.year}-W{d.isocalendar().week:02d}",
            d.isoformat(),  # templating's {date}
            d.strftime("%Y%m%d"),  # templating's {id}
        )
    )


def image_file(r: random.Random) -> str:
    return r.choice(
        (
            f"IMG_{_digits(r, 4)}.JPG",
            f"DSC{_digits(r, 5)}.jpg",
            f"photo-{r.randint(1, 999)}.png",
            f"{r.choice(WORDS)}_{r.choice(WORDS)}.webp",
        )
    )


def version(r: random.Random) -> str:
    core = f"{r.randint(0, 5)}.{r.randint(0, 20)}.{r.randint(0, 30)}"
    return r.choice((core, f"v{core}", f"{core}-rc{r.randint(1, 4)}"))


def wiki_title(r: random.Random) -> str:
    return "_".join(w.capitalize() for w in r.sample(WORDS, r.randint(1, 3)))


def mac(r: random.Random) -> str:
    return "-".join(f"{r.randrange(256):02X}" for _ in range(6))


def postcode(r: random.Random) -> str:
    return r.choice(
        (
            _digits(r, 5),  # templating's {id}
            f"{_upper(r, 2)}{r.randint(1, 9)}{_upper(r, 1)}-{r.randint(1, 9)}{_upper(r, 2)}",
            f"{_upper(r, 1)}{r.randint(1, 9)}{_upper(r, 1)}-{r.randint(1, 9)}{_upper(r, 1)}{r.randint(1, 9)}",
        )
    )


def flight(r: random.Random) -> str:
    return f"{_upper(r, 2)}{r.randint(1, 9999):04d}"


def plate(r: random.Random) -> str:
    return f"{_upper(r, r.randint(1, 2))}-{_upper(r, 2)}-{r.randint(1, 9999)}"


def isbn(r: random.Random) -> str:
    return f"978-{r.randint(0, 9)}-{_digits(r, 2)}-{_digits(r, 6)}-{r.randint(0, 9)}"


def ticket_key(r: random.Random) -> str:
    return f"{r.choice(('OPS', 'WEB', 'CORE', 'PAY'))}-{r.randint(1, 99999)}"


def asset(ext: str) -> Maker:
    def make(r: random.Random) -> str:
        name = r.choice(("app", "main", "vendor", "runtime", "chunk", "polyfills"))
        return f"{name}.{''.join(r.choices('0123456789abcdef', k=6))}.{ext}"

    return make


def handle(r: random.Random) -> str:
    return f"~{username(r)}"


def variant(r: random.Random) -> str:
    size = r.choice(("XS", "S", "M", "L", "XL", "XXL"))
    return f"{size}-{r.choice(('RED', 'BLUE', 'GREEN', 'BLACK', 'WHITE', 'GREY', 'PINK'))}"


def export_file(r: random.Random) -> str:
    return f"export-{_day(r).strftime('%Y%m%d')}-{r.randint(0, 23):02d}00.csv"


def backup_name(r: random.Random) -> str:
    return f"backup-{_day(r).isoformat()}T{r.randint(0, 23):02d}-00"


def key_name(r: random.Random) -> str:
    return (
        f"{r.choice(('prod', 'stage', 'dev', 'ci'))}-{r.choice(WORDS)}-key-{r.randint(1, 99):02d}"
    )


def bucket(r: random.Random) -> str:
    return f"{r.choice(('logs', 'media', 'backups', 'assets'))}-{r.choice(('prod', 'stage', 'eu', 'us'))}"


def object_file(r: random.Random) -> str:
    return f"{r.choice(WORDS)}-{r.randint(1, 9999)}.{r.choice(('gz', 'json', 'parquet', 'mp4'))}"


def channel(r: random.Random) -> str:
    return r.choice(
        (
            f"{r.choice(WORDS)}-chat",
            f"team_{r.choice(WORDS)}",
            f"proj-{r.choice(WORDS)}-{r.randint(1, 9)}",
        )
    )


def build_id(r: random.Random) -> str:
    return f"{_day(r).strftime('%Y%m%d')}.{r.randint(1, 30)}"


def episode(r: random.Random) -> str:
    return f"S{r.randint(1, 12):02d}E{r.randint(1, 24):02d}"


def tracking(r: random.Random) -> str:
    return r.choice(
        (
            f"1Z{_upper(r, 3)}{_digits(r, 13)}",  # templating's {token}
            _digits(r, 14),  # templating's {id}
            f"{_upper(r, 2)}{_digits(r, 9)}{_upper(r, 2)}",
        )
    )


def owner(r: random.Random) -> str:
    return r.choice(
        (
            f"{r.choice(WORDS)}-org",
            f"{r.choice(FIRST_NAMES)}{r.randint(1, 99)}",
            f"{r.choice(WORDS)}{r.choice(WORDS)}",
        )
    )


def repo(r: random.Random) -> str:
    return r.choice(
        (
            slug(r),
            f"{r.choice(WORDS)}.{r.choice(('js', 'py', 'rs'))}",
            f"{r.choice(WORDS)}{r.randint(1, 9)}",
        )
    )


def number(r: random.Random) -> str:
    return str(r.randint(1, 9_999_999))


def uuid(r: random.Random) -> str:
    hexa = "".join(r.choices("0123456789abcdef", k=32))
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


def prefixed(prefix: str) -> Maker:
    return lambda r: f"{prefix}_{''.join(r.choices(B36, k=10))}{r.randint(0, 9)}"


def email(r: random.Random) -> str:
    return f"{username(r)}@{r.choice(('example.com', 'mail.test', 'corp.example.org'))}"


def token(r: random.Random) -> str:
    return "".join(r.choices(MIXED, k=31)) + str(r.randint(0, 9))


@dataclass(frozen=True)
class Family:
    """A route and the makers of its placeholders' values, in order; no placeholder: static."""

    template: str
    values: tuple[Maker, ...] = ()
    weight: float = 1.0


def _family(template: str, *values: Maker, weight: float = 1.0) -> Family:
    return Family(template, values, weight)


FAMILIES: tuple[Family, ...] = (
    _family("/files/{file}", report_file),
    _family("/api/v1/users/{name}", username),
    _family("/api/v1/users/{name}/settings", username),
    _family("/api/v1/users/{name}/repos/{slug}", username, slug),
    _family("/shop/products/{slug}", slug, weight=1.5),
    _family("/shop/products/{slug}/reviews", slug),
    _family("/api/v2/skus/{code}", sku),
    _family("/api/v1/orders/{id}", number, weight=2.0),
    _family("/api/v1/orders/{uuid}/items", uuid),
    _family("/repos/{owner}/{repo}", owner, repo),
    _family("/repos/{owner}/{repo}/issues/{id}", owner, repo, number),
    _family("/blobs/{hash}", _chars("0123456789abcdef", 7, 7)),
    _family("/reports/daily/{date}", odd_date),
    _family("/api/v1/coupons/{code}", _chars(MIXED, 6, 8)),
    _family("/media/{file}", image_file),
    _family("/api/v1/teams/{slug}/members/{name}", slug, username),
    _family("/api/v1/invoices/{id}", prefixed("inv")),
    _family("/api/v1/accounts/{email}", email),
    _family("/api/v1/sessions/{token}", token),
    _family("/releases/{version}/notes", version),
    _family("/wiki/{title}", wiki_title),
    _family("/api/v1/devices/{mac}", mac),
    _family("/api/v1/locations/{postcode}", postcode),
    _family("/api/v1/flights/{code}", flight),
    _family("/api/v1/vehicles/{plate}", plate),
    _family("/api/v1/books/{isbn}", isbn),
    _family("/api/v1/tickets/{key}", ticket_key),
    _family("/api/v1/tickets/{key}/comments", ticket_key),
    _family("/static/js/{file}", asset("js")),
    _family("/static/css/{file}", asset("css")),
    _family("/api/v1/places/{slug}", _pick(CITIES)),
    _family("/api/v1/locales/{locale}", _pick(LOCALES)),
    _family("/u/{handle}", handle),
    _family("/api/v1/products/{sku}/variants/{variant}", sku, variant),
    _family("/api/v1/stores/{id}/orders", number),
    _family("/api/v1/documents/{uuid}/versions/{id}", uuid, number),
    _family("/api/v1/exports/{file}", export_file),
    _family("/api/v1/backups/{token}", backup_name),
    _family("/api/v2/customers/{id}", prefixed("cus")),
    _family("/api/v2/customers/{id}/cards/{id}", prefixed("cus"), prefixed("card")),
    _family("/api/v1/hooks/{hex}", _chars("0123456789abcdef", 24, 40)),
    _family("/api/v1/keys/{name}", key_name),
    _family("/api/v1/buckets/{bucket}/objects/{file}", bucket, object_file),
    _family("/api/v1/channels/{name}", channel),
    _family("/api/v1/regions/{region}", _pick(REGIONS)),
    _family("/api/v1/builds/{build}", build_id),
    _family("/api/v1/commits/{sha}", _chars("0123456789abcdef", 7, 7)),
    _family("/api/v1/episodes/{code}", episode),
    _family("/api/v1/tags/{tag}", _pick(TAGS), weight=1.5),
    _family("/api/v1/shipments/{tracking}", tracking),
)
STATIC_SIBLINGS: tuple[Family, ...] = (
    _family("/api/v1/users/me", weight=0.6),
    _family("/api/v1/users/search", weight=0.3),
    _family("/shop/products/featured", weight=0.3),
    _family("/api/v2/skus/export", weight=0.1),
    _family("/reports/daily/latest", weight=0.2),
    _family("/api/v1/coupons/active", weight=0.2),
    _family("/files/upload", weight=0.3),
    _family("/api/v1/orders/search", weight=0.2),
    _family("/api/v1/tags/trending", weight=0.4),
)
ALL_FAMILIES = FAMILIES + STATIC_SIBLINGS
POOL_SIZE = 250  # distinct paths drawn per family (fewer when its values run out)
SKEW = 0.7  # request weight of the value of rank k: 1 / k**SKEW


def _pool(family: Family, rng: random.Random) -> list[str]:
    """Distinct paths of one family."""
    if not family.values:
        return [family.template]
    parts = _split_template(family.template)
    paths: dict[str, None] = {}  # distinct, in the order drawn
    for _ in range(POOL_SIZE * 4):
        values = iter([make(rng) for make in family.values])
        paths["".join(next(values) if is_slot else part for part, is_slot in parts)] = None
        if len(paths) == POOL_SIZE:
            break
    return list(paths)


def _split_template(template: str) -> list[tuple[str, bool]]:
    """The template's text and placeholder slots, in order."""
    pieces: list[tuple[str, bool]] = []
    for segment in template.split("/"):
        if pieces:
            pieces.append(("/", False))
        is_slot = segment.startswith("{") and segment.endswith("}")
        pieces.append((segment, is_slot))
    return pieces


def route_family_paths(lines: int, seed: int = 7) -> pl.DataFrame:
    """``lines`` requests: path, template (the true one), family (its index in ALL_FAMILIES)."""
    rng = random.Random(seed)
    picker = np.random.default_rng(seed)
    weights = np.array([f.weight for f in ALL_FAMILIES])
    per_family = picker.multinomial(lines, weights / weights.sum())
    frames = []
    for index, (family, count) in enumerate(zip(ALL_FAMILIES, per_family, strict=True)):
        pool = _pool(family, rng)
        skew = 1.0 / np.arange(1, len(pool) + 1) ** SKEW
        chosen = picker.choice(len(pool), size=int(count), p=skew / skew.sum())
        frames.append(
            pl.DataFrame({"path": pl.Series(pool, dtype=pl.String).gather(chosen)}).with_columns(
                template=pl.lit(family.template), family=pl.lit(index, pl.Int32)
            )
        )
    shuffled = picker.permutation(lines)
    return pl.concat(frames)[shuffled]


def write_route_family_log(
    path: str | Path, lines: int, seed: int = 7, conflict_share: float = 0.1
) -> pl.DataFrame:
    """Write nginx combined lines over one hour, a share of them PUTs answered 409; return the
    paths' frame (path, template, family) in line order."""
    frame = route_family_paths(lines, seed)
    picker = np.random.default_rng(seed + 1)
    conflict = pl.Series(picker.random(lines) < conflict_share)
    seconds = pl.Series(np.sort(picker.integers(0, 3600, size=lines)))
    start = dt.datetime(2026, 11, 20, 10)
    time = (pl.lit(start) + pl.duration(seconds=pl.lit(seconds))).dt.strftime(
        "%d/%b/%Y:%H:%M:%S +0000"
    )
    method = pl.when(conflict).then(pl.lit("PUT")).otherwise(pl.lit("GET"))
    status = pl.when(conflict).then(pl.lit("409")).otherwise(pl.lit("200"))
    line = pl.concat_str(
        pl.lit("10.0.0.1 - - ["),
        time,
        pl.lit('] "'),
        method,
        pl.lit(" "),
        pl.col("path"),
        pl.lit(' HTTP/1.1" '),
        status,
        pl.lit(' 12 "-" "curl/8.5.0"'),
    )
    text = frame.select(line.alias("line"))["line"].str.join("\n").item()
    Path(path).write_text(text + "\n", encoding="utf-8")
    return frame
