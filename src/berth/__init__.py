"""Berth: OCI containers as multi-tenant resources behind a REST API."""

__version__ = "0.1.0"
