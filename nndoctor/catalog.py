"""The checklist as data: reads checks/*.yaml and merges a user's threshold overrides.

The YAML files live at the repository's top level (``checks/``) and ship in the wheel as
``nndoctor/_checklist``; this module looks for the packaged copy first so that a non-editable
install works, then for the source tree's copy (editable installs, running from a checkout).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from nndoctor.errors import InputError


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    catches: str
    section: str
    section_order: int
    tier: str
    why: str
    fix: str
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    codes: Mapping[str, str] = field(default_factory=dict)  # qualified code -> one-line title
    cost: str = "probe"  # "probe" (forward/backward passes) or "training-run"
    in_quick: bool = False  # a training run that --quick still runs (the others it skips)
    requires: tuple[str, ...] = ()  # checks whose shared runs (and settings) this check reads
    explains_crashes: bool = False  # once it fails, other checks' crashes are its symptoms: skips

    def qualify(self, code: str) -> str:
        """The qualified form of one of this check's codes; unknown codes are a programming error."""
        qualified = code if "." in code else f"{self.id}.{code}"
        if qualified not in self.codes:
            raise KeyError(f"check {self.id} emitted undeclared finding code {qualified!r}; declare it under codes: in checks/*.yaml")
        return qualified


# The catalog cites its sources by short names; reports and `nndoctor explain` name each one so a
# user can look it up. The seeds are the articles and threads the checklist grew from.
REFERENCES = {
    "seed 000": "Cross Validated question on a 30-layer softmax classifier that trains for a few epochs, then "
                "gives probability 1 to one class and stops learning",
    "seed 001": 'Elod P. Csirmaz, "Decreasing accuracy in neural nets during training - things to try" (blog, 2019)',
    "seed 002": "Govind Chandrasekhar, a checklist for debugging neural networks (Semantics3 engineering blog)",
    "seed 003": 'Elod P. Csirmaz, "Decreasing accuracy in neural nets during training - things to try" (blog, 2019)',
    "seed 004": 'Stack Overflow question "Why does NN training loss flatten?"',
    "Karpathy": 'Andrej Karpathy, "A Recipe for Training Neural Networks" (2019)',
    "CS231n": "Stanford CS231n course notes, Neural Networks part 3 (learning and evaluation)",
    "Ivanov": 'Slav Ivanov, "37 Reasons why your Neural Network is not working" (2017)',
    "Tobin": 'Josh Tobin, "Troubleshooting Deep Neural Networks" (Full Stack Deep Learning, 2019)',
    "Smith 2017": 'Leslie N. Smith, "Cyclical Learning Rates for Training Neural Networks" (2017)',
    "Lightning lr_find": "PyTorch Lightning's learning-rate finder (Tuner.lr_find)",
    "smdebug": "Amazon SageMaker Debugger's built-in rules (smdebug)",
    "TheDeepChecker": "Ben Braiek and Khomh, TheDeepChecker: property-based debugging of deep learning training",
    "Google tuning playbook": 'Google Research, "Deep Learning Tuning Playbook" (2023)',
}


def cite(source: str) -> str:
    """A catalog source with its short name spelled out: 'seed 002 "Dead ReLUs"' becomes the
    article's author and title followed by the section quoted."""
    for short, reference in REFERENCES.items():
        if source == short or source.startswith(short + " "):
            return reference + source[len(short):]
    return source


def checklist_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_checklist", here.parent / "checks"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    raise RuntimeError("nndoctor's checklist data (checks/*.yaml) is missing from this install")


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CheckSpec, ...]:
    """All checks in article order (section by section, in file order within a section)."""
    specs: list[CheckSpec] = []
    for path in sorted(checklist_dir().glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in data.get("checks") or ():  # checks/watch.yaml lists watch events, not checks
            specs.append(
                CheckSpec(
                    id=entry["id"],
                    title=entry["title"],
                    catches=entry["catches"],
                    section=data["section"],
                    section_order=int(data["order"]),
                    tier=str(entry.get("tier", "")),
                    why=" ".join(str(entry["why"]).split()),
                    fix=" ".join(str(entry["fix"]).split()),
                    thresholds=MappingProxyType(dict(entry.get("thresholds") or {})),
                    sources=tuple(cite(str(source)) for source in entry.get("sources") or ()),
                    codes=MappingProxyType(
                        {f"{entry['id']}.{key}": " ".join(str(title).split()) for key, title in (entry.get("codes") or {}).items()}
                    ),
                    cost=str(entry.get("cost", "probe")),
                    in_quick=bool(entry.get("in_quick", entry.get("cost", "probe") != "training-run")),
                    requires=tuple(entry.get("requires") or ()),
                    explains_crashes=bool(entry.get("explains_crashes", False)),
                )
            )
    specs.sort(key=lambda s: s.section_order)  # stable: keeps file order inside a section
    return tuple(specs)


def all_codes() -> dict[str, str]:
    """Every declared finding code of the catalog, qualified, with its title."""
    return {code: title for spec in load_catalog() for code, title in spec.codes.items()}


def catalog_ids() -> tuple[str, ...]:
    return tuple(spec.id for spec in load_catalog())


def get_spec(check_id: str) -> CheckSpec:
    for spec in load_catalog():
        if spec.id == check_id:
            return spec
    raise KeyError(check_id)


def validate_ids(ids: list[str], where: str) -> list[str]:
    """Reject unknown check ids with a message that lists the valid ones."""
    known = catalog_ids()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InputError(
            f"{where}: unknown check id(s) {', '.join(unknown)}. "
            f"Valid ids are: {', '.join(known)} (see `nndoctor list`)."
        )
    return ids


def _check_threshold_type(spec: CheckSpec, key: str, value: Any, where: str) -> None:
    """An override must be a value of the kind the default is: a number for a number, a yes/no
    for a yes/no; ``fail_ratio: high`` would crash the check later."""
    default = spec.thresholds[key]
    number = isinstance(default, (int, float)) and not isinstance(default, bool)
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) if number else isinstance(value, type(default))
    if not ok:
        kind = "a number" if number else f"a {type(default).__name__}"
        raise InputError(
            f"{where}: threshold {spec.id}.{key} must be {kind} like its default {default!r}, not {value!r}."
        )


def with_overrides(
    specs: tuple[CheckSpec, ...], overrides: Mapping[str, Mapping[str, Any]], where: str
) -> tuple[CheckSpec, ...]:
    """Apply the user's thresholds key by key; unknown ids or keys are errors, not silent no-ops."""
    validate_ids(list(overrides), where)
    merged = []
    for spec in specs:
        user = overrides.get(spec.id) or {}
        if not isinstance(user, Mapping):
            raise InputError(f"{where}: thresholds for {spec.id} must be a mapping of key: value.")
        unknown = [k for k in user if k not in spec.thresholds]
        if unknown:
            raise InputError(
                f"{where}: check {spec.id} has no threshold {', '.join(map(str, unknown))}. "
                f"Its thresholds are: {', '.join(spec.thresholds) or 'none'}."
            )
        for key, value in user.items():
            _check_threshold_type(spec, key, value, where)
        if user:
            spec = replace(spec, thresholds=MappingProxyType({**spec.thresholds, **user}))
        merged.append(spec)
    return tuple(merged)
