"""The package version, in a module of its own so results and setup.cfg read it without importing TF."""

__version__ = "0.1.0"
