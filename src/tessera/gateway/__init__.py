"""L4: the S3-compatible HTTP front end (aiohttp)."""
