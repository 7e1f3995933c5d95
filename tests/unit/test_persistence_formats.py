"""common/rdb.py and common/aof.py: round trips, the encodings real Redis
uses that our writer does not (LZF, ziplist), and damaged input.
(tests/test_persistence.py checks both formats against Redis's own tools.)"""

import io
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.aof import AofError, AofTruncated, CommandReader, Manifest
from common.rdb import RdbError, RdbReader, RdbWriter, crc64, decode_listpack, decode_ziplist, encode_length, lzf_decompress
from common.resp import encode_command

pytestmark = pytest.mark.since(16)

scores = st.floats(allow_nan=False)
values = st.one_of(
    st.binary(max_size=20_000),
    st.dictionaries(st.binary(max_size=70), scores, max_size=40).map(lambda d: sorted(d.items())),
)
records = st.dictionaries(
    st.binary(max_size=300), st.tuples(values, st.none() | st.integers(0, 2**62)), max_size=30
)


def dump(data: dict, checksum: bool = True) -> bytes:
    file = io.BytesIO()
    writer = RdbWriter(file, checksum=checksum)
    writer.begin(len(data), sum(1 for _, expiry in data.values() if expiry is not None))
    for key, (value, expiry) in data.items():
        if isinstance(value, bytes):
            writer.string(key, value, expiry)
        else:
            writer.sorted_set(key, len(value), value, expiry)
    writer.end()
    return file.getvalue()


def load(blob: bytes) -> dict:
    return {record.key: (record.value, record.expire_ms) for record in RdbReader(blob).records()}


@settings(max_examples=150, deadline=None)
@given(records)
def test_what_we_write_reads_back(data):
    assert load(dump(data)) == data


def test_crc64_is_redis_jones_crc():
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # crc64.c's own test vector
    assert crc64(b"56789", crc64(b"1234")) == crc64(b"123456789")


def test_a_dump_without_checksum_loads_and_a_wrong_one_does_not():
    data = {b"k": (b"v", None)}
    assert dump(data, checksum=False).endswith(b"\0" * 8) and load(dump(data, checksum=False)) == data
    damaged = bytearray(dump(data))
    damaged[damaged.index(b"k")] = ord("j")
    with pytest.raises(RdbError, match="wrong checksum"):
        load(bytes(damaged))


@pytest.mark.parametrize("cut", [1, 8, 9, 20])
def test_a_truncated_dump_is_an_error_not_fewer_keys(cut):
    blob = dump({b"a": (b"1", None), b"b": ([(b"m", 1.0)], 5)})
    with pytest.raises(RdbError, match="truncated"):
        load(blob[:-cut])


def test_a_type_we_do_not_have_names_the_key():
    blob = bytearray(dump({b"mystream": (b"x", None)}))
    blob[blob.index(b"\x08mystream") - 1] = 19  # say it is a stream (listpacks, Redis 7)
    with pytest.raises(RdbError, match="'mystream' is a stream"):
        RdbReader(bytes(blob), verify_checksum=False).records().__next__()


def test_lzf_literals_and_overlapping_back_references():
    # "abc" literally, then 6 bytes copied from 3 back: the copy overlaps itself.
    assert lzf_decompress(b"\x02abc\x80\x02", 9) == b"abcabcabc"
    with pytest.raises(ValueError):
        lzf_decompress(b"\x02abc\x80\x09", 9)  # points before the start


def test_ziplist_entries_as_redis_6_wrote_small_sorted_sets():
    entries = (
        b"\x00\x01a"  # prev 0, a 1-byte string
        b"\x03\xf2"  # prev 3, the immediate integer 1
        b"\x02\xc0\xe8\x03"  # prev 2, int16 1000
        b"\x04\xfe\xf9"  # prev 4, int8 -7
    )
    blob = struct.pack("<IIH", 10 + len(entries) + 1, 0, 4) + entries + b"\xff"
    assert decode_ziplist(blob) == [b"a", 1, 1000, -7]


def test_listpack_integer_widths():
    entries = [b"\x05\x01", b"\xc1\x00\x02", b"\xf1\x10\x27\x03", b"\xf4" + (2**40).to_bytes(8, "little") + b"\x09"]
    body = b"".join(entries)
    blob = struct.pack("<IH", 6 + len(body) + 1, len(entries)) + body + b"\xff"
    assert decode_listpack(blob) == [5, 256, 10_000, 2**40]


def test_the_old_zset_encoding_with_text_scores():
    blob = bytearray(b"REDIS0009\xfe\x00")
    blob += b"\x03\x01z\x03\x01a\x031.5\x01b\xfe\x01c\xff"  # ZSET: a 1.5, b +inf, c -inf
    blob += b"\xff" + b"\0" * 8
    (record,) = RdbReader(bytes(blob)).records()
    assert record.value == [(b"a", 1.5), (b"b", math.inf), (b"c", -math.inf)]


def test_manifest_round_trip_and_rewrite():
    manifest = Manifest()
    manifest.new_base("appendonly.aof")
    first = manifest.add_incr("appendonly.aof")
    assert manifest.render() == (
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    )
    second = manifest.add_incr("appendonly.aof")  # a rewrite begins
    manifest.new_base("appendonly.aof", keep_from=second)
    assert [f.name for f in manifest.replay_order()] == ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof"]
    assert [f.name for f in manifest.history] == ["appendonly.aof.1.base.rdb", first.name]
    assert Manifest.parse(manifest.render(), "m") == manifest
    with pytest.raises(AofError, match="not a path"):
        Manifest.parse("file ../x seq 1 type b\n", "m")


def test_command_reader_offsets_truncation_and_corruption():
    log = encode_command(b"SET", b"k", b"v\r\nwith CRLF") + encode_command(b"DEL", b"k")
    reader = CommandReader(io.BytesIO(log), "f")
    assert list(reader.commands()) == [[b"SET", b"k", b"v\r\nwith CRLF"], [b"DEL", b"k"]]
    assert reader.valid_up_to == len(log)
    for cut in range(1, len(encode_command(b"DEL", b"k"))):
        torn = CommandReader(io.BytesIO(log[:-cut]), "f")
        with pytest.raises(AofTruncated) as truncated:
            list(torn.commands())
        assert truncated.value.valid_up_to == len(encode_command(b"SET", b"k", b"v\r\nwith CRLF"))
    with pytest.raises(AofError, match="at byte 0"):
        list(CommandReader(io.BytesIO(b"SET k v\r\n"), "f").commands())


@pytest.mark.parametrize("length", [0, 63, 64, 16_383, 16_384, 2**32 - 1, 2**32, 2**64 - 1])
def test_encode_length_takes_redis_form_at_each_edge(length):
    """rdbSaveLen: 6 bits below 64, 14 bits below 16,384, 32 bits to 2^32-1, else 64; all big-endian."""
    encoded = encode_length(length)
    if length < 64:
        assert encoded == bytes([length])
    elif length < 16_384:
        assert encoded == bytes([0x40 | length >> 8, length & 0xFF])
    elif length < 2**32:
        assert encoded == b"\x80" + length.to_bytes(4, "big")
    else:
        assert encoded == b"\x81" + length.to_bytes(8, "big")
    assert RdbReader(encoded).length() == length
