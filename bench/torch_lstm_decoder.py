#!/usr/bin/python3
"""PyTorch CPU reference for bench/decoder.ts: a captioning decoder's whole training update (Adam), median ms and
tokens/s. The model is graphs/captioner.ts's `reference` decoder (Show and Tell) from the backbone's features on:

  feature [N, 1280] -> Linear(1280 -> 256) + BatchNorm1d(256) = the LSTM's input at step 0,
  Embedding(vocabulary, 256, padding_idx=0) of the caption's L tokens (teacher forcing) = its inputs at steps 1..L,
  torch.nn.LSTM(256 -> 512, batch_first) over the L + 1 steps -> Linear(512 -> vocabulary) on steps 1..L,
  cross-entropy over the real tokens (padding ignored), Adam lr 1e-3 (--optimizer sgd: plain SGD lr 0.1).

Two ways of running the LSTM, timed in alternation (one update of each in turn, so that the machine's slow and
fast phases hit both alike; with --serve, bench/decoder.ts asks for one update at a time and alternates them with
its own):
  padded: nn.LSTM over the whole padded batch; padding is left out of the loss only (ignore_index);
  packed: pack_padded_sequence, as tutorials write it: no work on padding at all.
With --lengths full every caption has L real tokens (both do the same work); --lengths varied draws lengths in
[L/2, L]; bench/decoder.ts passes its own with --lengths-json, so that both sides see the same tokens.

  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295 \
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=PASSIVE \
    /usr/bin/python3 bench/torch_lstm_decoder.py [--threads N] [--steps 20] [--warmup 5] [--lengths full|varied]
Needs Debian's python3-torch and libopenblas0-openmp (see ../shared/bench/README.md): without OpenBLAS, Debian's
torch multiplies matrices with the reference BLAS, about 20x slower. Prints one JSON line.
"""
import argparse, json, os, statistics, sys, time
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence


class Decoder(nn.Module):
    def __init__(self, vocab, features, embed, hidden):
        super().__init__()
        self.project = nn.Linear(features, embed)
        self.norm = nn.BatchNorm1d(embed)
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, vocab)

    def inputs(self, features, captions):
        # [N, 1 + L, E]: the projected image at step 0, then the caption's tokens.
        return torch.cat([self.norm(self.project(features)).unsqueeze(1), self.embed(captions)], 1)

    def padded(self, features, captions):
        out, _ = self.lstm(self.inputs(features, captions))
        return self.classifier(out[:, 1:])                      # [N, L, V]

    def packed(self, features, captions, lengths):
        # Each caption's image step and its real tokens. The packed data is time-major: its first N rows are step 0,
        # the image, which predicts nothing; the rest line up with the targets packed by the same lengths.
        packed = pack_padded_sequence(self.inputs(features, captions), [n + 1 for n in lengths], batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return self.classifier(out.data[int(packed.batch_sizes[0]):])   # [real tokens, V]


def lengths_of(kind, batch, length, seed):
    if kind == "full":
        return [length] * batch
    g = torch.Generator().manual_seed(seed)
    return torch.randint(max(1, length // 2), length + 1, (batch,), generator=g).tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed updates of each variant")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=20, help="L: tokens a caption (the LSTM runs L + 1 steps)")
    ap.add_argument("--vocab", type=int, default=2500)
    ap.add_argument("--lengths", choices=["full", "varied"], default="full")
    ap.add_argument("--lengths-json", help="real tokens of each caption as a JSON list (overrides --lengths)")
    ap.add_argument("--variants", default="padded,packed")
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="Adam lr 1e-3, or plain SGD lr 0.1")
    ap.add_argument("--serve", action="store_true", help="run one update per variant name read from stdin (bench/decoder.ts)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, length, v = args.batch, args.length, args.vocab
    lengths = json.loads(args.lengths_json) if args.lengths_json else lengths_of(args.lengths, n, length, 0)
    real = sum(lengths)
    features = torch.randn(n, 1280)
    captions = torch.randint(1, v, (n, length))
    targets = torch.randint(1, v, (n, length))
    mask = torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)      # [N, L]
    masked_targets = targets.masked_fill(~mask, -100)
    packed_targets = pack_padded_sequence(targets, lengths, batch_first=True, enforce_sorted=False).data
    variants = args.variants.split(",")
    runs = {}
    for name in variants:
        model = Decoder(v, 1280, 256, 512).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3) if args.optimizer == "adam" else torch.optim.SGD(model.parameters(), lr=0.1)
        if name == "padded":
            def update(model=model, opt=opt):
                opt.zero_grad(set_to_none=True)
                logits = model.padded(features, captions)
                loss = nn.functional.cross_entropy(logits.reshape(-1, v), masked_targets.reshape(-1), ignore_index=-100)
                loss.backward()
                t = time.perf_counter()
                opt.step()
                return loss.item(), t
        elif name == "packed":
            def update(model=model, opt=opt):
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model.packed(features, captions, lengths), packed_targets)
                loss.backward()
                t = time.perf_counter()
                opt.step()
                return loss.item(), t
        else:
            raise SystemExit(f"unknown variant {name}")
        runs[name] = {"update": update, "times": []}
    blas = os.environ.get("LD_LIBRARY_PATH", "").rstrip("/").split("/")[-1] or "system libblas.so.3"
    system = f"pytorch {torch.__version__}, {blas}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}"

    def timed(name):
        """One update: its ms, optimizer.step's ms, the loss."""
        t0 = time.perf_counter()
        loss, t_opt = runs[name]["update"]()
        end = time.perf_counter()
        return (end - t0) * 1000, (end - t_opt) * 1000, loss

    if args.serve:
        # One update per request, so that the caller can alternate them with its own: a line naming the variant in,
        # one JSON line {"ms", "optimizerMs", "loss"} out; "quit" (or the end of input) ends.
        print(json.dumps({"ready": True, "system": system, "tokens": real}), flush=True)
        for line in sys.stdin:
            name = line.strip()
            if name in ("", "quit"):
                break
            ms, opt_ms, loss = timed(name)
            print(json.dumps({"ms": round(ms, 3), "optimizerMs": round(opt_ms, 3), "loss": round(loss, 4)}), flush=True)
        return
    for i in range(args.warmup + args.steps):
        for name in variants:
            ms, opt_ms, loss = timed(name)
            if i >= args.warmup:
                runs[name]["times"].append(ms)
                runs[name].setdefault("optimizer", []).append(opt_ms)
            runs[name]["loss"] = loss
    rows = []
    for name in variants:
        ms = statistics.median(runs[name]["times"])
        rows.append({"variant": name, "msPerUpdate": round(ms, 2), "tokensPerSecond": round(real * 1000 / ms, 1),
                     "optimizerMs": round(statistics.median(runs[name]["optimizer"]), 2),
                     "minMs": round(min(runs[name]["times"]), 2), "loss": round(runs[name]["loss"], 4)})
    print(json.dumps({"system": system, "threads": args.threads, "batch": n, "length": length,
                      "vocab": v, "tokens": real, "steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
