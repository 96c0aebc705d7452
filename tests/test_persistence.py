"""AssociativeMemory.save / load: round trips, mmap without copies, atomic saves under SIGKILL,
and every kind of damaged or hostile file raising a ValueError that says what is wrong."""
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib

import numpy as np
import pytest

import hdc
from hdc import memory as hm

# the saving subprocess imports the same hdc as these tests (installed or from the source tree)
HDC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(hdc.__file__)))


def make_memory(n, dim, labels="int", seed=0):
    mem = hdc.AssociativeMemory(dim)
    items = hdc.random(n, dim, seed=seed)
    if labels == "int":
        mem.add(items)
    elif labels == "str":
        mem.add(items, labels=[f"w{i}-é✓" for i in range(n)])
    else:  # mixed: defaults, strs, an empty str, negative and extreme ints
        half = n // 2
        mem.add(items[:half])
        rest = [("" if i == 0 else f"名{i}") if i % 2 == 0 else -(2 ** 63) + i for i in range(n - half)]
        mem.add(items[half:], labels=rest)
    return mem


def assert_same(a, b):
    assert len(a) == len(b) and a.dim == b.dim
    np.testing.assert_array_equal(a.vectors.words, b.vectors.words)
    assert a.labels.dtype == b.labels.dtype
    assert a.labels.tolist() == b.labels.tolist()
    assert a._next_label == b._next_label


@pytest.mark.parametrize("dim", [1, 63, 64, 65, 1000])
@pytest.mark.parametrize("labels", ["int", "str", "mixed"])
@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip(tmp_path, dim, labels, mmap):
    mem = make_memory(21, dim, labels, seed=dim)
    path = tmp_path / "m.hdcm"
    mem.save(path)
    back = hdc.AssociativeMemory.load(path, mmap=mmap)
    assert_same(mem, back)
    q = hdc.random(3, dim, seed=1)
    for x, y in zip(mem.search(q, k=5), back.search(q, k=5)):
        assert x.tolist() == y.tolist()
    # further adds continue the insertion-index labels, after a round trip as before
    back.add(q[0])
    mem.add(q[0])
    assert back.labels.tolist() == mem.labels.tolist()


def test_empty_memory_round_trip(tmp_path):
    for mmap in (False, True):
        mem = hdc.AssociativeMemory(300)
        mem.save(tmp_path / "e.hdcm")
        back = hdc.AssociativeMemory.load(tmp_path / "e.hdcm", mmap=mmap)
        assert len(back) == 0 and back.dim == 300
        back.add(hdc.random(2, 300, seed=0))
        assert back.search(hdc.random(1, 300, seed=0), k=2)[1].shape == (1, 2)


def test_layout_is_documented_and_aligned(tmp_path):
    mem = make_memory(10, 130, "str")
    mem.save(tmp_path / "m.hdcm")
    data = (tmp_path / "m.hdcm").read_bytes()
    fields = hm._HEADER.unpack(data[:128])
    assert fields[0] == b"HDCAMEM\x00" and fields[1] == 1 and fields[2] == 128
    kind, dim, count, payload_offset, payload_nbytes = fields[4], fields[5], fields[6], fields[15], fields[16]
    assert (kind, dim, count) == (1, 130, 10)
    assert payload_offset % 64 == 0 and len(data) == payload_offset + payload_nbytes == payload_offset + 10 * 3 * 8
    np.testing.assert_array_equal(np.frombuffer(data, "<u8", offset=payload_offset).reshape(10, 3),
                                  mem.vectors.words)


def test_mmap_searches_without_copying(tmp_path):
    mem = make_memory(20000, 1280, "int", seed=3)
    payload = mem.vectors.nbytes
    mem.save(tmp_path / "big.hdcm")
    back = hdc.AssociativeMemory.load(tmp_path / "big.hdcm", mmap=True)
    words = back.vectors.words
    assert not words.flags.writeable and words.__array_interface__["data"][0] % 64 == 0
    assert np.shares_memory(words, np.frombuffer(back._source, np.uint8))
    q = hdc.random(4, 1280, seed=9)
    back.search(q, k=3)  # first search checks the payload checksums
    tracemalloc.start()
    d, labels = back.search(q, k=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < payload // 20, f"search allocated {peak} bytes for a {payload}-byte payload"
    want = mem.search(q, k=3)
    np.testing.assert_array_equal(d, want[0])
    np.testing.assert_array_equal(labels, want[1])


def test_mmap_memory_copies_on_write_and_leaves_the_file(tmp_path):
    path = tmp_path / "m.hdcm"
    make_memory(30, 200, "int").save(path)
    before = path.read_bytes()
    back = hdc.AssociativeMemory.load(path, mmap=True)
    back.add(hdc.random(1, 200, seed=5))
    assert back.remove([0, 1]) == 2 and len(back) == 29
    assert back.vectors.words.flags.c_contiguous
    assert path.read_bytes() == before
    back2 = hdc.AssociativeMemory.load(path, mmap=True)
    back2.remove(3)
    assert len(back2) == 29 and path.read_bytes() == before


def test_save_over_a_mapped_file_keeps_the_mapping_valid(tmp_path):
    path = tmp_path / "m.hdcm"
    old = make_memory(40, 512, "int", seed=1)
    old.save(path)
    mapped = hdc.AssociativeMemory.load(path, mmap=True)
    q = hdc.random(2, 512, seed=2)
    before = mapped.search(q, k=2)
    make_memory(10, 512, "str", seed=7).save(path)
    after = mapped.search(q, k=2)
    assert [a.tolist() for a in before] == [a.tolist() for a in after]
    assert len(hdc.AssociativeMemory.load(path)) == 10


def test_save_refuses_labels_it_cannot_store(tmp_path):
    path = tmp_path / "m.hdcm"
    make_memory(3, 64, "int").save(path)
    before = path.read_bytes()
    for bad, name in [((1, 2), "tuple"), (1.5, "float"), (True, "bool"), (b"x", "bytes"),
                      (2 ** 70, "int64"), ("\ud800", "UTF-8")]:
        mem = hdc.AssociativeMemory(64)
        mem.add(hdc.random(2, 64, seed=0), labels=["fine", bad])
        with pytest.raises(TypeError, match=name):
            mem.save(path)
        assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.hdcm"]


# ---- damaged and hostile files -----------------------------------------------------------------

def load_all(path, mmap):
    """Load and touch the payload (a lazily verified mmap checks it on first use)."""
    mem = hdc.AssociativeMemory.load(path, mmap=mmap)
    if len(mem):
        mem.search(hdc.random(1, mem.dim, seed=0), k=1)
    return mem


@pytest.mark.parametrize("mmap", [False, True])
def test_every_flipped_byte_is_caught(tmp_path, mmap):
    mem = make_memory(6, 100, "mixed")
    good = tmp_path / "good.hdcm"
    mem.save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.hdcm"
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="checksum|magic|corrupted|malformed") as info:
            load_all(bad, mmap)
        assert "bad.hdcm" in str(info.value), pos


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_files(tmp_path, mmap):
    mem = make_memory(50, 1000, "str")
    good = tmp_path / "good.hdcm"
    mem.save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.hdcm"
    for n in [0, 4, 8, 19, 20, 100, 127, 128, 131, 200, len(data) // 2, len(data) - 8, len(data) - 1]:
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError, match="truncated"):
            load_all(cut, mmap)


def rewrite_header(data, **changes):
    """A copy of ``data`` with header fields changed and a freshly valid header checksum."""
    names = ["magic", "version", "header_size", "header_crc", "label_kind", "dim", "count", "next_label",
             "chunk_bytes", "labels_offset", "labels_nbytes", "labels_crc", "chunks_crc", "chunks_offset",
             "n_chunks", "payload_offset", "payload_nbytes", "reserved"]
    fields = dict(zip(names, hm._HEADER.unpack(data[:128])))
    fields.update(changes, header_crc=0)
    header = bytearray(hm._HEADER.pack(*[fields[n] for n in names]))
    struct.pack_into("<I", header, 16, zlib.crc32(header))
    return bytes(header) + data[128:]


def test_wrong_magic_and_newer_version(tmp_path):
    good = tmp_path / "good.hdcm"
    make_memory(4, 64, "int").save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.hdcm"
    bad.write_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="wrong magic"):
        hdc.AssociativeMemory.load(bad)
    bad.write_bytes(rewrite_header(data, version=3))
    with pytest.raises(ValueError, match="version 3 is newer"):
        hdc.AssociativeMemory.load(bad)
    # version 2 is the sparse kind: a binary payload under a version 2 header is refused
    bad.write_bytes(rewrite_header(data, version=2))
    with pytest.raises(ValueError, match="vector_kind 0 is not 1"):
        hdc.AssociativeMemory.load(bad)
    bad.write_bytes(rewrite_header(data, version=0))
    with pytest.raises(ValueError, match="unsupported file format version 0"):
        hdc.AssociativeMemory.load(bad)
    # a version field damaged without a matching checksum is reported as damage
    bad.write_bytes(data[:8] + struct.pack("<I", 7) + data[12:])
    with pytest.raises(ValueError, match="checksum mismatch in the header"):
        hdc.AssociativeMemory.load(bad)


def test_hostile_files_with_valid_checksums(tmp_path):
    """Files a hostile writer crafted (checksums recomputed): clear errors, no huge allocations."""
    good = tmp_path / "good.hdcm"
    mem = hdc.AssociativeMemory(130)
    mem.add(hdc.random(5, 130, seed=0), labels=["ab", "c", "dé", "e", "f"])
    mem.save(good)
    data = good.read_bytes()
    fields = hm._HEADER.unpack(data[:128])
    labels_offset, labels_nbytes, payload_offset = fields[9], fields[10], fields[15]
    bad = tmp_path / "bad.hdcm"
    huge = 2 ** 58                                       # a consistent header for 2**58 vectors
    n_chunks = -(-huge * 24 // fields[8])
    huge_labels_at = hm._align(128 + 4 * n_chunks, 8)
    cases = {
        "truncated": rewrite_header(data, count=huge, payload_nbytes=huge * 24, n_chunks=n_chunks,
                                    labels_offset=huge_labels_at, labels_nbytes=huge * 20,
                                    payload_offset=hm._align(huge_labels_at + huge * 20, 64)),
        "payload_nbytes": rewrite_header(data, count=2 ** 40),
        "dim": rewrite_header(data, dim=0),
        "label_kind": rewrite_header(data, label_kind=9),
        "labels_offset": rewrite_header(data, labels_offset=labels_offset + 8),
        "payload_offset": rewrite_header(data, payload_offset=payload_offset + 64),
        "chunk_bytes": rewrite_header(data, chunk_bytes=3),
        "header_size": rewrite_header(data, header_size=256),
        "reserved": rewrite_header(data, reserved=b"\x01" + bytes(15)),
        "labels_nbytes": rewrite_header(data, label_kind=0),
        "unexpected bytes": data + b"\x00" * 8,
    }
    for what, content in cases.items():
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="malformed|truncated|corrupted") as info:
            hdc.AssociativeMemory.load(bad)
        assert what in str(info.value), (what, info.value)

    def with_labels(table):
        """Replace the label table (same length) and fix its checksum."""
        assert len(table) == labels_nbytes
        out = data[:labels_offset] + table + data[labels_offset + labels_nbytes:]
        return rewrite_header(out, labels_crc=zlib.crc32(table))

    table = bytearray(data[labels_offset:labels_offset + labels_nbytes])
    offsets_at = 8                                      # 5 tags padded to 8 bytes
    for what, patch in {
        "tag": lambda t: t.__setitem__(0, 7),
        "offsets": lambda t: t.__setitem__(slice(offsets_at + 8, offsets_at + 16), struct.pack("<Q", 10 ** 9)),
        "UTF-8": lambda t: t.__setitem__(offsets_at + 6 * 8, 0xFF),
        "int label": lambda t: t.__setitem__(0, 0),     # a str entry tagged as an int
        "padding": lambda t: t.__setitem__(6, 1),
    }.items():
        hostile = bytearray(table)
        patch(hostile)
        bad.write_bytes(with_labels(bytes(hostile)))
        with pytest.raises(ValueError, match="malformed label table") as info:
            hdc.AssociativeMemory.load(bad)
        assert what in str(info.value), (what, info.value)

    # payload with nonzero padding bits past dim, checksums made valid
    payload = bytearray(data[payload_offset:])
    payload[16 + 7] |= 0x80                              # row 0, last word, bit 63 (dim 130)
    crc_table = struct.pack("<I", zlib.crc32(payload))
    content = data[:128] + crc_table + data[132:payload_offset] + bytes(payload)
    bad.write_bytes(rewrite_header(content, chunks_crc=zlib.crc32(crc_table)))
    with pytest.raises(ValueError, match="padding bits"):
        load_all(bad, mmap=False)
    with pytest.raises(ValueError, match="padding bits"):
        load_all(bad, mmap=True)


class _Trap:
    def __reduce__(self):
        return (open, (os.environ["HDC_TRAP_PATH"], "w"))


def test_pickle_payload_is_never_executed(tmp_path, monkeypatch):
    trap = tmp_path / "trap-fired"
    monkeypatch.setenv("HDC_TRAP_PATH", str(trap))
    bad = tmp_path / "evil.hdcm"
    bad.write_bytes(pickle.dumps(_Trap()))
    with pytest.raises(ValueError, match="wrong magic"):
        hdc.AssociativeMemory.load(bad)
    # the same pickle smuggled into the label data of a valid-looking file is just bytes
    good = tmp_path / "good.hdcm"
    mem = hdc.AssociativeMemory(64)
    mem.add(hdc.random(1, 64, seed=0), labels=[pickle.dumps(_Trap()).decode("latin-1")])
    mem.save(good)
    back = hdc.AssociativeMemory.load(good)
    assert isinstance(back.labels[0], str)
    assert not trap.exists()


def test_lazy_payload_check_for_mmap(tmp_path, monkeypatch):
    good = tmp_path / "good.hdcm"
    make_memory(30, 640, "int").save(good)
    data = bytearray(good.read_bytes())
    data[-5] ^= 1                                        # payload damage
    bad = tmp_path / "bad.hdcm"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch in payload"):
        hdc.AssociativeMemory.load(bad)
    calls = []
    real = hm._verify_payload
    monkeypatch.setattr(hm, "_verify_payload", lambda *a: (calls.append(1), real(*a)))
    lazy = hdc.AssociativeMemory.load(bad, mmap=True)     # opening reads no payload
    assert calls == []
    with pytest.raises(ValueError, match="checksum mismatch in payload"):
        lazy.search(hdc.random(1, 640, seed=0))
    with pytest.raises(ValueError, match="checksum mismatch in payload"):
        lazy.verify()
    # the caller may opt out: verify=False trusts the payload
    trusted = hdc.AssociativeMemory.load(bad, mmap=True, verify=False)
    assert trusted.search(hdc.random(1, 640, seed=0)[0])[0].shape == (1,)
    fine = hdc.AssociativeMemory.load(good, mmap=True)
    fine.verify()
    fine.search(hdc.random(1, 640, seed=0))
    assert len(calls) == 3                               # once per lazily loaded memory touched


# ---- atomic saves --------------------------------------------------------------------------------

SAVER = textwrap.dedent("""
    import sys
    import hdc
    mem = hdc.AssociativeMemory(8192)
    mem.add(hdc.random(int(sys.argv[2]), 8192, seed=int(sys.argv[3])))
    print("ready", flush=True)
    while True:
        mem.save(sys.argv[1])
""")


def test_sigkill_during_save_leaves_previous_file(tmp_path):
    target = tmp_path / "mem.hdcm"
    previous = make_memory(100, 8192, "str", seed=1)
    previous.save(target)
    env = dict(os.environ, PYTHONPATH=HDC_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = np.random.default_rng(0)
    stray_seen = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target), "40000", str(attempt + 10)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        # let it start (and maybe finish) some saves, then kill it in the middle of one
        deadline = time.monotonic() + 5
        while not any(n.startswith(".mem.hdcm") for n in os.listdir(tmp_path)):
            assert time.monotonic() < deadline, "the saving process never started writing"
            time.sleep(0.001)
        time.sleep(float(rng.uniform(0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        stray_seen += sum(n != "mem.hdcm" for n in os.listdir(tmp_path))
        # the target is always a complete file: the previous one, or one the killed process completed
        back = hdc.AssociativeMemory.load(target)
        if len(back) == 100:
            assert_same(previous, back)
        else:
            assert len(back) == 40000 and back.labels[-1] == 39999
    assert stray_seen > 0, "no kill landed in the middle of a save"
    previous.save(target)
    assert os.listdir(tmp_path) == ["mem.hdcm"]
    assert_same(previous, hdc.AssociativeMemory.load(target))


def test_temp_files_of_live_saves_are_kept(tmp_path):
    target = tmp_path / "m.hdcm"
    host = hm._host_tag()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        live = tmp_path / f".m.hdcm.hdc-tmp-{sleeper.pid}-{host}-abc"
        dead = tmp_path / f".m.hdcm.hdc-tmp-{dead_pid}-{host}-def"
        reused = tmp_path / f".m.hdcm.hdc-tmp-{sleeper.pid}-{host}-old"    # live pid, stale file
        remote = tmp_path / f".m.hdcm.hdc-tmp-{dead_pid}-0badc0de-ghi"     # another host's save
        remote_old = tmp_path / f".m.hdcm.hdc-tmp-{dead_pid}-0badc0de-old"
        other = tmp_path / f".other.hdcm.hdc-tmp-{dead_pid}-{host}-x"      # another target's
        for p in (live, dead, reused, remote, remote_old, other):
            p.write_bytes(b"partial")
        two_hours_ago = time.time() - 7200
        for p in (reused, remote_old):
            os.utime(p, (two_hours_ago, two_hours_ago))
        make_memory(3, 64, "int").save(target)
        assert sorted(os.listdir(tmp_path)) == sorted(["m.hdcm", live.name, remote.name, other.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_mapped_memory_searches_on_every_backend(tmp_path, kernel_path):
    """The read-only mapping goes straight into each backend's kernels (topk, cdist for within)."""
    mem = make_memory(300, 200, "str", seed=4)
    mem.save(tmp_path / "m.hdcm")
    mapped = hdc.AssociativeMemory.load(tmp_path / "m.hdcm", mmap=True)
    q = hdc.random(5, 200, seed=6)
    for a, b in zip(mem.search(q, k=4), mapped.search(q, k=4)):
        assert a.tolist() == b.tolist()
    assert bool((mapped.cleanup(q) == mem.cleanup(q)).all())
    for a, b in zip(hdc.within(q, mem.vectors, 90, flat=True), hdc.within(q, mapped.vectors, 90, flat=True)):
        np.testing.assert_array_equal(a, b)
