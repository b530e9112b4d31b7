"""Bounds-checked reading and writing of TLS presentation-language data.

TLS messages are built from big-endian integers and length-prefixed vectors
(RFC 8446 §3).  Every parser in the engine goes through :class:`Reader`, so
a hostile length field can only ever produce a
:class:`~twisted_sslfile.errors.DecodeError` (alert ``decode_error``), never
an ``IndexError`` or a silently short read.  :class:`Writer` is the mirror
image; its failures are our own bugs (a field too long for its vector) and
raise :class:`~twisted_sslfile.errors.InternalError`, so even those end in
an alert rather than an unexpected exception.

Slicing goes through a :class:`memoryview`: nested vectors (:meth:`Reader.sub`)
share the caller's buffer, and only the leaves the caller keeps are copied
into :class:`bytes`.
"""

from __future__ import annotations

import struct
from types import TracebackType

from ..errors import DecodeError, InternalError

__all__ = ["Reader", "Writer"]

#: The type, under a name the method ``Reader.bytes`` does not shadow.
_Bytes = bytes

# The largest value of a length prefix of 1, 2 or 3 bytes (RFC 8446 §3.4:
# "the length field ... consumes as many bytes as required to hold the
# vector's specified maximum").
_MAX_FOR_SIZE = {1: 0xFF, 2: 0xFFFF, 3: 0xFFFFFF, 4: 0xFFFFFFFF}


class Reader:
    """Sequential reader over a byte buffer; every failure is a DecodeError."""

    __slots__ = ("_end", "_pos", "_view")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        self._view = view
        self._pos = 0
        self._end = len(view)

    # -- state ------------------------------------------------------------

    @property
    def remaining(self) -> int:
        """Bytes not yet consumed."""
        return self._end - self._pos

    def at_end(self) -> bool:
        """True when every byte has been consumed."""
        return self._pos >= self._end

    def finish(self) -> None:
        """Insist that the data is used up.

        Bytes after the last field mean a length was wrong: a decode_error
        (RFC 8446 §6.2), for a whole message and for every nested vector.
        """
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} unexpected trailing bytes")

    # -- integers -----------------------------------------------------------

    def uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise DecodeError("truncated: uint8 expected")
        self._pos = pos + 1
        return self._view[pos]

    def uint16(self) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise DecodeError("truncated: uint16 expected")
        self._pos = pos + 2
        view = self._view
        return (view[pos] << 8) | view[pos + 1]

    def uint24(self) -> int:
        pos = self._pos
        if pos + 3 > self._end:
            raise DecodeError("truncated: uint24 expected")
        self._pos = pos + 3
        return int.from_bytes(self._view[pos : pos + 3], "big")

    def uint32(self) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise DecodeError("truncated: uint32 expected")
        self._pos = pos + 4
        return int.from_bytes(self._view[pos : pos + 4], "big")

    # -- byte strings -------------------------------------------------------

    def _take(self, n: int) -> memoryview:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise DecodeError(f"truncated: {n} bytes expected, {self._end - pos} left")
        self._pos = pos + n
        return self._view[pos : pos + n]

    # Below this method ``bytes`` in the class body names the method, not the
    # type, so the annotations after it say ``_Bytes``.
    def bytes(self, n: int) -> bytes:
        """Exactly ``n`` bytes: a fixed-size field such as ``Random random``."""
        return bytes(self._take(n))

    def _length(self, length_size: int, min_length: int, max_length: int | None) -> int:
        if length_size == 1:
            length = self.uint8()
        elif length_size == 2:
            length = self.uint16()
        elif length_size == 3:
            length = self.uint24()
        elif length_size == 4:
            length = self.uint32()
        else:  # a programming error, not peer input
            raise InternalError(f"unsupported length prefix size {length_size}")
        if length < min_length:
            raise DecodeError(
                f"vector of {length} bytes, at least {min_length} expected"
            )
        if max_length is not None and length > max_length:
            raise DecodeError(f"vector of {length} bytes, at most {max_length} allowed")
        return length

    def vector(
        self, length_size: int, min_length: int = 0, max_length: int | None = None
    ) -> _Bytes:
        """An ``opaque x<min_length..max_length>`` with a ``length_size`` prefix."""
        return bytes(self._take(self._length(length_size, min_length, max_length)))

    def view(
        self, length_size: int, min_length: int = 0, max_length: int | None = None
    ) -> memoryview:
        """Like :meth:`vector` but without copying (valid while the data lives)."""
        return self._take(self._length(length_size, min_length, max_length))

    def sub(
        self, length_size: int, min_length: int = 0, max_length: int | None = None
    ) -> Reader:
        """A nested vector as a Reader of its own (shares the buffer)."""
        return Reader(self._take(self._length(length_size, min_length, max_length)))

    def uint16_vector(
        self, length_size: int, min_length: int = 0, max_length: int | None = None
    ) -> list[int]:
        """A vector of uint16 values (cipher suites, groups, schemes, versions).

        The byte length must be even: RFC 8446 §3.4 lengths count bytes, and a
        list of 2-byte items with an odd length is malformed.
        """
        data = self._take(self._length(length_size, min_length, max_length))
        if len(data) & 1:
            raise DecodeError(f"list of uint16 has odd length {len(data)}")
        return list(struct.unpack(f">{len(data) >> 1}H", data))

    def rest(self) -> _Bytes:
        """Everything not yet consumed (for fields that extend to the end)."""
        return bytes(self._take(self._end - self._pos))


class _Prefixed:
    """Context manager behind :meth:`Writer.prefixed`."""

    __slots__ = ("_max", "_min", "_size", "_start", "_writer")

    def __init__(
        self, writer: Writer, length_size: int, min_length: int, max_length: int | None
    ) -> None:
        self._writer = writer
        self._size = length_size
        self._min = min_length
        self._max = max_length
        self._start = 0

    def __enter__(self) -> Writer:
        buf = self._writer._buf
        self._start = len(buf)
        buf += bytes(self._size)
        return self._writer

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return
        buf = self._writer._buf
        start = self._start + self._size
        length = len(buf) - start
        _check_length(length, self._size, self._min, self._max)
        buf[self._start : start] = length.to_bytes(self._size, "big")


def _check_length(
    length: int, length_size: int, min_length: int, max_length: int | None
) -> None:
    # The common case, decided without the lookups below: every prefix size
    # holds 255 bytes.
    if (
        max_length is None
        and min_length == 0
        and length <= _SMALL_FOR_SIZE
        and length_size in _MAX_FOR_SIZE
    ):
        return
    limit = _MAX_FOR_SIZE.get(length_size)
    if limit is None:
        raise InternalError(f"unsupported length prefix size {length_size}")
    if max_length is not None:
        limit = min(limit, max_length)
    if not min_length <= length <= limit:
        raise InternalError(
            f"vector of {length} bytes does not fit <{min_length}..{limit}>"
        )


#: What every length prefix size can hold (a 1-byte prefix).
_SMALL_FOR_SIZE = 0xFF


class Writer:
    """Append-only builder for TLS structures.

    Values that do not fit their field raise InternalError: they can only come
    from our own code, and the connection must turn them into an
    ``internal_error`` alert rather than crash.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def _uint(self, value: int, size: int) -> None:
        if not 0 <= value <= _MAX_FOR_SIZE[size]:
            raise InternalError(f"value {value!r} does not fit in {size} bytes")
        self._buf += value.to_bytes(size, "big")

    def uint8(self, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise InternalError(f"value {value!r} does not fit in 1 byte")
        self._buf.append(value)

    def uint16(self, value: int) -> None:
        # The most common field (types, lengths, lists): inlined _uint.
        if not 0 <= value <= 0xFFFF:
            raise InternalError(f"value {value!r} does not fit in 2 bytes")
        self._buf += value.to_bytes(2, "big")

    def uint24(self, value: int) -> None:
        self._uint(value, 3)

    def uint32(self, value: int) -> None:
        self._uint(value, 4)

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes with no length prefix (fixed-size fields, pre-encoded parts)."""
        self._buf += data

    def vector(
        self,
        length_size: int,
        data: bytes | bytearray | memoryview,
        min_length: int = 0,
        max_length: int | None = None,
    ) -> None:
        """An ``opaque x<min_length..max_length>``: length prefix, then data."""
        length = len(data)
        _check_length(length, length_size, min_length, max_length)
        self._buf += length.to_bytes(length_size, "big")
        self._buf += data

    def uint16_vector(
        self,
        length_size: int,
        values: list[int],
        min_length: int = 0,
        max_length: int | None = None,
    ) -> None:
        """A vector of uint16 values; the mirror of :meth:`Reader.uint16_vector`."""
        try:
            data = struct.pack(f">{len(values)}H", *values)
        except struct.error as e:
            raise InternalError(f"uint16 list value out of range: {e}") from None
        self.vector(length_size, data, min_length, max_length)

    def prefixed(
        self, length_size: int, min_length: int = 0, max_length: int | None = None
    ) -> _Prefixed:
        """Write a nested vector in place; its length prefix is filled on exit.

        ::

            with writer.prefixed(2):
                writer.uint16(extension_type)
        """
        return _Prefixed(self, length_size, min_length, max_length)

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)
