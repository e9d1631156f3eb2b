"""Tessera's Python SDK (DESIGN.md §7).

Imports only :mod:`tessera.protocol`, :mod:`tessera.common` and its HTTP
libraries (botocore/s3transfer, urllib3), so it can ship alone. Entry points:
``tessera.connect(endpoint, access_key, secret_key)`` and ``tessera.open(path)``
(see :mod:`tessera`), both returning an :class:`~tessera.sdk.api.ObjectStorageApi`.
"""
