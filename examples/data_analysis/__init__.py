"""Data analysis over a CSV: ``python -m examples.data_analysis`` (see __main__.py)."""
