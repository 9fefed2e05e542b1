"""Financial news monitor: ``python -m examples.finance_monitor`` (see __main__.py)."""
