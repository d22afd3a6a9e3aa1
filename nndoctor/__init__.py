"""nndoctor: find out why a PyTorch network does not learn, before the long training job.

``from nndoctor import check`` is the Python entry point; it is imported lazily so that
``nndoctor --help`` never pays for importing torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "check", "watch"]


def __getattr__(name):
    if name == "check":
        from nndoctor.api import check

        return check
    if name == "watch":
        from nndoctor.watching import watch

        return watch
    raise AttributeError(name)
