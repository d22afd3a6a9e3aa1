"""Running the user's code: importing a model file and calling the functions it defines.

Whatever the user's code raises becomes an InputError that names the file, the function and the
line, so the command prints one paragraph instead of a traceback. Used by every way in that runs
user code (the model file, data specs).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

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
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        with _as_imported(path):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = f"at line {exc.lineno}" if exc.lineno else "(a null byte or an undecodable character)"
        raise InputError(
            f"{path} has a syntax error {where}: {exc.msg}. "
            f"Fix {'that line (' + repr((exc.text or '').strip()) + ')' if exc.lineno else 'the file'} and run again."
        ) from None
    except ValueError as exc:  # compile() refuses source with null bytes
        raise InputError(f"{path} cannot be read as Python source: {exc}. Save it as plain UTF-8 text.") from None
    except SystemExit as exc:
        raise InputError(exit_message(exc, path, "while being imported") + ARGPARSE_HINT) from None
    except Exception as exc:  # user code: anything may be raised while importing it
        raise InputError(
            f"{path} raised {type(exc).__name__} while being imported: {exc}. "
            f"{user_frame(exc, path)}Fix {path.name} so that `python {path.name}` runs."
        ) from exc
    module.__nndoctor_path__ = path
    return module


ARGPARSE_HINT = (
    " If it parses command-line arguments (argparse), give every argument a default or parse them "
    "under `if __name__ == \"__main__\":`; nndoctor imports the file with no arguments."
)


@contextlib.contextmanager
def _as_imported(path: Path) -> Iterator[None]:
    """The model file runs with its folder importable, no command-line arguments (it is imported,
    not run), no bytecode written beside it, and os._exit() turned into an exception that can be
    reported; all of it restored afterwards."""
    folder = str(path.parent.resolve())
    saved = sys.argv, sys.dont_write_bytecode
    sys.path.insert(0, folder)
    sys.argv, sys.dont_write_bytecode = [str(path)], True
    try:
        with exits_reported():
            yield
    finally:
        sys.argv, sys.dont_write_bytecode = saved
        try:
            sys.path.remove(folder)
        except ValueError:
            pass


@contextlib.contextmanager
def exits_reported() -> Iterator[None]:
    """os._exit() ends the process at once, without a report: while user code runs it raises
    SystemExit instead, which the caller turns into a message naming the line."""
    real_exit = os._exit

    def refuse(code: int = 0) -> None:
        raise SystemExit(code)

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = real_exit



def user_frame(exc: BaseException, path: Path) -> str:
    """'At line N (code).' for the innermost frame of the user's file, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    if not frames:
        return ""
    frame = frames[-1]
    return f"At line {frame.lineno} ({(frame.line or '').strip()}). "



def call_user(path: Path, name: str, fn: Callable, *args: Any) -> Any:
    try:
        with exits_reported():
            return fn(*args)
    except InputError:
        raise
    except SystemExit as exc:
        raise InputError(exit_message(exc, path, f"in {name}()")) from None
    except Exception as exc:
        raise InputError(
            f"{path}: {name}() raised {type(exc).__name__}: {exc}. {user_frame(exc, path)}"
            f"Fix {name}() so that it returns without error."
        ) from exc


def exit_message(exc: SystemExit, path: Path, when: str) -> str:
    """The paragraph for user code that called sys.exit() (or raised SystemExit) ``when``."""
    code = exc.code if exc.code is not None else 0
    return (
        f"{path}: your code called sys.exit({code!r}) {when}. {user_frame(exc, path)}"
        f"nndoctor runs the model file's code in its own process, so it must not exit: remove the call "
        f"(or guard it with `if __name__ == \"__main__\":`)."
    )
