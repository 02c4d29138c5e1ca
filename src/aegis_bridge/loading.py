"""Finding and loading the model the bridge serves: `--model SPEC`.

Usage:
    loaded = load_scorer("fraud.json")           # a file: its runtime by type and content
    loaded = load_scorer("mymodel:make_scorer")  # a Python factory on sys.path (PYTHONPATH) or installed
    loaded = load_scorer("ep:fraudnet")          # a factory another package registered as an entry point
    loaded = load_scorer(None)                   # the shipped weights
    loaded.scorer.score(txns); loaded.info; loaded.runtime; loaded.source

The grammar of SPEC, tried in this order:
  ep:NAME         the entry point NAME in group `aegis_bridge.scorers`
                  (the module name `ep` is reserved for this)
  MODULE:ATTR     MODULE a dotted Python module name, ATTR a (dotted)
                  attribute of it: the factory. No slash, no suffix, so a
                  path never looks like one (write ./a:b for a file named so)
  anything else   a model file, by suffix and content:
                  .json  Aegis logistic weights ("format": "aegis-logreg-v1")
                         or an XGBoost JSON model ("learner"), told apart by
                         content (numpy / xgboost runtime)
                  .ubj   an XGBoost UBJSON model (xgboost runtime)
                  .pkl .pickle .joblib   a scikit-learn estimator with a
                         `<file>.meta.json` sidecar (sklearn runtime)
A factory (module or entry point) is called once with no arguments and must
return a Scorer (aegis_bridge.scoring): an object with `score` and `info`.

Every failure is one ModelError line naming the model and the reason.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import DEFAULT_WEIGHTS_PATH, WEIGHTS_FORMAT, logistic_from_doc
from .scoring import ENTRY_POINT_GROUP, ModelError, ModelInfo, Scorer, check_info

RUNTIMES = ("numpy", "sklearn", "xgboost", "module", "entrypoint")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_SPEC = re.compile(rf"^({_IDENT}(?:\.{_IDENT})*):({_IDENT}(?:\.{_IDENT})*)$")
_ENTRY_POINT_SPEC = re.compile(r"^ep:(.+)$")
_HINT = "a Python factory is MODULE:FUNCTION, an installed entry point ep:NAME"


@dataclass(frozen=True)
class LoadedModel:
    """A scorer, checked, with how it was found."""

    scorer: Scorer
    runtime: str  # one of RUNTIMES
    source: str   # the --model argument, or the shipped weights' path

    @property
    def info(self) -> ModelInfo:
        return self.scorer.info

    def describe(self) -> str:
        """One line for logs: name, version, runtime."""
        return f"{self.info.name} version {self.info.version} ({self.runtime})"


def load_scorer(spec: str | None = None) -> LoadedModel:
    """The model `spec` names (module docstring); the shipped weights if None. ModelError if it cannot serve."""
    if spec is None:
        return _load_file(DEFAULT_WEIGHTS_PATH, str(DEFAULT_WEIGHTS_PATH))
    m = _ENTRY_POINT_SPEC.match(spec)
    if m:
        return _load_entry_point(m.group(1), spec)
    m = _MODULE_SPEC.match(spec)
    if m:
        return _load_factory(m.group(1), m.group(2), spec)
    return _load_file(Path(spec), spec)


# -- files -----------------------------------------------------------------

def _load_file(path: Path, source: str) -> LoadedModel:
    from .runtime_sklearn import SUFFIXES as SKLEARN_SUFFIXES

    suffix = path.suffix.lower()
    if suffix in SKLEARN_SUFFIXES:
        from .runtime_sklearn import load_sklearn

        return _checked(load_sklearn(path), "sklearn", source, needs=True)
    if suffix == ".ubj":
        from .runtime_xgboost import load_xgboost

        return _checked(load_xgboost(path), "xgboost", source, needs=True)
    if suffix == ".json":
        return _load_json(path, source)
    if not path.exists():
        raise ModelError(f"no model file {path} ({_HINT})")
    raise ModelError(f"model {path}: unknown model file type {suffix or '(no suffix)'!r}: .json (Aegis weights or "
                     f"XGBoost), .ubj (XGBoost), .pkl/.pickle/.joblib (scikit-learn); {_HINT}")


def _load_json(path: Path, source: str) -> LoadedModel:
    """A .json is Aegis logistic weights or an XGBoost model: told apart by content, not by name."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read model file {path}: {e}") from None
    if isinstance(doc, dict) and doc.get("format") == WEIGHTS_FORMAT:
        return _checked(logistic_from_doc(doc, str(path)), "numpy", source, needs=True)
    from .runtime_xgboost import is_xgboost_json, load_xgboost

    if is_xgboost_json(doc):
        return _checked(load_xgboost(path), "xgboost", source, needs=True)
    raise ModelError(f"model {path}: neither Aegis logistic weights (\"format\": \"{WEIGHTS_FORMAT}\") "
                     f"nor an XGBoost model (\"learner\")")


# -- Python factories --------------------------------------------------------

def _load_factory(module_name: str, attr_path: str, source: str) -> LoadedModel:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.startswith(e.name) and (
                len(module_name) == len(e.name) or module_name[len(e.name)] == "."):
            raise ModelError(f"--model {source}: no module named {e.name!r} (is its directory on PYTHONPATH, "
                             f"or its package installed?)") from None
        raise ModelError(f"--model {source}: importing {module_name} failed: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - a user module may raise anything while importing
        raise ModelError(f"--model {source}: importing {module_name} failed: {_one_line(e)}") from None
    factory: Any = module
    for part in attr_path.split("."):
        if not hasattr(factory, part):
            raise ModelError(f"--model {source}: {module_name} has no attribute {attr_path!r}")
        factory = getattr(factory, part)
    return _call_factory(factory, "module", source)


def _load_entry_point(name: str, source: str) -> LoadedModel:
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
        raise ModelError(f"--model {source}: no entry point {name!r} in group {ENTRY_POINT_GROUP} "
                         f"(installed: {', '.join(known) if known else 'none'})")
    targets = sorted({ep.value for ep in found})
    if len(targets) > 1:
        raise ModelError(f"--model {source}: entry point {name!r} is registered more than once in "
                         f"{ENTRY_POINT_GROUP}, for {', '.join(targets)}")
    try:
        factory = found[0].load()
    except Exception as e:  # noqa: BLE001 - loading imports the registering package's code
        raise ModelError(f"--model {source}: loading entry point {found[0].value} failed: {_one_line(e)}") from None
    return _call_factory(factory, "entrypoint", source)


def _call_factory(factory: Any, runtime: str, source: str) -> LoadedModel:
    if not callable(factory):
        raise ModelError(f"--model {source}: {type(factory).__name__} object is not callable (expected a "
                         f"factory returning a Scorer)")
    try:
        scorer = factory()
    except Exception as e:  # noqa: BLE001 - the factory is the user's code
        raise ModelError(f"--model {source}: the factory raised {_one_line(e)}") from None
    try:
        has_info = hasattr(scorer, "info")
    except Exception as e:  # noqa: BLE001 - `info` may be the user's property, and raise
        raise ModelError(f"--model {source}: reading the scorer's info raised {_one_line(e)}") from None
    if not callable(getattr(scorer, "score", None)) or not has_info:
        raise ModelError(f"--model {source}: the factory returned a {type(scorer).__name__}, not a Scorer "
                         f"(needs score(txns) and info)")
    return _checked(scorer, runtime, source, needs=False)


def _checked(scorer: Scorer, runtime: str, source: str, needs: bool) -> LoadedModel:
    """Checks the scorer's metadata once more at the one place every runtime passes through."""
    if runtime not in RUNTIMES:
        raise ModelError(f"--model {source}: unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
    check_info(scorer.info, source, needs_features=needs, needs_thresholds=needs)
    return LoadedModel(scorer, runtime, source)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
