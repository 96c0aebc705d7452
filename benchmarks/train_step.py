"""One training step of the character-LM HD-transformer, per variant: wall, user, sys ms, page faults.

    PYTHONPATH=. python benchmarks/train_step.py [--variants dense,kwta,sparse] [--threads 1]
        [--steps 10] [--keep-heap | --no-keep-heap]

The `hdc compare charlm` defaults (batch 32, L 128, d_model 128, 2 layers, 4 heads, topk 16,
learned temperature; dense codes 256 bits, sparse codes 8 x 64 with balance 0.05): AdamW steps on
random batches of pydoc_data.topics, 3 warm-up steps, then the mean of ``--steps`` steps, with the
process's user and system CPU time and minor page faults from getrusage. ``--keep-heap`` (default)
applies :func:`hdc.cli.train.keep_freed_memory` first, as `hdc train` / `hdc compare` do; with
``--no-keep-heap`` the script also runs on checkouts older than that function, for an A/B:

    PYTHONPATH=<old checkout> python benchmarks/train_step.py --variants sparse --no-keep-heap
"""
import argparse
import resource
import time

import numpy as np
import torch

from hdc.nn import training

MODELS = {
    "dense": dict(attention="dense", code_bits=256),
    "kwta": dict(attention="kwta", code_bits=256),
    "sparse": dict(attention="kwta", code="sparse", code_bits=None, blocks=8, block_size=64, balance=0.05),
}


def step_costs(variant, steps, task):
    """Mean ms per step: ``{"wall", "user", "sys", "minflt"}`` (minflt: faults per step)."""
    model = training.build_model(task, d_model=128, n_layers=2, n_heads=4, topk=16, learn_temperature=True,
                                 seed=0, **MODELS[variant])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)

    def step():
        x, y, _ = (torch.from_numpy(a) for a in task.batch(32, rng))
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())
        aux = model.aux_loss()
        if aux is not None:
            loss = loss + aux
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": wall / steps * 1e3, "user": (r1.ru_utime - r0.ru_utime) / steps * 1e3,
            "sys": (r1.ru_stime - r0.ru_stime) / steps * 1e3, "minflt": (r1.ru_minflt - r0.ru_minflt) / steps}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="dense,kwta,sparse")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--keep-heap", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    applied = False
    if args.keep_heap:
        from hdc.cli.train import keep_freed_memory
        applied = keep_freed_memory()
    task = training.make_task("charlm", seq_len=128)
    print(f"threads {args.threads}, keep_freed_memory applied: {applied}")
    for variant in args.variants.split(","):
        c = step_costs(variant, args.steps, task)
        print(f"{variant:8s} wall {c['wall']:7.0f} ms  user {c['user']:7.0f} ms  sys {c['sys']:6.0f} ms  "
              f"minor faults {c['minflt']:9.0f} per step")


if __name__ == "__main__":
    main()
