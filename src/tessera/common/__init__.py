"""L0: identifiers, clock, byte ranges, checksums, stream helpers (stdlib and tiny C libs only)."""
