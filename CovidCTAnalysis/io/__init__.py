"""Reading CTs and masks, writing results back onto the input's own grid (SimpleITK; Pillow for PNG/JPEG).

Public API:
    load_ct(path, *, spacing=None, window=None) -> CTVolume   every INPUT kind of docs/CONTRACTS.md, canonical LPS grid
    read_canonical(path, *, spacing=None) -> sitk.Image        reference masks, canonical grid, values untouched
    to_input_grid(image, ct) -> sitk.Image                     canonical -> the input's exact grid
    write_volume(image, path)                                  .nii.gz/.nii/.nrrd/.mha (CTs, heatmaps)
    write_label_map(labels, path, segments)                    + .seg.nrrd (Slicer) and .png (2-D inputs)
    write_png_label(labels2d, path)
    check_output_path(out, inputs, *, expect="file", extensions=...) -> Path   before any work
    check_output_for(out, ct)                                  after load_ct: .png only for single-slice inputs
    output_format(path) -> str

Every bad input raises ``CovidCTAnalysis.errors.InputError(path, problem)``; inputs are never modified; writers
are atomic and drop all metadata (no patient data leaks into outputs).
"""

from .load import load_ct, read_canonical
from .outputs import check_output_for, check_output_path, output_format
from .volume import KINDS, CTVolume, to_input_grid
from .writers import LABEL_EXTENSIONS, VOLUME_EXTENSIONS, write_label_map, write_png_label, write_volume

__all__ = [
    "CTVolume", "KINDS", "LABEL_EXTENSIONS", "VOLUME_EXTENSIONS", "check_output_for", "check_output_path", "load_ct",
    "output_format",
    "read_canonical", "to_input_grid", "write_label_map", "write_png_label", "write_volume",
]
