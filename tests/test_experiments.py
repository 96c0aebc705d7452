"""`hdc experiment` / `hdc.experiments`: metric definitions, flips, tiny runs of each experiment,
output files and the errors raised before any work starts."""
import json
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import hdc
from hdc import experiments
from hdc.cli.main import main
from hdc.experiments import ablation, biterror, forgetting, models, sparsity
from hdc.experiments.metrics import continual_metrics


def _is_png(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", head[16:24])) > 100


# ---- metric definitions on hand-made accuracy matrices ---------------------------------------------

def test_metrics_no_forgetting_and_total_forgetting():
    keep = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert continual_metrics(keep) == {"ACC": 1.0, "BWT": 0.0, "F": 0.0}
    lose = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    m = continual_metrics(lose)
    assert m["ACC"] == pytest.approx(1 / 3) and m["BWT"] == -1.0 and m["F"] == 1.0


def test_metrics_forgetting_uses_best_earlier_accuracy():
    # task 0 peaks after task 1 (0.9), ends at 0.6: F counts 0.3, BWT counts 0.6 - 0.8 = -0.2
    R = np.array([[0.8, 0.1, 0.0], [0.9, 0.7, 0.1], [0.6, 0.7, 0.9]])
    m = continual_metrics(R)
    assert m["ACC"] == pytest.approx((0.6 + 0.7 + 0.9) / 3)
    assert m["BWT"] == pytest.approx(((0.6 - 0.8) + (0.7 - 0.7)) / 2)
    assert m["F"] == pytest.approx(((0.9 - 0.6) + (0.7 - 0.7)) / 2)
    assert experiments.continual_metrics(R) == m


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda t: st.lists(st.floats(0, 1), min_size=t * t, max_size=t * t)))
def test_metrics_properties(values):
    t = int(round(len(values) ** 0.5))
    R = np.array(values).reshape(t, t)
    m = continual_metrics(R)
    assert m["F"] >= -m["BWT"] - 1e-9          # the best earlier accuracy is at least the one right after
    assert 0 <= m["ACC"] <= 1 and -1 <= m["BWT"] <= 1


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros((0, 0)), np.full((2, 2), np.nan), np.zeros(4)])
def test_metrics_reject_bad_matrices(bad):
    with pytest.raises(ValueError, match="R must"):
        continual_metrics(bad)


# ---- flips ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.013, 0.2, 1.0])
def test_flip_bits_flips_exactly_that_fraction(p):
    x = hdc.random(7, 1000, seed=1)
    y = models.flip_bits(x, p, np.random.default_rng(0))
    assert int(hdc.hamming(x, y).sum()) == round(p * 7 * 1000)
    assert y.words[:, -1].max() < (1 << (1000 % 64))        # padding bits stay 0


@pytest.mark.parametrize("field,mask", [("sign", 0x80000000), ("exponent", 0x7F800000), ("mantissa", 0x007FFFFF)])
def test_flip_float_bits_touches_only_its_field(field, mask):
    w = np.random.default_rng(0).standard_normal((40, 30)).astype(np.float32)
    out = models.flip_float_bits(w, 0.1, field, np.random.default_rng(1))
    diff = w.view(np.uint32) ^ out.view(np.uint32)
    assert not (diff & ~np.uint32(mask)).any()
    width = bin(mask).count("1")
    assert sum(bin(int(d)).count("1") for d in diff.ravel()) == round(0.1 * w.size * width)
    if field == "sign":
        assert np.array_equal(np.abs(out), np.abs(w))


def test_voter_flip_of_every_voter_inverts_the_probability():
    head = hdc.nn.VoterHead(6, n_bits=3, n_voters=4)
    x = torch.randn(5, 6)
    with torch.no_grad():
        p, q = head(x), head(x, voter_flip=torch.ones(3, 4, dtype=torch.bool))
    assert torch.allclose(p + q, torch.ones_like(p), atol=1e-6)


def test_mass_fraction():
    w = np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 0.0]])
    assert sparsity.mass_fraction(w[:1]) == 0.5 and sparsity.mass_fraction(w[1:2]) == 1.0
    assert sparsity.mass_fraction(w[2:]) == 0.0


def test_charlm_shared_vocabulary():
    task = hdc.nn.tasks.CharLM(text="abcabc" * 50, seq_len=8, chars="abcxyz")
    assert task.vocab_size == 6 and task.chars == list("abcxyz")
    with pytest.raises(ValueError, match="chars must cover"):
        hdc.nn.tasks.CharLM(text="abcabc" * 50, seq_len=8, chars="ab")


# ---- several prototypes per class (class-incremental by construction) ------------------------------

def test_clusters_only_add_prototypes():
    d = experiments.data.digits(seed=3)
    tasks = experiments.data.split_tasks(d)
    m = models.HDCClusters(dim=4096, per_class=5, seed=3)
    before = None
    for t, task in enumerate(tasks):
        m.learn(*experiments.data.task_inputs(d, task, "train"))
        if before is not None:                  # the old prototypes, bit for bit, then the new ones
            assert np.array_equal(m.prototypes.words[:len(before)], before.words)
        assert len(m.prototypes) == len(m.labels) == 5 * 2 * (t + 1)
        before = m.prototypes
    assert np.bincount(m.labels).tolist() == [5] * 10


def test_clusters_are_kmeans_fixed_points_and_few_samples_are_kept():
    X = np.random.default_rng(0).integers(0, 17, size=(40, 80))
    m = models.HDCClusters(dim=2048, per_class=3, iters=50, seed=0).learn(X, np.zeros(40, int))
    H = m.encode(X)
    nearest = hdc.topk(H, m.prototypes, 1)[1][:, 0]
    for c in range(3):                          # converged: each centre is its members' majority
        assert hdc.bundle(H[nearest == c], tie=m.encoder.tie) == m.prototypes[c]
    few = models.HDCClusters(dim=2048, per_class=8).learn(X[:3], np.array([4, 4, 4]))
    assert len(few.prototypes) == 3 and few.labels.tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="per_class"):
        models.HDCClusters(per_class=0)


def test_split_digits_target_on_every_seed():
    """The issue's target at the experiment's own size: ACC >= 0.90 and abs(BWT) <= 0.05, per seed."""
    res = forgetting.run(quick=True, seeds=3, scenarios=["split"], models=["hdc_clusters", "mlp"], progress=False,
                         sizes=dict(mlp_epochs=3))
    for r in res["scenarios"]["split"]["hdc_clusters"]["runs"]:
        assert r["metrics"]["ACC"] >= 0.90 and abs(r["metrics"]["BWT"]) <= 0.05
    assert res["targets"]["split: hdc_clusters ACC >= 0.90 and abs(BWT) <= 0.05 on every seed"]["met"]


# ---- tiny runs through the Python API --------------------------------------------------------------

def test_forgetting_tiny_run_writes_outputs_and_is_reproducible(tmp_path):
    kw = dict(quick=True, seeds=2, scenarios=["split", "permuted"], models=["hdc_majority", "mlp"], progress=False,
              sizes=dict(mlp_epochs=2, n_permuted=3))
    res = forgetting.run(out=tmp_path, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "forgetting.json", "forgetting.md", "forgetting_permuted.png", "forgetting_split.png"]
    assert all(_is_png(tmp_path / f"forgetting_{s}.png") for s in ("split", "permuted"))
    saved = json.loads((tmp_path / "forgetting.json").read_text())
    split = saved["scenarios"]["split"]
    for name in ("hdc_majority", "mlp"):
        runs = split[name]["runs"]
        assert len(runs) == 2 and np.array(runs[0]["R"]).shape == (5, 5)
        for r in runs:
            assert r["metrics"] == pytest.approx(continual_metrics(r["R"]))
    assert np.array(saved["scenarios"]["permuted"]["mlp"]["runs"][0]["R"]).shape == (3, 3)
    # majority prototypes of old classes never change: before task 1 a task-1 sample can only be wrong
    assert split["hdc_majority"]["runs"][0]["R"][0][1] == 0.0
    assert split["hdc_majority"]["metrics"]["ACC"]["mean"] > 0.8
    assert "| hdc_majority |" in (tmp_path / "forgetting.md").read_text()
    again = forgetting.run(**kw)
    assert again["scenarios"]["split"]["hdc_majority"]["runs"] == res["scenarios"]["split"]["hdc_majority"]["runs"]


def test_worker_processes_give_the_same_numbers():
    """Every job seeds itself, so two spawned workers reproduce the in-process run exactly."""
    kw = dict(quick=True, seeds=2, scenarios=["split"], models=["mlp", "transformer_linear"], progress=False,
              sizes=dict(mlp_epochs=2, transformer_steps=3))
    one, two = forgetting.run(workers=1, **kw), forgetting.run(workers=2, **kw)
    assert one["scenarios"] == two["scenarios"] and two["workers"] == 2
    with pytest.raises(ValueError, match="workers must be >= 1"):
        forgetting.run(workers=0)


def test_biterror_jobs_share_trained_models():
    assert biterror._groups(["mlp_float32_sign", "hdc_prototypes", "voters_M1", "assoc_memory",
                             "mlp_float32_mantissa"]) == [
        ("voters_M1",), ("mlp_float32_sign", "mlp_float32_mantissa"), ("hdc_prototypes", "assoc_memory")]


def test_forgetting_languages_tiny(tmp_path):
    res = forgetting.run(quick=True, seeds=1, scenarios=["languages"], models=["transformer_voter"],
                         texts=("gpl-3", "apache-2.0"), progress=False, sizes=dict(lm_steps=2, lm_chars=5000))
    entry = res["scenarios"]["languages"]["transformer_voter"]
    assert np.array(entry["R_mean"]).shape == (2, 2) and np.array(entry["bpc_mean"]).shape == (2, 2)
    assert np.isfinite(entry["bpc_mean"]).all()


def test_biterror_tiny_run(tmp_path):
    res = biterror.run(quick=True, seeds=1, out=tmp_path, progress=False, fractions=[0, 0.3, 1.0],
                       models=["hdc_prototypes", "hdc_prototypes_10k", "hdc_clusters", "voter_classifier_M1",
                               "mlp_float32_sign", "binary_mlp_signs"],
                       sizes=dict(repeats=1, mlp_epochs=3))
    acc = {m: {p: v["mean"] for p, v in e["accuracy"].items()} for m, e in res["models"].items()}
    assert acc["hdc_prototypes"]["0"] > 0.8 and acc["hdc_prototypes"]["0.3"] > 0.6
    assert acc["hdc_prototypes"]["1"] < 0.2                  # every bit flipped: farthest prototype wins
    assert acc["hdc_clusters"]["0"] > 0.9 and acc["hdc_clusters"]["1"] < 0.2
    assert acc["voter_classifier_M1"]["1"] < 0.2             # the single voter of every bit inverted
    assert acc["binary_mlp_signs"]["1"] < 0.3
    assert res["targets"] == {}                             # 0.2 is not among the fractions
    assert (tmp_path / "biterror.json").exists() and _is_png(tmp_path / "biterror.png")
    assert _is_png(tmp_path / "biterror_widths.png")
    md = (tmp_path / "biterror.md").read_text()
    assert "p=30%" in md and "| 10,000 |" in md and "| 32,768 |" in md


def test_sparsity_and_ablation_tiny_runs(tmp_path):
    res = sparsity.run(quick=True, seeds=1, parts=["voters", "hidden"], out=tmp_path / "s", progress=False,
                       sizes=dict(voters=(2,), tau_factors=(0.05,), epochs=2, mlp_epochs=2, lm_steps=2))
    row = res["voters"]["M=2"]["tau=0.05M"]
    assert 0 < row["active_fraction"]["mean"] <= 1 and 0 < row["mass90_fraction"]["mean"] <= 1
    kwta = res["hidden_mlp"]["mlp_kwta"]["hidden"]["active"]["mean"]
    assert kwta <= 8 / 64 + 1e-9                             # k-WTA keeps at most 8 of 64 units
    layers = res["attention"]["kwta"]
    assert layers["layer 0"]["keys_attended"]["mean"] <= 1 and res["attention"]["dense"]["layer 0"][
        "keys_attended"]["mean"] == pytest.approx(1.0)
    assert "kwta+ffn_topk" in (tmp_path / "s" / "sparsity.md").read_text()     # measured, or "pending"
    res = ablation.run(quick=True, seeds=1, axes=["voters", "topk"], out=tmp_path / "a", progress=False,
                       sizes=dict(voters=(1, 2), epochs=2, topk=(1, "dense"), lm_steps=2))
    assert set(res["voters"]) == {"M=1", "M=2"} and set(res["topk"]) == {"1", "dense"}
    assert res["voters"]["M=2"]["tau=inf (argmax)"]["active_voters"]["mean"] == pytest.approx(1.0)
    assert res["voters"]["M=2"]["tau=0 (mean)"]["active_voters"]["mean"] == pytest.approx(2.0)
    assert _is_png(tmp_path / "a" / "ablation_voters.png") and _is_png(tmp_path / "a" / "ablation_transformer.png")


# ---- bad input: clear errors before any work --------------------------------------------------------

def test_python_api_errors(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.run("nope")
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        experiments.run("forgetting", seeds=0)
    with pytest.raises(ValueError, match=r"fractions must lie in \[0, 1\]"):
        experiments.run("biterror", fractions=[0.1, 1.5])
    with pytest.raises(ValueError, match="not empty"):
        experiments.run("sparsity", out=tmp_path / "full")
    with pytest.raises(ValueError, match="sizes has unknown keys"):
        experiments.run("ablation", sizes={"steps": 1})
    with pytest.raises(ValueError, match="models must be"):
        experiments.run("biterror", models=["resnet"])
    assert (tmp_path / "full" / "x").read_text() == "keep"


@pytest.mark.parametrize("argv,message", [
    (["experiment", "nope"], "unknown experiment 'nope'"),
    (["experiment", "biterror", "--fractions", "0,-0.5"], "--fractions must lie in [0, 1]"),
    (["experiment", "sparsity", "--seeds", "0"], "--seeds must be >= 1"),
    (["experiment", "ablation", "--workers", "0"], "--workers must be >= 1"),
    (["experiment", "sparsity", "--fractions", "0.1"], "biterror experiment only"),
])
def test_cli_errors(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_non_empty_out_without_force(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("x")
    assert main(["experiment", "ablation", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    (tmp_path / "all" / "biterror").mkdir(parents=True)
    (tmp_path / "all" / "biterror" / "old.json").write_text("{}")
    assert main(["experiment", "all", "--out", str(tmp_path / "all")]) == 2     # checked before forgetting runs
    assert "biterror' exists and is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["biterror"]
