"""Settings as frozen dataclasses, with every bound named once.

Sliders read their ranges from here and validators check against the same
constants, so a control and the API can never disagree about what is legal.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

# Pruning bounds.
SPARSITY_MIN = 0.0
SPARSITY_MAX = 0.99  # sliders stop short of 1.0; the API accepts up to 1.0 inclusive
THRESHOLD_MIN = 0.0
THRESHOLD_SLIDER_MAX = 0.5  # weights of the default model rarely exceed this
STD_MIN = 0.0
STD_SLIDER_MAX = 3.0
MIN_LAYER_DENSITY = 0.01  # global scope never leaves a layer with fewer survivors
# A slider move on a big model answers first from a fixed, seeded validation subset (the
# headline says so); the full set follows (Session.refine). Small models always use all.
FAST_EVAL_SAMPLES = 256
FAST_EVAL_MIN_PARAMS = 2_000_000
LM_FAST_EVAL_WINDOWS = 16  # a big language model's first answer: perplexity on these
BN_RECALIBRATION_SAMPLES = 512  # training samples that re-estimate BatchNorm statistics
# ...and on a subset answer (above): a quarter of a 11M ResNet's forward pass instead of a
# whole one; Session.refine() (and shrink/export) re-estimate on all 512 before measuring.
FAST_BN_RECALIBRATION_SAMPLES = 64
HIST_BINS = 60

# Training bounds.
LR_MIN = 1e-6
LR_MAX = 10.0
EPOCHS_MAX = 1000
BATCH_SIZE_MAX = 65536
OPTIMIZERS = ("adam", "sgd", "momentum", "adamw")
LR_SCHEDULES = ("constant", "warmup_cosine")  # warm-up then cosine decay to 10% of lr
STEPS_BUDGET_MAX = 1_000_000  # a fixed number of optimizer steps instead of epochs
SCOPES = ("layer", "global")
PRUNE_MODES = ("threshold", "sparsity", "std")
NORMS = ("l1", "l2")

# Names the API, the command line and the app all offer (the CLI validates against
# these before torch loads, so they live here and nowhere else).
DATASETS = ("digits", "mnist-5k", "toy-regression")  # built in (explorer.data.datasets)
TEXT_DATASETS = ("pydoc-text",)  # built-in corpora (explorer.data.text)
ALL_DATASETS = (*DATASETS, *TEXT_DATASETS)
TASKS = ("classification", "regression")
MODELS = ("mlp", "lenet300", "lenet5", "resnet-small")  # the image/vector zoo
GPT_MODELS = ("gpt-tiny",)  # the language-model zoo
ALL_MODELS = (*MODELS, *GPT_MODELS)
IMAGE_MODELS = ("lenet5", "resnet-small")  # need an image-shaped input
INITS = ("default", "xavier", "he")
STUDENT_INITS = ("random", "teacher")  # how a language-model student starts
SCHEDULES = ("oneshot", "linear", "agp")
STEPS_MAX = 100
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "ray")
CPUS_PER_POINT_MAX = 1024  # Ray resources one sweep point may ask for
GPUS_PER_POINT_MAX = 64
EXPORT_KINDS = ("masked", "zeros", "shrunk", "semi_structured")  # the last: 2:4 weights
SEED_MAX = 2**31 - 1  # what numpy, sklearn and torch all accept
THREADS_MAX = 256
MODEL_WIDTH_MIN, MODEL_WIDTH_MAX = 0.01, 16.0
# Prune and fine-tune defaults, one set for the app's controls, Session.prune_iteratively
# and `explorer run` (its unset --steps/--schedule/--finetune-epochs).
# Han et al. 2015 retrain at a tenth of the learning rate with SGD; with Adam at 1e-3 a
# tenth recovered 62.7% -> 81.9% on digits at 90%, the full rate within a point. Measured
# (scripts/measure_finetune.py, mean of 3 seeds, test split, 90% target): digits MLP 97.3%
# dense -> 96.5% in 1.1 s; mnist-5k lenet300 92.8% -> 93.3% in 3.4 s; mnist-5k MLP 92.4%
# -> 92.8%.
FINETUNE_LR_FACTOR = 1.0
HAN_RETRAIN_LR_FACTOR = 0.1  # Han et al. 2015 retrain at a tenth of the learning rate
FINETUNE_STEPS = 3
FINETUNE_SCHEDULE = "agp"
FINETUNE_EPOCHS = 5  # per step
PIN_SEEDS_MAX = 10  # the Compare tab repeats a pinned run over at most this many seeds
UNDO_MAX = 20  # model states kept for Undo (the oldest go first)
HISTORY_MAX = 2000  # epoch and pruning records kept for the curves
REWIND_EPOCHS_KEPT = 20  # rewind=k is possible for k up to this many training epochs
# ... and by bytes, per model (explorer.session.memory): an 11M-parameter model's state is
# 44 MB, so 20 undo steps would hold 880 MB. Beyond UNDO_BYTES_MAX the oldest undo steps go
# (the last one always stays); beyond REWIND_BYTES_MAX later epochs get no rewind point.
# The digits MLP (0.4 MB a state) never reaches either.
UNDO_BYTES_MAX = 256 * 2**20
REWIND_BYTES_MAX = 128 * 2**20
# Progress within an epoch (explorer.engine.progress): at most this often, and this many
# steps apart (whichever comes later); the only host reads of the loss on an accelerator.
PROGRESS_INTERVAL_S = 0.5
PROGRESS_EVERY_STEPS = 10

# Bounds on what a request, a data set or a file may ask the explorer to build (issue 19):
# every one is checked before any memory is spent on it.
HIDDEN_MAX = 16384  # widest hidden layer of an MLP (hidden=, or a session file's config)
HIDDEN_LAYERS_MAX = 16
CLASSES_MAX = 100_000  # class labels 0..CLASSES_MAX-1 (a label of 10**9 would ask for 4 GB)
GRID_POINTS_MAX = 1000  # points of one sweep grid
# Session files (explorer.session.loadcheck): refused from the zip's central directory
# before any tensor is read.
LOAD_RATIO_MAX = 100  # a member expanding more than 100:1 is a compression bomb
LOAD_PICKLE_MAX = 64 * 2**20  # the file's object tree (history, configs), uncompressed
# Parameters of one model: an hf: folder opened (counted on `meta` before any weight is
# read), a session saved and a session file loaded all use this one cap, so what saves
# loads. max_params= (Session, Session.save, Session.load) and --max-params change it.
MODEL_PARAMS_MAX = 1_000_000_000
LOAD_PARAMS_MAX = MODEL_PARAMS_MAX  # the name issue 19's checks used
MAX_PARAMS_OPTION = "max_params= / --max-params"
# `explorer dashboard --max-params N` reaches its kernels (which call check_params with no
# cap of their own: the app, its Load handler, save) through this variable.
MAX_PARAMS_ENV = "EXPLORER_MAX_PARAMS"
LOAD_MEMBERS_MAX = 100_000  # zip members (one per tensor storage)
# Your own data and models (issue 26), checked from a file's header or size before reading:
# a 48-megapixel phone photo fits; decoding one costs a few hundred MiB at most, and every
# image is shrunk to 32 x 32 anyway (Pillow's own bomb limit, 179 megapixels, is far above).
IMAGE_PIXELS_MAX = 50_000_000
# A text corpus (character-level, gpt-tiny): 16 MiB loaded in 3.1 s to 650 MiB peak here;
# 200 MiB took 124 s and 4.2 GiB. Tiny-Shakespeare is 1 MiB.
TEXT_BYTES_MAX = 16 * 2**20
# Finite weights past this size are refused at load, naming the layer: trained weights are
# a few units at most, and squares, norms and histogram ranges of 1e19+ overflow float32.
WEIGHT_ABS_MAX = 1e6


def show_value(value: object) -> str:
    """repr(value), shortened for huge integers (10**400 has 401 digits)."""
    text = repr(value)
    if isinstance(value, numbers.Integral) and len(text) > 24:
        return f"{text[:12]}... (an integer of {len(text.lstrip('-'))} digits)"
    return text
# (48: 2,304 cells keep a slider move under 20 kB and plotly's per-cell checks near 5 ms)
# Samples per training epoch for tests: when set, every TrainConfig made without an
# explicit epoch_size trains on this many samples per epoch (a few batches), so a test
# can run an epoch of any model to its end. Unset: the whole training split.
EPOCH_SIZE_ENV = "EXPLORER_EPOCH_SIZE"


def check_number(name: str, value: object, low: float, high: float,
                 *, integer: bool = False) -> float:
    """Return `value` as a number in [low, high] or raise ValueError naming it.

    NumPy scalars count like Python numbers (np.float32(0.5), np.int64(3)); integers of
    any size are compared exactly, so 10**400 is out of range, not an OverflowError.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # np.bool_ is not Real
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, numbers.Integral):
        whole = int(value)
        if not low <= whole <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got "
                             f"{show_value(whole)}")
        if integer:
            return whole
        try:
            return float(whole)
        except OverflowError:
            raise ValueError(f"{name} is too large to be a float: got "
                             f"{show_value(whole)}") from None
    number = float(value)
    if not math.isfinite(number) or not (low <= number <= high):
        raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
    if integer and int(number) != number:  # after the finiteness test: int(nan) raises
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number) if integer else number


def default_max_params() -> int:
    """The cap when none is given: $EXPLORER_MAX_PARAMS when set, else MODEL_PARAMS_MAX."""
    text = os.environ.get(MAX_PARAMS_ENV, "").strip()
    if not text:
        return MODEL_PARAMS_MAX
    if not text.isdigit():
        raise ValueError(f"{MAX_PARAMS_ENV}={text!r} is not a whole number of parameters")
    return int(check_number(MAX_PARAMS_ENV, int(text), 1, 10**13, integer=True))


def check_params(what: str, count: int, cap: int | None = None) -> int:
    """`count` parameters within the cap (None: default_max_params()), else a ValueError
    naming both numbers and the option that changes the cap; the cap in force."""
    limit = default_max_params() if cap is None else int(
        check_number("max_params", cap, 1, 10**13, integer=True))
    if count > limit:
        raise ValueError(f"{what} has {count:,} parameters, past the limit of "
                         f"{limit:,} ({MAX_PARAMS_OPTION} raises it)")
    return limit


def _store_checked(obj: object, checked: dict[str, object]) -> None:
    """Keep the checked (plain Python) values on a frozen dataclass, not NumPy scalars."""
    names = {f.name for f in fields(obj)}  # type: ignore[arg-type]
    for key, value in checked.items():
        if key in names:
            object.__setattr__(obj, key, value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return `value` if it is one of `choices`, else raise ValueError naming it."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def default_epoch_size() -> int | None:
    """$EXPLORER_EPOCH_SIZE as a whole number of samples, or None (the whole split)."""
    text = os.environ.get(EPOCH_SIZE_ENV, "").strip()
    if not text:
        return None
    try:
        size = int(text, 10)
    except ValueError:
        raise ValueError(f"${EPOCH_SIZE_ENV} must be a whole number of samples; "
                         f"got {text!r}") from None
    return int(check_number(EPOCH_SIZE_ENV, size, 1, 2**31 - 1, integer=True))


@dataclass(frozen=True)
class TrainConfig:
    """How to (re)train: one optimizer, a fixed budget, masks kept applied."""

    epochs: int = 5
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd | momentum (SGD, mu=0.9, PyTorch form) | adamw
    batch_size: int = 64
    weight_decay: float = 0.0
    momentum: float = 0.9
    clip_grad_norm: float | None = None  # clip the global gradient norm to this
    lr_schedule: str = "constant"  # constant | warmup_cosine
    steps: int | None = None  # a budget of optimizer steps; epochs is then ignored
    # samples per epoch (None: the whole split); default from $EXPLORER_EPOCH_SIZE (tests)
    epoch_size: int | None = field(default_factory=lambda: default_epoch_size())

    def __post_init__(self) -> None:
        checked: dict[str, object] = {
            "epochs": check_number("epochs", self.epochs, 1, EPOCHS_MAX, integer=True),
            "lr": check_number("lr", self.lr, LR_MIN, LR_MAX)}
        if self.epoch_size is not None:
            checked["epoch_size"] = check_number("epoch_size", self.epoch_size, 1,
                                                 2**31 - 1, integer=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        checked["batch_size"] = check_number("batch_size", self.batch_size, 1, BATCH_SIZE_MAX,
                                             integer=True)
        checked["weight_decay"] = check_number("weight_decay", self.weight_decay, 0.0, 1.0)
        checked["momentum"] = check_number("momentum", self.momentum, 0.0, 0.999)
        if self.clip_grad_norm is not None:
            checked["clip_grad_norm"] = check_number("clip_grad_norm", self.clip_grad_norm,
                                                     1e-6, 1e6)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.steps is not None:
            checked["steps"] = check_number("steps", self.steps, 1, STEPS_BUDGET_MAX,
                                            integer=True)
        _store_checked(self, checked)


@dataclass(frozen=True)
class PruneConfig:
    """One magnitude-pruning request: exactly one of threshold / sparsity / std."""

    threshold: float | None = None  # keep |w| >= threshold
    sparsity: float | None = None  # prune round(s * n) smallest |w|
    std: float | None = None  # Han et al.: threshold = std * std(w_layer)
    scope: str = "layer"  # layer | global
    structured: bool = False  # whole neurons/filters; sparsity = fraction of channels
    norm: str = "l1"  # how structured pruning ranks channels: l1 | l2

    def __post_init__(self) -> None:
        given = [m for m in PRUNE_MODES if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of threshold=, sparsity=, std=; "
                f"got {', '.join(given) if given else 'none'}"
            )
        checked: dict[str, object] = {}
        if self.threshold is not None:
            checked["threshold"] = check_number("threshold", self.threshold, THRESHOLD_MIN,
                                                math.inf)
        if self.sparsity is not None:
            checked["sparsity"] = check_number("sparsity", self.sparsity, SPARSITY_MIN, 1.0)
        if self.std is not None:
            checked["std"] = check_number("std", self.std, STD_MIN, math.inf)
        _store_checked(self, checked)
        check_choice("scope", self.scope, SCOPES)
        if self.std is not None and self.scope == "global":
            raise ValueError("std= is a per-layer rule (Han et al.); use scope='layer', "
                             f"got scope={self.scope!r}")
        check_choice("norm", self.norm, NORMS)
        if not isinstance(self.structured, bool):
            raise ValueError(f"structured must be True or False; got {self.structured!r}")
        if self.structured and (self.sparsity is None or self.scope != "layer"):
            raise ValueError("structured pruning takes sparsity= (the fraction of neurons or "
                             "filters removed per layer) with scope='layer'; got "
                             f"{self.mode}={self.value:g}, scope={self.scope!r}")

    @property
    def mode(self) -> str:
        return next(m for m in PRUNE_MODES if getattr(self, m) is not None)

    @property
    def value(self) -> float:
        return float(getattr(self, self.mode))


@dataclass(frozen=True)
class PerLayerConfig(PruneConfig):
    """A per-layer sparsity request; `sparsity` holds the overall pruned fraction.

    Code that re-applies a PruneConfig by mode/value re-prunes uniformly at that overall
    fraction, not per layer: use `targets` to re-apply it exactly.
    """

    targets: tuple[tuple[str, float], ...] = ()


def check_targets(targets: Mapping[str, float], prunable: Sequence[str]) -> dict[str, float]:
    """Validated {layer: sparsity}; unknown names or bad values raise ValueError."""
    if not isinstance(targets, Mapping) or not targets:
        raise ValueError(f"targets must map layer names to sparsities; got {targets!r}")
    for name in targets:
        if name not in prunable:
            raise ValueError(f"unknown layer {name!r}; prunable layers: {', '.join(prunable)}")
    return {n: check_number(f"sparsity of {n}", s, 0.0, 1.0) for n, s in targets.items()}


# Distillation bounds (issue 4); explorer.engine.distill and the command line read them here.
TEMPERATURE_MIN = 1.0  # below 1 the targets get sharper than the teacher's own softmax
TEMPERATURE_MAX = 100.0
DEFAULT_TEMPERATURE = 4.0  # Hinton et al.: 2.5-4 worked best for small MNIST students
DEFAULT_ALPHA = 0.7  # the weight of the soft (teacher) term
# Distillation regime (issue 25), chosen by measurement on validation (seeds 0-4) and
# confirmed on test (seeds 5-9): scripts/choose_distill_default.py, docs/distillation.md.
LABELLED_MIN = 0.001  # the smallest fraction of labelled images a regime may ask for
DEFAULT_LABELLED = 0.1  # the student sees labels for this fraction of the training images
DEFAULT_STUDENT_WIDTH = 0.25  # of the teacher's hidden widths (digits: 64-64-32-10)
DEFAULT_DISTILL_EPOCHS = 20  # passes over the transfer set (every student: same steps)
DEFAULT_LEAVE_OUT_CLASS = 3  # what "leave out a class" offers first (Hinton's missing 3)
STUDENT_WIDTH_MIN = 0.01
STUDENT_WIDTH_MAX = 4.0

# Set by the room's server (explorer.cli.room) for its kernels: the path, below the base URL,
# where it serves plotly's widget module; figures then fetch it from there (explorer.ui.served).
PLOTLY_MODULE_ENV = "EXPLORER_PLOTLY_MODULE"
# Set by the room's server for its kernels: a JSON file with the part of plotly's validator
# table the app's figures use (explorer.ui.served.use_served_validators).
PLOTLY_VALIDATORS_ENV = "EXPLORER_PLOTLY_VALIDATORS"
# Its top-level entries: those the app's figures use (ui/plots.py, ui/figures.py: the layout
# and three trace types) and the entries plotly's data and frames validators start from.
PLOTLY_VALIDATORS_USED = ("layout", "scatter", "bar", "heatmap", "data", "frames")

# ----- quantization (issue 31; explorer.engine.quantize, explorer.session.quant) ----------
QUANT_BITS = (32, 8, 6, 5, 4, 3, 2)  # the bits control; 32 = off (fp32)
QUANT_SCHEMES = ("kmeans", "uniform")  # Deep Compression weight sharing; symmetric per row
QUANT_GROUP_SIZES = (32, 64, 128)  # uniform per group of inputs (language models)
