"""The data model: labels, matchers, sample batches. No I/O here."""
