"""Python SDK for the Berth native API."""

from berth.client.client import Client
from berth.client.transport import APIError, ConnectionFailed

__all__ = ["APIError", "Client", "ConnectionFailed"]
