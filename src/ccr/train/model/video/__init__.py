"""Video towers beyond frame pooling: RIVRL's reading-strategy encoder (``rivrl``) and its concept labels."""
