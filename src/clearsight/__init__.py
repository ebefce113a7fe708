"""Clearsight: self-hosted observability platform."""

__version__ = "0.1.0"
