"""The Clearsight agent: collectors read the host, the shipper sends their samples to the server."""
