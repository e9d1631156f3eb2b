"""L2: the data path — segmenting, storing and reading object bytes on volumes."""
