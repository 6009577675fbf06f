#!/usr/bin/env bash
# One prepared GPU check of the fast ingest pipeline (issue #5), for a device session: correctness on CUDA first
# (fp16 vs fp32 vectors, nvJPEG vs CPU pixels), then benchmarks/ingest_gpu.py end to end. ~3-5 minutes on an H100.
#
# What the device box has (see the device tool's KINDS.md): python3 3.12 with torch (CUDA), transformers,
# torchvision, Pillow, NumPy, scikit-image, typer, rich, grpcio, protobuf, pandas, pyarrow. No internet.
# What must travel with the repo (`carry`), prepared on the dev machine in the repo root:
#   1. assetrag's Milvus client packages, as wheels for CPython 3.12 (pymilvus is imported by `import assetrag`):
#        echo /.whl/ >> .git/info/exclude
#        P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
#           --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
#        python3 -m pip download $P pymilvus==3.0.2 orjson cachetools python-dotenv
#        python3 -m pip download $P milvus-lite==3.2.2 faiss-cpu    # optional (~30 MB): Milvus Lite as the store
#      Without milvus-lite the end-to-end rows are measured with `--uri none` (no store writes; said in the table).
#   2. CLIP weights: a real ViT-B/32 checkpoint (~600 MB) is over the 64 MiB a call can carry, so by default the
#      benchmark builds the real ViT-B/32 architecture with RANDOM weights on the box (`--model vit-b32-random`):
#      the same FLOPs and memory traffic, hence the same images/s; the vectors mean nothing, and the output
#      says so. Where a checkpoint folder is on the box, pass it: CLIP_DIR=/path/to/clip-vit-base-patch32.
# Run (device tool): command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 480.
# Environment knobs: N (JPEG files, default 3000), SIZE (default 1600x1200; "mixed" for camera-like sizes),
# SHARES (GPU decode shares, default 0,0.5,0.65,0.8), POOL (thread|process|both, default both), CLIP_DIR.
# Results: the log, docs/benchmarks.md (its ingest_gpu section's GPU part replaced) and gpu_check.json in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check_out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export ASSETRAG_CACHE=/tmp/assetrag-cache
PY=python3

echo "== machine"
nvidia-smi -L || echo "no nvidia-smi"
nproc
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
$PY - <<'EOF' || { echo "assetrag does not import here: carry the wheels named in this script's header"; exit 1; }
import torch, transformers, PIL
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("transformers", transformers.__version__, "Pillow", PIL.__version__)
try:
    import torchvision
    print("torchvision", torchvision.__version__)
except Exception as exc:
    print("torchvision: not importable:", exc)
import assetrag  # needs pymilvus
print("assetrag imports")
EOF
URI_ARGS=()
if ! $PY -c "import milvus_lite" 2>/dev/null; then
    echo "milvus-lite is not installed: end-to-end rows are measured with --uri none (no store writes)"
    URI_ARGS=(--uri none)
fi
MODEL="${CLIP_DIR:-vit-b32-random}"

echo "== correctness on CUDA (fp16 vs fp32 vectors; nvJPEG vs CPU pixels)"
MODEL="$MODEL" timeout 240 $PY - <<'EOF'
import io, json, os, sys, time
import numpy as np, torch
from PIL import Image
sys.path.insert(0, "benchmarks")
from ingest_gpu import _photo, load_model
from assetrag.embedding.tensors import GpuJpegDecoder
from assetrag.embedding.pixels import decode_pixels

out = {}
gpu, what = load_model(os.environ["MODEL"], "cuda")
cpu, _ = load_model(os.environ["MODEL"], "cpu")
spec = gpu.pixel_spec
print("model:", what, "| dtype on GPU:", gpu.dtype, "| spec:", spec)
imgs = [_photo(i, (1600, 1200) if i % 2 else (1024, 1536)) for i in range(16)]
px = [spec.prepare(im) for im in imgs]
a, b = gpu.embed_pixels(px), cpu.embed_pixels(px)
cos = (a * b).sum(1)
out["fp16_vs_fp32_cos_min"] = float(cos.min())
print(f"embed_pixels fp16 CUDA vs fp32 CPU: cosine min {cos.min():.5f} (want > 0.999)")
slow = gpu.embed_images(imgs[:4])
out["fast_vs_processor_cos_min_cuda"] = float((slow * a[:4]).sum(1).min())
print(f"embed_pixels vs embed_images (transformers processor) on CUDA: cosine min {out['fast_vs_processor_cos_min_cuda']:.5f}")
dec = GpuJpegDecoder.create("cuda")
print("GPU JPEG decoder:", "torchvision nvJPEG" if dec else "NOT available (torchvision missing or unusable)")
if dec:
    datas = []
    for im in imgs:
        buf = io.BytesIO(); im.save(buf, "JPEG", quality=90); datas.append(buf.getvalue())
    t = time.perf_counter(); got = dec.decode(datas * 8, spec); torch.cuda.synchronize()
    rate = len(got) / (time.perf_counter() - t)
    ref = [decode_pixels(d, "x.jpg", spec).pixels.astype(int) for d in datas]
    diffs = [float(np.abs(g.cpu().numpy().astype(int) - r).mean()) for g, r in zip(got, ref)]
    out["nvjpeg_vs_cpu_mean_abs_diff_max"] = max(diffs)
    out["nvjpeg_first_call_img_s"] = rate
    print(f"nvJPEG + GPU resize vs CPU (draft + PIL) pixels: mean |diff| ≤ {max(diffs):.2f} levels; first call {rate:.0f} img/s")
    va = gpu.embed_pixels(got[: len(datas)])
    out["nvjpeg_vs_cpu_vector_cos_min"] = float((va * a).sum(1).min())
    print(f"vectors from nvJPEG pixels vs CPU pixels: cosine min {out['nvjpeg_vs_cpu_vector_cos_min']:.4f}")
json.dump(out, open(os.path.join(os.environ.get("OUT", "/tmp"), "gpu_check.json"), "w"), indent=2)
EOF

echo "== benchmark"
timeout 420 $PY benchmarks/ingest_gpu.py --n "${N:-3000}" --size "${SIZE:-1600x1200}" --model "$MODEL" \
    --pool "${POOL:-both}" --gpu-shares "${SHARES:-0,0.5,0.65,0.8}" "${URI_ARGS[@]}"
cp docs/benchmarks.md "$OUT/benchmarks.md"
echo "== done"
