"""`nndoctor init`: the commented starting files, model.py and nndoctor.yaml, kept here as the
files themselves so that they can be read, run and tested as they are shipped.

model.py is a sound setup (nndoctor check passes on it) whose comments state the model-file
contract; nndoctor.yaml lists every config key, commented out where it has no default.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nndoctor.errors import InputError

TEMPLATES = ("model.py", "nndoctor.yaml")


def template_text(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def write(folder: Path, force: bool = False) -> list[Path]:
    """Write the templates into ``folder`` (created if missing) and return their paths.

    Refuses, before writing anything, when a file would be overwritten and ``force`` is off: a
    half-initialized folder is worse than none."""
    targets = [folder / name for name in TEMPLATES]
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; give a folder for model.py and nndoctor.yaml.")
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        names = " and ".join(str(path) for path in existing)
        raise InputError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}; nndoctor init does not overwrite files. "
            f"Pass --force to replace {'it' if len(existing) == 1 else 'them'}, or choose another folder "
            f"(nndoctor init my_model/)."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in targets:
            path.write_text(template_text(path.name), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write into {folder}: {exc.strerror}. Choose a writable folder.") from None
    return targets
