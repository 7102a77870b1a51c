#!/usr/bin/python3
"""Makes the `recommend` example in examples/recommend/models from seeded, synthetic implicit feedback (no
rating data ships offline, so the interactions are generated here; the same seed gives the same data):

  recommend_mf/     TorchScript matrix factorisation: user INT64 [1] -> ids INT64 [10], scores FP32 [10]; the
                    user's score for every item of the catalogue, the items the user has already interacted
                    with masked out, then the top 10 (torch.topk, in the server). A user id the model does not
                    know (outside 0..USERS-1) gets the items with the highest learned bias (the popular ones).
  recommend_items/  the label backend: ids -> their names (items.txt, one per line, line id + 1)
  recommend/        pipeline: user -> recommend_mf -> recommend_items; answers items and scores

The data: USERS users, ITEMS items in GENRES genres with Zipf-like popularity; each user likes a few genres
(Dirichlet) and interacts with 10-60 items drawn by genre taste times popularity. One interaction per user is
held out; the model (BPR loss, Adam) is trained on the rest, and the hit rate at 10 on the held-out one
(against the same for "most popular unseen") is printed and written to recommend_quality.json. The served
model masks every interaction, held-out ones included. Run with Debian's Python:
/usr/bin/python3 examples/recommend/make_recommend_model.py   (about a minute on 2 cores)
"""
import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"
USERS, ITEMS, GENRES, DIM, TOP_K, SEED = 4000, 12000, 24, 32, 10, 20261203
EPOCHS, BATCH, REG = 10, 2048, 0.03
GENRE_NAMES = ["Jazz", "Rock", "Folk", "Blues", "Soul", "Opera", "Techno", "Reggae", "Punk", "Gospel", "Ambient",
               "Country", "Funk", "Metal", "Disco", "Baroque", "Salsa", "Tango", "Grunge", "Swing", "Ska", "House",
               "Bossa", "Polka"]
WORDS = ["Midnight", "River", "Echo", "Velvet", "Golden", "Paper", "Neon", "Silent", "Wild", "Broken", "Summer",
         "Glass", "Iron", "Blue", "Hollow", "Electric", "Distant", "Crimson", "Lucky", "Frozen"]


def interactions():
    """(items per user: a sorted int64 array each, item names, the generator's probability of each item per
    user as a function of the user, which no model sees); the same for the same SEED."""
    rng = np.random.default_rng(SEED)
    genre = rng.integers(0, GENRES, ITEMS)
    popularity = 1.0 / (1.0 + rng.permutation(ITEMS)) ** 0.8
    names = [f"{GENRE_NAMES[genre[i]]}: {WORDS[i % 20]} {WORDS[(i // 20) % 20]} No. {i}" for i in range(ITEMS)]
    per_user, tastes = [], []
    for _ in range(USERS):
        tastes.append(rng.dirichlet(np.full(GENRES, 0.15)))
        p = tastes[-1][genre] * popularity
        n = int(rng.integers(10, 61))
        per_user.append(np.sort(rng.choice(ITEMS, size=n, replace=False, p=p / p.sum())).astype(np.int64))
    return per_user, names, lambda u: tastes[u][genre] * popularity


def split(per_user):
    """One held-out item per user (seeded), and the rest for training."""
    rng = np.random.default_rng(SEED + 1)
    held = np.array([rng.choice(items) for items in per_user], np.int64)
    train = [items[items != h] for items, h in zip(per_user, held)]
    return train, held


def csr(per_user):
    offsets = np.zeros(len(per_user) + 1, np.int64)
    offsets[1:] = np.cumsum([len(items) for items in per_user])
    return torch.from_numpy(offsets), torch.from_numpy(np.concatenate(per_user).astype(np.int32))


class Recommender(torch.nn.Module):
    """user [N, 1] INT64 -> (ids [N, K] INT64, scores [N, K] FP32): the top K of the whole catalogue by
    user . item + item bias, never an item the user has interacted with (offsets/seen: CSR per user)."""

    def __init__(self, users, items, bias, offsets, seen, k: int):  # seen: INT32, half the file of INT64
        super().__init__()
        self.register_buffer("users", users)
        self.register_buffer("items", items)
        self.register_buffer("bias", bias)
        self.register_buffer("offsets", offsets)
        self.register_buffer("seen", seen)
        self.k = k

    def forward(self, user: torch.Tensor):
        u = user.reshape(-1)
        known = (u >= 0) & (u < self.users.shape[0])
        row = torch.where(known, u, torch.zeros_like(u))
        scores = self.users[row] @ self.items.t() + self.bias
        scores = torch.where(known.unsqueeze(1), scores, self.bias.expand_as(scores))
        for i in range(u.shape[0]):
            if bool(known[i]):
                begin = int(self.offsets[row[i]])
                end = int(self.offsets[row[i] + 1])
                scores[i].index_fill_(0, self.seen[begin:end].long(), float("-inf"))
        top = torch.topk(scores, self.k, dim=1)
        return top.indices, top.values


def train_bpr(train):
    torch.manual_seed(SEED)
    users = torch.nn.Embedding(USERS, DIM)
    items = torch.nn.Embedding(ITEMS, DIM)
    bias = torch.nn.Embedding(ITEMS, 1)
    for e in (users, items):
        torch.nn.init.normal_(e.weight, std=0.1)
    torch.nn.init.zeros_(bias.weight)
    pairs_u = torch.from_numpy(np.concatenate([np.full(len(t), u, np.int64) for u, t in enumerate(train)]))
    pairs_i = torch.from_numpy(np.concatenate(train))
    opt = torch.optim.Adam([*users.parameters(), *items.parameters(), *bias.parameters()], lr=0.01)
    for epoch in range(EPOCHS):
        order = torch.randperm(len(pairs_u))
        total = 0.0
        for b in range(0, len(order), BATCH):
            idx = order[b:b + BATCH]
            u, pos = pairs_u[idx], pairs_i[idx]
            neg = torch.randint(0, ITEMS, (len(idx),))
            eu = users(u)
            diff = (eu * (items(pos) - items(neg))).sum(1) + (bias(pos) - bias(neg)).squeeze(1)
            loss = -torch.nn.functional.logsigmoid(diff).mean() + REG * (eu.pow(2).sum() + items(pos).pow(2).sum()
                                                                          + items(neg).pow(2).sum()) / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch + 1}: BPR loss {total / len(order):.4f}")
    return users.weight.detach(), items.weight.detach(), bias.weight.detach().reshape(-1)


def hit_rate(model, held):
    with torch.no_grad():
        ids, _ = model(torch.arange(USERS).unsqueeze(1))
    return float((ids == torch.from_numpy(held).unsqueeze(1)).any(1).float().mean())


def ceiling_hit_rate(train, held, truth):
    """The hit rate at 10 of the generator's own probabilities (the unseen items): what no model can beat."""
    hits = 0
    for u in range(USERS):
        p = truth(u)
        p[train[u]] = -1.0
        hits += int(held[u] in np.argpartition(-p, TOP_K)[:TOP_K])
    return hits / USERS


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main():
    per_user, names, truth = interactions()
    train, held = split(per_user)
    users, items, bias = train_bpr(train)
    offsets, seen = csr(train)
    quality = {"users": USERS, "items": ITEMS, "interactions": int(sum(len(p) for p in per_user)),
               "hit_rate_at_10": hit_rate(Recommender(users, items, bias, offsets, seen, TOP_K), held)}
    # The baseline: the same top 10 by popularity (training counts) among the unseen items.
    counts = torch.bincount(torch.from_numpy(np.concatenate(train)), minlength=ITEMS).float()
    popular = Recommender(torch.zeros(USERS, 1), torch.zeros(ITEMS, 1), counts + torch.arange(ITEMS) * -1e-6,
                          offsets, seen, TOP_K)
    quality["popular_hit_rate_at_10"] = hit_rate(popular, held)
    quality["generator_hit_rate_at_10"] = ceiling_hit_rate(train, held, truth)
    print(json.dumps(quality))
    write(HERE / "recommend_quality.json", json.dumps(quality, indent=2) + "\n")

    offsets, seen = csr(per_user)  # served: every interaction is masked
    mf = MODELS / "recommend_mf"
    (mf / "1").mkdir(parents=True, exist_ok=True)
    torch.jit.script(Recommender(users, items, bias, offsets, seen, TOP_K)).save(str(mf / "1" / "model.pt"))
    write(mf / "model.yaml",
          f"# user -> the top {TOP_K} items of {ITEMS} (ids) and their scores, none the user has interacted with.\n"
          "backend: torchscript\nmax_batch_size: 64\ninputs:\n  - {name: user, datatype: INT64, shape: [1]}\n"
          f"outputs:\n  - {{name: ids, datatype: INT64, shape: [{TOP_K}]}}\n"
          f"  - {{name: scores, datatype: FP32, shape: [{TOP_K}]}}\n")
    names_dir = MODELS / "recommend_items"
    write(names_dir / "items.txt", "\n".join(names) + "\n")
    write(names_dir / "model.yaml",
          "# item ids -> their names (line id + 1 of items.txt)\n"
          "backend: label\nmax_batch_size: 64\nparameters: {labels: items.txt}\n"
          f"inputs:\n  - {{name: ids, datatype: INT64, shape: [{TOP_K}]}}\n"
          f"outputs:\n  - {{name: items, datatype: BYTES, shape: [{TOP_K}]}}\n")
    (names_dir / "1").mkdir(exist_ok=True)
    (names_dir / "1" / ".gitkeep").touch()
    write(MODELS / "recommend" / "model.yaml",
          f"# A user id in; the names of the {TOP_K} items to recommend (never one the user has already\n"
          "# interacted with) and their scores out.\n"
          "kind: pipeline\nmax_batch_size: 64\ninputs:\n  - {name: user, datatype: INT64, shape: [1]}\n"
          "outputs:\n  - {name: items, from: names.items}\n  - {name: scores, from: rank.scores}\nsteps:\n"
          "  - {name: rank, model: recommend_mf, inputs: {user: $in.user}}\n"
          "  - {name: names, model: recommend_items, inputs: {ids: rank.ids}}\n")
    (MODELS / "recommend" / "1").mkdir(exist_ok=True)
    (MODELS / "recommend" / "1" / ".gitkeep").touch()


if __name__ == "__main__":
    main()
