"""Collectors: each reads one source and returns samples; the OS comes in as parameters."""
