"""Clearsight: self-hosted observability platform."""

from clearsight._compiled import prefer_changed_sources

__version__ = "0.1.0"

prefer_changed_sources()
