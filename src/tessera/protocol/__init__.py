"""Wire formats, free of I/O: what the S3 protocol says, as pure functions."""
