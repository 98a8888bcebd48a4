"""The columnformer training step in PyTorch, for `npm run bench` (bench/train-step.ts).

A small, independent PyTorch implementation of the same vision Columnformer and
the same optimiser step as src/train/trainer.ts, so the two engines can be timed
side by side on the same workload:

  patches [B, P, p*p*C] -> shared patch embedding -> masked patches -> learned mask token
  x0 [B, N, D] = embeddings in the input area's columns [start, end), zeros elsewhere
  depth x (h = LN1(x); a = attn(h); x = x + a; x = x + MLP(LN2(x)))   (no weights shared across columns)
  output-area states -> per-column linear decoder -> MSE on masked patches vs per-patch normalised targets
  backward; clip_grad_norm_(clip); AdamW (no decay on biases, norms, 1-D params, attn_bias)

The geometry is not re-implemented here: the caller passes N, the input and
output areas' column ranges and the initial attention bias. The wiring cost is
not implemented (the presets train with lambda 0; a config with lambda > 0 is refused).

Input: one JSON object on stdin (or as the first command-line argument), see
`TrainStepConfig` below. Output: one JSON line on stdout with the timings
(milliseconds), images/s at the median, the torch version and thread count.

Usable as a module too: `build_params`, `loss_fn` and `make_optimizer` are what
the timed step uses.
"""

from __future__ import annotations

import json
import math
import re
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

# TrainStepConfig (JSON), all required unless marked:
#   workload: "vision" (default: the MIM training step) or "sheet" (the reference sheet step:
#     states [B, N, D] in, MSE on the final states, no images; the image fields are not needed)
#   num_columns, dim, qk_dim, mlp_dim, depth, skip_attn, attn_scale, norm_eps
#   image_size, patch_size, channels, inject ("first" | "every"), learned_init_state
#   input_start, input_end, output_start, output_end      (column ranges of the areas)
#   attn_bias_init: [N * N] floats (optional; zeros when absent)
#   batch_size, mask_ratio, lr, beta1, beta2, eps, weight_decay, clip_norm (null = off), wiring_lambda
#   repeats (timed steps after one first call and one warm-up), seed, threads (torch threads)
#   device (optional): "cpu" (default) or "cuda"; on cuda the parameters and the batch live on
#     the GPU and every timed step ends with torch.cuda.synchronize() (loss.item() syncs too),
#     and the output adds the GPU's name and its peak allocated memory

PATCH_NORM_EPS = 1e-6


def column_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Per-column linear: x [B, N, in], weight [N, out, in], bias [N, out] -> [B, N, out]."""
    y = torch.einsum("bni,noi->bno", x, weight)
    return y + bias if bias is not None else y


def column_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise each column's state over D (population variance), then its own affine [N, D]."""
    return F.layer_norm(x, (x.shape[-1],), eps=eps) * weight + bias


def patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    """[B, H, W, C] -> [B, (H/p)*(W/p), p*p*C], pixel (r, c, ch) of a patch at (r*p + c)*C + ch."""
    b, h, w, c = images.shape
    return images.reshape(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5).reshape(b, (h // p) * (w // p), p * p * c)


def uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def build_params(cfg: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Parameters named as the TypeScript model's tensors, initialised with the same distributions."""
    n, d, qk, mlp = cfg["num_columns"], cfg["dim"], cfg["qk_dim"], cfg["mlp_dim"]
    k = cfg["patch_size"] ** 2 * cfg["channels"]
    p_out = cfg["output_end"] - cfg["output_start"]
    bias_init = cfg.get("attn_bias_init")
    attn_bias = torch.tensor(bias_init, dtype=torch.float32).reshape(n, n) if bias_init else torch.zeros(n, n)
    params = {
        "patch_embed.weight": uniform((d, k), k**-0.5, gen),
        "patch_embed.bias": torch.zeros(d),
        "mask_token": torch.randn(d, generator=gen) * 0.02,
        "sheet.norm1.weight": torch.ones(n, d),
        "sheet.norm1.bias": torch.zeros(n, d),
        "sheet.attn.q.weight": uniform((n, qk, d), d**-0.5, gen),
        "sheet.attn.q.bias": torch.zeros(n, qk),
        "sheet.attn.k.weight": uniform((n, qk, d), d**-0.5, gen),
        "sheet.attn.attn_bias": attn_bias,
        "sheet.norm2.weight": torch.ones(n, d),
        "sheet.norm2.bias": torch.zeros(n, d),
        "sheet.mlp.fc1.weight": uniform((n, mlp, d), d**-0.5, gen),
        "sheet.mlp.fc1.bias": torch.zeros(n, mlp),
        "sheet.mlp.fc2.weight": uniform((n, d, mlp), mlp**-0.5, gen),
        "decoder.weight": uniform((p_out, k, d), d**-0.5, gen),
        "decoder.bias": torch.zeros(p_out, k),
    }
    if cfg["learned_init_state"]:
        params["init_state"] = torch.zeros(n, d)
    return {name: t.requires_grad_(True) for name, t in params.items()}


def sheet_step(p: dict[str, torch.Tensor], x: torch.Tensor, cfg: dict) -> torch.Tensor:
    """One recurrent step: h = LN1(x); x = x + attn(h) (or attn(h)); x = x + MLP(LN2(x))."""
    eps = cfg["norm_eps"]
    h = column_layer_norm(x, p["sheet.norm1.weight"], p["sheet.norm1.bias"], eps)
    q = column_linear(h, p["sheet.attn.q.weight"], p["sheet.attn.q.bias"])  # [B, N, qk]
    k = column_linear(h, p["sheet.attn.k.weight"])  # [B, N, qk]
    scores = torch.matmul(q, k.transpose(1, 2)) * cfg["attn_scale"] + p["sheet.attn.attn_bias"]
    attn = torch.softmax(scores, dim=-1)  # [B, N, N]
    out = torch.matmul(attn, h)  # the value is the normed input itself
    x = x + out if cfg["skip_attn"] else out
    hidden = F.gelu(column_linear(column_layer_norm(x, p["sheet.norm2.weight"], p["sheet.norm2.bias"], eps), p["sheet.mlp.fc1.weight"], p["sheet.mlp.fc1.bias"]))
    return x + column_linear(hidden, p["sheet.mlp.fc2.weight"])


def loss_fn(p: dict[str, torch.Tensor], images: torch.Tensor, mask: torch.Tensor, cfg: dict) -> torch.Tensor:
    """MIM loss of one batch: images [B, H, W, C] in [0, 1], mask [B, P] (1 = masked)."""
    patches = patchify(images, cfg["patch_size"])  # [B, P, K]
    emb = torch.matmul(patches, p["patch_embed.weight"].t()) + p["patch_embed.bias"]  # [B, P, D]
    m = mask.unsqueeze(-1)
    emb = emb * (1 - m) + m * p["mask_token"]
    b, _, d = emb.shape
    n, start, end = cfg["num_columns"], cfg["input_start"], cfg["input_end"]
    drive = torch.cat([emb.new_zeros(b, start, d), emb, emb.new_zeros(b, n - end, d)], dim=1)  # [B, N, D]
    x = drive + p["init_state"] if "init_state" in p else drive
    for step in range(cfg["depth"]):
        if step > 0 and cfg["inject"] == "every":
            x = x + drive
        x = sheet_step(p, x, cfg)
    out = x[:, cfg["output_start"] : cfg["output_end"]]  # [B, P_out, D]
    pred = column_linear(out, p["decoder.weight"], p["decoder.bias"])  # [B, P, K]
    centred = patches - patches.mean(-1, keepdim=True)
    target = centred / torch.sqrt(centred.square().mean(-1, keepdim=True) + PATCH_NORM_EPS)
    per_patch = (pred - target).square().mean(-1)  # [B, P]
    return (per_patch * mask).sum() / mask.sum()


def no_decay(name: str, t: torch.Tensor) -> bool:
    """The TypeScript defaultNoDecay rule: 1-D, biases, attn_bias, norms."""
    segments = name.split(".")
    return t.dim() <= 1 or segments[-1] in ("bias", "attn_bias") or any(s.startswith("norm") for s in segments)


def make_optimizer(p: dict[str, torch.Tensor], cfg: dict) -> torch.optim.AdamW:
    decay = [t for name, t in p.items() if not no_decay(name, t)]
    rest = [t for name, t in p.items() if no_decay(name, t)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg["lr"],
        betas=(cfg["beta1"], cfg["beta2"]),
        eps=cfg["eps"],
    )


def random_mask(batch: int, patches: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Exactly round(ratio * P) masked patches per image, chosen uniformly."""
    masked = int(math.floor(ratio * patches + 0.5))
    order = torch.rand(batch, patches, generator=gen).argsort(dim=1)
    mask = torch.zeros(batch, patches)
    mask.scatter_(1, order[:, :masked], 1.0)
    return mask


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def blas_name() -> str | None:
    """The BLAS torch computes with: from torch's build config ("mkl, CPU capability AVX512"), else the
    OpenBLAS it has loaded ("OpenBLAS 0.3.21 Zen", Debian's torch 1.13), else the mapped libraries."""
    config = torch.__config__.show()
    info = re.findall(r"BLAS_INFO=(\w+)", config)
    capability = [line.split(":", 1)[1].strip() for line in config.splitlines() if "CPU capability usage" in line]
    if info and info[0] != "open":
        return f"{info[0]}{', CPU capability ' + capability[0] if capability else ''}"
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        if "openblas" in path:
            try:
                import ctypes

                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                lib.openblas_get_corename.restype = ctypes.c_char_p
                version = " ".join(lib.openblas_get_config().decode().split()[:2])
                return f"{version} {lib.openblas_get_corename().decode()}"
            except (OSError, AttributeError):
                return path
    return ", ".join(paths) or None


def sheet_loss_fn(p: dict[str, torch.Tensor], x: torch.Tensor, target: torch.Tensor, cfg: dict) -> torch.Tensor:
    """The reference sheet step's loss: mean squared error of the final states [B, N, D] against a fixed target."""
    for _ in range(cfg["depth"]):
        x = sheet_step(p, x, cfg)
    return (x - target).square().mean()


def main() -> None:
    raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    cfg = json.loads(raw)
    if cfg.get("wiring_lambda", 0) > 0:
        raise SystemExit("torch_step.py: the wiring cost is not implemented (wiring_lambda must be 0)")
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(cfg.get("seed", 0))
    gen = torch.Generator().manual_seed(cfg.get("seed", 0))

    device = torch.device(cfg.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_step.py: device cuda asked for, but torch.cuda.is_available() is False")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    b = cfg["batch_size"]
    # built on the CPU from the seeded generator (the same values on either device), then moved
    params = {name: t.detach().to(device).requires_grad_(True) for name, t in build_params(cfg, gen).items()}
    if cfg.get("workload") == "sheet":
        # the reference sheet step: only the sheet's parameters, states [B, N, D] in, MSE on the final states
        params = {name: t for name, t in params.items() if name.startswith("sheet.")}
        x0 = torch.randn(b, cfg["num_columns"], cfg["dim"], generator=gen).to(device)
        target = torch.randn(b, cfg["num_columns"], cfg["dim"], generator=gen).to(device)
        compute_loss = lambda: sheet_loss_fn(params, x0, target, cfg)  # noqa: E731
    else:
        s, c = cfg["image_size"], cfg["channels"]
        num_patches = (s // cfg["patch_size"]) ** 2
        images = torch.rand(b, s, s, c, generator=gen).to(device)  # a fixed synthetic batch in [0, 1]
        compute_loss = lambda: loss_fn(params, images, random_mask(b, num_patches, cfg["mask_ratio"], gen).to(device), cfg)  # noqa: E731
    opt = make_optimizer(params, cfg)
    leaves = list(params.values())

    def step() -> tuple[float, float]:
        loss = compute_loss()
        loss.backward()
        norm = float("nan")
        if cfg.get("clip_norm") is not None:
            norm = torch.nn.utils.clip_grad_norm_(leaves, cfg["clip_norm"]).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return loss.item(), norm

    sync()
    t = time.perf_counter()
    first_loss, _ = step()
    first_ms = (time.perf_counter() - t) * 1000
    step()  # warm-up
    sync()
    rss_warm = rss_mib()
    times = []
    last_loss = first_loss
    for _ in range(cfg["repeats"]):
        sync()
        t = time.perf_counter()
        last_loss, _ = step()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    rss_end = rss_mib()
    ordered = sorted(times)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    print(
        json.dumps(
            {
                "engine": "torch",
                "torch_version": torch.__version__,
                "python": sys.version.split()[0],
                "threads": torch.get_num_threads(),
                "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "blas": blas_name(),
                "first_call_ms": first_ms,
                "times_ms": times,
                "median_ms": median,
                "min_ms": ordered[0],
                "max_ms": ordered[-1],
                "images_per_second": b / (median / 1000),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_after_warmup_mib": rss_warm,
                "rss_after_repeats_mib": rss_end,
                "first_loss": first_loss,
                "last_loss": last_loss,
                "device": str(device),
                **(
                    {
                        "gpu": torch.cuda.get_device_name(device),
                        "cuda_peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
                        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                    }
                    if device.type == "cuda"
                    else {}
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
