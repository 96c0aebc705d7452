"""CentroidClassifier: accuracy on scikit-learn's digits, Pipeline use, partial_fit, retraining."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

import hdc
from hdc.sklearn import HDEncoder

DIM = 4096


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def encoded(digits):
    Xtr, Xte, ytr, yte = digits
    enc = hdc.RecordEncoder(DIM, 64, levels=17, low=0, high=16, seed=0)
    return enc(Xtr), enc(Xte), ytr, yte


def test_digits_within_two_points_of_logistic_regression(digits, encoded):
    Xtr, Xte, ytr, yte = digits
    with threadpool_limits(1):  # BLAS threads on a busy 2-core machine make lbfgs crawl
        baseline = LogisticRegression(max_iter=2000).fit(Xtr / 16, ytr).score(Xte / 16, yte)
    Htr, Hte, _, _ = encoded
    clf = hdc.CentroidClassifier(DIM, epochs=20, margin=0.02).fit(Htr, ytr)
    accuracy = clf.score(Hte, yte)
    assert accuracy >= baseline - 0.02, (accuracy, baseline)
    # majority prototypes alone, and retraining on errors only, are weaker but far above chance
    plain = hdc.CentroidClassifier(DIM).fit(Htr, ytr).score(Hte, yte)
    errors_only = hdc.CentroidClassifier(DIM, epochs=20).fit(Htr, ytr).score(Hte, yte)
    assert 0.8 < plain < errors_only <= accuracy


def test_retraining_improves_train_accuracy(encoded):
    Htr, _, ytr, _ = encoded
    clf = hdc.CentroidClassifier(DIM, epochs=10).fit(Htr, ytr)
    history = clf.train_accuracy_
    assert history[0] == hdc.CentroidClassifier(DIM).fit(Htr, ytr).score(Htr, ytr)
    assert clf.score(Htr, ytr) == max(history) > history[0]
    # the kept prototypes are those of the best epoch, so more epochs never lose train accuracy
    for epochs in (1, 2, 5):
        fewer = hdc.CentroidClassifier(DIM, epochs=epochs).fit(Htr, ytr).score(Htr, ytr)
        assert clf.score(Htr, ytr) >= fewer


def test_retrain_epoch_replay_is_exact(encoded):
    """The compiled sequential epoch and the Accumulator replay of its moves agree exactly."""
    Htr, _, ytr, _ = encoded
    X, y = Htr[:400], ytr[:400]
    clf = hdc.CentroidClassifier(DIM, seed=5).fit(X, y)
    counts, totals = (a.copy() for a in clf.counts_)
    protos = clf.prototypes_.words.copy()
    moves = np.empty(len(X), np.int64)
    order = np.random.default_rng(5).permutation(len(X))
    hdc.backend.kernels().retrain_epoch(X.words, y.astype(np.int64), order, counts, totals, protos,
                                        hdc.random(1, DIM, seed=5)[0].words, 1, DIM, 0, moves)
    assert (moves >= 0).sum() > 0
    clf.retrain(X, y, epochs=1)
    assert clf.train_accuracy_[1] > clf.train_accuracy_[0]
    new_counts, new_totals = clf.counts_
    assert np.array_equal(new_counts, counts) and np.array_equal(new_totals, totals)
    assert np.array_equal(clf.prototypes_.words, protos)


def test_margin_retraining_keeps_training():
    """With a margin, epochs go on after 100% train accuracy and widen the gap to other classes."""
    X = hdc.random(40, 1024, seed=0)
    y = np.arange(40) % 2
    plain = hdc.CentroidClassifier(1024, epochs=30).fit(X, y)
    wide = hdc.CentroidClassifier(1024, epochs=30, margin=0.15).fit(X, y)
    assert plain.score(X, y) == wide.score(X, y) == 1.0
    gap = []
    for clf in (plain, wide):
        d = hdc.cdist(X, clf.prototypes_).astype(np.int64)
        gap.append(np.min(d[np.arange(40), 1 - y] - d[np.arange(40), y]))
    assert gap[1] > gap[0]
    with pytest.raises(ValueError, match="margin must be in"):
        hdc.CentroidClassifier(64, epochs=1, margin=1.5).fit(hdc.random(2, 64, seed=0), [0, 1])


def test_retraining_update_rule():
    """A misclassified x is added to its class (weight lr) and ~x to the predicted class."""
    X = hdc.BinaryHV.from_bool([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]])
    y = np.array([0, 1, 1])
    clf = hdc.CentroidClassifier(4, seed=0).fit(X, y)
    before, before_n = clf.counts_
    clf._move(X[[0, 2]], np.array([0, 1]), np.array([1, 0]), lr=3)
    after, after_n = clf.counts_
    bits = X.to_bool().astype(np.int64)
    expected = before.copy()
    expected[0] += 3 * bits[0] + 3 * (1 - bits[2])
    expected[1] += 3 * bits[2] + 3 * (1 - bits[0])
    assert np.array_equal(after, expected)
    assert after_n.tolist() == [before_n[0] + 6, before_n[1] + 6]
    # in bipolar terms (2 * count - n) that is +x for the true class and -x for the predicted one
    bipolar = 2 * after - after_n[:, None]
    bipolar_before = 2 * before - before_n[:, None]
    signed = 2 * bits - 1
    assert np.array_equal(bipolar[0] - bipolar_before[0], 3 * (signed[0] - signed[2]))


def test_partial_fit_equals_fit(encoded):
    Htr, Hte, ytr, _ = encoded
    full = hdc.CentroidClassifier(DIM, seed=3).fit(Htr, ytr)
    parts = hdc.CentroidClassifier(DIM, seed=3)
    for chunk in np.array_split(np.arange(len(Htr)), 4):
        parts.partial_fit(Htr[chunk], ytr[chunk])
    assert np.array_equal(parts.classes_, full.classes_)
    assert bool((parts.prototypes_ == full.prototypes_).all())
    assert np.array_equal(parts.predict(Hte), full.predict(Hte))
    counts, totals = full.counts_
    assert counts.shape == (10, DIM) and totals.sum() == len(Htr)


def test_partial_fit_new_classes_and_labels():
    X = hdc.random(6, 512, seed=0)
    clf = hdc.CentroidClassifier(512)
    clf.partial_fit(X[:2], ["b", "b"], classes=["a", "b"])
    assert clf.classes_.tolist() == ["a", "b"]
    clf.partial_fit(X[2:], ["c", "c", "a", "a"])
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert clf.predict(X).tolist() == ["b", "b", "c", "c", "a", "a"]
    assert clf.kneighbors(X, k=3)[1].shape == (6, 3)


def test_prototypes_are_majority_bundles():
    X = hdc.random(9, 300, seed=1)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1])
    clf = hdc.CentroidClassifier(300, seed=7).fit(X, y)
    tie = hdc.random(1, 300, seed=7)[0]
    assert bool(clf.prototypes_[0] == hdc.bundle(X[y == 0], tie=tie))
    assert bool(clf.prototypes_[1] == hdc.bundle(X[y == 1], tie=tie))


def test_pipeline_with_record_encoder(digits):
    Xtr, Xte, ytr, yte = digits
    model = make_pipeline(HDEncoder(hdc.RecordEncoder(2048, 64, levels=17, low=0, high=16, seed=0)),
                          hdc.CentroidClassifier(2048, epochs=5))
    assert model.fit(Xtr, ytr).score(Xte, yte) > 0.9
    scores = cross_val_score(model, Xtr[:500], ytr[:500], cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.8)
    copy = clone(model)
    assert copy.get_params()["centroidclassifier__epochs"] == 5
    copy.set_params(centroidclassifier__epochs=0)
    assert copy.steps[1][1].epochs == 0


def test_pipeline_with_ngram_encoder():
    texts = np.array(["the cat sat on the mat", "a dog ran in the park", "le chat est sur le tapis",
                      "un chien court dans le parc", "the bird sings", "le oiseau chante"])
    y = ["en", "en", "fr", "fr", "en", "fr"]
    model = make_pipeline(HDEncoder(hdc.NGramEncoder(4096, n=3, seed=0)), hdc.CentroidClassifier(4096))
    assert model.fit(texts, y).predict(texts).tolist() == y
    assert model.predict(["the mat of the cat"]).tolist() == ["en"]


def test_errors():
    clf = hdc.CentroidClassifier(128)
    X = hdc.random(4, 128, seed=0)
    with pytest.raises(ValueError, match="not fitted"):
        clf.predict(X)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        clf.fit(X, [0, 1])
    with pytest.raises(ValueError, match="X must have dim 128"):
        clf.fit(hdc.random(4, 64, seed=0), [0, 1, 0, 1])
    with pytest.raises(TypeError, match="X must be a hdc.BinaryHV"):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        hdc.CentroidClassifier(128, epochs=-1).fit(X, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="invalid parameter"):
        clf.set_params(nope=1)
    with pytest.raises(TypeError, match="encoder must be an hdc encoder"):
        HDEncoder(encoder=3).fit([[1]])


def _langid_example():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "langid.py"
    spec = importlib.util.spec_from_file_location("langid_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_language_identification_accuracy():
    """8 European languages (Latin and Cyrillic), texts of 60-400 characters, 400 train per language.

    Needs Debian's translated man pages (see examples/langid.py for the apt-get line).
    """
    langid = _langid_example()
    texts = langid.load_texts()
    assert sorted(texts) == sorted(langid.LANGUAGES)
    train_x, train_y, test_x, test_y = langid.split(texts, seed=0)
    assert len(train_x) == 3200 and len(test_x) >= 3200
    assert all(60 <= len(t) <= 400 for t in train_x + test_x)
    accuracy, _, clf = langid.hdc_accuracy((train_x, train_y), (test_x, test_y), dim=10_000, n=3,
                                           epochs=20, margin=0.04, seed=0)
    assert accuracy >= 0.99, accuracy
    assert clf.classes_.tolist() == sorted(langid.LANGUAGES)


def test_langid_text_extraction():
    """The troff cleaner turns escapes into Unicode and drops macros, code blocks and comments."""
    langid = _langid_example()
    source = "\n".join([
        '.\\" a comment', ".TH TEST 1", ".SH BESCHREIBUNG",
        "Dies ist ein \\fBkleiner\\fR Test f\\(:ur \\(Fod\\[u00E9]j\\(`a vu\\(Fc und",
        ".B fett", "weiter.", ".nf", "code line", ".fi", ".PP", "Zweiter Absatz.",
    ])
    paras = langid.paragraphs(source)
    assert paras == ["Dies ist ein kleiner Test für «déjà vu» und fett weiter.", "Zweiter Absatz."]
    long = "Erster Satz ist hier. " * 30
    pieces = langid.cut(long.strip())
    assert pieces and all(60 <= len(p) <= 400 for p in pieces)
    assert langid.is_english("This option is used when the file does not exist.")
    assert not langid.is_english("Diese Option wird verwendet, wenn die Datei nicht existiert.")
