"""Pre-authenticated requests (PARs) on the client side, in the manner of Acquire.

A PAR is a link (``<server>/_tessera/p/<id>/<secret>``) through which anyone
holding it reads, writes or lists what its creator allowed, with no signature,
until it expires or is revoked. :func:`create_par` asks the server for one and
returns a :class:`PAR` whose link is **encrypted to a public key**: only the
holder of the matching private key can use it, so the object can travel
(:meth:`PAR.to_data`) through untrusted hands.

Encryption (as Acquire's ``PublicKey.encrypt``): RSA-OAEP with MGF1-SHA256 and
SHA-256 when the link fits one RSA block (190 bytes for a 2048-bit key);
otherwise a hybrid: a fresh Fernet key, RSA-OAEP-encrypted (one key-size
block), followed by the Fernet token of the link. Decryption tells the two
apart by length: exactly one block is plain OAEP.

A *calculation* PAR controls a server-side job on its bucket instead
(:meth:`PAR.execute` -> :class:`ComputeRunner`: start, stop, status, wait).

Readers, writers and runners speak plain HTTP (urllib3), unsigned. Every failure is a
:class:`PARError` (a :class:`~tessera.sdk.errors.TesseraClientError`) carrying
the server's error code and status.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tessera.sdk.http import SignedClient
from tessera.sdk.par_links import (
    BucketReader,
    BucketWriter,
    ComputeRunner,
    Link,
    ObjectReader,
    ObjectWriter,
    PARError,
    PARPermissionsError,
    PARReadError,
    PARTimeoutError,
    PARWriteError,
)

__all__ = [
    "PAR",
    "BucketReader",
    "BucketWriter",
    "ComputeRunner",
    "ObjectReader",
    "ObjectWriter",
    "PARError",
    "PARPermissionsError",
    "PARReadError",
    "PARTimeoutError",
    "PARWriteError",
    "create_par",
    "decrypt",
    "encrypt",
]

PublicKey = rsa.RSAPublicKey
PrivateKey = rsa.RSAPrivateKey
DEFAULT_BUFFER = 30.0
"""Seconds of validity :meth:`PAR.url` insists on (Acquire's default)."""


# -- encryption -------------------------------------------------------------------------------
def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def encrypt(key: PublicKey | PrivateKey, message: bytes) -> bytes:
    """``message`` encrypted to ``key`` (a private key stands for its public key):
    RSA-OAEP-SHA256 when it fits one block, else RSA(Fernet key) + Fernet token."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if len(message) <= public.key_size // 8 - 2 * 32 - 2:
        return public.encrypt(message, _oaep())
    fernet_key = Fernet.generate_key()
    return public.encrypt(fernet_key, _oaep()) + Fernet(fernet_key).encrypt(message)


def decrypt(key: PrivateKey, ciphertext: bytes) -> bytes:
    """The inverse of :func:`encrypt`. Raises PARError when ``key`` is not the
    key the message was encrypted to (or the ciphertext is damaged)."""
    block = key.key_size // 8
    try:
        if len(ciphertext) == block:
            return key.decrypt(ciphertext, _oaep())
        fernet_key = key.decrypt(ciphertext[:block], _oaep())
        return Fernet(fernet_key).decrypt(ciphertext[block:])
    except Exception as e:  # ValueError (OAEP), InvalidToken (Fernet)
        raise PARError("cannot decrypt the PAR: wrong key or damaged data") from e


# -- the PAR ---------------------------------------------------------------------------------
class PAR:
    """A pre-authenticated request whose link is encrypted to a public key.

    Everything but the link is in clear: bucket, key, permissions, times, id.
    Methods that use the link take the matching **private** key. ``verify``
    (TLS: True, False or a CA bundle path) is a local setting, not serialised.
    """

    def __init__(
        self,
        *,
        ciphertext: bytes,
        uid: str,
        bucket: str,
        key: str | None,
        readable: bool,
        writeable: bool,
        listable: bool,
        created: float,
        expires: float,
        job: str | None = None,
        verify: bool | str = True,
    ) -> None:
        self._ciphertext: bytes | None = ciphertext
        self._uid = uid
        self.bucket = bucket
        self.key = key
        self._readable = readable
        self._writeable = writeable
        self._listable = listable
        self.created = created
        self.expires = expires
        self.job = job
        self.verify = verify

    # -- what it is
    @property
    def uid(self) -> str:
        """The server's id of the PAR (not secret)."""
        return self._uid

    def is_readable(self) -> bool:
        return self._readable

    def is_writeable(self) -> bool:
        return self._writeable

    def is_listable(self) -> bool:
        return self._listable

    def is_calculation(self) -> bool:
        return self.job is not None

    def is_bucket(self) -> bool:
        return self.key is None and not self.is_calculation()

    def is_object(self) -> bool:
        return self.key is not None

    def is_closed(self) -> bool:
        return self._ciphertext is None

    def fingerprint(self) -> str:
        """``<uid>:<bucket>/<key>:<rwl flags>:<expiry>``: identifies the grant,
        reveals nothing usable."""
        flags = "".join(
            c if on else "-"
            for c, on in (("r", self._readable), ("w", self._writeable), ("l", self._listable))
        )
        return f"{self._uid}:{self.bucket}/{self.key or ''}:{flags}:{int(self.expires)}"

    def seconds_remaining(self, buffer: float = DEFAULT_BUFFER) -> float:
        """Seconds of validity left beyond ``buffer``; 0 when expired or within it."""
        return max(0.0, self.expires - time.time() - buffer)

    # -- using it
    def url(self, decrypt_key: PrivateKey, buffer: float = DEFAULT_BUFFER) -> str:
        """The link. Raises PARTimeoutError when fewer than ``buffer`` seconds
        remain, PARError when closed or ``decrypt_key`` is the wrong key."""
        if self._ciphertext is None:
            raise PARError("this PAR was closed")
        if self.seconds_remaining(buffer) <= 0:
            raise PARTimeoutError(f"the PAR {self._uid} has expired or expires within {buffer} s")
        return decrypt(decrypt_key, self._ciphertext).decode("utf-8")

    def _link(self, decrypt_key: PrivateKey) -> Link:
        return Link(self.url(decrypt_key), self.verify)

    def read(self, decrypt_key: PrivateKey) -> ObjectReader | BucketReader:
        """A reader: :class:`ObjectReader` for an object PAR, :class:`BucketReader`
        for a bucket PAR (readable or listable). Raises PARPermissionsError."""
        if self.is_calculation() or not (self._readable or (self.is_bucket() and self._listable)):
            raise PARPermissionsError("this PAR does not allow reading")
        link = self._link(decrypt_key)
        return ObjectReader(link) if self.is_object() else BucketReader(link)

    def write(self, decrypt_key: PrivateKey) -> ObjectWriter | BucketWriter:
        """A writer: :class:`ObjectWriter` or :class:`BucketWriter`. Raises
        PARPermissionsError when the PAR is not writeable."""
        if self.is_calculation() or not self._writeable:
            raise PARPermissionsError("this PAR does not allow writing")
        link = self._link(decrypt_key)
        return ObjectWriter(link) if self.is_object() else BucketWriter(link)

    def execute(self, decrypt_key: PrivateKey) -> ComputeRunner:
        """The runner of a calculation PAR's job. Raises PARPermissionsError for
        a data PAR."""
        if not self.is_calculation():
            raise PARPermissionsError("this PAR does not control a job")
        return ComputeRunner(self._link(decrypt_key))

    def close(self, decrypt_key: PrivateKey) -> None:
        """Revoke the PAR on the server, proving possession of its link, and
        forget the link. A link the server already refuses (revoked, expired and
        swept) counts as closed. Raises PARError on other failures."""
        if self._ciphertext is None:
            return
        link = Link(decrypt(decrypt_key, self._ciphertext).decode("utf-8"), self.verify)
        try:
            link.send("DELETE", link.url, PARError)
        except PARError as e:
            if e.status != 403:
                raise
        finally:
            link.close()
        self._ciphertext = None

    # -- serialisation
    def to_data(self) -> dict[str, Any]:
        """A JSON-able dict; the link stays encrypted (base64 ciphertext)."""
        return {
            "url": None
            if self._ciphertext is None
            else base64.b64encode(self._ciphertext).decode(),
            "uid": self._uid,
            "bucket": self.bucket,
            "key": self.key,
            "is_readable": self._readable,
            "is_writeable": self._writeable,
            "is_listable": self._listable,
            "created": self.created,
            "expires": self.expires,
            "job": self.job,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, verify: bool | str = True) -> PAR:
        """The PAR :meth:`to_data` described. Raises ValueError when ``data`` is
        not such a dict (or describes a closed PAR)."""
        try:
            ciphertext = base64.b64decode(data["url"], validate=True)
            return cls(
                ciphertext=ciphertext,
                uid=str(data["uid"]),
                bucket=str(data["bucket"]),
                key=data.get("key"),
                readable=bool(data["is_readable"]),
                writeable=bool(data["is_writeable"]),
                listable=bool(data.get("is_listable", False)),
                created=float(data["created"]),
                expires=float(data["expires"]),
                job=data.get("job"),
                verify=verify,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not the data of an open PAR: {e}") from e

    def __repr__(self) -> str:
        return f"PAR({self.fingerprint()})"


def create_par(
    client: SignedClient,
    bucket: str,
    key: str | None = None,
    *,
    readable: bool = True,
    writeable: bool = False,
    listable: bool = False,
    expires: float | None = None,
    ttl: float | None = None,
    job: str | None = None,
    encrypt_key: PublicKey | PrivateKey,
) -> PAR:
    """Create a PAR on ``bucket`` (or its one ``key``) through the signed
    extension API and return it with its link encrypted to ``encrypt_key``.

    ``expires`` (epoch seconds) or ``ttl`` (seconds; the server's default, one
    hour, when neither is given). ``job`` (``verify``, ``copy-prefix``) makes a
    calculation PAR (no key, no data permissions): see :meth:`PAR.execute`. Raises PARPermissionsError (no permission, or
    ``listable`` with a key) before asking the server; the server's refusals
    (not the bucket owner, expiry too far) as :mod:`tessera.sdk.errors`."""
    if job is not None:  # a calculation PAR: the job is its only permission
        if key is not None:
            raise PARPermissionsError("a calculation PAR names a bucket, not a key")
        readable = writeable = listable = False
    elif not (readable or writeable or listable):
        raise PARPermissionsError("a PAR needs at least one of readable, writeable, listable")
    if listable and key is not None:
        raise PARPermissionsError("only bucket PARs (no key) can be listable")
    body: dict[str, Any] = {
        "bucket": bucket,
        "key": key,
        "readable": readable,
        "writeable": writeable,
        "listable": listable,
        "job": job,
    }
    if expires is not None:
        body["expires"] = expires
    if ttl is not None:
        body["ttl"] = ttl
    doc = client.ext("POST", "pars", json_body=body)
    return PAR(
        ciphertext=encrypt(encrypt_key, doc["url"].encode("utf-8")),
        uid=doc["id"],
        bucket=doc["bucket"],
        key=doc["key"],
        readable=doc["readable"],
        writeable=doc["writeable"],
        listable=doc["listable"],
        created=doc["created"],
        expires=doc["expires"],
        job=doc.get("job"),
        verify=client.endpoint.verify,
    )
