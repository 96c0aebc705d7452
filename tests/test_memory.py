"""AssociativeMemory: add, search, labels, remove, contains, cleanup, growth and errors."""
import numpy as np
import pytest

import hdc
from hdc.memory import LabelNotFound


def noisy(x, flips, seed):
    """``x`` with ``flips`` random elements flipped per vector."""
    rng = np.random.default_rng(seed)
    bits = x.to_bool()
    for row in bits.reshape(-1, x.dim):
        row[rng.choice(x.dim, flips, replace=False)] ^= True
    return hdc.BinaryHV.from_bool(bits)


def test_search_default_labels_match_topk(kernel_path):
    items = hdc.random(300, 1000, seed=0)
    mem = hdc.AssociativeMemory(1000)
    mem.add(items[:100])
    mem.add(items[100:])
    assert len(mem) == 300 and mem.dim == 1000
    queries = noisy(items[[5, 150, 299]], 200, seed=1)
    d, labels = mem.search(queries, k=4)
    want_d, want_i = hdc.topk(queries, items, 4)
    assert labels.dtype == np.int64 and d.dtype == np.int32
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(labels, want_i)
    assert labels[:, 0].tolist() == [5, 150, 299]
    d1, l1 = mem.search(queries[1])
    assert d1.shape == (1,) and l1.tolist() == [150]


def test_any_hashable_labels_and_duplicates():
    items = hdc.random(4, 256, seed=2)
    mem = hdc.AssociativeMemory(256)
    mem.add(items[0], labels=("a", 1))
    mem.add(items[1:3], labels=["b", "b"])
    mem.add(items[3], labels=7)
    assert ("a", 1) in mem and "b" in mem and 7 in mem and "c" not in mem and [1] not in mem
    d, labels = mem.search(items, k=1)
    assert labels.dtype == object
    assert labels[:, 0].tolist() == [("a", 1), "b", "b", 7]
    # the duplicate label: both rows, nearest first
    _, top = mem.search(items[2], k=2)
    assert top.tolist()[0] == "b"
    assert mem.remove("b") == 2
    assert len(mem) == 2 and "b" not in mem
    assert mem.labels.tolist() == [("a", 1), 7]
    np.testing.assert_array_equal(mem.vectors.words, items[[0, 3]].words)


def test_equal_distances_in_insertion_order():
    x = hdc.random(1, 128, seed=3)[0]
    mem = hdc.AssociativeMemory(128)
    mem.add(hdc.BinaryHV.stack([x, x, x]), labels=["first", "second", "third"])
    d, labels = mem.search(x, k=3)
    assert d.tolist() == [0, 0, 0] and labels.tolist() == ["first", "second", "third"]


def test_remove_by_label_and_insertion_index_labels(kernel_path):
    items = hdc.random(10, 200, seed=4)
    mem = hdc.AssociativeMemory(200)
    mem.add(items)
    assert mem.remove([2, 5]) == 2 and mem.remove(np.array([9])) == 1
    assert len(mem) == 7 and 2 not in mem and 3 in mem
    mem.add(items[2])                    # a new default label: the insertion index 10
    assert mem.labels.tolist() == [0, 1, 3, 4, 6, 7, 8, 10]
    _, labels = mem.search(items, k=1)
    assert labels[[0, 3, 8], 0].tolist() == [0, 3, 8]
    assert labels[2, 0] == 10            # items[2] is stored again under label 10
    with pytest.raises(LabelNotFound, match="99"):
        mem.remove([3, 99])
    with pytest.raises(KeyError):
        mem.remove(5)
    with pytest.raises(ValueError):
        mem.remove("x")
    assert len(mem) == 8 and 3 in mem    # a failed remove removes nothing


def test_cleanup_returns_stored_vectors(kernel_path):
    items = hdc.random(50, 2048, seed=6)
    mem = hdc.AssociativeMemory(2048)
    mem.add(items, labels=[f"item{i}" for i in range(50)])
    queries = noisy(items[[3, 17, 42]], 500, seed=7)
    clean = mem.cleanup(queries)
    assert isinstance(clean, hdc.BinaryHV) and clean.shape == (3,)
    assert bool((clean == items[[3, 17, 42]]).all())
    one = mem.cleanup(queries[1])
    assert one.shape == () and bool(one == items[17])


def test_growth_is_amortised():
    """Adding one vector at a time reallocates O(log n) times, not n times."""
    mem = hdc.AssociativeMemory(64)
    items = hdc.random(3000, 64, seed=8)
    buffers = set()
    for i in range(3000):
        mem.add(items[i])
        buffers.add(mem._words.__array_interface__["data"][0])
    assert len(mem) == 3000
    assert len(buffers) < 25
    np.testing.assert_array_equal(mem.vectors.words, items.words)
    np.testing.assert_array_equal(mem.labels, np.arange(3000))


def test_vectors_view_is_read_only():
    mem = hdc.AssociativeMemory(100)
    mem.add(hdc.random(3, 100, seed=0))
    with pytest.raises(ValueError):
        mem.vectors.words[0, 0] = 1


def test_errors():
    mem = hdc.AssociativeMemory(100)
    with pytest.raises(ValueError, match="empty"):
        mem.search(hdc.random(1, 100, seed=0))
    with pytest.raises(ValueError, match="empty"):
        mem.cleanup(hdc.random(1, 100, seed=0))
    mem.add(hdc.random(5, 100, seed=0))
    with pytest.raises(ValueError, match="dim 100"):
        mem.add(hdc.random(2, 101, seed=0))
    with pytest.raises(ValueError, match="dim 100"):
        mem.search(hdc.random(2, 64, seed=0))
    with pytest.raises(ValueError, match="k must be <= 5"):
        mem.search(hdc.random(2, 100, seed=0), k=6)
    with pytest.raises(ValueError, match="k must be >= 1"):
        mem.search(hdc.random(2, 100, seed=0), k=0)
    with pytest.raises(ValueError, match="one label per vector"):
        mem.add(hdc.random(2, 100, seed=0), labels=["a"])
    with pytest.raises(TypeError, match="hashable"):
        mem.add(hdc.random(2, 100, seed=0), labels=["a", ["b"]])
    with pytest.raises(TypeError, match="sequence"):
        mem.add(hdc.random(2, 100, seed=0), labels="ab")
    with pytest.raises(TypeError, match="x must be a hdc.BinaryHV"):
        mem.add(np.zeros((1, 2), np.uint64))
    with pytest.raises(ValueError, match="dim must be >= 1"):
        hdc.AssociativeMemory(0)
    assert len(mem) == 5                 # failed adds add nothing


def test_random_operations_match_a_list_model(rng):
    """A random sequence of adds and removes against a plain list of (label, row) pairs."""
    dim = 97
    pool = hdc.random(60, dim, seed=11)
    mem = hdc.AssociativeMemory(dim)
    model = []                                          # (label, pool row) in insertion order
    next_default = 0
    for step in range(120):
        op = rng.integers(0, 3)
        if op < 2 or not model:
            rows = rng.integers(0, len(pool), size=int(rng.integers(1, 4)))
            if rng.random() < 0.5:
                labels = None
                new = list(range(next_default, next_default + len(rows)))
            else:
                new = [str(v) if rng.random() < 0.5 else int(v) for v in rng.integers(0, 8, size=len(rows))]
                labels = new
            mem.add(pool[rows], labels=labels)
            model += list(zip(new, rows.tolist()))
            next_default += len(rows)
        else:
            label = model[int(rng.integers(0, len(model)))][0]
            assert mem.remove(label) == sum(lab == label for lab, _ in model)
            model = [(lab, r) for lab, r in model if lab != label]
        assert len(mem) == len(model)
        assert mem.labels.tolist() == [lab for lab, _ in model]
        if model:
            np.testing.assert_array_equal(mem.vectors.words, pool[[r for _, r in model]].words)
            q = pool[int(rng.integers(0, len(pool)))]
            k = min(3, len(model))
            d, labels = mem.search(q, k=k)
            stored = pool[[r for _, r in model]]
            want_d, want_i = hdc.topk(q, stored, k)
            assert d.tolist() == want_d.tolist()
            assert labels.tolist() == [model[i][0] for i in want_i.tolist()]


def test_shard_api_views(tmp_path, monkeypatch):
    """mapped, search_rows, rows_with, release_rows, verify(release=True): what hdc.distributed's
    shards use instead of the memory's private fields."""
    import hdc.memory as memory

    items = hdc.random(300, 1000, seed=0)
    mem = hdc.AssociativeMemory(1000)
    mem.add(items, labels=[f"x{i % 7}" if i % 3 else i for i in range(300)])
    q = items[[4, 150, 299]]
    d, rows = mem.search_rows(q, k=5)
    d2, labels = mem.search(q, k=5)
    np.testing.assert_array_equal(d, d2)
    assert labels.tolist() == mem.labels[rows].tolist()
    assert rows[:, 0].tolist() == [4, 150, 299] and rows.dtype == np.int64
    mask = mem.rows_with(["x1", 3, "absent"])
    assert mask.tolist() == [(i % 3 and i % 7 == 1) or i == 3 for i in range(300)]
    assert not mem.mapped
    mem.release_rows(0, 300)                       # no-op in RAM
    path = tmp_path / "m.hdcm"
    mem.save(path)
    # small release runs, so the 300 rows are checked and released in several blocks
    monkeypatch.setattr(memory, "_RELEASE_BYTES", 16 << 10)
    back = hdc.AssociativeMemory.load(path, mmap=True)
    assert back.mapped
    back.verify(release=True)
    back.release_rows(10, 200)
    np.testing.assert_array_equal(back.search_rows(q, k=5)[1], rows)
    data = bytearray(path.read_bytes())
    data[-5] ^= 1                                  # the last payload chunk
    path.write_bytes(bytes(data))
    bad = hdc.AssociativeMemory.load(path, mmap=True)
    with pytest.raises(ValueError, match="checksum mismatch in payload"):
        bad.verify(release=True)


def test_atomic_file_keeps_the_old_file_on_error(tmp_path):
    from hdc.memory import atomic_file, write_file_atomic

    path = tmp_path / "f.bin"
    write_file_atomic(path, b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(path) as f:
            f.write(b"new, half written")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
