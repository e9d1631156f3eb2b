"""The SDK's PAR object without a server: link encryption (plain RSA-OAEP and
the Fernet hybrid), expiry buffer, permissions and serialisation."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tessera.sdk.errors import TesseraClientError
from tessera.sdk.par import (
    PAR,
    PARError,
    PARPermissionsError,
    PARTimeoutError,
    decrypt,
    encrypt,
)

URL = "http://127.0.0.1:9000/_tessera/p/0123456789abcdef01234567/" + "s" * 43


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make(
    rsa_key: rsa.RSAPrivateKey, url: str = URL, *, expires: float | None = None, **kw: object
) -> PAR:
    args: dict[str, object] = {
        "uid": "0123456789abcdef01234567",
        "bucket": "bkt",
        "key": "obj",
        "readable": True,
        "writeable": False,
        "listable": False,
        "created": time.time(),
        "expires": time.time() + 3600 if expires is None else expires,
    }
    args.update(kw)
    return PAR(ciphertext=encrypt(rsa_key.public_key(), url.encode()), **args)  # type: ignore[arg-type]


def test_short_message_is_one_rsa_block(key: rsa.RSAPrivateKey) -> None:
    ct = encrypt(key.public_key(), URL.encode())
    assert len(ct) == 256
    assert decrypt(key, ct) == URL.encode()
    assert encrypt(key.public_key(), URL.encode()) != ct  # OAEP is randomised


def test_long_message_uses_fernet_hybrid(key: rsa.RSAPrivateKey) -> None:
    for size in (191, 5000):
        msg = ("https://a-very-long-host-name.example.org/_tessera/p/" + "x" * size).encode()
        ct = encrypt(key, msg)  # a private key encrypts to its public key
        assert len(ct) > 256 and msg not in ct
        assert decrypt(key, ct) == msg
    edge = b"y" * 190  # exactly the OAEP limit of a 2048-bit key: still one block
    assert len(encrypt(key, edge)) == 256 and decrypt(key, encrypt(key, edge)) == edge


def test_wrong_key_or_damage_is_par_error(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    for msg in (URL.encode(), b"z" * 1000):
        ct = encrypt(key, msg)
        with pytest.raises(PARError):
            decrypt(other_key, ct)
        with pytest.raises(PARError):
            decrypt(key, ct[:-1] + bytes([ct[-1] ^ 1]))
    assert issubclass(PARError, TesseraClientError)


def test_url_and_timeout(key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> None:
    par = make(key)
    assert par.url(key) == URL
    assert 3500 < par.seconds_remaining() <= 3570
    with pytest.raises(PARError):
        par.url(other_key)
    soon = make(key, expires=time.time() + 20)
    assert soon.seconds_remaining() == 0  # within the default 30 s buffer
    assert soon.seconds_remaining(buffer=0) > 0
    with pytest.raises(PARTimeoutError):
        soon.url(key)
    assert soon.url(key, buffer=5) == URL
    with pytest.raises(PARTimeoutError):
        make(key, expires=time.time() - 1).url(key, buffer=0)


def test_kinds_and_permissions(key: rsa.RSAPrivateKey) -> None:
    obj = make(key)
    assert obj.is_object() and not obj.is_bucket() and not obj.is_calculation()
    assert obj.is_readable() and not obj.is_writeable()
    with pytest.raises(PARPermissionsError):
        obj.write(key)
    bucket = make(key, key=None, readable=False, listable=True)
    assert bucket.is_bucket() and not bucket.is_object()
    bucket.read(key).close()  # listable is enough to get a BucketReader
    with pytest.raises(PARPermissionsError):
        make(key, key=None, readable=False, writeable=True).read(key)
    calc = make(key, key=None, job="verify")
    assert calc.is_calculation() and not calc.is_bucket()
    with pytest.raises(PARPermissionsError):
        calc.read(key)


def test_to_data_from_data(key: rsa.RSAPrivateKey) -> None:
    par = make(key, key=None, writeable=True, listable=True)
    data = par.to_data()
    text = json.dumps(data)
    assert URL not in text and "sss" not in text
    back = PAR.from_data(json.loads(text))
    assert back.to_data() == data
    assert back.url(key) == URL
    assert back.fingerprint() == par.fingerprint() and back.uid == par.uid
    assert back.fingerprint().startswith(f"{par.uid}:bkt/:rwl:")
    with pytest.raises(ValueError):
        PAR.from_data({})
    with pytest.raises(ValueError):
        PAR.from_data({**data, "url": "not base64!"})
