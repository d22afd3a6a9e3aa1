"""The `nndoctor` command. Each command parses, loads, runs, renders and exits; nothing else.

torch is imported only inside commands that need it, so `nndoctor --help` starts fast.
"""

from __future__ import annotations

import contextlib
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
        "from.\n\nExit codes: 0 every check ran and none failed, 1 a check failed (or warned, with "
        "--fail-on warn), 2 the input could not be used, 3 nndoctor could not finish checking (a check "
        "crashed, the time budget ran out, Ctrl-C or SIGTERM): the report says what was not checked."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help costs ~0.15 s of imports on every `--help`.
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3
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


def _version(value: bool) -> None:
    if value:
        from nndoctor import __version__

        typer.echo(f"nndoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Options for every command."""


@app.command(no_args_is_help=True)
def check(
    path: Path = typer.Argument(..., help="Your model file (model.py), its folder, or an nndoctor.yaml config."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Config YAML (default: nndoctor.yaml beside model.py)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data spec YAML, instead of the model file's build_dataset()."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check ids (comma-separated)."),
    skip: Optional[str] = typer.Option(None, "--skip", help="Skip these check ids (comma-separated)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the config's, else 0). Same seed, same verdicts."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (CUDA when available), cpu, cuda or cuda:N. Default: the config's, else auto."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="Torch CPU threads during the run. Default: the config's, else half the usable cores (1 to 4): extra threads on a busy machine slow small models down.",
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
    time_budget: Optional[float] = typer.Option(
        None, "--time-budget", min=0.001,
        help="Seconds for the whole run, loading included (default: the config's, else none). Checks that cannot "
        "run in time are reported as not checked, the report so far is written, and the run exits 3.",
    ),
    allow_errors: bool = typer.Option(False, "--allow-errors", help="A check that crashes does not make the run exit 3 (INCOMPLETE)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No terminal report: only the checks that fail the run and the summary line, on stderr. Files are still written."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the evidence and tables of passing checks too, and each check's time."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-paragraph errors."),
) -> None:
    """Run the checklist on a model and print a pass/warn/fail report."""
    from nndoctor import budget
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    start = time.perf_counter()
    files = {Format.markdown: report, Format.json: json_out, Format.junit: junit_out}
    try:
        stdout_format = _validate_options(device, output_format, files, plots, quiet, verbose, seed)
        from nndoctor import engine
        from nndoctor.options import RunOptions

        _refuse_inputs_as_outputs(engine.input_files(path, config, data), files, plots)
        options = RunOptions(
            only=tuple(_ids(only)), skip=tuple(_ids(skip)), seed=seed, device=device, fail_on=fail_on.value,
            debug=debug, quick=quick, try_fixes=try_fixes, time_budget=time_budget, allow_errors=allow_errors, threads=threads,
        )
        with _running_user_code(quiet) as on_start:
            result = engine.run_path(path, config, data, options, on_start)
        result, written = _deliver(result, start, stdout_format, output_format, files, plots, quiet, verbose)
    except InputError as exc:
        if debug:
            raise
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except (KeyboardInterrupt, budget.Stop) as stop:  # before any check ran: nothing to report yet
        terminal.print_input_error(f"stopped while loading the model and data ({getattr(stop, 'reason', 'Ctrl-C')}); nothing was checked.")
        raise typer.Exit(EXIT_INCOMPLETE) from None
    _exit_with_verdict(result, quiet, written)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, no_args_is_help=True)
def run(
    ctx: typer.Context,
    script: Path = typer.Argument(..., help="Your training script, run as `python SCRIPT ARGS` (its arguments after --)."),
    steps: int = typer.Option(100, "--steps", min=1, help="Stop the script after this many optimizer steps (not with --watch)."),
    watch: bool = typer.Option(
        False, "--watch",
        help="Watch the whole job instead: the script runs to its end with a light watcher on, which alerts on stderr "
        "when a known failure starts (loss spikes, NaN, softmax pinned at 1, one class taking over, vanishing "
        "gradients, ...) and reports a timeline.",
    ),
    events: Optional[Path] = typer.Option(None, "--events", help="With --watch: write every event as a JSON line to this file as it happens."),
    stop_on: Optional[FailOn] = typer.Option(None, "--stop-on", help="With --watch: stop the job at the first failing (fail) or warning (warn) event, before its optimizer step is applied."),
    save_last_good: Optional[Path] = typer.Option(None, "--save-last-good", help="With --watch and --stop-on: save the model's state_dict from before the failure here."),
    sample_every: int = typer.Option(10, "--sample-every", min=1, help="With --watch: measure the heavier statistics (per-layer gradients, activations) every N steps."),
    time_budget: Optional[float] = typer.Option(
        None, "--time-budget", min=0.001,
        help="Seconds for the whole run: the script is stopped after half of them (at its next optimizer step), the "
        "checks on the captured setup get the rest; checks that cannot run in time are reported as not checked (exit 3).",
    ),
    model: Optional[str] = typer.Option(None, "--model", help="The model to examine when the script trains several (its class name, as the report lists them)."),
    only: Optional[str] = typer.Option(None, "--only", help="Run only these check ids (comma-separated)."),
    skip: Optional[str] = typer.Option(None, "--skip", help="Skip these check ids (comma-separated)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the checklist's own runs on the captured setup."),
    device: Optional[str] = typer.Option(None, "--device", help="Where the checklist runs on the captured setup: auto, cpu, cuda or cuda:N."),
    output_format: Optional[Format] = typer.Option(None, "--format", "-f", help="What stdout carries: terminal, github, json, markdown or junit."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the report as Markdown to this file ('-': to stdout)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON to this file ('-': to stdout)."),
    junit_out: Optional[Path] = typer.Option(None, "--junit", help="Also write a JUnit XML report to this file ('-': to stdout)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write the report's plots (PNG) into this folder."),
    fail_on: FailOn = typer.Option(FailOn.fail, "--fail-on", help="Exit 1 on any failed check (fail) or also on warnings (warn)."),
    quick: bool = typer.Option(False, "--quick", help="Skip the costliest training-based checks on the captured setup."),
    allow_errors: bool = typer.Option(False, "--allow-errors", help="A check that crashes does not make the run exit 3 (INCOMPLETE)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Torch CPU threads for the checks on the captured setup (the script keeps its own). Default: half the usable cores (1 to 4)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the checks that fail the run and the summary line, on stderr."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the evidence and tables of passing checks too."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-paragraph errors."),
) -> None:
    """Run your training script unchanged, watch its real loop, and check the loop and the setup it trains.

    The script really runs (it may write checkpoints and logs) until --steps optimizer steps or
    --time-budget seconds; its own output goes to stderr. Example: nndoctor run train.py --steps 50 -- --epochs 1
    """
    from nndoctor import budget
    from nndoctor.errors import InputError
    from nndoctor.report import terminal

    start = time.perf_counter()
    files = {Format.markdown: report, Format.json: json_out, Format.junit: junit_out}
    try:
        stdout_format = _validate_options(device, output_format, files, plots, quiet, verbose, seed)
        from nndoctor import engine
        from nndoctor.options import RunOptions

        _refuse_inputs_as_outputs({script.resolve()}, {**files, "--events": events, "--save-last-good": save_last_good}, plots)
        options = RunOptions(
            only=tuple(_ids(only)), skip=tuple(_ids(skip)), seed=seed, device=device, fail_on=fail_on.value,
            debug=debug, quick=quick, time_budget=time_budget, allow_errors=allow_errors, threads=threads,
        )
        if watch:
            from nndoctor.watching.settings import make_settings

            settings = make_settings(
                sample_every=sample_every, stop_on=stop_on.value if stop_on else None,
                save_last_good=save_last_good, events=events,
            )
            with contextlib.redirect_stdout(sys.stderr), budget.terminate_as_stop():
                result = engine.watch_script(script, list(ctx.args), settings, options)
        else:
            if events or stop_on or save_last_good:
                raise InputError("--events, --stop-on and --save-last-good belong to a watched run: add --watch.")
            with _running_user_code(quiet) as on_start:
                result = engine.run_script(script, list(ctx.args), steps, model, options, on_start)
        result, written = _deliver(result, start, stdout_format, output_format, files, plots, quiet, verbose)
    except InputError as exc:
        if debug:
            raise
        terminal.print_input_error(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except (KeyboardInterrupt, budget.Stop) as stop:  # before the report could be made
        terminal.print_input_error(f"stopped before anything was checked ({getattr(stop, 'reason', 'Ctrl-C')}).")
        raise typer.Exit(EXIT_INCOMPLETE) from None
    _exit_with_verdict(result, quiet, written)


@contextlib.contextmanager
def _running_user_code(quiet: bool):
    """While the user's code runs: its prints go to stderr (stdout carries the report alone, so
    `--json -` stays a JSON document), SIGTERM stops the run like Ctrl-C, and a progress line
    shows on a terminal. Yields the runner's on_start callback."""
    from nndoctor import budget
    from nndoctor.report import terminal

    with contextlib.redirect_stdout(sys.stderr), budget.terminate_as_stop(), \
            terminal.progress(enabled=_show_progress(quiet)) as on_start:
        yield on_start


def _deliver(result, start: float, stdout_format: Format, output_format: Optional[Format],
             files: dict[Format, Optional[Path]], plots: Optional[Path], quiet: bool, verbose: bool):
    """Print and write the finished report where it was asked for; return it as delivered and the
    files written, with the option that asked for each."""
    # The user waited for the imports and the model load too, not just for the checks.
    result = replace(result, duration_s=time.perf_counter() - start)
    if plots is not None:
        from nndoctor.report import plots as plot_writer

        result = plot_writer.write(result, plots)
    _print_stdout(result, stdout_format, quiet, verbose)
    if output_format is None and _on_github_actions():
        _print_annotations(result, stdout_format)
    written = []
    for fmt, target in files.items():
        if target is not None and target != STDOUT:
            _emit(_render(result, fmt, target), target)
            written.append((target, FILE_OPTIONS[fmt]))
    return result, written


def _exit_with_verdict(result, quiet: bool, written: list) -> None:
    from nndoctor.report import terminal

    sys.stdout.flush()  # the report first, then the verdict, even when both streams are piped
    if result.input_problem:
        terminal.print_input_error(result.input_problem)
    if quiet:
        terminal.print_problems(result)
    for target, option in written:
        terminal.print_wrote(target, option)
    terminal.print_summary(result)
    raise typer.Exit(exit_code(result))


def exit_code(result) -> int:
    """0 PASSED, 1 FAILED (a finding stands even when other checks could not run), 2 the input
    turned out unusable part-way, 3 INCOMPLETE (a check crashed, the budget ran out, interrupted)."""
    if result.input_problem:
        return EXIT_BAD_INPUT
    return {"PASSED": EXIT_OK, "FAILED": EXIT_FAILED}.get(result.verdict, EXIT_INCOMPLETE)


def _refuse_inputs_as_outputs(inputs: set[Path], files: dict, plots: Optional[Path]) -> None:
    """A file written over model.py, the config, a data file or the script would destroy the user's input."""
    from nndoctor.errors import InputError

    for fmt, target in files.items():
        if target is not None and target != STDOUT and target.resolve() in inputs:
            raise InputError(
                f"{FILE_OPTIONS.get(fmt, fmt)} {target} is one of nndoctor's inputs; writing there would overwrite "
                f"it. Give the report another name, e.g. {target.with_name('nndoctor-report' + (target.suffix or '.txt'))}."
            )
    if plots is not None and plots.resolve() in inputs:
        raise InputError(f"--plots {plots} is one of nndoctor's inputs; give a new folder for the PNG files.")


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
    plots: Optional[Path], quiet: bool, verbose: bool, seed: Optional[int] = None,
) -> Format:
    """Reject unusable options before the (slow) load and run, not after it; return the format
    stdout carries."""
    from nndoctor.errors import InputError

    if device not in (None, "auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}.")
    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other; pass one of them.")
    from nndoctor.config import MAX_SEED, valid_seed

    if seed is not None and not valid_seed(seed):
        raise InputError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {seed}.")
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
    return result.render(fmt.value)


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
