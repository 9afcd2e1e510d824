"""netlab: a network-debugging teaching toolkit."""

__version__ = "0.1.0"
