"""Pure decoders: wire bytes -> model batches. Nothing here imports store/ or api/."""
