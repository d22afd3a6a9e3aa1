"""The `nndoctor` command. Each command parses, loads, runs, renders and exits; nothing else.

torch is imported only inside commands that need it, so `nndoctor --help` starts fast.
"""

from __future__ import annotations

import difflib
import os
import sys
import time
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="nndoctor",
    help=(
        "Find out why your PyTorch network does not learn, before the long training job.\n\n"
        "Run `nndoctor check model.py`: nndoctor loads your model, data, loss and optimizer and runs "
        "the checklist (initial loss, overfitting 50 samples, normalization, class balance, "
        "initialization, dead ReLUs, gradient flow, ...), then prints what is wrong, the evidence "
        "and how to fix it. New here? `nndoctor init` writes a commented model.py and nndoctor.yaml to start "
        "from.\n\nExit codes: 0 no check failed, 1 a check failed (or warned, with "
        "--fail-on warn), 2 the input could not be used."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help costs ~0.15 s of imports on every `--help`.
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
STDOUT = Path("-")  # --report - / --json - / --junit -: write that report to stdout instead of the terminal one


class FailOn(str, Enum):
    warn = "warn"
    fail = "fail"


class Format(str, Enum):
    """What stdout carries. The file options (--report, --json, --junit) are independent of it."""

    terminal = "terminal"
    github = "github"
    json = "json"
    markdown = "markdown"
    junit = "junit"


# The file option that writes each format, for `--json -` as a spelling of `--format json`.
FILE_OPTIONS = {Format.markdown: "--report", Format.json: "--json", Format.junit: "--junit"}


def _ids(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command()
def check(
    path: Path = typer.Argument(..., help="Your model file (model.py), its folder, or an nndoctor.yaml config."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config YAML (default: nndoctor.yaml beside model.py)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data spec YAML, instead of the model file's build_dataset()."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check ids (comma-separated)."),
    skip: Optional[str] = typer.Option(None, "--skip", help="Skip these check ids (comma-separated)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the config's, else 0). Same seed, same verdicts."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when available), cpu, cuda or cuda:N. Default: the config's, else auto."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="Torch CPU threads during the run. Default: the config's, else half the usable cores (1 to 4): extra threads on a busy machine slow small models down.",
    ),
    output_format: Optional[Format] = typer.Option(
        None, "--format", "-f",
        help="What stdout carries: terminal (the report; the default), github (GitHub Actions annotations only), "
        "json, markdown or junit. Under GitHub Actions (GITHUB_ACTIONS=true) the default terminal report is "
        "followed by the annotations.",
    ),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report as Markdown to this file ('-': to stdout, instead of the terminal report)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON to this file ('-': to stdout, instead of the terminal report)."),
    junit_out: Optional[Path] = typer.Option(None, "--junit", help="Also write a JUnit XML report to this file, one test case per check, for CI test viewers ('-': to stdout)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write gradient-flow, activation and LR plots (PNG) into this folder."),
    fail_on: FailOn = typer.Option(FailOn.fail, "--fail-on", help="Exit 1 on any failed check (fail) or also on warnings (warn)."),
    quick: bool = typer.Option(False, "--quick", help="Skip the costliest training-based checks, for pre-commit speed."),
    try_fixes: bool = typer.Option(False, "--try-fixes", help="Rerun the overfit test with the top likely fixes applied to a copy."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No terminal report: only the checks that fail the run and the summary line, on stderr. Files are still written."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the evidence and tables of passing checks too, and each check's time."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-paragraph errors."),
) -> None:
    """Run the checklist on a model and print a pass/warn/fail report."""
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    start = time.perf_counter()
    files = {Format.markdown: report, Format.json: json_out, Format.junit: junit_out}
    try:
        stdout_format = _validate_options(device, output_format, files, plots, quiet, verbose)
        from nndoctor import engine
        from nndoctor.threads import validate as validate_threads

        with terminal.progress(enabled=_show_progress(quiet)) as on_start:
            result = engine.run_path(
                path, config, data, _ids(only), _ids(skip), seed, device,
                fail_on.value, debug, quick, try_fixes, on_start,
                validate_threads(threads, "--threads"),
            )
        # The user waited for the imports and the model load too, not just for the checks.
        result = replace(result, duration_s=time.perf_counter() - start)
        if plots is not None:
            from nndoctor.report import plots as plot_writer

            result = plot_writer.write(result, plots)
        _print_stdout(result, stdout_format, quiet, verbose)
        if output_format is None and _on_github_actions():
            _print_annotations(result, stdout_format)
        for fmt, target in files.items():
            if target is not None and target != STDOUT:
                _emit(_render(result, fmt, target), target)
    except InputError as exc:
        if debug:
            raise
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    sys.stdout.flush()  # the report first, then the verdict, even when both streams are piped
    if quiet:
        terminal.print_problems(result)
    terminal.print_summary(result)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _show_progress(quiet: bool) -> bool:
    """The live progress line is for a person watching a terminal: never in a pipe, a CI log
    (CI=true is set by GitHub Actions, GitLab, CircleCI, Travis, Buildkite...) or --quiet."""
    return not quiet and sys.stderr.isatty() and not _env_flag("CI") and not _on_github_actions()


def _validate_options(
    device: Optional[str], output_format: Optional[Format], files: dict[Format, Optional[Path]],
    plots: Optional[Path], quiet: bool, verbose: bool,
) -> Format:
    """Reject unusable options before the (slow) load and run, not after it; return the format
    stdout carries."""
    from nndoctor.errors import InputError

    if device not in (None, "auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}.")
    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other; pass one of them.")
    for fmt, target in files.items():
        if target is not None and target != STDOUT and target.is_dir():
            raise InputError(f"{FILE_OPTIONS[fmt]} {target} is a folder; give a file name, e.g. {target / 'nndoctor-report'}.")
    if plots is not None and plots.exists() and not plots.is_dir():
        raise InputError(f"--plots {plots} is a file; give a folder for the PNG files.")
    return _stdout_format(output_format, files)


def _stdout_format(output_format: Optional[Format], files: dict[Format, Optional[Path]]) -> Format:
    """--format, or the file option given '-' (`--json -` is `--format json`); two different
    formats cannot share stdout."""
    from nndoctor.errors import InputError

    claims = {f"{FILE_OPTIONS[fmt]} -": fmt for fmt, target in files.items() if target == STDOUT}
    if output_format not in (None, Format.terminal):
        claims[f"--format {output_format.value}"] = output_format
    if len(set(claims.values())) > 1:
        raise InputError(f"{' and '.join(claims)} both ask for stdout; send one of them to a file.")
    return next(iter(claims.values()), Format.terminal)


def _print_stdout(result, stdout_format: Format, quiet: bool, verbose: bool) -> None:
    if stdout_format is not Format.terminal:
        _emit(_render(result, stdout_format, STDOUT), STDOUT)
    elif not quiet:
        from nndoctor.report import terminal

        terminal.render(result, verbose=verbose)


def _print_annotations(result, stdout_format: Format) -> None:
    """GitHub Actions annotations after the terminal report; beside a machine-readable report on
    stdout they go to stderr, which the Actions runner also reads for workflow commands."""
    stream = sys.stdout if stdout_format is Format.terminal else sys.stderr
    stream.write(_render(result, Format.github, STDOUT))
    stream.flush()


def _render(result, fmt: Format, target: Path) -> str:
    """The report as text in ``fmt``, for writing to ``target`` (a file, or STDOUT)."""
    if fmt is Format.markdown:
        from nndoctor.report import plots as plot_writer

        # Image links must work from wherever the Markdown lands (stdout: the working directory).
        folder = Path.cwd() if target == STDOUT else target.parent
        return plot_writer.relative_to(result, folder).to_markdown()
    if fmt is Format.json:
        return result.to_json()
    from nndoctor.report import github, junit

    return {Format.junit: junit.render, Format.github: github.render}[fmt](result)


def _emit(text: str, target: Path) -> None:
    from nndoctor.errors import InputError

    if target == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {target}: {exc.strerror}. Choose a writable path.") from None


@app.command("list")
def list_checks() -> None:
    """List every check with its id, section and what it catches."""
    from nndoctor.report import terminal

    terminal.render_catalog()


@app.command()
def explain(check_id: str = typer.Argument(..., help="A check id, as shown by `nndoctor list`.")) -> None:
    """Explain one check: why it matters, its thresholds, how to fix what it finds, its sources."""
    from nndoctor import catalog
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    try:
        catalog.validate_ids([check_id], "explain")
    except InputError as exc:
        message = str(exc)
        close = difflib.get_close_matches(check_id, catalog.catalog_ids(), n=1)
        if close:  # a typo: name the one id it was meant to be rather than all of them
            message = f"explain: unknown check id {check_id}; did you mean {close[0]}? (`nndoctor list` shows them all.)"
        terminal.print_input_error(message)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    terminal.render_spec(catalog.get_spec(check_id))


@app.command()
def init(
    folder: Path = typer.Argument(Path("."), help="The folder to write model.py and nndoctor.yaml into (created if missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite model.py and nndoctor.yaml if they exist."),
) -> None:
    """Write a commented template model.py and nndoctor.yaml to start from."""
    from nndoctor import init_templates
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    try:
        written = init_templates.write(folder, force)
    except InputError as exc:
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    terminal.print_init_done(written, folder)


def main() -> None:  # pragma: no cover - console entry for `python -m nndoctor`
    app()
