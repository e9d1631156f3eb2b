"""L4: the chunk server — serves local disk volumes over HTTP (DESIGN.md section 5).

It knows blocks and disks only: never objects, buckets or SQL. The wire contract
lives in :mod:`tessera.protocol.chunk`; the client is :mod:`tessera.data.remote`.
"""

from tessera.chunkserver.app import make_chunk_app

__all__ = ["make_chunk_app"]
