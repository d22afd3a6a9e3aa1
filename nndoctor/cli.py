"""The `nndoctor` command. Each command parses, loads, runs, renders and exits; nothing else.

torch is imported only inside commands that need it, so `nndoctor --help` starts fast.
"""

from __future__ import annotations

import sys
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
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class FailOn(str, Enum):
    warn = "warn"
    fail = "fail"


def _ids(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _input_error(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]nndoctor: cannot use the input.[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def check(
    path: Path = typer.Argument(..., help="Your model file (model.py), its folder, or an nndoctor.yaml config."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config YAML (default: nndoctor.yaml beside model.py)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data spec YAML, instead of the model file's build_dataset()."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check ids (comma-separated)."),
    skip: Optional[str] = typer.Option(None, "--skip", help="Skip these check ids (comma-separated)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the config's, else 0). Same seed, same verdicts."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when available), cpu or cuda. Default: the config's, else auto."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report as Markdown to this file."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write gradient-flow, activation and LR plots (PNG) into this folder."),
    fail_on: FailOn = typer.Option(FailOn.fail, "--fail-on", help="Exit 1 on any failed check (fail) or also on warnings (warn)."),
    quick: bool = typer.Option(False, "--quick", help="Skip the costliest training-based checks, for pre-commit speed."),
    try_fixes: bool = typer.Option(False, "--try-fixes", help="Rerun the overfit test with the top likely fixes applied to a copy."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-paragraph errors."),
) -> None:
    """Run the checklist on a model and print a pass/warn/fail report."""
    from nndoctor.errors import InputError

    if device not in (None, "auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        _input_error(f"--device must be auto, cpu or cuda, not {device!r}.")
    try:
        from nndoctor import engine
        from nndoctor.report import terminal

        with terminal.progress(enabled=sys.stderr.isatty()) as on_start:
            result = engine.run_path(
                path, config, data, _ids(only), _ids(skip), seed, device,
                fail_on.value, debug, quick, try_fixes, on_start,
            )
        if plots is not None:
            from nndoctor.report import plots as plot_writer

            result = plot_writer.write(result, plots)
        terminal.render(result)
        _write_outputs(result, report, json_out)
    except InputError as exc:
        if debug:
            raise
        _input_error(str(exc))
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def _write_outputs(result, report: Optional[Path], json_out: Optional[Path]) -> None:
    from nndoctor.errors import InputError

    for target, render in ((report, result.to_markdown), (json_out, result.to_json)):
        if target is None:
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(), encoding="utf-8")
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
        catalog.validate_ids([check_id], "nndoctor explain")
    except InputError as exc:
        _input_error(str(exc))
    terminal.render_spec(catalog.get_spec(check_id))


def main() -> None:  # pragma: no cover - console entry for `python -m nndoctor`
    app()
