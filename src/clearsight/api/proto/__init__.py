"""Generated protobuf code for Clearsight's own gRPC services; never edit by hand.

``clearsight_events_pb2`` (and its ``.pyi``) come from ``docs/clearsight_events.proto``:

    .venv/bin/python -m grpc_tools.protoc -Idocs --python_out=src/clearsight/api/proto \\
        --pyi_out=src/clearsight/api/proto docs/clearsight_events.proto

``tests/unit/api/test_events_proto.py`` compiles the .proto and fails when its descriptor differs
from the committed one.
"""
