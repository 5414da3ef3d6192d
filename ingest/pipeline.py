"""Batch import: a file (plain, gzip) or stdin → parsed in parallel chunks → committed in order.

Reading, parsing and writing overlap: the main thread reads and commits while worker threads
parse (Polars releases the GIL). Each chunk commits with its source offset, so an interrupted
import resumes exactly where the last commit ended.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from itertools import chain

from conflictlens._errors import InputError
from conflictlens.ingest.batch import DATA_ERRORS, parse_chunk, store_chunk
from conflictlens.ingest.formats import (
    UNRECOGNISED,
    Detection,
    FormatError,
    LogFormat,
    UnknownFormat,
    detect,
    get_format,
)
from conflictlens.ingest.identity import FINGERPRINT_BYTES, NotALogFile, open_source, skip_to
from conflictlens.ingest.lines import Chunk, read_chunks, split_lines
from conflictlens.ingest.options import IngestOptions
from conflictlens.store.writer import Batch, Writer

ProgressCallback = Callable[[int], None]


class IngestError(InputError):
    """An input that cannot be imported at all; the message is one line for the user."""


@dataclass
class ImportSummary:
    path: str
    format: str = ""
    lines: int = 0
    parsed: int = 0
    rejected: int = 0
    conflicts: int = 0
    bytes: int = 0
    resumed_at: int = 0
    detection: Detection | None = None  # when the format was detected from the lines
    seconds: float = 0.0
    reject_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, chunk: Batch) -> None:
        self.lines += chunk.lines
        self.parsed += chunk.parsed
        self.rejected += chunk.rejects.height
        self.conflicts += chunk.conflicts
        self.bytes += chunk.end - chunk.start
        if chunk.rejects.height:
            self.reject_reasons.update(dict(chunk.rejects["reason"].value_counts().iter_rows()))


TARGET_LINES_PER_CHUNK = 64_000
# A batch import commits once at least this many lines are parsed: a commit costs an fsync
# and a few statements whatever its size (a tenth of a Kong import's time at one per chunk).
COMMIT_LINES = 100_000
MAX_CHUNK_GROWTH = 4


def chunk_size(head: bytes, base: int) -> int:
    """Bytes to read at a time: enough for about TARGET_LINES_PER_CHUNK lines of the length
    seen in the file's first bytes, between ``base`` and MAX_CHUNK_GROWTH times ``base``. Long
    JSON lines then still fill chunks with enough lines to spread each chunk's fixed costs."""
    lines = head.count(b"\n")
    if lines == 0:
        # Not one whole line in the head: lines longer than it (JSON with headers, bodies).
        return base * MAX_CHUNK_GROWTH if head else base
    wanted = len(head) // lines * TARGET_LINES_PER_CHUNK
    return max(base, min(wanted, base * MAX_CHUNK_GROWTH))


def choose_format(
    requested: str, log_format: str | None, stored: str | None, stored_log_format: str | None
) -> LogFormat | None:
    """The format to use, or None when it must be detected from the lines."""
    if log_format:
        return get_format(requested, log_format)
    if requested != "auto":
        return get_format(requested)
    if stored_log_format:
        return get_format(stored or "custom", stored_log_format)
    if stored:
        return get_format(stored)
    return None


def import_source(
    name: str,
    writer: Writer | Callable[[], Writer],
    options: IngestOptions,
    *,
    format_name: str = "auto",
    log_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import one file (or ``-``) through ``writer``: a Writer, or a function that waits for
    one while the store is still opening (the file's first chunk is read meanwhile)."""
    started = time.perf_counter()
    summary = ImportSummary(path=name)
    try:
        stream, identity, size = open_source(name)
    except FileNotFoundError:
        raise IngestError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise IngestError(f"{name}: is a directory") from None
    except PermissionError:
        raise IngestError(f"{name}: permission denied") from None
    except NotALogFile as exc:
        raise IngestError(str(exc)) from None
    except OSError as exc:
        raise IngestError(f"{name}: cannot read ({exc.strerror or exc})") from None
    with closing(stream):

        def chunks_from(offset: int, continues_line: bool) -> Iterator[Chunk]:
            return read_chunks(
                stream,
                offset,
                chunk_bytes=chunk_size(identity.prefix, options.chunk_bytes),
                max_line_bytes=options.max_line_bytes,
                continues_line=continues_line,
                size=size,
                split_tail=options.workers,
            )

        # While the store opens, a plain file is read from its start, as a file the store has
        # not seen is: most are. The store then says where it really starts.
        early = chunks_from(0, False) if callable(writer) and size is not None else None
        first = next(early, None) if early is not None else None
        guess: Detection | FormatError | None = None  # the first chunk's, detected early
        if first is not None and format_name == "auto" and not log_format:
            try:
                guess = detect(split_lines(_head(first)).lines)
            except FormatError as exc:  # raised where it would have been, if it matters
                guess = exc
        store = writer() if callable(writer) else writer
        source = store.resolve_source(
            device=identity.device,
            inode=identity.inode,
            prefix=identity.prefix,
            path=name,
            full_prefix_len=FINGERPRINT_BYTES,
        )
        if size is not None and size < source.offset:
            raise IngestError(
                f"{name}: file is shorter ({size} bytes) than the {source.offset} bytes already "
                "imported from it; it was truncated (use serve to follow copytruncate rotation)"
            )
        fmt = choose_format(format_name, log_format, source.format, source.log_format)
        if source.format is None and source.offset > 0:
            # Read before without recognising its format: every line was a reject. Read it
            # again from the start, in place of those rejects.
            store.restart_source(source.source_id)
            source = dataclasses.replace(source, offset=0, lines=0)
        summary.resumed_at = source.offset
        if early is not None and source.offset == 0:
            chunks: Iterator[Chunk] = early if first is None else chain([first], early)
        else:
            if early is not None:
                stream.seek(0)
            at_line_start = skip_to(stream, source.offset)
            chunks = chunks_from(source.offset, not at_line_start)
        with ThreadPoolExecutor(max_workers=options.workers) as pool:
            pending: deque[tuple[Chunk, Future[Batch | None]]] = deque()
            ready: list[tuple[Chunk, Batch | None]] = []  # parsed, in order, not committed
            for chunk in chunks:
                if fmt is None:
                    summary.detection = _detected(chunk, guess if chunk is first else None)
                    fmt = summary.detection.format
                if summary.format == "":
                    summary.format = fmt.name
                    if fmt is not UNRECOGNISED:
                        store.set_format(source.source_id, fmt.name, log_format)
                job = pool.submit(_parsed, chunk, fmt, options, source.source_id)
                pending.append((chunk, job))
                if len(pending) > options.workers:
                    done, job = pending.popleft()
                    ready.append((done, job.result()))
                    if sum(b.lines if b else 0 for _, b in ready) >= COMMIT_LINES:
                        _commit(store, ready, summary, progress, (fmt, options, source.source_id))
            while pending:
                done, job = pending.popleft()
                ready.append((done, job.result()))
            if ready:
                assert fmt is not None
                _commit(store, ready, summary, progress, (fmt, options, source.source_id))
    summary.format = summary.format or (fmt.name if fmt else source.format or "")
    summary.seconds = time.perf_counter() - started
    return summary


DETECT_BYTES = 1024 * 1024


def _detected(chunk: Chunk, early: Detection | FormatError | None) -> Detection:
    """The chunk's format: as detected early, or detected now; a chunk no format recognises
    is UNRECOGNISED (its lines become rejects that say so)."""
    if isinstance(early, UnknownFormat):
        return Detection(UNRECOGNISED, 0, early.sampled)
    if isinstance(early, FormatError):
        raise early
    if early is not None:
        return early
    try:
        return detect(split_lines(_head(chunk)).lines)
    except UnknownFormat as exc:
        return Detection(UNRECOGNISED, 0, exc.sampled)


def _head(chunk: Chunk) -> Chunk:
    """The chunk's first lines, enough to detect the format from (the first DETECT_LINES
    lines unless they are very long): not the whole chunk, which may be 64 MB. A chunk no
    longer than that is all of it, with the last line of a file that ends without a newline."""
    if len(chunk.data) <= DETECT_BYTES:
        return chunk
    cut = bytes(chunk.data[:DETECT_BYTES]).rfind(b"\n") + 1
    if cut <= 0:
        return chunk
    return Chunk(chunk.data[:cut], chunk.start, chunk.data_start + cut, chunk.data_start)


def _parsed(chunk: Chunk, fmt: LogFormat, options: IngestOptions, source_id: int) -> Batch | None:
    """The chunk's rows, or None when its data breaks the parse (see _commit)."""
    try:
        return parse_chunk(chunk, fmt, options, source_id)
    except DATA_ERRORS:
        return None


def _commit(
    writer: Writer,
    ready: list[tuple[Chunk, Batch | None]],
    summary: ImportSummary,
    progress: ProgressCallback | None,
    how: tuple[LogFormat, IngestOptions, int],
) -> None:
    """Commit the ready batches as one transaction (and empty the list). When a chunk's data
    broke its parse or breaks the commit, the chunks are stored one by one instead, the lines
    that break a step as rejects (ingest.batch.store_chunk)."""
    pairs = list(ready)
    ready.clear()
    batches = [batch for _, batch in pairs if batch is not None]
    if len(batches) == len(pairs):
        joined = Batch.joined(batches)
        try:
            writer.commit(joined)
        except DATA_ERRORS:
            pass
        else:
            _counted(summary, progress, joined)
            return
    for chunk, _ in pairs:
        for batch in store_chunk(chunk, *how, writer.commit):
            _counted(summary, progress, batch)


def _counted(summary: ImportSummary, progress: ProgressCallback | None, batch: Batch) -> None:
    summary.add(batch)
    if progress is not None:
        progress(batch.end - batch.start)
