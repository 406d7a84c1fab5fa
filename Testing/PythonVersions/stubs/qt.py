"""Stand-in for PythonQt's ``qt`` module (import check outside 3D Slicer only)."""

from _stub import stub_class as __getattr__  # noqa: F401
