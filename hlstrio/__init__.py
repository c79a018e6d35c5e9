"""hlstrio: an HLS streaming session server on Trio."""

__version__ = "0.1.0"
