"""Stand-in for ``slicer.ScriptedLoadableModule``: the four base classes, with the attributes the modules use."""

import unittest

from _stub import Anything


class ScriptedLoadableModule:
    def __init__(self, parent):
        self.parent = parent
        self.moduleName = self.__class__.__name__


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent
        self.layout = Anything()
        self.moduleName = self.__class__.__name__[: -len("Widget")]

    def setup(self):
        pass

    def resourcePath(self, filename):
        return filename


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        pass


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, msec=1000):
        print(message)
