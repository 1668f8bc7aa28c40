"""The protocol core's tests need no Django and no database.

``tests/conftest.py`` has an autouse fixture that needs pytest-django's
``settings``; a no-op of the same name here keeps these tests runnable with
``-p no:django`` as well as inside the full pytest-django suite.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing() -> None:
    """No passwords are hashed here."""
