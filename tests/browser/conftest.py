"""The end-to-end stack fixture (`tests/e2e/stack.py`)."""

from tests.e2e.stack import stack

__all__ = ["stack"]
