"""aws-chunked decoding: the AWS documented streaming examples, every way of
splitting a body into reads, each kind of malformed body, and bodies produced
by botocore's own aws-chunked encoder."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import zlib
from collections.abc import Iterable

import crc32c
import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha1Checksum, Sha256Checksum

from tessera.protocol.s3 import sigv4
from tessera.protocol.s3.chunked import (
    MAX_LINE,
    MAX_TRAILER_BYTES,
    AwsChunkedDecoder,
    ChunkSigning,
    encode_chunked,
)
from tessera.protocol.s3.errors import S3Error

# ------------------------------------------------------------------ helpers

S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
S3_DATE = "20130524T000000Z"
S3_SCOPE = "20130524/us-east-1/s3/aws4_request"
S3_KEY = sigv4.signing_key(S3_SECRET, "20130524", "us-east-1", "s3")
# Seed signatures of the two documented streaming PUTs (checked in test_sigv4.py).
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SEED_TRAILER = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"

SIGNING = ChunkSigning(S3_KEY, S3_DATE, S3_SCOPE, SEED)
SIGNING_TRAILER = ChunkSigning(S3_KEY, S3_DATE, S3_SCOPE, SEED_TRAILER)


def _decode(
    pieces: Iterable[bytes], signing: ChunkSigning | None = None
) -> tuple[bytes, AwsChunkedDecoder]:
    decoder = AwsChunkedDecoder(signing=signing)
    out = bytearray()
    for piece in pieces:
        for part in decoder.feed(piece):
            out += part
    decoder.close()
    return bytes(out), decoder


def _bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def _random_split(body: bytes, rng: random.Random) -> list[bytes]:
    pieces, pos = [], 0
    while pos < len(body):
        n = rng.choice((1, 1, 2, 3, 5, 8, 13, rng.randint(1, 200)))
        pieces.append(body[pos : pos + n])
        pos += n
    return pieces


def _error(pieces: Iterable[bytes], signing: ChunkSigning | None = None) -> S3Error:
    with pytest.raises(S3Error) as info:
        _decode(pieces, signing)
    return info.value


def _splits(body: bytes) -> list[list[bytes]]:
    """Whole, byte by byte, at every single boundary, and seeded random reads."""
    out = [[body], _bytewise(body)]
    out += [[body[:i], body[i:]] for i in range(1, len(body))]
    rng = random.Random(len(body))
    out += [_random_split(body, rng) for _ in range(20)]
    return out


def _sign_chunk(previous: str, data: bytes, signing: ChunkSigning = SIGNING) -> str:
    to_sign = sigv4.chunk_string_to_sign(
        signing.amz_date, signing.scope, previous, hashlib.sha256(data).hexdigest()
    )
    return sigv4.sign(signing.key, to_sign)


def _b64crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# ----------------------------------------------------- AWS documented examples

# "Signature calculation: transfer payload in multiple chunks" (S3 API reference):
# a 66560-byte object of "a" sent as 65536 + 1024 bytes, Content-Length 66824.
DOC_CHUNK1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
DOC_CHUNK2 = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
DOC_FINAL = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
DOC_BODY = (
    b"10000;chunk-signature=" + DOC_CHUNK1.encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
    b"400;chunk-signature=" + DOC_CHUNK2.encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
    b"0;chunk-signature=" + DOC_FINAL.encode() + b"\r\n\r\n"
)

# "Signature calculation: including trailing headers": the same object with a
# signed x-amz-checksum-crc32c trailer.
DOC_T_CHUNK1 = "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
DOC_T_CHUNK2 = "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
DOC_T_FINAL = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
DOC_T_TRAILER_SIG = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
DOC_T_BODY = (
    b"10000;chunk-signature=" + DOC_T_CHUNK1.encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
    b"400;chunk-signature=" + DOC_T_CHUNK2.encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
    b"0;chunk-signature=" + DOC_T_FINAL.encode() + b"\r\n"
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:" + DOC_T_TRAILER_SIG.encode() + b"\r\n\r\n"
)


def test_documented_chunk_signatures_are_the_chained_hmacs() -> None:
    assert len(DOC_BODY) == 66824
    assert _sign_chunk(SEED, b"a" * 65536) == DOC_CHUNK1
    assert _sign_chunk(DOC_CHUNK1, b"a" * 1024) == DOC_CHUNK2
    assert _sign_chunk(DOC_CHUNK2, b"") == DOC_FINAL
    assert base64.b64encode(crc32c.crc32c(b"a" * 66560).to_bytes(4, "big")) == b"sOO8/Q=="


def test_documented_signed_body_decodes() -> None:
    payload, decoder = _decode([DOC_BODY], SIGNING)
    assert payload == b"a" * 66560
    assert decoder.decoded_length == 66560
    assert decoder.trailers == []
    assert decoder.finished


def test_documented_signed_body_with_signed_trailer_decodes() -> None:
    payload, decoder = _decode([DOC_T_BODY], SIGNING_TRAILER)
    assert payload == b"a" * 66560
    assert decoder.trailers == [("x-amz-checksum-crc32c", "sOO8/Q==")]
    assert decoder.decoded_length == 66560


@pytest.mark.parametrize("seed", range(5))
def test_documented_bodies_decode_whatever_the_reads(seed: int) -> None:
    rng = random.Random(seed)
    for body, signing in ((DOC_BODY, SIGNING), (DOC_T_BODY, SIGNING_TRAILER)):
        pieces = _random_split(body, rng) if seed else [body[:1], body[1:]]
        payload, decoder = _decode(pieces, signing)
        assert payload == b"a" * 66560
        assert decoder.finished


def test_documented_body_with_wrong_seed_is_refused() -> None:
    # The trailer example's chunks do not chain from the other request's seed.
    assert _error([DOC_T_BODY], SIGNING).code == "SignatureDoesNotMatch"
    assert _error([DOC_BODY], SIGNING_TRAILER).code == "SignatureDoesNotMatch"


def test_documented_body_with_a_changed_byte_is_refused() -> None:
    at = DOC_BODY.index(b"\r\n") + 2 + 1000
    tampered = DOC_BODY[:at] + b"b" + DOC_BODY[at + 1 :]
    assert _error([tampered], SIGNING).code == "SignatureDoesNotMatch"
    # Unsigned, the same body is accepted: the decoder only checks what it is given.
    payload, _ = _decode([tampered])
    assert payload[1000] == ord("b")


def test_encoder_reproduces_the_documented_bodies() -> None:
    assert encode_chunked(b"a" * 66560, signing=SIGNING) == DOC_BODY
    assert (
        encode_chunked(
            b"a" * 66560,
            signing=SIGNING_TRAILER,
            trailers=[("x-amz-checksum-crc32c", "sOO8/Q==")],
        )
        == DOC_T_BODY
    )


# ------------------------------------------------------ splitting into reads

SMALL_PAYLOAD = bytes(range(256)) + b"\r\n0\r\n\r\n;chunk-signature=" + b"xyz" * 7
SMALL_TRAILERS = [("x-amz-checksum-crc32", _b64crc32(SMALL_PAYLOAD)), ("x-amz-meta-other", "v")]


@pytest.mark.parametrize(
    ("signing", "trailers"),
    [
        (None, None),
        (None, SMALL_TRAILERS),
        (SIGNING, None),
        (SIGNING_TRAILER, SMALL_TRAILERS),
    ],
    ids=["unsigned", "unsigned-trailer", "signed", "signed-trailer"],
)
def test_every_split_decodes_the_same(
    signing: ChunkSigning | None, trailers: list[tuple[str, str]] | None
) -> None:
    body = encode_chunked(SMALL_PAYLOAD, chunk_size=97, signing=signing, trailers=trailers)
    for pieces in _splits(body):
        payload, decoder = _decode(pieces, signing)
        assert payload == SMALL_PAYLOAD
        assert decoder.decoded_length == len(SMALL_PAYLOAD)
        assert decoder.trailers == (trailers or [])


def test_payload_is_returned_as_soon_as_it_arrives() -> None:
    body = encode_chunked(b"hello world", chunk_size=5, signing=SIGNING)
    decoder = AwsChunkedDecoder(signing=SIGNING)
    header_end = body.index(b"\r\n") + 2
    assert decoder.feed(body[:header_end]) == []
    # Each data byte comes back from the feed that brought it, before the
    # chunk signature (which follows the data) could be checked.
    assert [decoder.feed(body[i : i + 1]) for i in range(header_end, header_end + 5)] == [
        [b"h"],
        [b"e"],
        [b"l"],
        [b"l"],
        [b"o"],
    ]
    rest = decoder.feed(body[header_end + 5 :])
    assert b"".join(rest) == b" world"
    assert decoder.finished
    decoder.close()


def test_bad_signature_is_raised_only_after_the_chunk_was_returned() -> None:
    body = bytearray(encode_chunked(b"0123456789", chunk_size=10, signing=SIGNING))
    sig_at = body.index(b"chunk-signature=") + len("chunk-signature=")
    body[sig_at] = ord("0") if body[sig_at] != ord("0") else ord("1")
    decoder = AwsChunkedDecoder(signing=SIGNING)
    data_end = body.index(b"\r\n") + 2 + 10
    assert decoder.feed(bytes(body[:data_end])) == [b"0123456789"]
    with pytest.raises(S3Error) as info:
        decoder.feed(bytes(body[data_end:]))
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.status == 403


def test_empty_payload() -> None:
    for signing in (None, SIGNING):
        body = encode_chunked(b"", signing=signing)
        for pieces in _splits(body):
            payload, decoder = _decode(pieces, signing)
            assert payload == b""
            assert decoder.decoded_length == 0


def test_hex_sizes_in_either_case_and_with_leading_zeros() -> None:
    body = b"A\r\n" + b"x" * 10 + b"\r\n0000a\r\n" + b"y" * 10 + b"\r\n000\r\n\r\n"
    payload, decoder = _decode([body])
    assert payload == b"x" * 10 + b"y" * 10
    assert decoder.decoded_length == 20


def test_final_chunk_then_end_of_stream_is_tolerated() -> None:
    # Some clients stop right after "0\r\n" when there are no trailers.
    payload, decoder = _decode([b"3\r\nabc\r\n0\r\n"])
    assert payload == b"abc"
    assert decoder.finished


def test_extra_line_ends_after_the_body_are_ignored() -> None:
    payload, _ = _decode([b"3\r\nabc\r\n0\r\n\r\n", b"\r\n", b"\r\n"])
    assert payload == b"abc"


# ------------------------------------------------------------ malformed bodies


@pytest.mark.parametrize(
    "size_line",
    [
        b"g",
        b"0x10",
        b"+a",
        b"-1",
        b"1_0",
        b"",
        b" ",
        b"1 0",
        "\u0661".encode(),  # ARABIC-INDIC DIGIT ONE
        "\uff11".encode(),  # FULLWIDTH DIGIT ONE
        b";chunk-signature=abc",
    ],
)
def test_size_line_that_is_not_hex_is_refused(size_line: bytes) -> None:
    body = size_line + b"\r\nx\r\n0\r\n\r\n"
    for pieces in ([body], _bytewise(body)):
        err = _error(pieces)
        assert err.code == "IncompleteBody"
        assert err.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"3\r\nabcd\r\n0\r\n\r\n",  # longer than declared
        b"3\r\nabcdefghijkl\r\n0\r\n\r\n",
        b"5\r\nabc\r\n0\r\n\r\n",  # shorter: the "0" line lands inside the data
        b"3\r\nabc0\r\n\r\n",  # no line end after the data
    ],
)
def test_data_not_matching_its_declared_size_is_refused(body: bytes) -> None:
    for pieces in ([body], _bytewise(body)):
        assert _error(pieces).code == "IncompleteBody"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"3",
        b"3\r\n",
        b"3\r\nab",
        b"3\r\nabc",
        b"3\r\nabc\r\n",
        b"3\r\nabc\r\n0",  # final size line without its line end
        b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n",  # trailers without the closing line
        b"0\r\nx-amz-checksum-crc32:AAAA",
    ],
)
def test_missing_final_chunk_raises_on_close(body: bytes) -> None:
    decoder = AwsChunkedDecoder()
    decoder.feed(body)  # nothing wrong yet
    assert not decoder.finished
    with pytest.raises(S3Error) as info:
        decoder.close()
    assert info.value.code == "IncompleteBody"


def test_signed_body_cut_anywhere_raises() -> None:
    body = encode_chunked(b"z" * 300, chunk_size=100, signing=SIGNING)
    final = body.rindex(b"0;chunk-signature=")
    for cut in range(final + 1):
        with pytest.raises(S3Error) as info:
            _decode([body[:cut]], SIGNING)
        assert info.value.code == "IncompleteBody", cut


def test_data_after_the_final_chunk_is_refused() -> None:
    for tail in (b"x", b"3\r\nabc\r\n", b"\r\n\r\nx"):
        body = b"3\r\nabc\r\n0\r\n\r\n" + tail
        for pieces in ([body], _bytewise(body)):
            assert _error(pieces).code == "IncompleteBody"


def test_line_length_limit() -> None:
    # A chunk header of exactly MAX_LINE bytes (line end included) is accepted...
    pad = b"x" * (MAX_LINE - len(b"3;p=\r\n"))
    ok = b"3;p=" + pad + b"\r\nabc\r\n0\r\n\r\n"
    assert _decode([ok])[0] == b"abc"
    # ...one more byte is refused...
    assert _error([b"3;p=" + pad + b"x\r\nabc\r\n0\r\n\r\n"]).code == "IncompleteBody"
    # ...even before its line end arrives.
    decoder = AwsChunkedDecoder()
    decoder.feed(b"3;p=" + pad + b"\r")
    with pytest.raises(S3Error) as info:
        decoder.feed(b"xx")
    assert info.value.code == "IncompleteBody"
    # An endless line is refused without buffering it all.
    decoder = AwsChunkedDecoder()
    with pytest.raises(S3Error) as info:
        for _ in range(100):
            decoder.feed(b"1" * 1000)
    assert info.value.code == "IncompleteBody"
    assert len(decoder._buf) <= MAX_LINE + 1000


def test_trailer_line_length_limit() -> None:
    long_value = "v" * MAX_LINE
    assert _error([b"0\r\nx-amz-meta-a:" + long_value.encode() + b"\r\n\r\n"]).code == (
        "IncompleteBody"
    )


def test_trailer_total_size_limit() -> None:
    line = "x-amz-meta-{}:" + "v" * 3000
    count = MAX_TRAILER_BYTES // 3000 + 1
    trailers = "".join(line.format(i) + "\r\n" for i in range(count)).encode()
    err = _error([b"0\r\n" + trailers + b"\r\n"])
    assert err.code == "IncompleteBody"
    # Just under the limit is fine.
    fewer = "".join(line.format(i) + "\r\n" for i in range(count - 1)).encode()
    _, decoder = _decode([b"0\r\n" + fewer + b"\r\n"])
    assert len(decoder.trailers) == count - 1


def test_trailer_without_colon_is_refused() -> None:
    assert _error([b"0\r\nx-amz-checksum-crc32 AAAAAA==\r\n\r\n"]).code == "IncompleteBody"


def test_unsigned_trailer_names_are_lowercased_and_values_stripped() -> None:
    body = b"3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32 :  NSRBwg==  \r\n\r\n"
    payload, decoder = _decode([body])
    assert payload == b"abc"
    assert decoder.trailers == [("x-amz-checksum-crc32", "NSRBwg==")]
    assert _b64crc32(b"abc") == "NSRBwg=="


# ---------------------------------------------------------------- signatures


def _signed_small(trailers: list[tuple[str, str]] | None = None) -> bytes:
    return encode_chunked(b"0123456789" * 5, chunk_size=20, signing=SIGNING, trailers=trailers)


def test_every_chunk_signature_is_checked() -> None:
    body = _signed_small()
    starts = [i for i in range(len(body)) if body.startswith(b"chunk-signature=", i)]
    assert len(starts) == 4  # 20 + 20 + 10 + final
    for start in starts:
        at = start + len("chunk-signature=") + 10
        flipped = b"0" if body[at : at + 1] != b"0" else b"1"
        tampered = body[:at] + flipped + body[at + 1 :]
        for pieces in ([tampered], _bytewise(tampered)):
            err = _error(pieces, SIGNING)
            assert err.code == "SignatureDoesNotMatch"
            assert err.status == 403


def test_missing_chunk_signature_is_refused() -> None:
    body = b"3\r\nabc\r\n0\r\n\r\n"
    assert _error([body], SIGNING).code == "SignatureDoesNotMatch"
    # A different extension is not a signature either.
    sig = _sign_chunk(SEED, b"abc")
    body = b"3;chunk-signaturex=" + sig.encode() + b"\r\nabc\r\n0\r\n\r\n"
    assert _error([body], SIGNING).code == "SignatureDoesNotMatch"
    # Nor is an empty one.
    body = b"3;chunk-signature=\r\nabc\r\n"
    assert _error([body], SIGNING).code == "SignatureDoesNotMatch"


def test_reordered_or_replayed_chunks_are_refused() -> None:
    first = _sign_chunk(SEED, b"abc")
    second = _sign_chunk(first, b"def")
    final = _sign_chunk(second, b"")
    good = (
        f"3;chunk-signature={first}\r\nabc\r\n"
        f"3;chunk-signature={second}\r\ndef\r\n"
        f"0;chunk-signature={final}\r\n\r\n"
    ).encode()
    assert _decode([good], SIGNING)[0] == b"abcdef"
    swapped = (
        f"3;chunk-signature={second}\r\ndef\r\n"
        f"3;chunk-signature={first}\r\nabc\r\n"
        f"0;chunk-signature={final}\r\n\r\n"
    ).encode()
    assert _error([swapped], SIGNING).code == "SignatureDoesNotMatch"
    # The final chunk cannot be dropped and replaced by a final chunk signed
    # for a shorter body.
    short_final = _sign_chunk(first, b"")
    truncated = (
        f"3;chunk-signature={first}\r\nabc\r\n"
        f"3;chunk-signature={second}\r\ndef\r\n"
        f"0;chunk-signature={short_final}\r\n\r\n"
    ).encode()
    assert _error([truncated], SIGNING).code == "SignatureDoesNotMatch"


def test_signed_body_under_another_key_is_refused() -> None:
    other = ChunkSigning(
        sigv4.signing_key("another secret", "20130524", "us-east-1", "s3"),
        S3_DATE,
        S3_SCOPE,
        SEED,
    )
    body = encode_chunked(b"abc", signing=other)
    assert _error([body], SIGNING).code == "SignatureDoesNotMatch"


def test_signed_trailer_is_checked() -> None:
    value = _b64crc32(b"0123456789" * 5)
    body = _signed_small([("x-amz-checksum-crc32", value)])
    payload, decoder = _decode([body], SIGNING)
    assert payload == b"0123456789" * 5
    assert decoder.trailers == [("x-amz-checksum-crc32", value)]

    # A changed trailer value...
    tampered = body.replace(value.encode(), b"AAAAAA==")
    assert _error([tampered], SIGNING).code == "SignatureDoesNotMatch"
    # ...a changed trailer signature...
    at = body.index(b"x-amz-trailer-signature:") + len("x-amz-trailer-signature:")
    flipped = b"0" if body[at : at + 1] != b"0" else b"1"
    bad_sig = body[:at] + flipped + body[at + 1 :]
    assert _error([bad_sig], SIGNING).code == "SignatureDoesNotMatch"
    # ...a missing trailer signature...
    sig_line = body[body.index(b"x-amz-trailer-signature:") :].split(b"\r\n", 1)[0] + b"\r\n"
    unsigned = body.replace(sig_line, b"")
    assert _error([unsigned], SIGNING).code == "SignatureDoesNotMatch"
    # ...and a trailer added after the signature are all refused.
    appended = body[:-2] + b"x-amz-meta-extra:1\r\n\r\n"
    assert _error([appended], SIGNING).code == "SignatureDoesNotMatch"


def test_signed_trailer_signature_is_ignored_without_signing() -> None:
    # STREAMING-UNSIGNED-PAYLOAD-TRAILER: nothing is signed, nothing checked.
    value = _b64crc32(b"abc")
    body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:" + value.encode()
    body += b"\r\nx-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n"
    payload, decoder = _decode([body])
    assert payload == b"abc"
    assert decoder.trailers == [("x-amz-checksum-crc32", value)]


def test_chunk_signatures_are_ignored_without_signing() -> None:
    body = b"3;chunk-signature=" + b"0" * 64 + b"\r\nabc\r\n0;chunk-signature=bad\r\n\r\n"
    assert _decode([body])[0] == b"abc"


# ------------------------------------------------ botocore's aws-chunked encoder


@pytest.mark.parametrize("checksum_cls", [None, Crc32Checksum, Sha1Checksum, Sha256Checksum])
@pytest.mark.parametrize("seed", range(4))
def test_botocore_aws_chunked_bodies_decode(checksum_cls: type | None, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.choice((0, 1, 100, 1000, 5000)))
    name = {
        None: "x-amz-checksum",
        Crc32Checksum: "x-amz-checksum-crc32",
        Sha1Checksum: "x-amz-checksum-sha1",
        Sha256Checksum: "x-amz-checksum-sha256",
    }[checksum_cls]
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=checksum_cls,
        checksum_name=name,
        chunk_size=rng.choice((1, 7, 64, 1024)),
    )
    # Read the encoded body in odd sizes, as a socket would deliver it.
    pieces = []
    while piece := wrapper.read(rng.randint(1, 300)):
        pieces.append(piece)
    payload, decoder = _decode(pieces)
    assert payload == data
    assert decoder.decoded_length == len(data)
    if checksum_cls is None:
        assert decoder.trailers == []
    else:
        expected = checksum_cls()
        expected.update(data)
        assert decoder.trailers == [(name, expected.b64digest())]
    if checksum_cls is Crc32Checksum:
        assert decoder.trailers[0][1] == _b64crc32(data)
