"""The MRML adapter: analysis outputs as 3D Slicer scene content, with no Qt (works with slicer-core alone).

Front ends call it with a scene: the Slicer modules with ``slicer.mrmlScene``, tests and headless tools with
``new_scene().scene``. Parts:

- ``results.load_analysis``: one call that turns an output folder of `covidct analyze` into nodes;
- ``segmentations``: lungs and lesions as segmentation nodes with names, colours, standard terminology
  (``terminology``: Resources/Terminology), closed surfaces in 3-D, voxel counts, label arrays;
- ``heatmaps``: explanation maps as scalar volumes with a jet colour table, range 0..1 and a threshold, composited
  over the CT as the foreground layer at an adjustable opacity;
- ``tables``: the report's measurements as a table node; ``markups``: localized lesions as a point list;
- ``dataset``: corrected lesion masks written as training data;
- ``volumes``: reading, copying and measuring volume nodes (never modifying the input);
- ``parameters``: typed module state in a parameter node; ``process``: the background `covidct` runner;
- ``scene.new_scene``: a headless scene with the logics Slicer would provide.

Submodules that touch MRML import slicer-core's ``slicer`` package; ``process`` and ``terminology`` do not.
"""

from importlib import import_module

_EXPORTS = {
    "load_analysis": "results", "AnalysisNodes": "results", "read_report": "results",
    "load_segmentation": "segmentations", "segment_voxel_counts": "segmentations", "label_array": "segmentations",
    "save_segmentation": "segmentations",
    "load_heatmap": "heatmaps", "show_heatmap": "heatmaps", "hide_heatmap": "heatmaps",
    "set_heatmap_opacity": "heatmaps", "set_threshold": "heatmaps",
    "report_table": "tables", "add_lesion_markups": "markups", "lesion_points": "markups",
    "save_correction": "dataset",
    "load_volume": "volumes", "write_volume_copy": "volumes", "array_from_volume": "volumes", "geometry": "volumes",
    "ParameterNode": "parameters",
    "BackgroundProcess": "process", "ProgressEvent": "process", "ProcessState": "process",
    "StageTracker": "process", "analyze_command": "process", "covidct_command": "process",
    "new_scene": "scene",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
