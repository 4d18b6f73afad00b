#!/usr/bin/python3
"""PyTorch CPU reference for bench/autodiff.ts: forward (train mode) vs forward+backward, median ms, batch 64;
with --update also a whole SGD update as bench/training.ts times it (reference CNN: plain SGD; seed CNN: momentum
0.9), for its paired comparison (--pytorch).

  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_fwd_bwd.py [--threads N]
Needs Debian's python3-torch (see ../shared/bench/README.md). Prints one JSON line.
"""
import argparse, json, statistics, time
import torch
import torch.nn as nn


def reference_cnn():
    stage = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*stage(3, 32), *stage(32, 64), *stage(64, 128), nn.Flatten(),
                         nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 10)), 32, 10


def seed_cnn():
    block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 64), *block(64, 128), *block(128, 256), nn.Flatten(),
                         nn.Linear(16384, 512), nn.ReLU(), nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 30)), 64, 30


def median_ms(fn, runs, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--model", choices=["reference", "seed", "both"], default="both")
    ap.add_argument("--update", action="store_true", help="also time a whole SGD update")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    models = [("reference", "reference CNN 32x32", reference_cnn, 0.0), ("seed", "seed CNN 64x64", seed_cnn, 0.9)]
    for key, name, make, momentum in models:
        if args.model not in (key, "both"):
            continue
        model, size, classes = make()
        model.train()
        x = torch.randn(64, 3, size, size)
        y = torch.randint(0, classes, (64,))

        def forward():
            with torch.no_grad():
                model(x)

        def forward_backward():
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()

        f = median_ms(forward, args.runs)
        fb = median_ms(forward_backward, args.runs)
        row = {"model": name, "forwardMs": round(f, 2), "forwardBackwardMs": round(fb, 2), "ratio": round(fb / f, 2)}
        if args.update:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum)

            def update():
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                loss.item()

            row["updateMs"] = round(median_ms(update, args.runs), 2)
        rows.append(row)
    print(json.dumps({"system": f"pytorch {torch.__version__}", "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
