"""A JSON array arriving in pieces, cut into runs of whole top-level elements.

Each run is parsed in one `orjson` call (`[` + run + `]`), so a body of any size is parsed
at orjson's speed while only about a run of it is held at a time. A cut is first guessed:
the last `}` of the run's window followed by a comma. Parsing `[` + text up to it + `]`
succeeds only if that `}` closes a top-level element (a `}` inside a string leaves the
string open; inside a nested value the brackets do not balance), so a successful parse
is the proof. When there is no such `}` or the parse fails, an exact scan follows the
nesting outside strings (regular expressions skip strings and plain text), which also
refuses a body nested too deep and a row that grows past the limit without ending.
A failed guess costs one parse, and there is at most one per run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from producer.errors import InvalidRequest
from producer.limits import RowTooLarge, TooDeep


class MalformedBody(InvalidRequest):
    """Raised when the body is not a well-formed JSON array."""


Run = tuple[bytes, list[Any]]
"""A run's text, `[` + whole elements + `]`, and its parsed elements."""

NOT_AN_ARRAY = "The request body must be a JSON array of rows."
EMPTY = "The request body is empty; send a JSON array of rows."
NOT_JSON = "The request body is not valid JSON"
TOO_DEEP = "The body nests deeper than {} levels; rows are flat objects."
SLICE_BYTES = 64 * 1024
"""Pieces larger than this are taken a slice at a time (with small runs)."""
MAX_PROBES = 16
"""`}` tried from the end of a window before the exact scan is left to find the cut."""

_BLANKS = b" \t\r\n"
_GUESS = re.compile(rb"\}[ \t\r\n]*+,")
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SKIP_TOP = re.compile(rb'[^"\[\]{},]*+(?:' + _STRING + rb'[^"\[\]{},]*+)*+', re.DOTALL)
"""Plain text and whole strings between elements: stops at a bracket, a comma, or a string
that does not end in the text."""
_SKIP_INSIDE = re.compile(rb'[^"\[\]{}]*+(?:' + _STRING + rb'[^"\[\]{}]*+)*+', re.DOTALL)
"""The same inside an element, where commas do not matter."""
_COMMA, _QUOTE, _CLOSE_ARRAY = b",", b'"', b"]"
_OPENERS = b"[{"


class RunCutter:
    """Follows the body and hands out its runs of about `run_bytes` (at least one element).

    Refuses at once what cannot become a JSON array (`MalformedBody`), a nesting deeper
    than `max_depth` (`TooDeep`), and an element still unfinished when more than
    `max_row_bytes` of it, blanks aside, has arrived (`RowTooLarge`); a finished row's size
    is checked on its stored form (`RowGuard`)."""

    def __init__(self, run_bytes: int, max_row_bytes: int, max_depth: int) -> None:
        self.run_bytes = run_bytes
        self.max_row_bytes = max_row_bytes
        self.max_depth = max_depth
        self.buf = bytearray()
        """The text after the array's `[` or the last comma cut at, not handed out yet."""
        self.offset = 0
        """Where `buf` starts in the body."""
        self.started = self.closed = self.after_comma = False
        self._last_brace = -1
        """Where the last `}` is in `buf` (-1: none)."""
        self._hold = 0
        """No cut is tried before `buf` has this many bytes (after a try found none)."""

    def feed(self, data: bytes) -> Iterator[Run]:
        """The runs completed by the next piece of the body."""
        view = memoryview(data)
        if not self.started:
            text = data.lstrip(_BLANKS)
            if not text:
                self.offset += len(data)
                return
            if not text.startswith(b"["):
                raise MalformedBody(NOT_AN_ARRAY)
            self.started = True
            view = view[len(data) - len(text) + 1 :]
            self.offset += len(data) - len(text) + 1
        step = max(self.run_bytes, SLICE_BYTES)
        for at in range(0, len(view), step):
            if self.closed:
                _only_blanks(view[at:])
                return
            start = len(self.buf)
            self.buf += view[at : at + step]
            brace = self.buf.rfind(b"}", start)
            if brace >= 0:
                self._last_brace = brace
            while self._due():
                run = self._cut()
                if run is None:
                    break
                yield run
                if self.closed:
                    _only_blanks(view[at + step :])
                    return

    def finish(self) -> Iterator[Run]:
        """The last runs, once the whole body has arrived."""
        if not self.started:
            raise MalformedBody(EMPTY)
        if self.closed:
            return
        text = b"[" + self.buf
        try:
            rows = orjson.loads(text)
        except orjson.JSONDecodeError:
            while not self.closed:  # find out where and why, exactly
                run = self._exact(final=True)
                assert run is not None  # the last element ends, or the body is refused
                yield run
            return
        if self.after_comma and not rows:
            raise MalformedBody(f"{NOT_JSON}: a comma ends the array.")
        self.closed = True
        self.buf.clear()
        yield text, rows

    def _due(self) -> bool:
        size = len(self.buf)
        return (
            size > 0
            and size >= self._hold
            and (size >= self.run_bytes or size - self._last_brace > self.max_row_bytes)
        )

    def _cut(self) -> Run | None:
        run = self._guess()
        if run is None:
            run = self._exact(final=False)
        self._hold = 0 if run is not None else 2 * len(self.buf)
        return run

    def _guess(self) -> Run | None:
        """The run up to the last `}` of the window followed by a comma, if it parses."""
        buf = self.buf
        end = min(len(buf), max(self.run_bytes, 1))
        for _ in range(MAX_PROBES):
            brace = buf.rfind(b"}", 0, end)
            if brace < 0:
                return None
            comma = _GUESS.match(buf, brace)
            if comma is not None:
                break
            end = brace
        else:
            return None
        text = b"[" + buf[: brace + 1] + b"]"
        try:
            rows = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        self._consume(comma.end())
        self.after_comma = True
        return text, rows

    def _exact(self, final: bool) -> Run | None:
        """Scan `buf` outside strings: the run up to the last comma between elements found
        past `run_bytes` or before the text ends, or up to the array's end. None when the
        first element has not ended yet (`final`: refused, the body ends there)."""
        self._consume(len(self.buf) - len(self.buf.lstrip(_BLANKS)))
        buf, size = self.buf, len(self.buf)
        pos, depth, cut = 0, 1, -1
        while True:
            skipped = (_SKIP_TOP if depth == 1 else _SKIP_INSIDE).match(buf, pos)
            assert skipped is not None  # it matches the empty text
            pos = skipped.end()
            if pos >= size or buf[pos] == _QUOTE[0]:
                break  # the text ends here, or inside a string
            byte = buf[pos]
            if byte == _COMMA[0]:
                cut = pos
                if pos >= self.run_bytes:
                    break
            elif byte in _OPENERS:
                depth += 1
                if depth > self.max_depth:
                    raise TooDeep(TOO_DEEP.format(self.max_depth))
            else:
                depth -= 1
                if depth == 0:
                    return self._close(pos)
            pos += 1
        if cut >= 0:
            return self._emit(cut)
        if final:
            raise MalformedBody(f"{NOT_JSON}: it ends inside the array.")
        self._check_unfinished()
        return None

    def _emit(self, cut: int) -> Run:
        text = b"[" + self.buf[:cut] + b"]"
        rows = self._parse(text)
        if not rows:
            raise MalformedBody(f"{NOT_JSON}: a comma follows no value (near byte {self.offset}).")
        self._consume(cut + 1)
        self.after_comma = True
        return text, rows

    def _close(self, pos: int) -> Run:
        """The last run: the elements before the array's `]` at `pos`."""
        if self.buf[pos] != _CLOSE_ARRAY[0]:
            raise MalformedBody(f"{NOT_JSON}: a brace closes the array.")
        _only_blanks(memoryview(self.buf)[pos + 1 :])
        text = b"[" + self.buf[: pos + 1]
        rows = self._parse(text)
        if self.after_comma and not rows:
            raise MalformedBody(f"{NOT_JSON}: a comma ends the array.")
        self.closed = True
        self.buf.clear()
        return text, rows

    def _parse(self, text: bytes) -> list[Any]:
        try:
            rows: list[Any] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            where = self.offset + max(exc.pos - 1, 0)
            raise MalformedBody(f"{NOT_JSON}: {exc.msg} (near byte {where}).") from exc
        return rows

    def _check_unfinished(self) -> None:
        """Refuse the first element, unfinished, once it is too large to be a row: its
        text without blanks is over the limit, or its text with them over twice it."""
        size = len(self.buf)
        if size <= self.max_row_bytes:
            return
        if size <= 2 * self.max_row_bytes and (
            len(self.buf.translate(None, _BLANKS)) <= self.max_row_bytes
        ):
            return
        text = b"[" + _whole_characters(self.buf)
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if exc.pos < len(text):  # not just cut short: wrong already
                where = self.offset + max(exc.pos - 1, 0)
                raise MalformedBody(f"{NOT_JSON}: {exc.msg} (near byte {where}).") from exc
        raise RowTooLarge(f"A row is larger than the limit of {self.max_row_bytes} bytes.")

    def _consume(self, count: int) -> None:
        if count:
            del self.buf[:count]
            self.offset += count
            self._last_brace = max(self._last_brace - count, -1)


def _only_blanks(rest: memoryview) -> None:
    if bytes(rest).translate(None, _BLANKS):
        raise MalformedBody(f"{NOT_JSON}: text follows the array.")


def _whole_characters(text: bytearray) -> bytes:
    """`text` without a UTF-8 character cut short at its end (the rest is still coming)."""
    for back in range(1, min(4, len(text)) + 1):
        byte = text[-back]
        if byte < 0x80:
            break
        if byte >= 0xC0:  # the lead byte: how long its character is
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return bytes(text[:-back]) if length > back else bytes(text)
    return bytes(text)
