"""Stand-in for the ``ctk`` module of 3D Slicer (import check outside 3D Slicer only)."""

from _stub import stub_class as __getattr__  # noqa: F401
