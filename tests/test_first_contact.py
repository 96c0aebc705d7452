"""First contact: what a new user meets on real data (wine, breast cancer) and in the CLI."""
import numpy as np
import pytest

import hdc


@pytest.fixture(scope="module")
def wine():
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_record_encoder_learns_ranges_in_fit(wine):
    Xtr, Xte, ytr, yte = wine
    enc = hdc.RecordEncoder(4096, Xtr.shape[1], levels=32, seed=0, clip=True).fit(Xtr)
    np.testing.assert_array_equal(enc.low, Xtr.min(0))
    np.testing.assert_array_equal(enc.high, Xtr.max(0))
    clf = hdc.CentroidClassifier(4096).fit(enc(Xtr), ytr)
    assert clf.score(enc(Xte), yte) > 0.9   # test values outside the training range are clipped


def test_record_encoder_without_clip_names_the_feature(wine):
    Xtr, Xte, _, _ = wine
    enc = hdc.RecordEncoder(256, Xtr.shape[1], seed=0).fit(Xtr[:10])
    with pytest.raises(ValueError, match="for feature .*clip=True"):
        enc(Xte)


def test_constant_feature_named_in_fit():
    """Digits has pixels that are 0 in every image: fit warns, naming them, and still works."""
    X = np.random.default_rng(0).random((20, 4))
    X[:, 2] = 5.0
    with pytest.warns(UserWarning, match="feature 2 is constant"):
        enc = hdc.RecordEncoder(256, 4, seed=0).fit(X)
    assert enc.low[2] < 5.0 < enc.high[2] and (enc.index(X)[:, 2] == 8).all()   # the middle of 16 levels


def test_hdencoder_fits_a_copy_of_the_encoder(wine):
    from sklearn.pipeline import make_pipeline

    from hdc.sklearn import HDEncoder

    Xtr, Xte, ytr, yte = wine
    enc = hdc.RecordEncoder(4096, Xtr.shape[1], levels=32, seed=0, clip=True)
    model = make_pipeline(HDEncoder(enc), hdc.CentroidClassifier(4096)).fit(Xtr, ytr)
    assert model.score(Xte, yte) > 0.9
    assert float(enc.high[0]) == 1.0   # the parameter is left as given


@pytest.mark.parametrize("method", ["predict", "score", "predict_proba", "decision_function", "kneighbors"])
def test_not_fitted_error_like_sklearn(method):
    clf = hdc.CentroidClassifier(64)
    X = hdc.random(3, 64, seed=0)
    args = (X, [0, 1, 0]) if method == "score" else (X,)
    with pytest.raises(hdc.NotFittedError, match="not fitted") as info:
        getattr(clf, method)(*args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_predict_proba_and_decision_function():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    enc = hdc.RecordEncoder(4096, X.shape[1], levels=32, seed=0).fit(X)
    H = enc(X)
    clf = hdc.CentroidClassifier(4096).fit(H[::2], y[::2])
    proba = clf.predict_proba(H[1::2])
    assert proba.shape == (len(y[1::2]), 2) and np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(H[1::2]))
    d = clf.decision_function(H[1::2])
    assert d.shape == (len(y[1::2]),)
    np.testing.assert_array_equal(d > 0, clf.predict(H[1::2]) == 1)
    # calibrated: the fitted temperature beats a much colder and a much hotter one on held-out data
    truth = y[1::2]

    def log_loss(t):
        z = t * (1 - 2 * hdc.cdist(H[1::2], clf.prototypes_) / 4096)
        z -= z.max(1, keepdims=True)
        return -np.mean(z[np.arange(len(truth)), truth] - np.log(np.exp(z).sum(1)))

    assert log_loss(clf.temperature_) < min(log_loss(clf.temperature_ * 10), log_loss(clf.temperature_ / 10))
    multi = hdc.CentroidClassifier(4096).fit(H[:30], np.arange(30) % 3)
    assert multi.decision_function(H[:5]).shape == (5, 3)


def test_helpful_type_errors():
    a, b = hdc.random(2, 64, seed=0)
    with pytest.raises(TypeError, match="BinaryHV.stack"):
        hdc.bundle([a, b])
    with pytest.raises(TypeError, match="from_torchhd"):
        import torch
        hdc.bind(torch.zeros(64, dtype=torch.bool), a)
    with pytest.raises(TypeError, match="to_bool"):
        np.asarray(a)


def test_ngram_encoder_takes_numpy_strings():
    enc = hdc.NGramEncoder(256, 3, seed=0)
    texts = ["hello world", "bonjour le monde"]
    assert bool((enc(np.array(texts)) == enc(texts)).all())
    assert bool(enc(np.array("hello world")) == enc("hello world"))


def test_train_saves_a_checkpoint_by_default(tmp_path, monkeypatch, capsys):
    from hdc.cli.main import main
    from hdc.cli.train import default_threads

    monkeypatch.chdir(tmp_path)
    assert main(["train", "mqar", "--steps", "2", "--d-model", "16", "--heads", "2", "--layers", "1",
                 "--seq-len", "24", "--batch-size", "4", "--pairs", "4", "--vocab", "16", "--no-progress"]) == 0
    assert (tmp_path / "hdc-mqar-kwta.pt").exists()
    assert "checkpoint written to hdc-mqar-kwta.pt" in capsys.readouterr().out
    import os
    assert 1 <= default_threads() <= (os.cpu_count() or 1)


def test_compare_help_shows_defaults(capsys):
    from hdc.cli.main import main

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert "(default: mqar 1000, charlm 1200)" in out and "(default: linear)" in out


def test_readme_fresh_machine_commands():
    import pathlib

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    assert "apt-get update && apt-get install" in readme and "root" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme


def test_fit_keeps_ranges_given_to_the_constructor():
    X = np.random.default_rng(0).random((20, 3)) * 5
    enc = hdc.RecordEncoder(256, 3, low=-10.0, seed=0).fit(X)
    assert (enc.low == -10.0).all() and np.array_equal(enc.high, X.max(0))
    fixed = hdc.RecordEncoder(256, 3, low=0, high=16, seed=0).fit(X)
    assert (fixed.low == 0).all() and (fixed.high == 16).all()
