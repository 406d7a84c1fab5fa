"""What the stand-ins for Slicer's Qt-side modules hand out: classes that accept any use."""


class Anything:
    """Instantiable, subclassable, callable; every attribute is another Anything (a Qt enum, a signal, a widget)."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Anything()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Anything()

    def __or__(self, other):
        return Anything()

    __ror__ = __or__

    def __iter__(self):
        return iter(())


def stub_class(name: str) -> type:
    """A class called ``name`` that behaves as Anything (module-level ``__getattr__`` of a stub module)."""
    if name.startswith("__"):
        raise AttributeError(name)
    return type(name, (Anything,), {})
