"""L1: domain records and domain errors (no I/O, no HTTP, no SQL)."""
