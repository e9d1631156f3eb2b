"""L2: metadata persistence behind the :class:`~tessera.meta.store.MetadataStore` protocol."""
