"""Encoding throughput: NGramEncoder (texts) and RecordEncoder (feature vectors) at dim 10,000.

    python -m pytest benchmarks/test_encoding_bench.py --benchmark-only --benchmark-group-by=group \\
        --benchmark-columns=median,rounds

Groups compare hdc with the baselines on the same inputs: an unpacked NumPy encoder (one byte
per element, the textbook implementation) and torchhd BSC (``torchhd.ngrams`` /
``torchhd.hash_table``). Throughput (MB/s of UTF-8 text, M characters/s, samples/s) is in each
benchmark's ``extra_info``; ``*_full`` benchmarks time hdc alone on the whole workload that the
targets are stated for (5 MB/s of text; 50,000 samples of 64 features per second). Each hdc
result is checked against the slow reference before it is timed.

Texts: the man-page corpus of examples/langid.py when its packages are installed, else running
text cut from the docstrings of Python's standard library (both real text).
"""
import importlib.util
import inspect
import os
import pathlib
import statistics

import numpy as np
import pytest

import hdc

DIM = 10_000
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _langid():
    spec = importlib.util.spec_from_file_location("langid", ROOT / "examples" / "langid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stdlib_texts(limit=8000):
    """Docstring paragraphs of the standard library, cut to 60..400 characters."""
    import email, json, logging, argparse, collections, pathlib as pl, unittest  # noqa: E401

    texts = []
    for module in (email, json, logging, argparse, collections, pl, unittest, os, inspect):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj) or ""
            for para in doc.split("\n\n"):
                para = " ".join(para.split())
                texts += _langid().cut(para)
    return sorted(set(texts))[:limit]


@pytest.fixture(scope="module")
def texts():
    try:
        corpus = _langid().load_texts()
        found = [t for lang in sorted(corpus) for t in corpus[lang][:1000]]
        source = "man pages (8 languages)"
    except RuntimeError:
        found, source = _stdlib_texts(), "stdlib docstrings"
    return found, source


def _throughput(benchmark, texts):
    t = statistics.median(benchmark.stats.stats.data)
    nbytes = sum(len(s.encode("utf-8")) for s in texts)
    nchars = sum(len(s) for s in texts)
    benchmark.extra_info.update({"MB_per_s": nbytes / t / 1e6, "Mchars_per_s": nchars / t / 1e6,
                                 "texts": len(texts), "MB": nbytes / 1e6})


def _numpy_ngrams(items_bits, codes, n=3):
    """Unpacked reference: items (A, dim) uint8 0/1; one text's code indices -> majority (dim,)."""
    rows = items_bits[codes]
    gram = np.roll(rows[:len(codes) - n + 1], n - 1, axis=1)
    for j in range(1, n):
        gram = gram ^ np.roll(rows[j:len(codes) - n + 1 + j], n - 1 - j, axis=1)
    counts = gram.sum(axis=0, dtype=np.int64)
    return (2 * counts > gram.shape[0]).astype(np.uint8)


@pytest.mark.parametrize("library", ["hdc", "numpy-unpacked", "torchhd-bsc"])
def test_ngram_small(benchmark, texts, library):
    """The same 200 texts for every library (the baselines are too slow for the full corpus)."""
    benchmark.group = f"ngram n=3 dim={DIM}, 200 texts"
    sample = texts[0][::max(1, len(texts[0]) // 200)][:200]
    enc = hdc.NGramEncoder(DIM, n=3, seed=0)
    ref = enc(sample)
    if library == "hdc":
        benchmark.pedantic(enc, args=(sample,), rounds=7, iterations=1, warmup_rounds=1)
    else:
        symbols = sorted({ord(c) for s in sample for c in s})
        index = {c: i for i, c in enumerate(symbols)}
        items = enc.item_vectors(symbols).to_bool().astype(np.uint8)
        codes = [np.array([index[ord(c)] for c in s]) for s in sample]
        if library == "numpy-unpacked":
            def run():
                return [_numpy_ngrams(items, c) for c in codes]
            out = run()
            odd = [i for i, c in enumerate(codes) if (len(c) - 2) % 2]  # no ties: must match exactly
            assert all(np.array_equal(out[i].astype(bool), ref[i].to_bool()) for i in odd)
        else:
            import torch
            import torchhd

            tensors = torchhd.BSCTensor(torch.from_numpy(items.astype(bool)))

            def run():
                return [torchhd.ngrams(tensors[torch.from_numpy(c)], n=3) for c in codes]
        benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    _throughput(benchmark, sample)


def test_ngram_full(benchmark, texts):
    """hdc on the whole corpus (target: >= 5 MB/s of text at dim 10,000)."""
    benchmark.group = f"ngram n=3 dim={DIM}, full corpus"
    found, source = texts
    enc = hdc.NGramEncoder(DIM, n=3, seed=0)
    enc(found)
    benchmark.pedantic(enc, args=(found,), rounds=5, iterations=1)
    _throughput(benchmark, found)
    benchmark.extra_info["source"] = source


def _numpy_record(enc, X):
    """Unpacked reference: gather level rows, XOR with ids, count, majority (ties from enc.tie)."""
    idx = enc.index(X)
    ids = enc.ids.to_bool()
    book = enc.level_encoder.codebook.to_bool()
    tie = enc.tie.to_bool()
    out = np.empty((len(X), enc.dim), bool)
    for i in range(len(X)):
        counts = (book[idx[i]] ^ ids).sum(axis=0)
        out[i] = (2 * counts > enc.n_features) | ((2 * counts == enc.n_features) & tie)
    return out


@pytest.mark.parametrize("library", ["hdc", "numpy-unpacked", "torchhd-bsc"])
def test_record_small(benchmark, library):
    """500 samples of 64 features for every library."""
    benchmark.group = f"record 64 features dim={DIM}, 500 samples"
    X = np.random.default_rng(0).uniform(0, 1, (500, 64))
    enc = hdc.RecordEncoder(DIM, 64, levels=16, seed=0)
    ref = enc(X)
    if library == "hdc":
        benchmark.pedantic(enc, args=(X,), rounds=7, iterations=1, warmup_rounds=1)
    elif library == "numpy-unpacked":
        assert np.array_equal(_numpy_record(enc, X[:20]), ref[:20].to_bool())
        benchmark.pedantic(_numpy_record, args=(enc, X), rounds=3, iterations=1)
    else:
        import torch
        import torchhd

        keys = torchhd.BSCTensor(torch.from_numpy(enc.ids.to_bool()))
        book = torchhd.BSCTensor(torch.from_numpy(enc.level_encoder.codebook.to_bool()))
        idx = torch.from_numpy(enc.index(X).astype(np.int64))

        def run():
            return torchhd.hash_table(keys, book[idx])
        benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["samples_per_s"] = len(X) / statistics.median(benchmark.stats.stats.data)


def test_record_full(benchmark):
    """hdc on 50,000 samples of 64 features (target: >= 50,000 samples/s at dim 10,000)."""
    benchmark.group = f"record 64 features dim={DIM}, 50000 samples"
    X = np.random.default_rng(1).uniform(0, 1, (50_000, 64))
    enc = hdc.RecordEncoder(DIM, 64, levels=16, seed=0)
    enc(X[:100])
    benchmark.pedantic(enc, args=(X,), rounds=5, iterations=1)
    benchmark.extra_info["samples_per_s"] = len(X) / statistics.median(benchmark.stats.stats.data)
