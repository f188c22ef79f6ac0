"""PyTorch on this machine's CPU, for context beside Graft's training benchmark (bench/train.ts): the same
SmolLM2-135M-shaped model (hidden 576, 9 heads / 3 key-value heads, head dim 64, intermediate 1536, vocab 49152,
tied embeddings, random weights), batch 1, one sequence of --seq tokens with the loss on its second half, LoRA
rank 8 on every linear projection (or full fine-tuning), AdamW; --warmup untimed steps, then --steps timed
ones. Prints one JSON object on stdout. Not a test and never needed by `npm test`; bench/index.ts runs it
when `python3 -c "import torch"` works and says so when it does not.

    python3 bench/torch_step.py [--layers 2] [--seq 256] [--method lora|full] [--steps 2] [--warmup 1]
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

H, I, NH, NKV, D, V = 576, 1536, 9, 3, 64, 49152
RANK, ALPHA = 8, 16


class LoRALinear(nn.Module):
    def __init__(self, inf, outf, lora):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(outf, inf) * 0.02)
        self.lora = lora
        if lora:
            self.a = nn.Parameter(torch.randn(RANK, inf) / math.sqrt(inf))
            self.b = nn.Parameter(torch.zeros(outf, RANK))

    def forward(self, x):
        y = x @ self.weight.t()
        if self.lora:
            y = y + (ALPHA / RANK) * ((x @ self.a.t()) @ self.b.t())
        return y


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(H))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rope(x, cos, sin):
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Layer(nn.Module):
    def __init__(self, lora):
        super().__init__()
        self.n1, self.n2 = RMSNorm(), RMSNorm()
        self.q, self.k, self.v, self.o = (LoRALinear(H, NH * D, lora), LoRALinear(H, NKV * D, lora), LoRALinear(H, NKV * D, lora), LoRALinear(NH * D, H, lora))
        self.gate, self.up, self.down = LoRALinear(H, I, lora), LoRALinear(H, I, lora), LoRALinear(I, H, lora)

    def forward(self, x, cos, sin):
        T = x.shape[1]
        h = self.n1(x)
        q = self.q(h).view(1, T, NH, D).transpose(1, 2)
        k = self.k(h).view(1, T, NKV, D).transpose(1, 2)
        v = self.v(h).view(1, T, NKV, D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(1, T, NH * D)
        x = x + self.o(a)
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, layers, lora):
        super().__init__()
        self.embed = nn.Parameter(torch.randn(V, H) * 0.02)
        self.layers = nn.ModuleList(Layer(lora) for _ in range(layers))
        self.norm = RMSNorm()

    def forward(self, ids, cos, sin):
        x = self.embed[ids]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x) @ self.embed.t()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    lora = args.method == "lora"
    model = Model(args.layers, lora)
    for name, prm in model.named_parameters():
        prm.requires_grad_(not lora or name.endswith(".a") or name.endswith(".b"))
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    T = args.seq
    ids = torch.randint(0, V, (1, T))
    labels = ids.clone()
    labels[:, : T // 2] = -100
    pos = torch.arange(T, dtype=torch.float32)
    inv = 1.0 / (100000.0 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.outer(pos, inv)
    cos = torch.cat((ang.cos(), ang.cos()), -1)
    sin = torch.cat((ang.sin(), ang.sin()), -1)
    times = []
    loss = None
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        logits = model(ids, cos, sin)
        loss = F.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    print(json.dumps({
        "library": f"PyTorch {torch.__version__} on the CPU ({torch.get_num_threads()} threads)",
        "model": "SmolLM2-135M-shaped (random weights)",
        "method": args.method,
        "layers": args.layers,
        "seq_len": T,
        "trainable": sum(q.numel() for q in params),
        "step_s": round(step_s, 4),
        "tokens_per_second": round(T / step_s, 2),
        "loss": round(float(loss.detach()), 4),
        "timed_steps": args.steps,
    }))


if __name__ == "__main__":
    main()
