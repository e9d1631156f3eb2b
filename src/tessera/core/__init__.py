"""L3: object semantics — accounts, buckets, objects, versions, multipart, listing."""
