"""The resource registry: hosts, containers and services, their metadata and liveness."""
