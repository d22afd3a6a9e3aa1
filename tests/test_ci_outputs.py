"""The CI renderers, JUnit XML and GitHub Actions annotations, on hand-built Reports.

JUnit files are parsed back and checked against what CI test viewers read (the layout pytest's
junitxml writes and Jenkins' JUnit schema requires); annotation lines are checked against the
workflow-commands syntax, escaping included. The CLI side (--junit, --format, GITHUB_ACTIONS) is
tested end to end in test_cli.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from nndoctor import catalog
from nndoctor.report import github, junit
from nndoctor.result import Cause, Status, Table
from tests.test_reports import odd_report, report, result

TRACEBACK = 'Traceback (most recent call last):\n  File "probe.py", line 3\nRuntimeError: boom\n'


def mixed_report(**fields):
    """One check of each status, a failure with evidence, a table and a fix."""
    return report(
        result("data_integrity", summary="all 512 samples finite"),
        result("initial_loss", Status.FAIL, "initial loss 66.2, expected ln(10) = 2.30",
               evidence=("head.fc: logits std 41.0",), fix="Scale head.fc down by 0.01.",
               tables=(Table("per-layer logits", ("layer", "std"), (("head.fc", 41.0),)),)),
        result("dead_relu", Status.WARN, "35% of features.2 never fires", fix="Use LeakyReLU."),
        result("lr_range", Status.SKIP, "skipped by --quick (a training run)"),
        result("numerics", Status.ERROR, "the check crashed: RuntimeError: boom", error=TRACEBACK),
        **fields,
    )


def parse(rep) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.fromstring(junit.render(rep).encode("utf-8"))
    (suite,) = root.findall("testsuite")
    return suite, {case.get("name").split(":")[0]: case for case in suite.findall("testcase")}


def title(check_id: str) -> str:
    return catalog.get_spec(check_id).title


def children(case: ET.Element) -> list[str]:
    return [child.tag for child in case]


# --- JUnit ---------------------------------------------------------------------------------


def test_junit_has_one_case_per_check_with_counts_that_match_the_cases():
    rep = mixed_report()
    root = ET.fromstring(junit.render(rep).encode("utf-8"))
    assert root.tag == "testsuites"
    suite, cases = parse(rep)
    assert list(cases) == [r.id for r in rep.results]
    counts = {"tests": 5, "failures": 1, "errors": 1, "skipped": 1}
    for element in (root, suite):
        assert {key: int(element.get(key)) for key in counts} == counts
        assert float(element.get("time")) == pytest.approx(3.21)
    assert sum(case.find("failure") is not None for case in cases.values()) == counts["failures"]
    assert sum(case.find("error") is not None for case in cases.values()) == counts["errors"]
    assert sum(case.find("skipped") is not None for case in cases.values()) == counts["skipped"]
    datetime.fromisoformat(suite.get("timestamp"))  # required by strict schemas, ISO 8601
    assert suite.get("hostname")
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["target"] == "model.py" and properties["fail_on"] == "fail"


def test_junit_case_names_sections_and_bodies():
    suite, cases = parse(mixed_report())
    failed = cases["initial_loss"]
    assert failed.get("classname") == "Loss"
    assert failed.get("name") == f"initial_loss: {title('initial_loss')}"
    float(failed.get("time"))
    (failure,) = failed.findall("failure")
    assert failure.get("message") == "initial loss 66.2, expected ln(10) = 2.30"
    assert "- head.fc: logits std 41.0" in failure.text
    assert re.search(r"^layer\s+std$", failure.text, re.M) and re.search(r"^head\.fc\s+41$", failure.text, re.M)
    assert "Fix: Scale head.fc down by 0.01." in failure.text

    crashed = cases["numerics"]
    assert children(crashed) == ["error"]
    assert "RuntimeError: boom" in crashed.find("error").text  # the traceback
    assert children(cases["lr_range"]) == ["skipped"]
    assert cases["lr_range"].find("skipped").get("message") == "skipped by --quick (a training run)"
    assert children(cases["data_integrity"]) == ["system-out"]
    assert cases["data_integrity"].find("system-out").text.startswith("all 512 samples finite")


def test_junit_warning_passes_unless_the_run_fails_on_warnings():
    _, cases = parse(mixed_report())
    warned = cases["dead_relu"]
    assert children(warned) == ["system-out"]  # a passing test that says so
    assert warned.find("system-out").text.startswith("WARNING: 35% of features.2 never fires")

    suite, cases = parse(mixed_report(fail_on=Status.WARN))
    assert suite.get("failures") == "2"
    failure = cases["dead_relu"].find("failure")
    assert failure.get("type") == "warn" and "Fix: Use LeakyReLU." in failure.text


def test_junit_carries_likely_causes_and_notes_in_the_suite_output():
    cause = Cause("Softmax before CrossEntropyLoss", "Return logits.", ("output_head", "initial_loss"), 0.9)
    suite, _ = parse(mixed_report(causes=(cause,), notes=("Task: classification (declared).",)))
    text = suite.find("system-out").text
    assert "1. Softmax before CrossEntropyLoss (output_head, initial_loss). Fix: Return logits." in text
    assert "Note: Task: classification (declared)." in text


def test_junit_stays_well_formed_with_any_text():
    control = "nan in \x00input\x1b[31m \ud800 <tag> & \"quotes\" ]]>"
    rep = report(result("initial_loss", Status.FAIL, control, evidence=(control,), fix=control))
    _, cases = parse(rep)
    failure = cases["initial_loss"].find("failure")
    assert "\\x00input\\x1b[31m" in failure.get("message")  # shown, not dropped, not raw
    assert "<tag> & \"quotes\" ]]>" in failure.text
    parse(odd_report())


# --- GitHub Actions annotations ------------------------------------------------------------

COMMAND = re.compile(r"^::(error|warning) ((?:\w+=[^,:]*)(?:,\w+=[^,:]*)*)::(.*)$")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    match = COMMAND.match(line)
    assert match, line
    level, props, message = match.groups()
    return level, dict(prop.split("=", 1) for prop in props.split(",")), message


def test_annotations_for_failures_and_warnings_only():
    lines = github.render(mixed_report()).splitlines()
    parsed = [parse_command(line) for line in lines]
    # a crashed check (numerics) makes the run INCOMPLETE: an error, and one line saying what was not checked
    assert [(level, props["title"]) for level, props, _ in parsed] == [
        *((level, github.escape_property(f"nndoctor {check_id}: {title(check_id)}"))
          for level, check_id in (("error", "initial_loss"), ("warning", "dead_relu"), ("error", "numerics"))),
        ("error", github.escape_property("nndoctor: INCOMPLETE")),
    ]
    assert parsed[0][1]["title"].startswith("nndoctor initial_loss%3A ")
    assert all(props["file"] == "model.py" for _, props, _ in parsed[:3])
    level, _, message = parsed[0]
    first, *evidence = message.split("%0A")
    assert first == "initial loss 66.2, expected ln(10) = 2.30 — fix: Scale head.fc down by 0.01."
    assert evidence == ["· head.fc: logits std 41.0"]
    assert "--debug" in parsed[2][2]  # a crashed check says how to see why


def test_a_warning_is_an_error_annotation_when_the_run_fails_on_warnings():
    levels = [parse_command(line)[0] for line in github.render(mixed_report(fail_on=Status.WARN)).splitlines()]
    assert levels == ["error", "error", "error", "error"]  # the crashed check and the INCOMPLETE line too


def test_a_passing_run_has_no_annotations():
    assert github.render(report(result("initial_loss"), result("lr_range", Status.SKIP, "skipped"))) == ""


@pytest.mark.parametrize(
    "raw, data, prop",
    [
        ("100% sure", "100%25 sure", "100%25 sure"),
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("x: 1, y: 2", "x: 1, y: 2", "x%3A 1%2C y%3A 2"),
        ("%0A stays literal", "%250A stays literal", "%250A stays literal"),
    ],
)
def test_workflow_command_escaping(raw, data, prop):
    assert github.escape_data(raw) == data
    assert github.escape_property(raw) == prop
    assert github.command("warning", raw, title=raw) == f"::warning title={prop}::{data}"


def test_annotations_escape_what_checks_write():
    rep = report(result("initial_loss", Status.FAIL, "loss 230% of chance, 2 classes: cat,dog", fix="a\nb"),
                 target="dir, with: colon/model.py")
    ((level, props, message),) = (parse_command(line) for line in github.render(rep).splitlines())
    assert props["file"] == "dir%2C with%3A colon/model.py"
    assert message == "loss 230%25 of chance, 2 classes: cat,dog — fix: a b"


@pytest.mark.parametrize("target", ["<python>", "/abs/path/model.py", "nndoctor.yaml"])
def test_annotations_attach_to_the_model_file_only_when_github_can_find_it(target):
    rep = report(result("initial_loss", Status.FAIL, "bad"), target=target)
    (line,) = github.render(rep).splitlines()
    assert "file" not in parse_command(line)[1]
