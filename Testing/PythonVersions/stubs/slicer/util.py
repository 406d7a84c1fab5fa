"""Stand-in for ``slicer.util``: every name is a permissive placeholder (VTKObservationMixin included)."""

from _stub import stub_class as __getattr__  # noqa: F401
