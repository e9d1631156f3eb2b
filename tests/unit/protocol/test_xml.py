"""S3 XML: refusal of malformed and hostile documents, the request documents as
botocore serializes them, and rendered responses read back by real parsers
(ElementTree, and botocore's own response parser)."""

from __future__ import annotations

import datetime
import random
import time
import xml.etree.ElementTree as ET
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from tessera.protocol.s3.errors import S3Error, error_document, parse_error_document
from tessera.protocol.s3.xml import (
    MAX_DELETE_KEYS,
    S3_NS,
    CompletedPart,
    DeleteEntry,
    parse_complete_multipart,
    parse_create_bucket,
    parse_delete,
    parse_tagging,
    parse_tagging_header,
    parse_versioning,
    parse_xml,
    render,
)

S3_MODEL = botocore.session.get_session().get_service_model("s3")


def _serialize(operation: str, params: dict[str, Any]) -> bytes:
    """The request body botocore sends for ``operation``."""
    request = create_serializer("rest-xml").serialize_to_request(
        params, S3_MODEL.operation_model(operation)
    )
    body = request["body"]
    assert isinstance(body, bytes)
    return body


def _parse_response(operation: str, body: bytes) -> dict[str, Any]:
    """What botocore makes of a response body for ``operation``."""
    shape = S3_MODEL.operation_model(operation).output_shape
    return create_parser("rest-xml").parse({"body": body, "headers": {}, "status_code": 200}, shape)


def _code(fn: Any, *args: Any) -> str:
    with pytest.raises(S3Error) as info:
        fn(*args)
    return info.value.code


def _malformed(fn: Any, doc: bytes) -> None:
    with pytest.raises(S3Error) as info:
        fn(doc)
    assert info.value.code == "MalformedXML"
    assert info.value.status == 400


# --------------------------------------------------------- malformed documents


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   ",
        b"not xml",
        b"<Delete>",
        b"<Delete><Object><Key>a</Key></Delete>",
        b"<Delete></delete>",
        b"<Delete/><Delete/>",
        b"<Delete/>trailing",
        b"text<Delete/>",
        b"<Delete><Object><Key>\xff\xfe</Key></Object></Delete>",  # not UTF-8
        b"<Delete><Object><Key>a&b</Key></Object></Delete>",  # bare ampersand
        b"<Delete><Object><Key>&nosuch;</Key></Object></Delete>",  # undeclared entity
        b"<Delete><Object><Key>&#0;</Key></Object></Delete>",  # not an XML character
        b"<Delete><Object><Key>&#x1;</Key></Object></Delete>",
        b"<Delete><Object><Key>\x01</Key></Object></Delete>",
        b"<Delete a='1' a='2'/>",
        b"<p:Delete/>",  # unbound prefix
        b'<?xml version="1.0" encoding="nosuch"?><Delete/>',
    ],
)
def test_malformed_documents(doc: bytes) -> None:
    _malformed(parse_xml, doc)
    _malformed(parse_delete, doc)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>"""

QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE Delete [<!ENTITY a "'
    + b"x" * 50000
    + b'">]><Delete><Object><Key>'
    + b"&a;" * 50000
    + b"</Key></Object></Delete>"
)


@pytest.mark.parametrize(
    "doc",
    [
        BILLION_LAUGHS,
        QUADRATIC_BLOWUP,
        # External entity (XXE): local file and network.
        b'<?xml version="1.0"?><!DOCTYPE Delete [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Delete><Object><Key>&x;</Key></Object></Delete>",
        b'<!DOCTYPE Delete [<!ENTITY x SYSTEM "http://169.254.169.254/latest/meta-data/">]>'
        b"<Delete><Object><Key>&x;</Key></Object></Delete>",
        # Parameter entities and external DTDs.
        b'<!DOCTYPE Delete [<!ENTITY % p SYSTEM "http://example.invalid/x.dtd"> %p;]>'
        b"<Delete><Object><Key>a</Key></Object></Delete>",
        b'<!DOCTYPE Delete SYSTEM "http://example.invalid/x.dtd">'
        b"<Delete><Object><Key>a</Key></Object></Delete>",
        # Even a harmless internal entity, or a bare DOCTYPE.
        b'<!DOCTYPE Delete [<!ENTITY k "a">]><Delete><Object><Key>&k;</Key></Object></Delete>',
        b"<!DOCTYPE Delete><Delete><Object><Key>a</Key></Object></Delete>",
    ],
    ids=[
        "billion-laughs",
        "quadratic",
        "xxe-file",
        "xxe-http",
        "param-entity",
        "ext-dtd",
        "internal-entity",
        "bare-doctype",
    ],
)
def test_dtds_and_entities_are_refused_cheaply(doc: bytes) -> None:
    start = time.perf_counter()
    _malformed(parse_delete, doc)
    _malformed(parse_xml, doc)
    assert time.perf_counter() - start < 1.0


def test_predefined_entities_and_character_references_are_fine() -> None:
    doc = (
        b"<Delete><Object><Key>&amp;&lt;&gt;&quot;&apos;&#65;&#x42;&#x1F600;&#13;</Key>"
        b"</Object></Delete>"
    )
    assert parse_delete(doc)[1][0].key == "&<>\"'AB\U0001f600\r"


def test_cdata_comments_and_processing_instructions_are_fine() -> None:
    doc = (
        b'<?xml version="1.0" encoding="UTF-8"?><!-- c --><?pi x?>'
        b"<Delete><!-- c --><Object><Key><![CDATA[a<&>b]]></Key><?pi y?></Object></Delete>"
    )
    assert parse_delete(doc) == (False, [DeleteEntry("a<&>b")])


def test_namespaces_are_optional_and_stripped() -> None:
    plain = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    default = (
        f'<Tagging xmlns="{S3_NS}"><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>'
        "</TagSet></Tagging>"
    ).encode()
    prefixed = (
        f'<s3:Tagging xmlns:s3="{S3_NS}"><s3:TagSet><s3:Tag><s3:Key>k</s3:Key>'
        "<s3:Value>v</s3:Value></s3:Tag></s3:TagSet></s3:Tagging>"
    ).encode()
    for doc in (plain, default, prefixed):
        assert parse_tagging(doc) == {"k": "v"}
    root = parse_xml(prefixed)
    assert [el.tag for el in root.iter()] == ["Tagging", "TagSet", "Tag", "Key", "Value"]


def test_other_encodings_declared_in_the_prolog() -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-16"?><Delete><Object><Key>\u00e9</Key></Object></Delete>'
    )
    assert parse_delete(text.encode("utf-16"))[1][0].key == "\u00e9"
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?><Delete><Object><Key>\xe9</Key></Object></Delete>'
    assert parse_delete(latin)[1][0].key == "\u00e9"


def test_wrong_root_element_is_malformed() -> None:
    tagging = b"<Tagging><TagSet/></Tagging>"
    _malformed(parse_delete, tagging)
    _malformed(parse_complete_multipart, tagging)
    _malformed(parse_create_bucket, tagging)
    _malformed(parse_versioning, tagging)
    _malformed(parse_tagging, b"<tagging><TagSet/></tagging>")  # names are case-sensitive


# ------------------------------------------------------------ CreateBucket


def test_create_bucket_configuration() -> None:
    doc = _serialize(
        "CreateBucket",
        {"Bucket": "b", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}},
    )
    assert parse_create_bucket(doc) == "eu-west-1"
    assert parse_create_bucket(b"<CreateBucketConfiguration/>") is None
    assert (
        parse_create_bucket(
            b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>"
        )
        is None
    )
    assert (
        parse_create_bucket(
            b"<CreateBucketConfiguration><LocationConstraint> us-west-2\n"
            b"</LocationConstraint></CreateBucketConfiguration>"
        )
        == "us-west-2"
    )
    _malformed(parse_create_bucket, b"<CreateBucketConfiguration>")


# -------------------------------------------------------------- Versioning


def test_versioning_configuration() -> None:
    doc = _serialize(
        "PutBucketVersioning",
        {"Bucket": "b", "VersioningConfiguration": {"Status": "Enabled", "MFADelete": "Disabled"}},
    )
    assert parse_versioning(doc) == ("Enabled", "Disabled")
    doc = _serialize(
        "PutBucketVersioning", {"Bucket": "b", "VersioningConfiguration": {"Status": "Suspended"}}
    )
    assert parse_versioning(doc) == ("Suspended", None)
    assert parse_versioning(b"<VersioningConfiguration/>") == (None, None)
    for status in (b"enabled", b"ENABLED", b" Enabled", b"", b"Disabled", b"On"):
        _malformed(
            parse_versioning,
            b"<VersioningConfiguration><Status>" + status + b"</Status></VersioningConfiguration>",
        )
    _malformed(
        parse_versioning,
        b"<VersioningConfiguration><MfaDelete>Yes</MfaDelete></VersioningConfiguration>",
    )


# ----------------------------------------------------------- DeleteObjects


def test_delete_from_botocore() -> None:
    doc = _serialize(
        "DeleteObjects",
        {
            "Bucket": "b",
            "Delete": {
                "Objects": [
                    {"Key": "plain"},
                    {"Key": "a&b<c>d\"e'f", "VersionId": "v1"},
                    {"Key": " spaced \t", "ETag": '"0123abc"'},
                    {
                        "Key": "\u00e9\U0001f600/x",
                        "LastModifiedTime": datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC),
                        "Size": 42,
                    },
                ],
                "Quiet": True,
            },
        },
    )
    quiet, entries = parse_delete(doc)
    assert quiet is True
    assert entries == [
        DeleteEntry("plain"),
        DeleteEntry("a&b<c>d\"e'f", "v1"),
        DeleteEntry(" spaced \t", None, "0123abc"),
        DeleteEntry("\u00e9\U0001f600/x", None, None, 1420070400.0, 42),
    ]


@pytest.mark.parametrize(
    ("quiet", "expected"),
    [
        (None, False),
        (b"true", True),
        (b"True", True),
        (b" true ", True),
        (b"false", False),
        (b"", False),
        (b"1", False),
    ],
)
def test_delete_quiet(quiet: bytes | None, expected: bool) -> None:
    q = b"" if quiet is None else b"<Quiet>" + quiet + b"</Quiet>"
    assert parse_delete(b"<Delete>" + q + b"<Object><Key>k</Key></Object></Delete>")[0] is expected


def _delete_doc(n: int) -> bytes:
    objects = "".join(f"<Object><Key>key-{i}</Key></Object>" for i in range(n))
    return f'<Delete xmlns="{S3_NS}">{objects}</Delete>'.encode()


def test_delete_key_count_limits() -> None:
    assert MAX_DELETE_KEYS == 1000
    _, entries = parse_delete(_delete_doc(1000))
    assert len(entries) == 1000
    assert entries[0].key == "key-0"
    assert entries[-1].key == "key-999"
    _malformed(parse_delete, _delete_doc(1001))
    _malformed(parse_delete, _delete_doc(0))
    _malformed(parse_delete, b"<Delete><Quiet>true</Quiet></Delete>")


def test_delete_entry_details() -> None:
    def one(inner: str) -> DeleteEntry:
        return parse_delete(f"<Delete><Object>{inner}</Object></Delete>".encode())[1][0]

    assert one("<Key></Key>") == DeleteEntry("")  # left to the key rules
    assert one("<Key>k</Key><VersionId></VersionId>") == DeleteEntry("k")
    assert one("<Key>k</Key><VersionId>null</VersionId>").version_id == "null"
    assert one('<Key>k</Key><ETag>"abc"</ETag>').etag == "abc"
    assert one("<Key>k</Key><ETag>&quot;abc&quot;</ETag>").etag == "abc"
    assert one("<Key>k</Key><ETag>abc</ETag>").etag == "abc"
    assert one("<Key>k</Key><ETag>*</ETag>").etag == "*"
    assert one("<Key>k</Key><Size>0</Size>").size == 0
    assert one("<Key>k</Key><Size> 7 </Size>").size == 7
    assert one("<Key>k</Key><LastModifiedTime>2015-01-01T00:00:00.000Z</LastModifiedTime>") == (
        DeleteEntry("k", last_modified=1420070400.0)
    )
    assert (
        one(
            "<Key>k</Key><LastModifiedTime>Thu, 01 Jan 2015 00:00:00 GMT</LastModifiedTime>"
        ).last_modified
        == 1420070400.0
    )
    # The key is taken as is: no stripping, no normalization beyond XML's own.
    assert one("<Key>  a  </Key>").key == "  a  "
    assert one("<Key>a&#13;&#10;b</Key>").key == "a\r\nb"


@pytest.mark.parametrize(
    "inner",
    [
        "<VersionId>v</VersionId>",  # no Key
        "",
        "<Key>k</Key><Size>-1</Size>",
        "<Key>k</Key><Size>1.5</Size>",
        "<Key>k</Key><Size>+1</Size>",
        "<Key>k</Key><Size>0x10</Size>",
        "<Key>k</Key><Size></Size>",
        "<Key>k</Key><Size>\u00b2</Size>",
        "<Key>k</Key><Size>\u0663</Size>",
        "<Key>k</Key><LastModifiedTime>yesterday</LastModifiedTime>",
        "<Key>k</Key><LastModifiedTime></LastModifiedTime>",
        "<Key>k</Key><LastModifiedTime>2015-02-30T00:00:00Z</LastModifiedTime>",
    ],
)
def test_delete_bad_entries_are_malformed(inner: str) -> None:
    doc = f"<Delete><Object><Key>ok</Key></Object><Object>{inner}</Object></Delete>".encode()
    _malformed(parse_delete, doc)


# ----------------------------------------------------------------- Tagging


def test_tagging_from_botocore() -> None:
    tags = [
        {"Key": "project", "Value": "tessera"},
        {"Key": " x&y<z> ", "Value": ""},
        {"Key": "\u00e9t\u00e9", "Value": "a=b&c \U0001f600"},
    ]
    doc = _serialize("PutObjectTagging", {"Bucket": "b", "Key": "k", "Tagging": {"TagSet": tags}})
    parsed = parse_tagging(doc)
    assert parsed == {t["Key"]: t["Value"] for t in tags}
    assert list(parsed) == [t["Key"] for t in tags]  # document order
    doc = _serialize("PutBucketTagging", {"Bucket": "b", "Tagging": {"TagSet": tags[:1]}})
    assert parse_tagging(doc) == {"project": "tessera"}


def test_tagging_document_rules() -> None:
    def doc(tags: str) -> bytes:
        return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()

    assert parse_tagging(doc("")) == {}
    assert parse_tagging(b"<Tagging><TagSet/></Tagging>") == {}
    _malformed(parse_tagging, b"<Tagging/>")
    _malformed(parse_tagging, doc("<Tag><Key>k</Key></Tag>"))
    _malformed(parse_tagging, doc("<Tag><Value>v</Value></Tag>"))
    dup = doc("<Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag>")
    with pytest.raises(S3Error) as info:
        parse_tagging(dup)
    assert info.value.code == "InvalidTag"
    assert info.value.status == 400
    # Keys differing only in case or spacing are different keys.
    assert parse_tagging(
        doc(
            "<Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>K</Key><Value>2</Value></Tag>"
            "<Tag><Key>k </Key><Value>3</Value></Tag>"
        )
    ) == {"k": "1", "K": "2", "k ": "3"}
    # Count and length limits are the core's (tessera.core.validation), not the parser's.
    many = "".join(f"<Tag><Key>k{i}</Key><Value>{'v' * 300}</Value></Tag>" for i in range(60))
    assert len(parse_tagging(doc(many))) == 60


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1&b=2", {"a": "1", "b": "2"}),
        ("a=1&b", {"a": "1", "b": ""}),
        ("a=", {"a": ""}),
        ("a=1&", {"a": "1"}),
        ("a%20b=c%26d", {"a b": "c&d"}),
        ("a+b=c+d", {"a b": "c d"}),
        ("k=%C3%A9", {"k": "\u00e9"}),
        ("k=a%3Db", {"k": "a=b"}),
    ],
)
def test_tagging_header(value: str, expected: dict[str, str]) -> None:
    assert parse_tagging_header(value) == expected


def test_tagging_header_errors() -> None:
    for value in ("=1", "a=1&=2", "&", "&&"):
        assert _code(parse_tagging_header, value) == "InvalidArgument", value
    assert _code(parse_tagging_header, "a=1&a=2") == "InvalidTag"


# ------------------------------------------------- CompleteMultipartUpload


def test_complete_multipart_from_botocore() -> None:
    doc = _serialize(
        "CompleteMultipartUpload",
        {
            "Bucket": "b",
            "Key": "k",
            "UploadId": "u",
            "MultipartUpload": {
                "Parts": [
                    {"PartNumber": 2, "ETag": '"aaa"', "ChecksumCRC32": "AAAAAA=="},
                    {"PartNumber": 1, "ETag": "bbb", "ChecksumSHA256": "x" * 44},
                    {"PartNumber": 10000, "ETag": '"ccc-3"'},
                ]
            },
        },
    )
    assert parse_complete_multipart(doc) == [
        CompletedPart(2, "aaa", {"CRC32": "AAAAAA=="}),  # document order kept
        CompletedPart(1, "bbb", {"SHA256": "x" * 44}),
        CompletedPart(10000, "ccc-3", {}),
    ]


def test_complete_multipart_document_rules() -> None:
    def doc(parts: str) -> bytes:
        return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()

    assert parse_complete_multipart(
        doc("<Part><ETag> &quot;e&quot; </ETag><PartNumber> 3 </PartNumber></Part>")
    ) == [CompletedPart(3, "e")]
    _malformed(parse_complete_multipart, doc(""))
    _malformed(parse_complete_multipart, doc("<Part><ETag>e</ETag></Part>"))
    _malformed(parse_complete_multipart, doc("<Part><PartNumber>1</PartNumber></Part>"))
    for number in (
        "",
        "abc",
        "1.0",
        "0x1",
        "1_0",
        "\u0661",
        "\uff11",
        "\u00b9",
        "1e3",
        "--1",
        "+",
        "-",
    ):
        _malformed(
            parse_complete_multipart,
            doc(f"<Part><PartNumber>{number}</PartNumber><ETag>e</ETag></Part>"),
        )


# ---------------------------------------------------------------- rendering


def test_render_shapes() -> None:
    doc = render(
        "Root",
        {
            "@attr": 'a"b',
            "S": "x",
            "N": 5,
            "T": True,
            "F": False,
            "Skipped": None,
            "L": [1, 2],
            "Empty": [],
            "D": {"Inner": "i", "@id": 7, "@none": None},
            "Mixed": {"#text": "text", "@k": "v"},
            "Blank": "",
        },
    )
    assert doc == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<Root xmlns="http://s3.amazonaws.com/doc/2006-03-01/" attr="a&quot;b">'
        b"<S>x</S><N>5</N><T>true</T><F>false</F><L>1</L><L>2</L>"
        b'<D id="7"><Inner>i</Inner></D><Mixed k="v">text</Mixed><Blank></Blank></Root>'
    )


def test_render_escapes_markup() -> None:
    doc = render("R", {"K": "a&b<c>d\"e'f]]>g\rh\ni\tj&amp;"})
    assert b"<K>a&amp;b&lt;c&gt;d&quot;e'f]]&gt;g&#13;h\ni\tj&amp;amp;</K>" in doc


def test_render_escapes_control_characters_as_s3_does() -> None:
    # XML 1.0 cannot carry U+0001..U+001F (but tab, LF, CR) at all; S3 writes them
    # as character references (clients that cannot read them use encoding-type=url).
    # Raw control bytes would make the document unreadable to every parser.
    doc = render("R", {"K": "a\x01b\x08c\x0bd\x0ce\x1ff\x7fg"})
    assert b"<K>a&#x1;b&#x8;c&#xb;d&#xc;e&#x1f;f\x7fg</K>" in doc
    assert not any(c < 0x20 and c not in (0x09, 0x0A) for c in doc)


XML_SAFE = (
    [chr(c) for c in range(0x20, 0x7F)]
    + ["\t", "\n", "\r", "\r\n", "\x7f", "\x85", "\xa0", "\u00e9", "\u2028", "\ufeff", "\ufffd"]
    + ["\u4e2d", "\U0001f600", "\U0010fffd", "]]>", "&amp;", "<!--", "<![CDATA[", "&#13;"]
)


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(XML_SAFE) for _ in range(rng.randint(0, 30)))


@pytest.mark.parametrize("seed", range(5))
def test_rendered_text_round_trips_through_elementtree(seed: int) -> None:
    rng = random.Random(seed)
    values = [_random_text(rng) for _ in range(50)]
    attr = _random_text(rng).replace("\t", " ").replace("\n", " ").replace("\r", " ")
    doc = render("Root", {"@a": attr, "Item": [{"Key": v} for v in values]})
    root = ET.fromstring(doc)
    assert root.tag == f"{{{S3_NS}}}Root"
    assert root.get("a") == attr
    assert [item.findtext(f"{{{S3_NS}}}Key") for item in root] == values
    # And through Tessera's own (defused) parser.
    assert [item.findtext("Key") for item in parse_xml(doc)] == values


def test_rendered_listing_reads_back_in_botocore() -> None:
    rng = random.Random(11)
    keys = ["a\r\nb", "x&y<z>", "]]>", "tab\there", "\u00e9\U0001f600"]
    keys += [_random_text(rng) or "k" for _ in range(30)]
    doc = render(
        "ListBucketResult",
        {
            "Name": "bucket",
            "Prefix": "",
            "KeyCount": len(keys),
            "MaxKeys": 1000,
            "IsTruncated": False,
            "Contents": [
                {
                    "Key": k,
                    "LastModified": "2013-05-24T00:00:00.000Z",
                    "ETag": '"d41d8cd98f00b204e9800998ecf8427e"',
                    "Size": i,
                    "StorageClass": "STANDARD",
                }
                for i, k in enumerate(keys)
            ],
        },
    )
    parsed = _parse_response("ListObjectsV2", doc)
    assert [c["Key"] for c in parsed["Contents"]] == keys
    assert [c["Size"] for c in parsed["Contents"]] == list(range(len(keys)))
    assert parsed["Contents"][0]["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert parsed["IsTruncated"] is False
    assert parsed["KeyCount"] == len(keys)


def test_rendered_tagging_reads_back_in_botocore_and_in_the_parser() -> None:
    tags = {"a&b": "<v>", "\u00e9": "", " s ": "x\r\ny"}
    doc = render("Tagging", {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}})
    assert parse_tagging(doc) == tags
    parsed = _parse_response("GetObjectTagging", doc)
    assert {t["Key"]: t["Value"] for t in parsed["TagSet"]} == tags


# ----------------------------------------------------------- error documents


def test_error_document_round_trips() -> None:
    doc = error_document(
        "NoSuchKey",
        "The specified key does not exist.",
        resource="/b/a&b<c>",
        request_id="req-1",
        extra={"Key": "a&b<c>"},
    )
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>')
    assert parse_error_document(doc) == ("NoSuchKey", "The specified key does not exist.")
    root = ET.fromstring(doc)
    assert root.findtext("Resource") == "/b/a&b<c>"
    assert root.findtext("Key") == "a&b<c>"
    assert root.findtext("RequestId") == root.findtext("HostId") == "req-1"
    parsed = create_parser("rest-xml").parse(
        {"body": doc, "headers": {}, "status_code": 404},
        S3_MODEL.operation_model("GetObject").output_shape,
    )
    assert parsed["Error"]["Code"] == "NoSuchKey"
    assert parsed["Error"]["Message"] == "The specified key does not exist."


def test_error_document_escapes_line_ends_and_control_characters() -> None:
    doc = error_document(
        "SignatureDoesNotMatch",
        "m",
        extra={"StringToSign": "GET\n\n\r\n/b/k", "Key": "a\x01b"},
    )
    assert b"<StringToSign>GET\n\n&#xd;\n/b/k</StringToSign>" in doc
    assert b"<Key>a&#x1;b</Key>" in doc
    assert ET.fromstring(doc.replace(b"&#x1;", b"")).findtext("StringToSign") == "GET\n\n\r\n/b/k"


def test_parse_error_document_refuses_other_documents() -> None:
    assert parse_error_document(b"") == ("", "")
    assert parse_error_document(b"<Error>") == ("", "")
    assert parse_error_document(b"<NotError><Code>x</Code></NotError>") == ("", "")
    assert parse_error_document(BILLION_LAUGHS) == ("", "")
    assert parse_error_document(f'<Error xmlns="{S3_NS}"><Code>C</Code></Error>'.encode()) == (
        "",
        "",
    )  # children are looked up without a namespace
    assert parse_error_document(b"<Error><Code>C</Code></Error>") == ("C", "")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDenied", 403),
        ("SignatureDoesNotMatch", 403),
        ("NoSuchKey", 404),
        ("NoSuchBucket", 404),
        ("BucketNotEmpty", 409),
        ("PreconditionFailed", 412),
        ("InvalidRange", 416),
        ("MissingContentLength", 411),
        ("MethodNotAllowed", 405),
        ("NotImplemented", 501),
        ("InternalError", 500),
        ("SlowDown", 503),
        ("MalformedXML", 400),
        ("SomethingUnknown", 400),
    ],
)
def test_s3_error_statuses(code: str, status: int) -> None:
    err = S3Error(code)
    assert err.status == status
    assert err.code == code
    assert err.message
    assert S3Error(code, "m", status=499).status == 499
