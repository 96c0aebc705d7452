"""pytest-benchmark configuration for hdc's benchmarks.

    pytest benchmarks/ --benchmark-only                          # issue 2's cases at dim 10,000
    pytest benchmarks/ --benchmark-only --hdc-cases=quick        # the cases of `hdc bench --quick`
    pytest benchmarks/ --benchmark-only --hdc-backends=c,numba --benchmark-group-by=group

Each benchmark group is one case (op, dim, size); its members are hdc's backends and the
baselines (NumPy float32, torchhd BSC/MAP, faiss), built by the same code as `hdc bench`.
"""
import pytest


def pytest_addoption(parser):
    group = parser.getgroup("hdc")
    group.addoption("--hdc-cases", default="targets", choices=("targets", "smoke", "quick", "full"),
                    help="which cases to benchmark: issue 2's targets (default) or an `hdc bench` mode")
    group.addoption("--hdc-backends", default="c,numba,numpy",
                    help="comma-separated hdc backends to benchmark (default: c,numba,numpy)")
    group.addoption("--hdc-threads", type=int, default=None,
                    help="threads for hdc, torch, faiss and BLAS (default: library defaults)")


def pytest_configure(config):
    threads = config.getoption("--hdc-threads")
    if threads is not None:
        from hdc.bench.suite import set_threads
        set_threads(threads)


class _DataCache:
    """The inputs of one case at a time (cases can take gigabytes): built on first use, dropped
    when a benchmark of another case asks."""

    def __init__(self):
        self.key, self.data = None, None

    def get(self, case):
        from hdc.bench.impls import CaseData
        if case.key != self.key:
            self.key, self.data = None, None
            import gc
            gc.collect()
            self.key, self.data = case.key, CaseData(case)
        return self.data


@pytest.fixture(scope="session")
def case_data():
    return _DataCache()
