"""A headless MRML scene with the module logics the adapter needs, and a slice view renderer.

Inside 3D Slicer the application already owns a scene (``slicer.mrmlScene``) and these logics; the adapter's
functions take the scene as an argument and work the same on both. Outside Slicer (tests, scripts, a browser front
end) ``new_scene()`` builds the equivalent from slicer-core: application logic with the default colour tables,
volumes, segmentations, markups and terminologies logics, slice orientation presets, a layout node; slice and 3-D
views on request. The set-up follows what
Slicer's core application does when it creates its scene (qSlicerCoreApplication::setMRMLScene).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import slicer
import vtk

from .terminology import load_terminology


@dataclass
class HeadlessSlicer:
    """A scene and the logics registered on it (keep this object alive as long as the scene is used)."""

    scene: object
    app_logic: object
    color_logic: object
    volumes_logic: object
    segmentations_logic: object
    markups_logic: object
    terminologies_logic: object
    terminology_context: str
    slice_logics: list = field(default_factory=list)

    def slice_renderer(self, layout_name: str = "Red", orientation: str = "Axial",
                       size: tuple[int, int] = (128, 128)) -> SliceRenderer:
        """A slice view (slice node, composite node and slice logic) rendering off screen."""
        renderer = SliceRenderer(self.scene, self.app_logic, layout_name, orientation, size)
        self.slice_logics.append(renderer.logic)
        self.app_logic.GetSliceLogics().AddItem(renderer.logic)  # as Slicer's layout manager registers its views
        return renderer

    def three_d_view(self, layout_name: str = "1"):
        """A 3-D view node and its camera node, as Slicer's layout creates them (no rendering): (view, camera)."""
        view = self.scene.AddNewNodeByClass("vtkMRMLViewNode")
        view.SetLayoutName(layout_name)
        camera = self.scene.AddNewNodeByClass("vtkMRMLCameraNode")
        camera.SetLayoutName(layout_name)
        return view, camera

    def close(self) -> None:
        """Detach the logics from the scene and empty it, in that order.

        Call it when done (tests: in the fixture's teardown): leaving slice logics attached to a scene until the
        interpreter exits lets the garbage collector destroy them in an order VTK's observers do not survive.
        """
        for logic in self.slice_logics:
            logic.SetMRMLScene(None)
        self.slice_logics.clear()
        self.app_logic.GetSliceLogics().RemoveAllItems()
        self.scene.Clear(True)

    def __enter__(self) -> HeadlessSlicer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def new_scene() -> HeadlessSlicer:
    """An empty scene prepared like Slicer's own: colour tables, node classes of segmentations, markups, tables."""
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.SetSliceLogics(vtk.vtkCollection())
    app_logic.SetViewLogics(vtk.vtkCollection())

    color_logic = app_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", color_logic)

    def register(logic, module_name: str):
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.SetModuleLogic(module_name, logic)
        return logic

    volumes = register(slicer.vtkSlicerVolumesLogic(), "Volumes")
    segmentations = register(slicer.vtkSlicerSegmentationsModuleLogic(), "Segmentations")
    markups = register(slicer.vtkSlicerMarkupsLogic(), "Markups")
    # The terminologies logic is not given the scene: with a scene it loads Slicer's default terminology files from
    # a share folder that slicer-core does not have (and logs errors); only our own file is needed here.
    terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
    app_logic.SetModuleLogic("Terminologies", terminologies)
    context = load_terminology(terminologies)
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    layout = slicer.vtkMRMLLayoutNode()  # the application's layout node (a singleton), in the four-up layout
    layout.SetSingletonTag("vtkMRMLLayoutNode")
    layout.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpView)
    scene.AddNode(layout)
    return HeadlessSlicer(scene, app_logic, color_logic, volumes, segmentations, markups, terminologies, context)


class SliceRenderer:
    """One slice view rendered without a window: set layers on ``composite``, move ``offset``, read ``rgba()``.

    The blended image is what Slicer draws in a slice view before the annotations: background, foreground at the
    composite node's opacity, label layer. Used by the tests to prove an overlay is really composited over the CT.
    """

    def __init__(self, scene, app_logic, layout_name: str, orientation: str, size: tuple[int, int]):
        self.logic = slicer.vtkMRMLSliceLogic()
        self.logic.SetMRMLScene(scene)
        self.logic.SetMRMLApplicationLogic(app_logic)
        self.slice_node = self.logic.AddSliceNode(layout_name)
        self.slice_node.SetOrientation(orientation)
        self.slice_node.SetDimensions(size[0], size[1], 1)
        self.composite = self.logic.GetSliceCompositeNode()

    def fit(self) -> None:
        """Field of view fitted to the background volume, as a view's 'fit' button does."""
        self.logic.FitSliceToAll()

    def set_offset(self, offset_mm: float) -> None:
        """Slice position along the view normal (the axial view: RAS z in mm)."""
        self.logic.SetSliceOffset(offset_mm)

    def rgba(self) -> np.ndarray:
        """The blended slice as uint8 [rows, columns, 4] (row 0 is the bottom row of the view)."""
        return self._read(self.logic.GetImageDataConnection())

    def layer_rgba(self, layer: str) -> np.ndarray:
        """One layer ('background' or 'foreground') before blending, uint8 [rows, columns, 4]."""
        logic = self.logic.GetBackgroundLayer() if layer == "background" else self.logic.GetForegroundLayer()
        return self._read(logic.GetImageDataConnection())

    def xy_to_ras(self) -> np.ndarray:
        """4x4 matrix from view pixel (x, y, 0, 1) to RAS millimetres."""
        m = self.slice_node.GetXYToRAS()
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])

    @staticmethod
    def _read(connection) -> np.ndarray:
        producer = connection.GetProducer()
        producer.Update()
        image = producer.GetOutputDataObject(connection.GetIndex())
        nx, ny, _ = image.GetDimensions()
        components = image.GetNumberOfScalarComponents()
        flat = array_from_image_components(image)
        return flat.reshape(ny, nx, components)


def array_from_image_components(image) -> np.ndarray:
    """All components of a 2-D vtkImageData's scalars as [points, components] (copy)."""
    from vtk.util import numpy_support

    data = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    return data.reshape(-1, image.GetNumberOfScalarComponents()).copy()


__all__ = ["HeadlessSlicer", "SliceRenderer", "new_scene"]
