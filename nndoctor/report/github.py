"""GitHub Actions annotations: one workflow command per problem, which GitHub shows on the run's
summary page and, for the model file, in the pull request's diff.

    ::error title=nndoctor initial_loss%3A Initial loss…,file=model.py::initial loss 66.2, … — fix: …

A failed check is an ``error``; a warning is a ``warning`` (an ``error`` when the run fails on
warnings, so that the annotation agrees with the exit code); a crashed check is a ``warning``,
since it does not decide the exit code either. Passing and skipped checks are not annotated.

Escaping follows the workflow-commands spec (actions/toolkit, core/src/command.ts): in the
message ``%``, CR and LF become %25, %0D and %0A; in a property value ``:`` and ``,`` too
(%3A, %2C), because they delimit properties.
"""

from __future__ import annotations

from pathlib import PurePath

from nndoctor.report.fmt import one_line
from nndoctor.result import CheckResult, Report, Status

_DATA_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = _DATA_ESCAPES + ((":", "%3A"), (",", "%2C"))


def _escape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for raw, escaped in escapes:  # "%" first, so that no escape sequence is escaped twice
        text = text.replace(raw, escaped)
    return text


def escape_data(text: str) -> str:
    return _escape(str(text), _DATA_ESCAPES)


def escape_property(text: str) -> str:
    return _escape(str(text), _PROPERTY_ESCAPES)


def command(name: str, message: str, **properties: str) -> str:
    """One workflow command line: ``::name key=value,key=value::message``."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _level(result: CheckResult, report: Report) -> str | None:
    if report.fails(result) or (result.status is Status.ERROR and not report.allow_errors):
        return "error"  # a crashed check makes the run INCOMPLETE: it fails the job like a finding
    if result.status in (Status.WARN, Status.ERROR):
        return "warning"
    return None


def _message(result: CheckResult) -> str:
    """The summary and the fix on the first line (what the annotation list shows), the evidence
    below it (what the expanded annotation shows)."""
    first = one_line(result.summary)
    if result.fix:
        first += f" — fix: {one_line(result.fix)}"
    if result.status is Status.ERROR:
        first += " — rerun nndoctor with --debug for the traceback"
    return "\n".join([first, *(f"· {one_line(e)}" for e in result.evidence)])


def _model_file(report: Report) -> str | None:
    """The model file as a repository-relative path, which GitHub can attach the annotation to.
    An absolute path or the Python API's "<python>" cannot be matched to the repository: left out."""
    path = PurePath(report.target)
    if path.suffix != ".py" or path.is_absolute():
        return None
    return path.as_posix()


def annotations(report: Report) -> list[str]:
    lines = []
    model_file = _model_file(report)
    for result in report.results:
        level = _level(result, report)
        if level is None:
            continue
        properties = {"title": f"nndoctor {result.id}: {one_line(result.title)}"}
        if model_file:
            properties["file"] = model_file
        lines.append(command(level, _message(result), **properties))
    for reason in report.incomplete_reasons:
        lines.append(command("error", f"not checked: {one_line(reason)}", title="nndoctor: INCOMPLETE"))
    return lines


def render(report: Report) -> str:
    lines = annotations(report)
    return "".join(line + "\n" for line in lines)
