"""kiln: Python bindings of the kiln tensor compiler (minimal: the frontend entry points).

The library is loaded through ctypes from $KILN_LIBRARY, else from build/libkiln.so at the
repository root. Every C error becomes a kiln.KilnError carrying the status and message.
"""
from kiln.frontend import KilnError  # noqa: F401

__all__ = ["KilnError", "frontend"]
