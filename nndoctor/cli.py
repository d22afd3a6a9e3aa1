"""The `nndoctor` command. Each command parses, loads, runs, renders and exits; nothing else.

torch is imported only inside commands that need it, so `nndoctor --help` starts fast.
"""

from __future__ import annotations

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
        "and how to fix it.\n\nExit codes: 0 no check failed, 1 a check failed (or warned, with "
        "--fail-on warn), 2 the input could not be used."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help costs ~0.15 s of imports on every `--help`.
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
STDOUT = Path("-")  # --report - / --json -: write that report to stdout instead of the terminal one


class FailOn(str, Enum):
    warn = "warn"
    fail = "fail"


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
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report as Markdown to this file ('-': to stdout, instead of the terminal report)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON to this file ('-': to stdout, instead of the terminal report)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write gradient-flow, activation and LR plots (PNG) into this folder."),
    fail_on: FailOn = typer.Option(FailOn.fail, "--fail-on", help="Exit 1 on any failed check (fail) or also on warnings (warn)."),
    quick: bool = typer.Option(False, "--quick", help="Skip the costliest training-based checks, for pre-commit speed."),
    try_fixes: bool = typer.Option(False, "--try-fixes", help="Rerun the overfit test with the top likely fixes applied to a copy."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-paragraph errors."),
) -> None:
    """Run the checklist on a model and print a pass/warn/fail report."""
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    start = time.perf_counter()
    try:
        _validate_options(device, report, json_out, plots)
        from nndoctor import engine

        with terminal.progress(enabled=sys.stderr.isatty()) as on_start:
            result = engine.run_path(
                path, config, data, _ids(only), _ids(skip), seed, device,
                fail_on.value, debug, quick, try_fixes, on_start,
            )
        # The user waited for the imports and the model load too, not just for the checks.
        result = replace(result, duration_s=time.perf_counter() - start)
        if plots is not None:
            from nndoctor.report import plots as plot_writer

            result = plot_writer.write(result, plots)
        if STDOUT not in (report, json_out):
            terminal.render(result)
        _write_outputs(result, report, json_out)
    except InputError as exc:
        if debug:
            raise
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    sys.stdout.flush()  # the report first, then the verdict, even when both streams are piped
    terminal.print_summary(result)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def _validate_options(device: Optional[str], report: Optional[Path], json_out: Optional[Path], plots: Optional[Path]) -> None:
    """Reject unusable options before the (slow) load and run, not after it."""
    from nndoctor.errors import InputError

    if device not in (None, "auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}.")
    if report == STDOUT and json_out == STDOUT:
        raise InputError("--report - and --json - both ask for stdout; send one of them to a file.")
    for option, target in (("--report", report), ("--json", json_out)):
        if target is not None and target != STDOUT and target.is_dir():
            raise InputError(f"{option} {target} is a folder; give a file name, e.g. {target / 'nndoctor-report'}.")
    if plots is not None and plots.exists() and not plots.is_dir():
        raise InputError(f"--plots {plots} is a file; give a folder for the PNG files.")


def _write_outputs(result, report: Optional[Path], json_out: Optional[Path]) -> None:
    from nndoctor.report import plots as plot_writer

    if report is not None:
        # Image links must work from wherever the Markdown lands (stdout: the working directory).
        folder = Path.cwd() if report == STDOUT else report.parent
        _emit(plot_writer.relative_to(result, folder).to_markdown(), report)
    if json_out is not None:
        _emit(result.to_json(), json_out)


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
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    terminal.render_spec(catalog.get_spec(check_id))


def main() -> None:  # pragma: no cover - console entry for `python -m nndoctor`
    app()
