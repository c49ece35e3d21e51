"""FedDAT (Chen et al., AAAI 2024): a Dual-Adapter Teacher with Mutual Knowledge Distillation
(unit mode `dual_adapters`, registered in `f3ocus_ray.models.units.dual_adapters`).

Each transformer block ends in a `DualAdapter` holding three bottleneck adapters (the
`BottleneckAdapter` of `adapters.py`, zero-initialised up-projection):
- `shared` (A_s): the selectable unit of its block. The client trains it, it travels both ways
  and the server averages it (masked FedAvg): it is the only adapter counted in Mbit.
- `local` (A_c): client-specific, the client's *private* state. It trains on the client and
  never leaves it; the driver keeps one copy per client, in place of the clients' disks (see
  below), all starting from the same seeded initial tensors.
- `frozen` (Ã_s): a frozen copy of the shared adapter as received from the server this round.

Two configurations of the same backbone: the *student* (block output h -> h + A_s(h)) and the
*Dual-Adapter Teacher* (DAT: h -> h + ½ (Ã_s(h) + A_c(h)), the two adapters in parallel, averaged
as in the authors' code). A local step computes both and minimises (`mutual_distillation_loss`)

    CE(student) + CE(DAT) + w·T²·[KL(p_DAT^T ‖ p_student^T) + KL(p_student^T ‖ p_DAT^T)],

each KL with its target side detached (p^T = softmax(logits / T), T the temperature, w the
weight), so A_s (and the head) learn from the labels and from the DAT, and A_c learns from the
labels and from the student; Ã_s stays fixed. With w = 0 these are two independent CE losses.
For multi-label tasks CE is the binary cross-entropy and the KL is the mean per-label Bernoulli KL.

Evaluation (the engine's per-client test score) uses the DAT built from the new global model:
the client's private `local` adapter in parallel with the aggregated `shared` one (copied into
`frozen`), i.e. the personalised model FedDAT deploys on each client. LNTK and the other scores
rank the `shared` adapters, computed in student configuration.

Simplified relative to the paper:
- the adapters sit on each block's output (as unit mode `adapters`, see `adapters.py`), not inside
  the FFN's residual branch, and use GELU;
- the task head is shared (trained by both configurations through their CE terms and averaged
  like every method's head here), not duplicated per configuration;
- the client's budget (mask) applies to both adapters: under a partial mask, only the selected
  blocks' `shared` and `local` adapters train (with `federation.strategy: full`, all of them);
- one optimiser (AdamW, fresh each round) updates A_s, A_c and the head together on the summed
  loss, rather than alternating student and teacher updates;
- client-specific adapters live with the driver, which hands each client its own to whichever
  worker serves it (workers serve any client, and a restarted worker redoes its client from the
  same state), and are saved in the experiment checkpoint, so a resumed run continues them.

`FedDATClient` is the client method the worker calls (see `ClientMethod`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from f3ocus_ray.models.adapters import BottleneckAdapter
from f3ocus_ray.models.client_method import ClientMethod
from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.task import task_loss

# parameter-name markers of the three adapters (the private one's module is named `local`)
SHARED, PRIVATE, FROZEN = ".adapter.shared.", ".adapter.local.", ".adapter.frozen."


class DualAdapter(nn.Module):
    """A block's FedDAT adapters: the student uses `shared`; the DAT `frozen` and `local`."""

    def __init__(self, hidden_size: int, reduction: int = 16):
        super().__init__()
        self.shared = BottleneckAdapter(hidden_size, reduction)
        self.local = BottleneckAdapter(hidden_size, reduction)
        self.frozen = BottleneckAdapter(hidden_size, reduction)
        self.frozen.requires_grad_(False)
        self.teacher = False  # which configuration the forward pass computes

    def forward(self, h: Tensor) -> Tensor:
        if self.teacher:
            return h + 0.5 * (self.frozen.delta(h) + self.local.delta(h))
        return self.shared(h)


def dual_adapters(model: nn.Module) -> Iterator[DualAdapter]:
    return (m for m in model.modules() if isinstance(m, DualAdapter))


def set_teacher(model: nn.Module, teacher: bool) -> None:
    """Switch every block to the DAT (True) or the student (False) configuration."""
    for m in dual_adapters(model):
        m.teacher = teacher


@torch.no_grad()
def freeze_received(model: nn.Module) -> None:
    """Ã_s := A_s for every block (call right after the global shared adapters are loaded)."""
    for m in dual_adapters(model):
        m.frozen.load_state_dict(m.shared.state_dict())


def private_names(space: LayerSpace, mask: np.ndarray | None = None) -> tuple[str, ...]:
    """Parameter names of the client-specific adapters of the masked units (all if no mask)."""
    units = (
        space.units if mask is None else [u for u, m in zip(space.units, mask, strict=True) if m]
    )
    return tuple(n.replace(SHARED, PRIVATE) for u in units for n in u.params)


def private_state(model: nn.Module, space: LayerSpace) -> dict[str, np.ndarray]:
    """A copy of every client-specific adapter tensor (what the client keeps between rounds)."""
    params = dict(model.named_parameters())
    return {n: params[n].detach().cpu().numpy().copy() for n in private_names(space)}


@torch.no_grad()
def load_private(model: nn.Module, tensors: Mapping[str, np.ndarray]) -> None:
    params = dict(model.named_parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only arrays (Ray's object store)
        for name, value in tensors.items():
            params[name].copy_(torch.as_tensor(np.asarray(value)))


def _kl(target_logits: Tensor, logits: Tensor, task: str, temperature: float) -> Tensor:
    """KL(p_target ‖ p) at temperature T, the target side detached (mean over samples)."""
    t = target_logits.detach() / temperature
    s = logits / temperature
    if task == "vqa":
        return F.kl_div(
            F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True
        )
    # multi-label: mean Bernoulli KL over samples and labels
    pt, log_pt, log_1mpt = torch.sigmoid(t), F.logsigmoid(t), F.logsigmoid(-t)
    kl = pt * (log_pt - F.logsigmoid(s)) + (1 - pt) * (log_1mpt - F.logsigmoid(-s))
    return kl.mean()


def mutual_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    task: str,
    *,
    weight: float,
    temperature: float,
    task_loss: Callable[[Tensor, Tensor, str], Tensor],
) -> tuple[Tensor, dict[str, Tensor]]:
    """FedDAT's local objective: (total, parts) with parts `ce_student`, `ce_teacher`,
    `kd_to_student` (KL(teacher ‖ student), trains the student) and `kd_to_teacher`."""
    parts = {
        "ce_student": task_loss(student_logits, targets, task),
        "ce_teacher": task_loss(teacher_logits, targets, task),
        "kd_to_student": _kl(teacher_logits, student_logits, task, temperature),
        "kd_to_teacher": _kl(student_logits, teacher_logits, task, temperature),
    }
    kd = parts["kd_to_student"] + parts["kd_to_teacher"]
    total = parts["ce_student"] + parts["ce_teacher"]
    if weight:
        total = total + weight * temperature**2 * kd
    return total, parts


def dat_step_loss(weight: float, temperature: float) -> Callable[..., Tensor]:
    """`loss(model, data, idx)` of one local step: the student's and the DAT's forward passes on
    the batch, combined by `mutual_distillation_loss` (for `training.local_train`)."""

    def step(model: nn.Module, data, idx) -> Tensor:
        set_teacher(model, False)
        student = data.forward(model, idx)
        set_teacher(model, True)
        try:
            teacher = data.forward(model, idx)
        finally:
            set_teacher(model, False)
        total, _ = mutual_distillation_loss(
            student,
            teacher,
            data.targets[idx],
            data.task,
            weight=weight,
            temperature=temperature,
            task_loss=task_loss,
        )
        return total

    return step


class FedDATClient(ClientMethod):
    """FedDAT's client side: the private adapters loaded before training and evaluation (the
    initial ones on a client's first round), the received shared adapters frozen into the
    teacher, mutual distillation as the step loss, and evaluation with the teacher (the
    personalised model)."""

    def __init__(self, model: nn.Module, space: LayerSpace, weight: float, temperature: float):
        self.model, self.space = model, space
        self.weight, self.temperature = weight, temperature
        # every client's private adapters start from these (the same on every worker)
        self.initial = private_state(model, space)

    def _load(self, private: Mapping[str, np.ndarray] | None) -> None:
        load_private(self.model, private or self.initial)
        freeze_received(self.model)  # the teacher's frozen copy of the received adapters

    def prepare_train(self, private: dict[str, np.ndarray] | None, mask: np.ndarray) -> list:
        self._load(private)
        params = dict(self.model.named_parameters())
        trained = [params[n] for n in private_names(self.space, mask)]
        for p in trained:
            p.requires_grad_(True)
        return trained

    def step_loss(self) -> Callable[..., Tensor]:
        return dat_step_loss(self.weight, self.temperature)

    def collect_private(self) -> dict[str, np.ndarray]:
        return private_state(self.model, self.space)

    @contextlib.contextmanager
    def eval_context(self, private: dict[str, np.ndarray] | None) -> Iterator[None]:
        self._load(private)
        set_teacher(self.model, True)
        try:
            yield
        finally:
            set_teacher(self.model, False)
