"""Knowledge distillation (Hinton et al. 2015): the loss, cached teacher outputs, students.

Convention (DESIGN section 4), written out because frameworks disagree:

    L = (1 - alpha) * CE(y, softmax(z_s)) + alpha * T**2 * KL(softmax(z_t/T) || softmax(z_s/T))

with the KL averaged over the batch (`reduction="batchmean"`). `alpha` weights the soft
term. The T**2 factor keeps the soft term's gradients on the same scale as T changes
(they shrink like 1/T**2 otherwise); Distiller and TextBrewer leave it out, so here it is
a visible switch, `t_squared`, on by default.

Regression has no temperature: there are no logits to soften. The student matches the
teacher's outputs with MSE instead: L = (1 - alpha) * MSE(y, s) + alpha * MSE(t, s).
"""

from __future__ import annotations

import copy
import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    STUDENT_WIDTH_MAX,
    STUDENT_WIDTH_MIN,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    check_number,
)
from ..models.zoo import MLP, build_model, init_weights, scaled

REGRESSION_NO_TEMPERATURE = (
    "temperature does not apply to regression: there are no logits to soften, so the "
    "student matches the teacher's outputs with MSE; leave temperature unset")


def check_distill_args(temperature: float, alpha: float) -> tuple[float, float]:
    """Validate (temperature, alpha) against the named bounds; ValueError names the value."""
    return (check_number("temperature", temperature, TEMPERATURE_MIN, TEMPERATURE_MAX),
            check_number("alpha", alpha, 0.0, 1.0))


def softened(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(z / T) along the class axis."""
    return F.softmax(logits / temperature, dim=-1)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """KL(softmax(z_t/T) || softmax(z_s/T)), summed over classes, averaged over the batch."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.softmax(teacher_logits / temperature, dim=-1), reduction="batchmean")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            targets: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE,
            alpha: float = DEFAULT_ALPHA, t_squared: bool = True) -> torch.Tensor:
    """Hinton's loss: (1 - alpha) * hard CE + alpha * [T^2] * soft KL (see module doc)."""
    hard = F.cross_entropy(student_logits, targets)
    scale = temperature ** 2 if t_squared else 1.0
    soft = soft_kl(student_logits, teacher_logits.detach(), temperature)
    return (1.0 - alpha) * hard + alpha * scale * soft


def regression_kd_loss(student_out: torch.Tensor, teacher_out: torch.Tensor,
                       targets: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """(1 - alpha) * MSE to the labels + alpha * MSE to the teacher's outputs."""
    return ((1.0 - alpha) * F.mse_loss(student_out, targets)
            + alpha * F.mse_loss(student_out, teacher_out.detach()))


def fingerprint(model: nn.Module) -> str:
    """A digest of every tensor in the state dict (names, shapes, dtypes, bytes).

    Any change of the teacher, in place or not (pruning, training, undo), changes it;
    hashing about 1 MB per call costs a millisecond or so, cheap next to a forward pass.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class TeacherCache:
    """Teacher outputs computed once per (teacher state, split), looked up by sample index.

    Never keyed by batch position: a shuffling loader would pair the wrong logits. The
    outputs are computed in eval mode without gradients; a different fingerprint (the
    teacher changed) drops every cached split.
    """

    def __init__(self) -> None:
        self.key: str | None = None
        self.computations = 0  # how many forward passes over a whole split were made
        self._outputs: dict[str, torch.Tensor] = {}

    def outputs(self, teacher: nn.Module, split: str, x: torch.Tensor) -> torch.Tensor:
        """The teacher's outputs for every example of `split` (rows in sample order)."""
        key = fingerprint(teacher)
        if key != self.key:
            self._outputs.clear()
            self.key = key
        if split not in self._outputs or self._outputs[split].shape[0] != x.shape[0]:
            was_training = teacher.training
            teacher.eval()
            with torch.inference_mode():
                self._outputs[split] = teacher(x).detach().clone()
            teacher.train(was_training)
            self.computations += 1
        return self._outputs[split]

    def lookup(self, teacher: nn.Module, split: str, x: torch.Tensor,
               index: torch.Tensor) -> torch.Tensor:
        """Outputs for the examples `index` of `split`, in the order of `index`."""
        return self.outputs(teacher, split, x)[index]

    def clear(self) -> None:
        self.key, self._outputs = None, {}


def output_size(model: nn.Module, example: torch.Tensor) -> int:
    """The size of a model's output for one example (one forward pass, no gradients)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(example[:1])
    except RuntimeError as err:
        raise ValueError(f"the student cannot take this data set's inputs: {err}") from err
    finally:
        model.train(was_training)
    return int(out.shape[-1])


def check_student(student: nn.Module, teacher: nn.Module, example: torch.Tensor) -> None:
    """Refuse a student whose output size differs from the teacher's."""
    s, t = output_size(student, example), output_size(teacher, example)
    if s != t:
        raise ValueError(f"student has {s} outputs but the teacher has {t}; "
                         "a student must predict the same outputs")


def student_from(teacher: nn.Module, width: float | nn.Module, *, model_name: str,
                 input_shape: tuple[int, ...], n_outputs: int, teacher_width: float = 1.0,
                 init: str = "default", seed: int = 0,
                 image_shape: tuple[int, int, int] | None = None) -> nn.Module:
    """A student with the teacher's architecture, hidden widths scaled by `width`.

    A module is copied (the caller's stays untouched, so the same module gives the same
    initial student twice). The MLP scales the teacher's actual hidden sizes (a shrunk
    teacher keeps its shrunk shape); other zoo models are rebuilt by name with
    width = teacher_width * width, so build_model(name, ..., width=) is the one hook.
    """
    if isinstance(width, nn.Module):
        return copy.deepcopy(width)
    width = check_number("student width", width, STUDENT_WIDTH_MIN, STUDENT_WIDTH_MAX)
    if isinstance(teacher, MLP):
        torch.manual_seed(seed)
        student = MLP(teacher.n_in, scaled(teacher.hidden, width), teacher.n_out)
        init_weights(student, init)
        return student
    # The CNNs of the zoo need the image shape; the MLP-only build_model does not take it.
    shape = {} if image_shape is None else {"image_shape": image_shape}
    try:
        return build_model(model_name, input_shape, n_outputs,
                           width=teacher_width * width, init=init, seed=seed, **shape)
    except (ValueError, TypeError) as err:
        raise ValueError(f"cannot build a {width:g}-width student of {model_name!r}: {err}; "
                         "pass a student module instead") from err


def agreement(outputs: torch.Tensor, reference: torch.Tensor) -> float:
    """Fraction of examples whose top-1 class matches the reference (the teacher)."""
    if outputs.shape != reference.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and teacher outputs "
                         f"{tuple(reference.shape)} differ in shape")
    return float((outputs.argmax(-1) == reference.argmax(-1)).float().mean())


def soft_view(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
              temperature: float) -> dict:
    """Both softened distributions of one example and the KL between them."""
    check_number("temperature", temperature, TEMPERATURE_MIN, TEMPERATURE_MAX)
    t, s = teacher_logits.reshape(1, -1).float(), student_logits.reshape(1, -1).float()
    kl = float(soft_kl(s, t, temperature))
    return {"temperature": float(temperature),
            "teacher": softened(t, temperature)[0].tolist(),
            "student": softened(s, temperature)[0].tolist(),
            "kl": kl if math.isfinite(kl) else float("nan")}
