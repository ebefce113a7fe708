"""HTTP and gRPC surfaces: authenticate, pick the tenant, decode, hand to the pipeline/engine."""
