"""Identity, access and tenancy: who is asking (the principal), for which organisation, with which
permissions. State lives in SQL (``state.py``); one ASGI middleware (``middleware.py``) and one gRPC
interceptor (``grpc_interceptor.py``) resolve the principal once per request."""
