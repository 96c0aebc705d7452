"""AssociativeMemory with one writer, several readers and a periodic checkpoint, all at once.

Every saved file must load and equal a replay of the writer's log up to some point (a
consistent snapshot), and every search must return a label whose stored vector is at the
distance reported (words and labels from the same state).
"""
import threading

import numpy as np

import hdc

DIM = 192


def test_add_remove_search_save_threads(tmp_path):
    n_writes = 9000
    rng = np.random.default_rng(0)
    vecs = hdc.random(n_writes, DIM, seed=1)
    queries = hdc.random(64, DIM, seed=2)
    mem = hdc.AssociativeMemory(DIM)
    log, errors, done = [], [], threading.Event()
    counts = {"search": 0, "save": 0, "within": 0}
    saved = []

    def writer():
        try:
            live, next_label = [], 0
            for _ in range(n_writes):
                if not live or rng.random() < 0.6:
                    mem.add(vecs[next_label])
                    live.append(next_label)
                    log.append(("add", next_label))
                    next_label += 1
                else:
                    label = live.pop(int(rng.integers(len(live))))
                    assert mem.remove(label) == 1
                    log.append(("remove", label))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def reader(seed):
        r = np.random.default_rng(seed)
        try:
            while not done.is_set():
                q = queries[int(r.integers(len(queries)))]
                try:
                    d, labels = mem.search(q, k=1)
                except ValueError as exc:   # the writer removed the last vector: an empty snapshot
                    assert "empty" in str(exc)
                    continue
                assert int(d[0]) == int(hdc.hamming(q, vecs[int(labels[0])]))
                counts["search"] += 1
                if counts["search"] % 16 == 0:
                    dist, found = mem.within(q, radius=DIM // 2)
                    assert all(int(x) == int(hdc.hamming(q, vecs[int(f)])) for x, f in zip(dist, found))
                    counts["within"] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def saver():
        try:
            while not done.is_set():
                path = tmp_path / f"snap{len(saved)}.hdc"
                mem.save(path)
                mem.save(tmp_path / "latest.hdc")   # replaced again and again, never by a bad file
                saved.append(path)
                counts["save"] += 2
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader, args=(1,)),
               threading.Thread(target=reader, args=(2,)), threading.Thread(target=saver)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[0]

    # every prefix of the log, as (next_label, labels in row order)
    states, live = {(0, ())}, []
    adds = 0
    for op, label in log:
        if op == "add":
            live.append(label)
            adds += 1
        else:
            live.remove(label)
        states.add((adds, tuple(live)))
    for path in saved + [tmp_path / "latest.hdc"]:
        loaded = hdc.AssociativeMemory.load(path)
        labels = tuple(loaded.labels.tolist())
        assert (loaded._next_label, labels) in states, f"{path.name} is no state of the log"
        if labels:
            assert bool((loaded.vectors == vecs[list(labels)]).all())
    total = len(log) + counts["search"] + counts["within"] + counts["save"]
    print(f"{total} operations: {len(log)} writes, {counts['search']} searches, {counts['within']} "
          f"radius searches, {counts['save']} saves ({len(saved)} distinct files checked)")
    assert total >= 10_000 and len(saved) >= 3
