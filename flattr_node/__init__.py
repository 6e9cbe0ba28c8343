"""flattr-node: a self-hosted Flattr."""

__version__ = "0.1.0"
