"""The Python client for the Linebridge gRPC API."""

from linebridge.client.aio import CatalogDecoder, Client, Sample, tls_credentials, value_message, value_of

__all__ = ["CatalogDecoder", "Client", "Sample", "tls_credentials", "value_message", "value_of"]
