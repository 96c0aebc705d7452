"""Fuzzing: the public API with arbitrary shapes, dtypes, index keys and numbers, in a subprocess.

Hypothesis draws specs (seed, backend and SIMD path, ops, wild numbers); the worker
(tests/fuzz_worker.py) expands each into CALLS_PER_SPEC calls and accepts only a result equal to
the NumPy reference or a ValueError / TypeError / IndexError / MemoryError. A crash (the worker
dies by a signal) or a hang (no answer within SPEC_TIMEOUT) fails the test, naming the spec and
the last call, found again by replaying the spec with tracing.
"""
import json
import os
import select
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hdc
from fuzz_worker import OPS

CALLS_PER_SPEC = 200
N_SPECS = 520            # 520 x 200 = 104,000 calls
SPEC_TIMEOUT = 60
_HERE = os.path.dirname(os.path.abspath(__file__))


def _paths():
    out = []
    for name in hdc.backends():
        out += [f"c:{isa}" for isa in hdc.available_isas()] if name == "c" else [name]
    return out


class Worker:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([_HERE] + sys.path))
        self.proc = subprocess.Popen([sys.executable, os.path.join(_HERE, "fuzz_worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def run(self, spec):
        """The worker's answer, or ('crash' | 'hang', detail)."""
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], SPEC_TIMEOUT)
        if not ready:
            self.proc.kill()
            return {"hang": f"no answer within {SPEC_TIMEOUT} s"}
        line = self.proc.stdout.readline()
        if not line:
            return {"crash": f"worker died with exit status {self.proc.wait()}"}
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _last_call(spec):
    """Replay a crashing spec with tracing; the last traced call is the one that crashed."""
    proc = subprocess.run([sys.executable, os.path.join(_HERE, "fuzz_worker.py")],
                          input=json.dumps(dict(spec, trace=True)) + "\n", capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([_HERE] + sys.path)),
                          timeout=SPEC_TIMEOUT * 2)
    traced = [line for line in proc.stderr.splitlines() if line.startswith("call ")]
    return traced[-1] if traced else proc.stderr[-2000:]


wild_numbers = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(), st.integers(-3, 70),
                         st.sampled_from([2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1]))


def test_fuzz_public_api():
    worker = Worker()
    total = {"calls": 0}

    @settings(max_examples=N_SPECS, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2 ** 32 - 1), backend=st.sampled_from(_paths()),
           ops=st.lists(st.sampled_from(sorted(OPS)), min_size=1, max_size=len(OPS), unique=True),
           wild=st.lists(wild_numbers, max_size=6))
    def fuzz(seed, backend, ops, wild):
        nonlocal worker
        spec = {"seed": seed, "backend": backend, "ops": ops, "wild": wild, "calls": CALLS_PER_SPEC}
        answer = worker.run(spec)
        if "crash" in answer or "hang" in answer:
            worker = Worker()
            raise AssertionError(f"{answer} on spec {spec}; last call: {_last_call(spec)}")
        assert "fail" not in answer, f"spec {spec}: {answer['fail']}"
        total["calls"] += answer["calls"]

    try:
        fuzz()
    finally:
        worker.close()
    print(f"fuzzed {total['calls']} calls of the public API")
    assert total["calls"] >= 100_000
