"""scikit-learn's bundled digits (8x8 images, 1797 samples) with RecordEncoder + CentroidClassifier.

Each of the 64 pixels (values 0..16) is a feature: its id vector is bound to the level vector of
its value, and the 64 products are bundled. A 70/30 stratified split; the float baseline is
scikit-learn's LogisticRegression on the same split (pixels scaled to [0, 1]). Several splits
(``--repeats``) are run and the medians printed.

    python examples/digits.py [--dim 10000] [--levels 17] [--epochs 20] [--margin 0.02] [--repeats 5]
"""
import argparse
import os
import sys
import time

import numpy as np


def run(dim=10_000, levels=17, epochs=20, margin=0.02, split_seed=0):
    """One split: dict of accuracies (HDC variants, LogisticRegression) and encoding speed."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    import hdc

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=split_seed, stratify=y)
    enc = hdc.RecordEncoder(dim, X.shape[1], levels=levels, low=0, high=16, seed=split_seed)
    enc(Xtr[:2])  # compile outside the timing
    t0 = time.perf_counter()
    htr, hte = enc(Xtr), enc(Xte)
    encode_s = time.perf_counter() - t0
    result = {"encode_samples_per_s": len(X) / encode_s}
    for name, kwargs in (("majority", {"epochs": 0}), ("retrained", {"epochs": epochs, "margin": 0.0}),
                         ("retrained+margin", {"epochs": epochs, "margin": margin}),
                         ("out of the box", {})):
        t0 = time.perf_counter()
        clf = hdc.CentroidClassifier(dim, seed=split_seed, **kwargs).fit(htr, ytr)
        result[f"fit_s {name}"] = time.perf_counter() - t0
        result[name] = clf.score(hte, yte)
    with threadpool_limits(1):
        result["logreg"] = LogisticRegression(max_iter=2000).fit(Xtr / 16, ytr).score(Xte / 16, yte)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--levels", type=int, default=17)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=5, help="random 70/30 splits")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
    rows = []
    for seed in range(args.repeats):
        r = run(args.dim, args.levels, args.epochs, args.margin, seed)
        rows.append(r)
        print(f"split {seed}: majority {r['majority']:.4f} | retrained {r['retrained']:.4f} | "
              f"retrained+margin {r['retrained+margin']:.4f} | out of the box {r['out of the box']:.4f} | "
              f"LogisticRegression {r['logreg']:.4f} | encode {r['encode_samples_per_s']:,.0f} samples/s")
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    print(f"median over {args.repeats} splits (dim={args.dim}, levels={args.levels}, epochs={args.epochs}, "
          f"margin={args.margin}): majority {med['majority']:.4f} | retrained {med['retrained']:.4f} | "
          f"retrained+margin {med['retrained+margin']:.4f} | out of the box (CentroidClassifier(dim)) "
          f"{med['out of the box']:.4f} | LogisticRegression {med['logreg']:.4f} | "
          f"gap to LogisticRegression {100 * (med['logreg'] - med['retrained+margin']):+.2f} points")


if __name__ == "__main__":
    main()
