"""The browser front end (`covidct serve`): trame-slicer views over the mrml adapter's scene logic.

Needs the ``web`` extra (trame-slicer and the slicer-core it renders with). Parts: ``serve`` (starting the server),
``app`` (the scene, the views and the page actions), ``page`` (the page's layout), ``jobs`` (analyses queued one after
another in a background process), ``uploads`` (what the browser may open). No module imports trame or slicer-core at
import time except ``app`` and ``page`` when a page is built.
"""
