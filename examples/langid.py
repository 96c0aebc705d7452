"""Language identification of short real texts with NGramEncoder + CentroidClassifier.

Data: the translated manual pages of Debian's manpages-l10n packages, 8 European languages in
Latin and Cyrillic script (German, French, Spanish, Italian, Dutch, Polish, Russian, Ukrainian):

    apt-get install -y --no-install-recommends manpages-de manpages-fr manpages-es \\
        manpages-it manpages-nl manpages-pl manpages-ru manpages-uk

The troff source is stripped to running text (code blocks, tables and macros dropped), cut into
texts of 60 to 400 characters at sentence ends, de-duplicated; texts found in two languages and
untranslated English paragraphs (the translations keep those in English; :func:`is_english`
flags them by English function words) are dropped, as label noise. A seeded shuffle gives 400
training texts and up to 500 test texts per language. Prints the HDC accuracy, a float baseline
(scikit-learn TF-IDF character 1-3-gram LogisticRegression) and the encoding speed.

    python examples/langid.py [--dim 10000] [--n 3] [--epochs 20] [--margin 0.04] [--repeats 3]
    python examples/langid.py --keep-english      # also keep untranslated English paragraphs
"""
import argparse
import gzip
import os
import re
import sys
import time
import unicodedata

import numpy as np

LANGUAGES = ("de", "fr", "es", "it", "nl", "pl", "ru", "uk")
MAN_ROOT = "/usr/share/man"
INSTALL = ("apt-get install -y --no-install-recommends "
           + " ".join(f"manpages-{lang}" for lang in LANGUAGES))

# macros whose arguments are running text set in a font (joined into the paragraph)
_FONT_MACROS = {"B", "I", "BR", "RB", "BI", "IB", "IR", "RI", "SM", "SB", "UR", "MT"}
# macros that start or end a block whose content is not running text
_SKIP_START = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "de": "..", "ig": ".."}
_ACCENTS = {"`": "\u0300", "'": "\u0301", "^": "\u0302", "~": "\u0303", ":": "\u0308",
            ",": "\u0327", "o": "\u030a", "v": "\u030c"}
_NAMED = {"/l": "ł", "/L": "Ł", "/o": "ø", "/O": "Ø", "ss": "ß", "Fo": "«", "Fc": "»", "fo": "‹",
          "fc": "›", "Bq": "„", "bq": "‚", "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "aq": "'",
          "dq": '"', "bu": "•", "em": "—", "en": "–", "hy": "-", "co": "©", "rg": "®", "rs": "\x00",
          "at": "@", "ha": "^", "ti": "~", "sl": "/", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
          "mc": "µ", "de": "°", "mu": "×", "di": "÷"}
_SPECIAL = re.compile(r"\\(?:\((..)|\[([^\]]*)\])")
_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),      # font changes
    (re.compile(r"\\s[+-]?\d+"), ""),                  # size changes
    (re.compile(r"\\[*n](\[[^\]]*\]|\(..|.)"), ""),   # string and register interpolation
    (re.compile(r"\\[hvwlLoDbxXNRSYZ]'[^']*'"), ""),    # motions and other quoted-argument escapes
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\[ ~0t]"), " "),
    (re.compile(r"\\e"), "\x00"),
    (re.compile(r"\\."), ""),
]


def _special(match):
    """A troff special character (``\\(xx`` or ``\\[name]``) as Unicode ('' when unknown)."""
    name = match.group(1) or match.group(2)
    if name.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}(_[0-9A-Fa-f]{4,6})*", name):
        return unicodedata.normalize("NFC", "".join(chr(int(h.lstrip("u"), 16)) for h in name.split("_")))
    if len(name) == 2 and name[0] in _ACCENTS and name[1].isalpha():
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    return _NAMED.get(name, "")


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def _clean(line):
    line = _SPECIAL.sub(_special, line)
    for pattern, repl in _ESCAPES:
        line = pattern.sub(repl, line)
    return line.replace("\x00", "\\")  # backslashes held back from the escape rules


def paragraphs(source):
    """Running-text paragraphs of one troff man page (a str), escapes and macros removed."""
    out, current, skip_until = [], [], None
    for raw in source.splitlines():
        if skip_until is not None:
            if raw.startswith(("." + skip_until, "'" + skip_until)):
                skip_until = None
            continue
        if raw.startswith((".\\\"", "'\\\"", '.\\"')):
            continue
        if raw.startswith((".", "'")):
            parts = raw[1:].strip().split(None, 1)
            name = parts[0] if parts else ""
            if name in _SKIP_START:
                skip_until = _SKIP_START[name]
            if name in _FONT_MACROS and len(parts) > 1:
                current.append(parts[1].replace('"', ""))
                continue
            if current:
                out.append(" ".join(current))
                current = []
            continue
        if not raw.strip():
            if current:
                out.append(" ".join(current))
                current = []
            continue
        current.append(raw)
    if current:
        out.append(" ".join(current))
    return [re.sub(r"\s+", " ", _clean(p)).strip() for p in out]


def cut(paragraph, min_len=60, max_len=400):
    """Pieces of 60..400 characters, cut at sentence ends (a longer sentence is dropped)."""
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(paragraph):
        candidate = f"{current} {sentence}".strip()
        if len(candidate) <= max_len:
            current = candidate
            continue
        if min_len <= len(current) <= max_len:
            pieces.append(current)
        current = sentence if len(sentence) <= max_len else ""
    if min_len <= len(current) <= max_len:
        pieces.append(current)
    return pieces


def _is_text(piece):
    """Mostly letters and spaces (drops option lists, paths and code left in the prose)."""
    letters = sum(ch.isalpha() or ch.isspace() for ch in piece)
    return letters >= 0.85 * len(piece)


# English function words that are not words of the eight languages: marks untranslated English
_ENGLISH = {"the", "and", "that", "are", "this", "with", "which", "from", "when", "used", "should",
            "these", "their", "does", "were", "would", "there", "than", "can", "for", "if", "not",
            "or", "it", "be", "you", "your"}
_WORD_SPLIT = re.compile(r"[\s,.;:!?()\"']+")


def is_english(text):
    """True for untranslated English (the translations keep untranslated paragraphs in English):
    at least 2 words, and 8% of the words, are English function words from ``_ENGLISH``."""
    words = [w for w in _WORD_SPLIT.split(text.lower()) if w.isalpha()]
    marks = sum(w in _ENGLISH for w in words)
    return marks >= 2 and marks >= 0.08 * len(words)


def load_texts(languages=LANGUAGES, root=MAN_ROOT, min_len=60, max_len=400, drop_english=True):
    """``{language: [text, ...]}`` from the installed translated man pages, in file order.

    ``drop_english``: drop texts that :func:`is_english` flags (untranslated paragraphs).
    """
    texts = {}
    for lang in languages:
        folder = os.path.join(root, lang)
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                       if not os.path.islink(os.path.join(d, f)))
        if len(files) < 50:
            raise RuntimeError(f"too few man pages under {folder} ({len(files)}); install them with: "
                               f"{INSTALL}")
        seen, found = set(), []
        for path in files:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as fh:
                source = fh.read().decode("utf-8", errors="replace")
            for para in paragraphs(source):
                for piece in cut(para, min_len, max_len):
                    if piece not in seen and _is_text(piece) and not (drop_english and is_english(piece)):
                        seen.add(piece)
                        found.append(piece)
        texts[lang] = found
    # a text found in two languages (names, untranslated English) says nothing about either
    counts = {}
    for found in texts.values():
        for t in found:
            counts[t] = counts.get(t, 0) + 1
    return {lang: [t for t in found if counts[t] == 1] for lang, found in texts.items()}


def split(texts, n_train=400, n_test=500, seed=0):
    """Seeded shuffle per language: ``(train_texts, train_labels, test_texts, test_labels)``."""
    rng = np.random.default_rng(seed)
    tr_x, tr_y, te_x, te_y = [], [], [], []
    for lang in sorted(texts):
        found = texts[lang]
        if len(found) < n_train + 50:
            raise RuntimeError(f"only {len(found)} texts for {lang!r}, need {n_train + 50}")
        order = rng.permutation(len(found))
        tr_x += [found[i] for i in order[:n_train]]
        te_x += [found[i] for i in order[n_train:n_train + n_test]]
        tr_y += [lang] * n_train
        te_y += [lang] * len(order[n_train:n_train + n_test])
    return tr_x, np.array(tr_y), te_x, np.array(te_y)


def hdc_accuracy(train, test, dim=10_000, n=3, epochs=20, margin=0.04, seed=0):
    """Fit NGramEncoder + CentroidClassifier; returns (accuracy, encode seconds, classifier).

    ``epochs=None``: the classifier's defaults (``CentroidClassifier(dim)``, out of the box).
    """
    import hdc

    enc = hdc.NGramEncoder(dim, n=n, seed=seed)
    enc(train[0][:1])  # compile and warm up outside the timing
    t0 = time.perf_counter()
    h_train, h_test = enc(train[0]), enc(test[0])
    seconds = time.perf_counter() - t0
    options = {} if epochs is None else {"epochs": epochs, "margin": margin}   # None: the defaults
    clf = hdc.CentroidClassifier(dim, seed=seed, **options).fit(h_train, train[1])
    return clf.score(h_test, test[1]), seconds, clf


def float_baseline(train, test):
    """TF-IDF character 1-3-grams (within word boundaries) + LogisticRegression accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=10.0))
    with threadpool_limits(1):  # BLAS threads on a busy small machine slow lbfgs down a lot
        return model.fit(*train).score(*test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10_000)
    parser.add_argument("--n", type=int, nargs="+", default=[3], help="n-gram size(s)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--margin", type=float, default=0.04, help="retraining margin (fraction of dim)")
    parser.add_argument("--repeats", type=int, default=3, help="random splits to average over")
    parser.add_argument("--keep-english", action="store_true",
                        help="keep untranslated English paragraphs (label noise) in the data")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    texts = load_texts(drop_english=not args.keep_english)
    print("texts per language:", {k: len(v) for k, v in texts.items()})
    rows = []
    for rep in range(args.repeats):
        tr_x, tr_y, te_x, te_y = split(texts, seed=rep)
        n = tuple(args.n)
        acc, seconds, _ = hdc_accuracy((tr_x, tr_y), (te_x, te_y), args.dim, n, args.epochs, args.margin, rep)
        acc0, _, _ = hdc_accuracy((tr_x, tr_y), (te_x, te_y), args.dim, n, 0, 0.0, rep)
        acc_default, _, _ = hdc_accuracy((tr_x, tr_y), (te_x, te_y), args.dim, n, None, None, rep)
        base = float_baseline((tr_x, tr_y), (te_x, te_y))
        all_text = tr_x + te_x
        mbytes = sum(len(t.encode("utf-8")) for t in all_text) / 1e6
        mchars = sum(len(t) for t in all_text) / 1e6
        rows.append((acc, acc0, base, mbytes / seconds, mchars / seconds, acc_default))
        print(f"split {rep}: {len(tr_x)} train / {len(te_x)} test texts; HDC (retrained) {acc:.4f}, "
              f"HDC (majority only) {acc0:.4f}, HDC out of the box {acc_default:.4f}, "
              f"float LogisticRegression {base:.4f}; "
              f"encoding {mbytes / seconds:.1f} MB/s ({mchars / seconds:.1f} M chars/s)")
    med = np.median(np.array(rows), axis=0)
    print(f"median over {args.repeats} splits (dim={args.dim}, n={tuple(args.n)}, epochs={args.epochs}, "
          f"margin={args.margin}): "
          f"HDC {med[0]:.4f} | HDC majority only {med[1]:.4f} | HDC out of the box (CentroidClassifier(dim)) "
          f"{med[5]:.4f} | float LR {med[2]:.4f} | "
          f"encode {med[3]:.1f} MB/s UTF-8 ({med[4]:.1f} M chars/s)")


if __name__ == "__main__":
    main()
