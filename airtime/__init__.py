"""airtime: daily ad-slot audience forecast pipeline and query service."""

__version__ = "0.1.0"
