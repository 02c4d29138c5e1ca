#!/usr/bin/python3
"""Trains the bridge's default fraud model and writes the weights it ships with.

    PYTHONPATH=src /usr/bin/python3 scripts/train_model.py            # rewrites the shipped weights
    PYTHONPATH=src /usr/bin/python3 scripts/train_model.py --check    # fails if they are stale
    PYTHONPATH=src /usr/bin/python3 scripts/train_model.py --sklearn model.pkl

The data set is synthetic and seeded (aegis_bridge.synthetic), so the same
seed always yields byte-identical weights; `--check` lets a test prove the
committed file is what this script produces. Training is L2-regularised
logistic regression by Newton's method (IRLS) in numpy: a few iterations
converge on nine features, and nothing outside Debian's numpy is needed.
Decision thresholds are set from score quantiles on the training set, so that
about 5% of traffic goes to review or decline and about 0.5% is declined.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from aegis_bridge.model import DEFAULT_WEIGHTS_PATH, FEATURE_NAMES, LogisticModel, features  # noqa: E402
from aegis_bridge.synthetic import fraud_labels, make_txns  # noqa: E402

REVIEW_SHARE = 0.05
DECLINE_SHARE = 0.005


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


def train(seed: int, n: int, l2: float) -> LogisticModel:
    rng = np.random.default_rng(seed)
    txns = make_txns(rng, n)
    y = fraud_labels(rng, txns)
    x = features(txns)
    split = int(n * 0.8)
    weights, bias = fit_logistic(x[:split], y[:split].astype(np.float64), l2)
    model = LogisticModel(weights, bias, 0.5, 0.5)
    train_scores, _ = model.score(txns[:split])
    test_scores, _ = model.score(txns[split:])
    review = float(np.quantile(train_scores, 1 - REVIEW_SHARE))
    decline = float(np.quantile(train_scores, 1 - DECLINE_SHARE))
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
    return LogisticModel(weights, bias, review, decline, meta), x[:split], y[:split]


def _same_model(path: Path, fresh: dict) -> bool:
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    numbers = lambda d: [*d["weights"], d["bias"], d["thresholds"]["review"], d["thresholds"]["decline"]]  # noqa: E731
    return (
        current.get("features") == fresh["features"]
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
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh training run")
    ap.add_argument("--sklearn", type=Path, help="also fit sklearn LogisticRegression and pickle it here")
    args = ap.parse_args()
    # Every reason to fail is found before anything is written: a half-done
    # run must not leave new weights beside a missing pickle.
    outputs = [] if args.check else [args.out]
    if args.sklearn:
        outputs.append(args.sklearn)
    for path in outputs:
        if not path.parent.is_dir():
            ap.error(f"cannot write {path}: no directory {path.parent}")
    if args.sklearn:
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            print("train_model: --sklearn needs scikit-learn, which is not installed", file=sys.stderr)
            return 2

    model, x, y = train(args.seed, args.samples, args.l2)
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
        import pickle

        estimator = LogisticRegression(C=1.0 / args.l2, max_iter=1000).fit(x, y)
        with open(args.sklearn, "wb") as f:
            pickle.dump({"estimator": estimator, "features": list(FEATURE_NAMES),
                         "thresholds": {"review": model.review, "decline": model.decline}}, f)
        print(f"train_model: wrote {args.sklearn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
