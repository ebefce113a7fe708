"""The write pipeline: validate, limit, relabel and hand batches to the store."""
