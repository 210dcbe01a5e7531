"""The gRPC query service: serves the published forecast to optimization clients."""
