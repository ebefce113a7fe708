"""``python -m clearsight.agent``: the agent without the rest of the command line (a smaller process)."""

from __future__ import annotations

import argparse
import sys

from clearsight.agent.main import main

ap = argparse.ArgumentParser(prog="python -m clearsight.agent", description="Run the Clearsight agent.")
ap.add_argument("--config", "-c", help="agent.yaml (docs/agent.md)")
ap.add_argument("--url", help="Server URL (default http://127.0.0.1:9800)")
ap.add_argument("--interval", help="Host collector interval, e.g. 10s")
ap.add_argument("--log-level")
ap.add_argument("--protocol", choices=("grpc", "http"), help="shipper.protocol (default grpc)")
ap.add_argument("--grpc-address", help="server.grpc_address: the server's OTLP/gRPC host:port")
args = ap.parse_args()
sys.exit(main(args.config, args.url, args.interval, args.log_level, args.protocol, args.grpc_address))
