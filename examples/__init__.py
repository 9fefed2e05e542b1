"""Example applications built on fncall; run one with ``python -m examples.<name>``."""
