"""`f3ocus run | data synth`: the command line.

Errors a user can cause print one line (`error: ...`) and exit with code 2, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from f3ocus_ray.errors import UserError

log = logging.getLogger("f3ocus")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="f3ocus", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one federated experiment")
    run.add_argument("config", help="experiment YAML (see experiments/demo.yaml)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set federation.rounds=3 (repeatable)",
    )
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides tracking.uri)")

    data = sub.add_parser("data", help="data set tools")
    dsub = data.add_subparsers(dest="data_command", required=True)
    synth = dsub.add_parser("synth", help="write the synthetic MedVQA-FL set in the on-disk format")
    synth.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    synth.add_argument("--task", choices=["vqa", "multilabel"], default="vqa")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--scale", type=float, default=0.002)
    synth.add_argument("--min-per-client", type=int, default=40)
    synth.add_argument("--image-size", type=int, default=64)
    synth.add_argument("--n-clients", type=int, default=4, help="multilabel only")
    synth.add_argument("--alpha", type=float, default=0.5, help="multilabel only")
    return p


def _summary_table(summary) -> str:
    width = max(len(c) for c in [*summary.clients, "question-only baseline"]) + 2
    lines = [f"{'client':<{width}}{summary.metric:>10}"]
    lines += [f"{c:<{width}}{summary.client_score[c]:>10.3f}" for c in summary.clients]
    lines.append(f"{'all clients':<{width}}{summary.score:>10.3f}")
    lines.append(f"{'majority baseline':<{width}}{summary.majority_score:>10.3f}")
    if summary.question_only_score is not None:
        lines.append(f"{'question-only baseline':<{width}}{summary.question_only_score:>10.3f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from f3ocus_ray.config import load_config

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    cfg = load_config(args.config, overrides)

    from f3ocus_ray.platform.experiment import run_experiment

    summary = run_experiment(cfg, progress=log.info)
    print(_summary_table(summary))
    print(f"run folder: {summary.run_dir}")
    if summary.run_id:
        print(
            f"MLflow run {summary.run_id} in {cfg.tracking.uri} (experiment {cfg.tracking.experiment!r})"
        )
    return 0


def _synth(args: argparse.Namespace) -> int:
    from f3ocus_ray.data import synthesize

    path = synthesize(
        args.out,
        task=args.task,
        seed=args.seed,
        scale=args.scale,
        min_per_client=args.min_per_client,
        image_size=args.image_size,
        n_clients=args.n_clients,
        alpha=args.alpha,
    )
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _synth(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
