"""The generated demo chest CT with exact truth: fixture of the tests and input of ``covidct analyze --demo``.

Public API:
    make_demo_ct(size=(256, 256, 96), spacing=None, seed=0, lesions=True) -> DemoCase
        image (float32 HU), lungs (uint8 0/1 right/2 left), lesions (uint8 0/1 GGO/2 consolidation) on one
        canonical grid (identity direction, LPS), lesion_list (DemoLesion: label, side, centre_mm, volume_ml,
        touches_pleura), seed. Deterministic per seed; lesions=False gives the same patient without lesions.
    write_demo_case(case, folder) -> Path of demo-ct.nrrd (plus demo-truth-lungs.nrrd, demo-truth-lesions.nrrd)
    python -m CovidCTAnalysis.demo OUTDIR [--size X,Y,Z] [--seed N] [--no-lesions]
"""

from .phantom import DemoCase, DemoLesion, make_demo_ct
from .writer import write_demo_case

__all__ = ["DemoCase", "DemoLesion", "make_demo_ct", "write_demo_case"]
