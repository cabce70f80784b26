"""crier: a podcast's town crier."""

__version__ = "0.1.0"
