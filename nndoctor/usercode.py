"""Running the user's code: importing a model file and calling the functions it defines.

Whatever the user's code raises becomes an InputError that names the file, the function and the
line, so the command prints one paragraph instead of a traceback. Used by every way in that runs
user code (the model file, data specs).
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from nndoctor.errors import InputError


def import_model_file(path: Path) -> Any:
    """Execute model.py as a fresh module with its folder importable; errors become InputError."""
    if not path.exists():
        raise InputError(f"{path} does not exist. Pass the path of your model file (model.py) or its folder.")
    if path.is_dir():
        candidate = path / "model.py"
        if not candidate.is_file():
            raise InputError(f"{path} is a folder without a model.py. Pass the model file itself.")
        path = candidate
    if path.suffix != ".py":
        raise InputError(f"{path} is not a Python file. Pass a model.py (or a config with --config).")
    name = f"nndoctor_user_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent.resolve())
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise InputError(
            f"{path} has a syntax error at line {exc.lineno}: {exc.msg}. "
            f"Fix that line ({(exc.text or '').strip()!r}) and run again."
        ) from None
    except Exception as exc:  # user code: anything may be raised while importing it
        raise InputError(
            f"{path} raised {type(exc).__name__} while being imported: {exc}. "
            f"{user_frame(exc, path)}Fix {path.name} so that `python {path.name}` runs."
        ) from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    module.__nndoctor_path__ = path
    return module



def user_frame(exc: BaseException, path: Path) -> str:
    """'At line N (code).' for the innermost frame of the user's file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    if not frames:
        return ""
    frame = frames[-1]
    return f"At line {frame.lineno} ({(frame.line or '').strip()}). "



def call_user(path: Path, name: str, fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{path}: {name}() raised {type(exc).__name__}: {exc}. {user_frame(exc, path)}"
            f"Fix {name}() so that it returns without error."
        ) from exc
