"""Stand-in for 3D Slicer's ``slicer`` package, enough to import the scripted modules outside Slicer.

Slicer-core has no wheels for Python 3.9, so the import check under Slicer 5.8's Python uses this instead; the
MRML behaviour itself is tested with the real slicer-core under the project's Python (the ``mrml`` tests).
Anything not defined here is a permissive placeholder class.
"""

from _stub import Anything, stub_class as __getattr__  # noqa: F401

mrmlScene = Anything()
app = Anything()
modules = Anything()
