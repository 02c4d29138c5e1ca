#!/usr/bin/python3
"""Trains the bridge's fraud models, one per built-in runtime, on the same synthetic data.

    /usr/bin/python3 scripts/train_model.py            # rewrites the shipped weights (numpy runtime)
    /usr/bin/python3 scripts/train_model.py --check    # fails if they are stale
    /usr/bin/python3 scripts/train_model.py --out /tmp/w.json --sklearn /tmp/m.joblib --xgboost /tmp/m.json

The data set is synthetic and seeded (aegis_bridge.synthetic), so the same
seed always yields byte-identical weights; `--check` lets a test prove the
committed file is what this script produces. The shipped model is
L2-regularised logistic regression by Newton's method (IRLS) in numpy: a
few iterations converge on nine features, and nothing outside Debian's
numpy is needed. With --sklearn it also fits scikit-learn's
LogisticRegression (pickled, or joblib-dumped for a .joblib path, with its
metadata in `<path>.meta.json`); with --xgboost, an XGBoost classifier
(native JSON, or UBJSON for .ubj, metadata inside: feature_names and the
aegis_* attributes). All three learn from the same samples and the same
feature matrix (aegis_bridge.features). Each model's decision thresholds
are set from its own score quantiles on the training set, so that about 5%
of traffic goes to review or decline and about 0.5% is declined.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from aegis_bridge.features import FEATURE_NAMES, features  # noqa: E402
from aegis_bridge.model import DEFAULT_WEIGHTS_PATH, LogisticModel  # noqa: E402
from aegis_bridge.runtime_sklearn import SUFFIXES as SKLEARN_SUFFIXES, sidecar_path  # noqa: E402
from aegis_bridge.runtime_xgboost import SUFFIXES as XGBOOST_SUFFIXES  # noqa: E402
from aegis_bridge.scoring import ModelInfo, info_to_doc  # noqa: E402
from aegis_bridge.synthetic import fraud_labels, make_txns  # noqa: E402

REVIEW_SHARE = 0.05
DECLINE_SHARE = 0.005
# The models' names in their metadata (the bridge's metrics and log show them with the version).
NAMES = {"numpy": "aegis-fraud-logreg", "sklearn": "aegis-fraud-sklearn-logreg", "xgboost": "aegis-fraud-xgboost"}
# XGBoost: small and shallow (the features are few and mostly binary); one thread, so training is deterministic.
XGBOOST_PARAMS = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.2, "tree_method": "hist", "n_jobs": 1}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 25) -> tuple[np.ndarray, float]:
    """Newton-Raphson on the penalised log-likelihood; returns (weights, bias)."""
    n, k = x.shape
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    beta = np.zeros(k + 1)
    penalty = np.full(k + 1, l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        gradient = xb.T @ (p - y) + penalty * beta
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    assert np.all(np.isfinite(beta)), "training diverged"
    return beta[:-1], float(beta[-1])


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) statistic."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = int(y.sum())
    negatives = len(y) - positives
    assert positives > 0 and negatives > 0, "AUC needs both classes"
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def thresholds(train_scores: np.ndarray) -> tuple[float, float]:
    """(review, decline): the score quantiles that send REVIEW_SHARE and DECLINE_SHARE of training traffic there."""
    return (float(np.quantile(train_scores, 1 - REVIEW_SHARE)), float(np.quantile(train_scores, 1 - DECLINE_SHARE)))


def train(seed: int, n: int, l2: float, version: str = "1") -> tuple[LogisticModel, np.ndarray, np.ndarray]:
    """The numpy model, and the training split's (features, labels) the other runtimes learn from."""
    rng = np.random.default_rng(seed)
    txns = make_txns(rng, n)
    y = fraud_labels(rng, txns)
    x = features(txns)
    split = int(n * 0.8)
    weights, bias = fit_logistic(x[:split], y[:split].astype(np.float64), l2)
    model = LogisticModel(weights, bias, 0.5, 0.5)
    train_scores, _ = model.score(txns[:split])
    test_scores, _ = model.score(txns[split:])
    review, decline = thresholds(train_scores)
    meta = {
        "seed": seed,
        "samples": n,
        "l2": l2,
        "positive_rate": round(float(y.mean()), 6),
        "train_auc": round(auc(train_scores, y[:split]), 6),
        "test_auc": round(auc(test_scores, y[split:]), 6),
        "review_share": REVIEW_SHARE,
        "decline_share": DECLINE_SHARE,
        "generator": "scripts/train_model.py",
    }
    return LogisticModel(weights, bias, review, decline, meta, NAMES["numpy"], version), x[:split], y[:split]


def training_note(meta: dict, runtime: str, x: np.ndarray, y: np.ndarray, scores: np.ndarray) -> dict:
    """The numpy model's training facts, for another runtime fitted on the same split."""
    return {"seed": meta["seed"], "samples": meta["samples"], "train_rows": len(x), "runtime": runtime,
            "train_auc": round(auc(scores, y), 6), "generator": "scripts/train_model.py"}


def fit_sklearn(path: Path, numpy_model: LogisticModel, x: np.ndarray, y: np.ndarray, l2: float) -> ModelInfo:
    """scikit-learn's LogisticRegression on the same split: the estimator at `path`, its metadata beside it."""
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression(C=1.0 / l2, max_iter=1000).fit(x, y)
    scores = estimator.predict_proba(x)[:, 1].astype(np.float32)
    review, decline = thresholds(scores)
    info = ModelInfo(NAMES["sklearn"], numpy_model.info.version, FEATURE_NAMES, review, decline)
    if path.suffix == ".joblib":
        import joblib

        joblib.dump(estimator, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(estimator, f)
    doc = info_to_doc(info)
    doc["training"] = training_note(numpy_model.meta, "sklearn", x, y, scores)
    sidecar_path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return info


def fit_xgboost(path: Path, numpy_model: LogisticModel, x: np.ndarray, y: np.ndarray) -> ModelInfo:
    """An XGBoost classifier on the same split, saved natively with its metadata inside."""
    import xgboost

    clf = xgboost.XGBClassifier(objective="binary:logistic", random_state=numpy_model.meta["seed"] % 2**31,
                                **XGBOOST_PARAMS)
    clf.fit(x, y)
    booster = clf.get_booster()
    scores = booster.inplace_predict(x).astype(np.float32)
    review, decline = thresholds(scores)
    info = ModelInfo(NAMES["xgboost"], numpy_model.info.version, FEATURE_NAMES, review, decline)
    booster.feature_names = list(FEATURE_NAMES)
    booster.set_attr(aegis_name=info.name, aegis_version=info.version, aegis_review=repr(review),
                     aegis_decline=repr(decline),
                     aegis_training=json.dumps(training_note(numpy_model.meta, "xgboost", x, y, scores),
                                               sort_keys=True))
    booster.save_model(str(path))
    return info


def _same_model(path: Path, fresh: dict) -> bool:
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    numbers = lambda d: [*d["weights"], d["bias"], d["thresholds"]["review"], d["thresholds"]["decline"]]  # noqa: E731
    return (
        current.get("name") == fresh["name"]
        and current.get("version") == fresh["version"]
        and current.get("features") == fresh["features"]
        and current.get("training") == fresh["training"]
        and np.allclose(numbers(current), numbers(fresh), rtol=1e-5, atol=1e-6)
    )


MIN_SAMPLES = 2_000  # below this a 20% test split may hold no fraud at all (base rate ~5%)


def _samples(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < MIN_SAMPLES:
        raise argparse.ArgumentTypeError(f"{n} is too few: at least {MIN_SAMPLES}")
    return n


def _l2(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20260109)
    ap.add_argument("--samples", type=_samples, default=200_000, help=f"training samples (at least {MIN_SAMPLES})")
    ap.add_argument("--l2", type=_l2, default=1.0, help="L2 penalty, positive")
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS_PATH)
    ap.add_argument("--model-version", default="1", help="the version every model written gets in its metadata")
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh training run")
    ap.add_argument("--sklearn", type=Path,
                    help=f"also fit scikit-learn's LogisticRegression and write it here ({'/'.join(SKLEARN_SUFFIXES)}),"
                         f" its metadata in PATH.meta.json")
    ap.add_argument("--xgboost", type=Path,
                    help=f"also fit an XGBoost classifier and save it here ({'/'.join(XGBOOST_SUFFIXES)})")
    args = ap.parse_args()
    # Every reason to fail is found before anything is written: a half-done
    # run must not leave new weights beside a missing pickle.
    outputs = [] if args.check else [args.out]
    if args.sklearn:
        outputs.append(args.sklearn)
        if args.sklearn.suffix not in SKLEARN_SUFFIXES:
            ap.error(f"--sklearn {args.sklearn}: the suffix must be one of {', '.join(SKLEARN_SUFFIXES)}")
    if args.xgboost:
        outputs.append(args.xgboost)
        if args.xgboost.suffix not in XGBOOST_SUFFIXES:
            ap.error(f"--xgboost {args.xgboost}: the suffix must be one of {', '.join(XGBOOST_SUFFIXES)}")
    if not args.model_version.strip() or not args.model_version.isprintable():
        ap.error(f"--model-version: must be a non-empty one-line string, got {args.model_version!r}")
    for path in outputs:
        if not path.parent.is_dir():
            ap.error(f"cannot write {path}: no directory {path.parent}")
    for flag, module, package in (("--sklearn", "sklearn", "scikit-learn"), ("--xgboost", "xgboost", "xgboost")):
        if getattr(args, flag[2:]) and importlib.util.find_spec(module) is None:
            print(f"train_model: {flag} needs {package}, which is not installed", file=sys.stderr)
            return 2

    model, x, y = train(args.seed, args.samples, args.l2, args.model_version)
    text = json.dumps(model.to_json(), indent=2, sort_keys=True) + "\n"
    if args.check:
        # Numerically equal, not byte-equal: another BLAS may round the last
        # bit differently, and that is not a stale file.
        if not _same_model(args.out, model.to_json()):
            print(f"train_model: {args.out} is stale; rerun scripts/train_model.py", file=sys.stderr)
            return 1
        print(f"train_model: {args.out} matches seed {args.seed}")
        return 0
    args.out.write_text(text)
    print(f"train_model: wrote {args.out}: test AUC {model.meta['test_auc']}, "
          f"positive rate {model.meta['positive_rate']}, thresholds {model.review:.4f}/{model.decline:.4f}")
    if args.sklearn:
        info = fit_sklearn(args.sklearn, model, x, y, args.l2)
        print(f"train_model: wrote {args.sklearn} and {sidecar_path(args.sklearn).name}: thresholds "
              f"{info.review:.4f}/{info.decline:.4f}")
    if args.xgboost:
        info = fit_xgboost(args.xgboost, model, x, y)
        print(f"train_model: wrote {args.xgboost}: thresholds {info.review:.4f}/{info.decline:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
