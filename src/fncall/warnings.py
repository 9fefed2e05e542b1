"""The project's own warning category (tests turn it into errors)."""


class FncallWarning(UserWarning):
    """Something works but is probably not what the user meant (e.g. an undocumented parameter)."""
