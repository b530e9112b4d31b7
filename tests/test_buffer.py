"""Tests for twisted_sslfile.engine.buffer: the bounds-checked Reader/Writer."""

from __future__ import annotations

from array import array

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_sslfile.constants import AlertDescription
from twisted_sslfile.engine.buffer import Reader, Writer
from twisted_sslfile.errors import DecodeError, InternalError


class ReaderIntegerTests(SynchronousTestCase):
    def test_integers_are_big_endian(self) -> None:
        r = Reader(bytes.fromhex("01 0203 040506 0708090a".replace(" ", "")))
        self.assertEqual(r.uint8(), 0x01)
        self.assertEqual(r.uint16(), 0x0203)
        self.assertEqual(r.uint24(), 0x040506)
        self.assertEqual(r.uint32(), 0x0708090A)
        self.assertTrue(r.at_end())
        r.finish()

    def test_maximum_values(self) -> None:
        r = Reader(b"\xff" * 10)
        self.assertEqual(r.uint8(), 0xFF)
        self.assertEqual(r.uint16(), 0xFFFF)
        self.assertEqual(r.uint24(), 0xFFFFFF)
        self.assertEqual(r.uint32(), 0xFFFFFFFF)

    def test_truncated_integers(self) -> None:
        for method, size in (("uint8", 1), ("uint16", 2), ("uint24", 3), ("uint32", 4)):
            r = Reader(bytes(size - 1))
            with self.assertRaises(DecodeError) as caught:
                getattr(r, method)()
            self.assertEqual(caught.exception.alert, AlertDescription.decode_error)
            # A failed read consumes nothing.
            self.assertEqual(r.remaining, size - 1)

    def test_remaining_and_at_end(self) -> None:
        r = Reader(b"abc")
        self.assertEqual(r.remaining, 3)
        self.assertFalse(r.at_end())
        r.uint8()
        self.assertEqual(r.remaining, 2)
        r.uint16()
        self.assertEqual(r.remaining, 0)
        self.assertTrue(r.at_end())

    def test_finish_rejects_trailing_bytes(self) -> None:
        r = Reader(b"\x01\x02")
        r.uint8()
        self.assertRaises(DecodeError, r.finish)
        r.uint8()
        r.finish()

    def test_empty_input(self) -> None:
        r = Reader(b"")
        self.assertTrue(r.at_end())
        r.finish()
        self.assertRaises(DecodeError, r.uint8)


class ReaderInputTypeTests(SynchronousTestCase):
    def test_bytearray_and_memoryview(self) -> None:
        for data in (bytearray(b"\x00\x02hi"), memoryview(b"\x00\x02hi")):
            r = Reader(data)
            self.assertEqual(r.vector(2), b"hi")

    def test_memoryview_slice(self) -> None:
        r = Reader(memoryview(b"xx\x01\x02yy")[2:4])
        self.assertEqual(r.uint16(), 0x0102)
        r.finish()

    def test_non_byte_memoryview_is_read_as_bytes(self) -> None:
        # A buffer of 16-bit items is still read byte by byte.
        data = array("H", [0x0102]).tobytes()
        r = Reader(memoryview(array("H", [0x0102])))
        self.assertEqual(r.bytes(2), data)

    def test_results_are_bytes_not_views(self) -> None:
        r = Reader(bytearray(b"\x02ab\x00\x01c"))
        self.assertIs(type(r.vector(1)), bytes)
        self.assertIs(type(r.bytes(1)), bytes)
        self.assertIs(type(r.rest()), bytes)


class ReaderVectorTests(SynchronousTestCase):
    def test_fixed_bytes(self) -> None:
        r = Reader(b"abcdef")
        self.assertEqual(r.bytes(0), b"")
        self.assertEqual(r.bytes(4), b"abcd")
        self.assertRaises(DecodeError, r.bytes, 3)
        self.assertEqual(r.bytes(2), b"ef")

    def test_negative_length_is_an_error(self) -> None:
        self.assertRaises(DecodeError, Reader(b"abc").bytes, -1)

    def test_vector_each_length_size(self) -> None:
        self.assertEqual(Reader(b"\x03abc").vector(1), b"abc")
        self.assertEqual(Reader(b"\x00\x03abc").vector(2), b"abc")
        self.assertEqual(Reader(b"\x00\x00\x03abc").vector(3), b"abc")
        self.assertEqual(Reader(b"\x00\x00\x00\x03abc").vector(4), b"abc")

    def test_vector_bounds(self) -> None:
        # opaque x<2..3>
        self.assertEqual(Reader(b"\x02ab").vector(1, 2, 3), b"ab")
        self.assertEqual(Reader(b"\x03abc").vector(1, 2, 3), b"abc")
        self.assertRaises(DecodeError, Reader(b"\x01a").vector, 1, 2, 3)
        self.assertRaises(DecodeError, Reader(b"\x04abcd").vector, 1, 2, 3)

    def test_vector_truncated(self) -> None:
        self.assertRaises(DecodeError, Reader(b"\x05abc").vector, 1)
        self.assertRaises(DecodeError, Reader(b"\x00").vector, 2)
        self.assertRaises(DecodeError, Reader(b"").vector, 1)

    def test_empty_vector(self) -> None:
        r = Reader(b"\x00\x00")
        self.assertEqual(r.vector(2), b"")
        r.finish()

    def test_unsupported_length_size_is_internal(self) -> None:
        self.assertRaises(InternalError, Reader(b"\x00" * 8).vector, 5)

    def test_view_does_not_copy(self) -> None:
        data = bytearray(b"\x02ab")
        view = Reader(data).view(1)
        data[1] = ord("z")
        self.assertEqual(bytes(view), b"zb")

    def test_sub_reader(self) -> None:
        r = Reader(b"\x00\x03\x01\x02\x03\xff")
        inner = r.sub(2)
        self.assertEqual(inner.remaining, 3)
        self.assertEqual(inner.uint8(), 1)
        self.assertEqual(inner.uint16(), 0x0203)
        inner.finish()
        # The sub reader cannot read past its own end.
        self.assertRaises(DecodeError, inner.uint8)
        self.assertEqual(r.uint8(), 0xFF)
        r.finish()

    def test_sub_reader_bounds(self) -> None:
        self.assertRaises(DecodeError, Reader(b"\x00\x01\x00").sub, 2, 2)
        self.assertRaises(DecodeError, Reader(b"\x00\x03abc").sub, 2, 0, 2)
        self.assertRaises(DecodeError, Reader(b"\x00\x04abc").sub, 2)

    def test_uint16_vector(self) -> None:
        r = Reader(bytes.fromhex("0006130113031302"))
        self.assertEqual(r.uint16_vector(2, 2, 0xFFFE), [0x1301, 0x1303, 0x1302])
        r.finish()

    def test_uint16_vector_odd_length(self) -> None:
        self.assertRaises(DecodeError, Reader(b"\x00\x03\x13\x01\x13").uint16_vector, 2)

    def test_uint16_vector_bounds(self) -> None:
        self.assertRaises(DecodeError, Reader(b"\x00\x00").uint16_vector, 2, 2)
        self.assertEqual(Reader(b"\x00\x00").uint16_vector(2), [])

    def test_rest(self) -> None:
        r = Reader(b"\x01rest")
        r.uint8()
        self.assertEqual(r.rest(), b"rest")
        self.assertTrue(r.at_end())


class WriterTests(SynchronousTestCase):
    def test_integers(self) -> None:
        w = Writer()
        w.uint8(1)
        w.uint16(0x0203)
        w.uint24(0x040506)
        w.uint32(0x0708090A)
        self.assertEqual(w.getvalue(), bytes.fromhex("0102030405060708090a"))
        self.assertEqual(len(w), 10)

    def test_integer_overflow_is_internal_error(self) -> None:
        w = Writer()
        for method, bad in (
            (w.uint8, 256),
            (w.uint16, 0x10000),
            (w.uint24, 0x1000000),
            (w.uint32, 0x100000000),
            (w.uint8, -1),
            (w.uint16, -1),
        ):
            with self.assertRaises(InternalError) as caught:
                method(bad)
            self.assertEqual(caught.exception.alert, AlertDescription.internal_error)
        self.assertEqual(w.getvalue(), b"")

    def test_raw(self) -> None:
        w = Writer()
        w.raw(b"ab")
        w.raw(memoryview(b"cd"))
        w.raw(bytearray(b"ef"))
        self.assertEqual(w.getvalue(), b"abcdef")

    def test_vector(self) -> None:
        w = Writer()
        w.vector(1, b"abc")
        w.vector(2, b"")
        w.vector(3, b"x")
        self.assertEqual(w.getvalue(), b"\x03abc\x00\x00\x00\x00\x01x")

    def test_vector_bounds(self) -> None:
        w = Writer()
        self.assertRaises(InternalError, w.vector, 1, b"a", 2)
        self.assertRaises(InternalError, w.vector, 1, b"abcd", 0, 3)
        self.assertRaises(InternalError, w.vector, 1, bytes(256))
        self.assertRaises(InternalError, w.vector, 7, b"")
        w.vector(1, bytes(255))
        self.assertEqual(len(w), 256)

    def test_uint16_vector(self) -> None:
        w = Writer()
        w.uint16_vector(2, [0x1301, 0x1302], 2, 0xFFFE)
        self.assertEqual(w.getvalue(), bytes.fromhex("000413011302"))
        self.assertRaises(InternalError, w.uint16_vector, 2, [0x10000])
        self.assertRaises(InternalError, w.uint16_vector, 2, [], 2)

    def test_prefixed(self) -> None:
        w = Writer()
        with w.prefixed(2):
            w.uint8(7)
            with w.prefixed(1):
                w.raw(b"ab")
        self.assertEqual(w.getvalue(), b"\x00\x04\x07\x02ab")

    def test_prefixed_empty(self) -> None:
        w = Writer()
        with w.prefixed(3):
            pass
        self.assertEqual(w.getvalue(), b"\x00\x00\x00")

    def test_prefixed_bounds(self) -> None:
        w = Writer()
        with self.assertRaises(InternalError), w.prefixed(2, 2):
            w.uint8(1)
        w = Writer()
        with self.assertRaises(InternalError), w.prefixed(1):
            w.raw(bytes(256))

    def test_prefixed_propagates_exceptions_untouched(self) -> None:
        w = Writer()
        with self.assertRaises(ZeroDivisionError), w.prefixed(2):
            w.uint8(1)
            1 / 0  # noqa: B018
        # The placeholder stays zero: nothing pretends the block is complete.
        self.assertEqual(w.getvalue(), b"\x00\x00\x01")

    def test_getvalue_is_a_snapshot(self) -> None:
        w = Writer()
        w.uint8(1)
        first = w.getvalue()
        w.uint8(2)
        self.assertEqual(first, b"\x01")
        self.assertEqual(w.getvalue(), b"\x01\x02")


# One operation of a Writer/Reader round trip: (kind, value).
_ops = st.one_of(
    st.tuples(st.just("uint8"), st.integers(0, 0xFF)),
    st.tuples(st.just("uint16"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("uint24"), st.integers(0, 0xFFFFFF)),
    st.tuples(st.just("uint32"), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("bytes"), st.binary(max_size=20)),
    st.tuples(st.sampled_from(["v1", "v2", "v3"]), st.binary(max_size=300)),
    st.tuples(st.just("u16list"), st.lists(st.integers(0, 0xFFFF), max_size=20)),
)


class RoundTripPropertyTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(_ops, max_size=15), st.booleans())
    def test_writer_reader_round_trip(self, ops, nested) -> None:
        w = Writer()

        def write_all() -> None:
            for kind, value in ops:
                if kind == "bytes":
                    w.raw(value)
                elif kind == "u16list":
                    w.uint16_vector(2, value)
                elif kind.startswith("v"):
                    w.vector(int(kind[1]), value)
                else:
                    getattr(w, kind)(value)

        if nested:
            with w.prefixed(3):
                write_all()
        else:
            write_all()
        r = Reader(w.getvalue())
        if nested:
            r = r.sub(3)
        for kind, value in ops:
            if kind == "bytes":
                self.assertEqual(r.bytes(len(value)), value)
            elif kind == "u16list":
                self.assertEqual(r.uint16_vector(2), value)
            elif kind.startswith("v"):
                self.assertEqual(r.vector(int(kind[1])), value)
            else:
                self.assertEqual(getattr(r, kind)(), value)
        r.finish()

    @settings(max_examples=500, deadline=None)
    @given(
        st.binary(max_size=64),
        st.lists(
            st.sampled_from(
                ["uint8", "uint16", "uint24", "uint32", "v1", "v2", "v3", "sub", "u16"]
            ),
            max_size=12,
        ),
    )
    def test_arbitrary_input_only_raises_decode_error(self, data, reads) -> None:
        r = Reader(data)
        try:
            for read in reads:
                if read == "sub":
                    r = r.sub(1)
                elif read == "u16":
                    r.uint16_vector(1)
                elif read.startswith("v"):
                    r.vector(int(read[1]), 1, 40)
                else:
                    getattr(r, read)()
            r.finish()
        except DecodeError:
            pass
