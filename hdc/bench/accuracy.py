"""Accuracy at equal task: what binary costs a user.

One classification task (scikit-learn's bundled 8x8 digits: 1,797 images, 64 features with
values 0..16, no download) solved by: binary HDC on hdc (record encoding, centroid classifier
and 1-nearest-neighbour search by popcount Hamming distance), float HDC on torchhd MAP (the same
record encoding, centroids, cosine) and float32 baselines without HDC (nearest centroid, and
scikit-learn's logistic regression). Each row reports accuracy, time (median of repeats) and
memory (bytes per encoded vector, model bytes).

>>> from hdc.bench.accuracy import run_accuracy
>>> res = run_accuracy(dim=512, n=200, repeats=1)
>>> res["status"], sorted(res["rows"][0])[:3]
('ok', ['accuracy', 'bytes_per_vector', 'encode_s'])
"""
import time

import numpy as np

N_LEVELS = 17          # digits pixels take the integer values 0..16
TEST_FRACTION = 0.3
RETRAIN_EPOCHS = 10   # CentroidClassifier's optional perceptron-style retraining passes


def load_digits_split(n=None, seed=0):
    """Digits as float64 features and int labels, shuffled and split 70/30 (first ``n`` samples)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("scikit-learn not installed (pip install 'hdc[learn]'); its bundled "
                          "digits data set is the task") from None
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    if n is not None:
        order = order[:n]
    X, y = X[order].astype(np.float64), y[order].astype(np.int64)
    cut = int(round(len(y) * (1 - TEST_FRACTION)))
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _median_time(fn, repeats):
    """(result of the last call, median seconds); one call only when a call takes over 1 s."""
    times, result = [], None
    for i in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if times[-1] > 1.0:
            break
    return result, float(np.median(times))


def _row(name, what, acc, encode_s, fit_s, predict_s, bpv, model_bytes, n_test):
    return {"name": name, "representation": what, "accuracy": float(acc), "encode_s": encode_s,
            "fit_s": fit_s, "predict_s": predict_s,
            "predict_per_sample_us": predict_s / max(n_test, 1) * 1e6,
            "bytes_per_vector": bpv, "model_bytes": int(model_bytes)}


def _hdc_rows(Xtr, ytr, Xte, yte, dim, repeats):
    import hdc
    enc = hdc.RecordEncoder(dim, n_features=Xtr.shape[1], levels=N_LEVELS, low=0.0, high=16.0, seed=0)
    (htr, hte), t_enc = _median_time(lambda: (enc.encode(Xtr), enc.encode(Xte)), repeats)
    bpv = htr.words.shape[-1] * 8
    rows = []
    try:
        clf_cls = hdc.CentroidClassifier
    except Exception as exc:  # noqa: BLE001
        rows.append({"name": "hdc binary centroid", "status": f"not available: hdc.CentroidClassifier "
                                                               f"({type(exc).__name__}: {exc})"})
    else:
        n_classes = len(np.unique(ytr))
        for epochs in (0, RETRAIN_EPOCHS):
            clf, t_fit = _median_time(lambda: clf_cls(dim, epochs=epochs, margin=0.0).fit(htr, ytr), repeats)
            pred, t_pred = _median_time(lambda: clf.predict(hte), repeats)
            name = "hdc binary centroid" + (f" + {epochs} retraining epochs" if epochs else "")
            rows.append(_row(name, "binary, popcount Hamming", np.mean(np.asarray(pred) == yte),
                             t_enc, t_fit, t_pred, bpv, n_classes * bpv, len(yte)))
    try:
        mem_cls = hdc.AssociativeMemory
    except Exception as exc:  # noqa: BLE001
        rows.append({"name": "hdc binary 1-NN", "status": f"not available: hdc.AssociativeMemory "
                                                           f"({type(exc).__name__}: {exc})"})
    else:
        def fit_mem():
            mem = mem_cls(dim)
            mem.add(htr, labels=ytr)
            return mem
        mem, t_fit = _median_time(fit_mem, repeats)
        (_, labels), t_pred = _median_time(lambda: mem.search(hte, k=1), repeats)
        pred = np.asarray(labels).reshape(len(yte), -1)[:, 0]
        rows.append(_row("hdc binary 1-NN", "binary, popcount Hamming", np.mean(pred == yte),
                         t_enc, t_fit, t_pred, bpv, len(ytr) * bpv, len(yte)))
    return rows


def _torchhd_rows(Xtr, ytr, Xte, yte, dim, repeats):
    import torch
    import torchhd
    gen = torch.Generator().manual_seed(0)
    ids = torchhd.random(Xtr.shape[1], dim, "MAP", generator=gen)
    levels = torchhd.level(N_LEVELS, dim, "MAP", generator=gen)

    def encode(X):
        idx = torch.from_numpy(np.rint(X).astype(np.int64))
        return torch.cat([torchhd.hash_table(ids, levels[idx[i:i + 64]]) for i in range(0, len(idx), 64)])

    (htr, hte), t_enc = _median_time(lambda: (encode(Xtr), encode(Xte)), repeats)
    n_classes = int(ytr.max()) + 1

    def fit():
        model = torchhd.models.Centroid(dim, n_classes)
        model.add(htr, torch.from_numpy(ytr))
        return model
    model, t_fit = _median_time(fit, repeats)
    with torch.no_grad():
        pred, t_pred = _median_time(lambda: model(hte).argmax(-1), repeats)
    bpv = dim * htr.element_size()
    return [_row("torchhd MAP centroid", f"{htr.dtype} per element, cosine",
                 np.mean(pred.numpy() == yte), t_enc, t_fit, t_pred, bpv, n_classes * bpv, len(yte))]


def _float_rows(Xtr, ytr, Xte, yte, repeats):
    rows = []
    xtr, xte = Xtr.astype(np.float32), Xte.astype(np.float32)
    n_classes = int(ytr.max()) + 1

    def fit():
        return np.stack([xtr[ytr == c].mean(axis=0) for c in range(n_classes)])
    cent, t_fit = _median_time(fit, repeats)

    def predict():
        d = (xte * xte).sum(1)[:, None] - 2 * xte @ cent.T + (cent * cent).sum(1)[None, :]
        return d.argmin(1)
    pred, t_pred = _median_time(predict, repeats)
    rows.append(_row("float32 nearest centroid", "raw features, float32, Euclidean", np.mean(pred == yte),
                     0.0, t_fit, t_pred, 4 * xtr.shape[1], cent.nbytes, len(yte)))
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        rows.append({"name": "logistic regression", "status": "missing: scikit-learn not installed"})
        return rows
    scaler = StandardScaler().fit(Xtr)
    str_, ste = scaler.transform(Xtr), scaler.transform(Xte)
    clf, t_fit = _median_time(lambda: LogisticRegression(max_iter=500).fit(str_, ytr), repeats)
    pred, t_pred = _median_time(lambda: clf.predict(ste), repeats)
    rows.append(_row("logistic regression (sklearn)", "raw features, float64, linear",
                     np.mean(pred == yte), 0.0, t_fit, t_pred, 8 * Xtr.shape[1],
                     clf.coef_.nbytes + clf.intercept_.nbytes, len(yte)))
    return rows


def run_accuracy(dim=10_000, n=None, repeats=3, log=None):
    """Run the equal-task comparison; returns ``{"status", "task", "rows"}``.

    Rows that cannot run carry ``{"name", "status": "missing: ..."}`` instead of figures.
    """
    try:
        Xtr, ytr, Xte, yte = load_digits_split(n)
    except ImportError as exc:
        return {"status": f"not available: {exc}", "rows": []}
    rows = []
    try:
        rows += _hdc_rows(Xtr, ytr, Xte, yte, dim, repeats)
    except Exception as exc:  # noqa: BLE001 - a missing layer is reported, not fatal
        rows.append({"name": "hdc binary", "status": f"not available: {type(exc).__name__}: {exc}"})
    try:
        rows += _torchhd_rows(Xtr, ytr, Xte, yte, dim, repeats)
    except ImportError as exc:
        rows.append({"name": "torchhd MAP centroid", "status": f"missing: {exc.name or exc} not installed"})
    rows += _float_rows(Xtr, ytr, Xte, yte, repeats)
    for row in rows:
        row.setdefault("status", "ok")
    return {"status": "ok", "dim": dim,
            "task": f"scikit-learn digits (8x8 images, 64 features, 10 classes): {len(ytr)} train / "
                    f"{len(yte)} test, record encoding with {N_LEVELS} levels at dim {dim:,}",
            "rows": rows}
