"""A customer support agent over a SQLite shop database and a FAQ knowledge base.

Run it with ``python -m examples.customer_service`` (see ``__main__``); the parts are ``db``
(schema and deterministic seed), ``faq`` (semantic search over ``faq.json``), ``tools`` (the
desk's tools) and ``agent`` (policy, prompt and fncall's agent loop).
"""
