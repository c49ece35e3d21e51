"""Which tiny families `f3ocus pretrain` can pretrain, with which objectives, and which real
family loads the folder it writes (no torch: the pretrain config reads it).

A pretrainer is a module under `f3ocus_ray.models` with a class built as
`Cls(spec, num_answers)`, an `nn.Module` whose `losses(batch, generator)` returns one loss per
objective and whose `save(folder)` writes the checkpoint in its real family's layout
(`save_pretrained`). Adding a family: its module and one line below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pretrainer:
    family: str  # the tiny family pretrained
    target: str  # "module:Class" under f3ocus_ray.models
    loads_as: str  # the real family whose model.path reads the folder
    objectives: tuple[str, ...]  # those it implements; the first is the task objective


PRETRAINERS: dict[str, Pretrainer] = {
    p.family: p
    for p in (
        Pretrainer("tiny-vilt", "pretrain_vilt:ViltPretraining", "vilt", ("vqa", "mlm", "itm")),
    )
}

__all__ = ["PRETRAINERS", "Pretrainer"]
