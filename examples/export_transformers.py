"""Use a learngene model in Hugging Face transformers: export, load with the Auto classes, predict.

    python examples/export_transformers.py                                   # materialize + export + predict
    python examples/export_transformers.py --model-dir runs/finetune_timm/finetuned   # a fine-tuned timm folder

The exported folder is a plain ``ViTForImageClassification`` (config.json, model.safetensors) with a
``preprocessor_config.json``: ``AutoModelForImageClassification`` and ``AutoImageProcessor`` load it without
wavehub or timm, its logits equal the timm model's and its processor equals timm's eval transform.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import CLASSES, DEFAULT_DIR, FashionMNIST  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--learngene", default="dinov2s-learngene", help="zoo name, hf-hub:org/repo, or a local folder"
    )
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--img-size", type=int, default=56)
    p.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="export this timm folder instead of materializing (e.g. finetune_timm.py's OUT/finetuned)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs/export_transformers"), help="the transformers folder"
    )
    p.add_argument("--index", type=int, default=0, help="which Fashion-MNIST test image to classify")
    p.add_argument("--data-dir", default=DEFAULT_DIR)
    return p.parse_args(argv)


def main(argv=None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    import timm

    import wavehub

    # 1. the model: a fine-tuned timm folder, or freshly materialized from the learngene (random head!)
    if args.model_dir is not None:
        model = timm.create_model(f"local-dir:{args.model_dir}", pretrained=True)
    else:
        model = wavehub.create_model(
            args.learngene,
            depth=args.depth,
            width=args.width,
            img_size=args.img_size,
            num_classes=len(CLASSES),
        )
        print(
            "note: a freshly materialized model has an untrained head; fine-tune first for meaningful "
            "predictions (examples/finetune_timm.py, then --model-dir)"
        )
    model.eval()

    # 2. export (ExportError with a remedy if transformers' ViT cannot represent the model exactly)
    out = wavehub.save_transformers(model, args.out, label_names=CLASSES)
    print(f"exported to {out}: {sorted(p.name for p in out.iterdir())}")

    # 3. from here on: plain transformers
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    hf_model = AutoModelForImageClassification.from_pretrained(out).eval()
    processor = AutoImageProcessor.from_pretrained(out)
    image = FashionMNIST("test", data_dir=args.data_dir).image(args.index)  # a 28x28 PIL image (RGB)
    label = int(FashionMNIST("test", data_dir=args.data_dir).labels[args.index])
    inputs = processor(images=image, return_tensors="pt")
    with torch.no_grad():
        logits = hf_model(**inputs).logits
    probs = logits.softmax(-1)[0]
    k = int(probs.argmax())
    print(
        f"transformers prediction for test image {args.index}: {hf_model.config.id2label[k]} "
        f"(probability {probs[k]:.3f}); true class: {CLASSES[label]}"
    )

    # 4. checks: the timm model on the same tensor, and timm's own transform on the same image
    from timm.data import create_transform, resolve_data_config

    x = create_transform(**resolve_data_config({}, model=model))(image).unsqueeze(0)
    with torch.no_grad():
        diff = (model(inputs["pixel_values"]) - logits).abs().max().item()
    print(
        f"max |timm logits - transformers logits| = {diff:.2e}; "
        f"max |timm transform - processor| = {(x - inputs['pixel_values']).abs().max().item():.2e}"
    )
    return 0


if __name__ == "__main__":
    from wavehub.errors import WavehubError

    try:
        raise SystemExit(main())
    except WavehubError as e:  # wavehub's errors carry a one-line fix: show it instead of a traceback
        raise SystemExit(f"error: {e}") from None
