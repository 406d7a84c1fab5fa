"""Module state in a parameter node (vtkMRMLScriptedModuleNode), with typed fields, without Qt.

Slicer modules keep their state in a parameter node so it is saved with the scene and restored on reload. Slicer's
own ``parameterNodeWrapper`` needs the application; this small equivalent needs only slicer-core, so the modules'
logic and its tests use the same state object. Declare fields on a subclass::

    class AnalyzeParameters(ParameterNode):
        module_name = "CovidCTAnalyze"
        inputVolume = NodeReference("vtkMRMLScalarVolumeNode")
        device = Choice("auto", ("auto", "cpu", "cuda"))
        threshold = Float(0.5, minimum=0.0, maximum=1.0)

``AnalyzeParameters.of(scene)`` returns the scene's (singleton) parameter node for the module, creating it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class Field:
    """A typed value stored as text in the parameter node under the attribute's name."""

    def __init__(self, default):
        self.default = default
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def to_text(self, value) -> str:
        return str(value)

    def from_text(self, text: str):
        return text

    def validate(self, value):
        return value

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        if self.name not in instance.node.GetParameterNames():
            return self.default
        try:
            return self.from_text(instance.node.GetParameter(self.name))
        except ValueError:
            return self.default

    def __set__(self, instance, value) -> None:
        instance.node.SetParameter(self.name, self.to_text(self.validate(value)))


class String(Field):
    pass


class Bool(Field):
    def to_text(self, value) -> str:
        return "true" if value else "false"

    def from_text(self, text: str) -> bool:
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"


class Float(Field):
    def __init__(self, default: float, minimum: float | None = None, maximum: float | None = None):
        super().__init__(float(default))
        self.minimum, self.maximum = minimum, maximum

    def to_text(self, value) -> str:
        return repr(float(value))

    def from_text(self, text: str) -> float:
        return float(text)

    def validate(self, value) -> float:
        value = float(value)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{self.name} must lie in {self.minimum}..{self.maximum}, not {value}")
        return value


class Choice(Field):
    def __init__(self, default: str, choices: Sequence[str]):
        super().__init__(default)
        self.choices = tuple(choices)

    def from_text(self, text: str) -> str:
        if text not in self.choices:
            raise ValueError(text)
        return text

    def validate(self, value) -> str:
        if value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        return value


class StringList(Field):
    """A list of names (no commas in names), stored comma-separated."""

    def __init__(self, default: Sequence[str] = ()):
        super().__init__(tuple(default))

    def to_text(self, value) -> str:
        return ",".join(value)

    def from_text(self, text: str) -> tuple[str, ...]:
        return tuple(v for v in text.split(",") if v)


class NodeReference:
    """A node held by reference (MRML node reference role = the attribute's name)."""

    def __init__(self, class_name: str = "vtkMRMLNode"):
        self.class_name = class_name
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return instance.node.GetNodeReference(self.name)

    def __set__(self, instance, node) -> None:
        if node is not None and not node.IsA(self.class_name):
            raise TypeError(f"{self.name} takes a {self.class_name}, not a {node.GetClassName()}")
        instance.node.SetNodeReferenceID(self.name, None if node is None else node.GetID())


class ParameterNode:
    """Typed view of a vtkMRMLScriptedModuleNode; subclasses declare fields and ``module_name``."""

    module_name: ClassVar[str] = ""

    def __init__(self, node):
        self.node = node

    @classmethod
    def of(cls, scene):
        """The module's parameter node in ``scene`` (the singleton Slicer's modules use), created when missing."""
        nodes = scene.GetNodesByClass("vtkMRMLScriptedModuleNode")
        for index in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(index)
            if node.GetAttribute("ModuleName") == cls.module_name and node.GetSingletonTag() == cls.module_name:
                return cls(node)
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)  # CreateNodeByClass hands over one reference
        node.SetName(scene.GenerateUniqueName(cls.module_name))
        node.SetSingletonTag(cls.module_name)
        node.SetAttribute("ModuleName", cls.module_name)
        node = scene.AddNode(node)
        return cls(node)

    @classmethod
    def fields(cls) -> dict[str, Field | NodeReference]:
        out = {}
        for klass in reversed(cls.__mro__):
            out.update({k: v for k, v in vars(klass).items() if isinstance(v, (Field, NodeReference))})
        return out

    def values(self) -> dict:
        """{field name: current value} (node references as node IDs)."""
        out = {}
        for name, field in self.fields().items():
            value = getattr(self, name)
            out[name] = value.GetID() if isinstance(field, NodeReference) and value is not None else value
        return out

    def add_observer(self, callback) -> int:
        """Call ``callback(parameter_node)`` whenever a value changes; returns the tag for ``remove_observer``."""
        return self.node.AddObserver("ModifiedEvent", lambda caller, event: callback(self))

    def remove_observer(self, tag: int) -> None:
        self.node.RemoveObserver(tag)
