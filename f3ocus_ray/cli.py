"""`f3ocus run | grid | pretrain | report | ui | cost | runs gc | data synth | convert | merge`:
the command line.

Errors a user can cause print one line (`error: ...`) and exit with code 2, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing

from f3ocus_ray.errors import UserError

if typing.TYPE_CHECKING:
    from pydantic.fields import FieldInfo

log = logging.getLogger("f3ocus")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="f3ocus", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one federated experiment")
    run.add_argument("config", nargs="?", help="experiment YAML (see experiments/demo.yaml)")
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run whose process died, from its folder's config and last checkpoint",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set federation.rounds=3 (repeatable)",
    )
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides tracking.uri)")
    _dashboard_option(run)

    grid = sub.add_parser(
        "grid", help="run a grid (or an Optuna search) of experiments on Ray Tune"
    )
    grid.add_argument("grid", help="grid YAML (see experiments/smoke_grid.yaml)")
    grid.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the base experiment (repeatable)",
    )
    grid.add_argument("--tracking-uri", help="MLflow tracking URI (overrides tracking.uri)")
    grid.add_argument(
        "--storage-path",
        help="where Tune stores the grid run (overrides tune.storage_path; s3://, gs:// on a cluster)",
    )
    _dashboard_option(grid)
    grid.add_argument("--resume", action="store_true", help="finish the latest (or --run) grid run")
    grid.add_argument("--run", dest="run_name", help="the grid run's name (default: <grid>-<time>)")
    grid.add_argument(
        "--report-dir", default="reports", help="where the grid's report goes (default: reports)"
    )
    grid.add_argument(
        "--no-report", action="store_true", help="do not build and print the report at the end"
    )
    grid.add_argument(
        "--dry-run", action="store_true", help="count trials, clients and resources; run nothing"
    )
    grid.add_argument(
        "--calibrate",
        action="store_true",
        help="with --dry-run: time one round of the first runnable trial for the estimate",
    )

    pre = sub.add_parser(
        "pretrain", help="pretrain a tiny family on the general synthetic corpus (a checkpoint)"
    )
    pre.add_argument("config", help="pretrain YAML (see experiments/pretrain/vilt_tiny.yaml)")
    pre.add_argument("--out", required=True, help="checkpoint folder (must not exist or be empty)")
    pre.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set training.steps=50 (repeatable)",
    )

    report = sub.add_parser("report", help="comparison tables and plots of a grid from MLflow")
    report.add_argument("--grid", required=True, help="the grid's name (its MLflow experiment)")
    report.add_argument("--run", dest="run_name", help="one grid run (default: the latest)")
    report.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    report.add_argument("--metric", default="score")
    report.add_argument("--out", default="reports", help="folder for the tables and plots")

    cost = sub.add_parser(
        "cost",
        help="Mbit per round, trainable parameters and bf16 training memory of a real family "
        "at its published (or your) size, built on the meta device: no weights",
    )
    cost.add_argument(
        "--family",
        choices=_COST_FAMILIES,
        help="one family (default: every published model: the paper's Table 2 at full size)",
    )
    where = cost.add_mutually_exclusive_group()
    where.add_argument(
        "--config-json", help="the family's full config (a config.json; ALBEF: its sizes)"
    )
    where.add_argument("--model-path", help="a checkpoint folder (ALBEF: its .pth file)")
    cost.add_argument(
        "--budget",
        type=int,
        action="append",
        dest="budgets",
        metavar="K",
        help="units per client (repeatable; default: 2 and 4, the paper's)",
    )
    cost.add_argument(
        "--unit-mode",
        action="append",
        dest="unit_modes",
        metavar="MODE",
        help="a unit mode (repeatable; default: layers and adapters)",
    )
    cost.add_argument("--answers", type=int, help="classifying families: answer classes")
    cost.add_argument("--batch-size", type=int, default=16, help="memory: batch (default: 16)")
    cost.add_argument(
        "--text-tokens", type=int, default=40, help="memory: question tokens (default: 40)"
    )
    cost.add_argument(
        "--answer-tokens",
        type=int,
        default=8,
        help="memory, generative families: answer tokens (default: 8)",
    )

    ui = sub.add_parser(
        "ui", help="the MLflow UI on 127.0.0.1; prints the link to the runs' chart view"
    )
    ui.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--experiment", help="the experiment to link to (default: the latest)")

    runs = sub.add_parser("runs", help="tracked runs")
    rsub = runs.add_subparsers(dest="runs_command", required=True)
    gc = rsub.add_parser(
        "gc", help="end runs left RUNNING by a killed process (kill -9, a lost node) as KILLED"
    )
    gc.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    gc.add_argument("--experiment", help="only this MLflow experiment (default: all)")
    gc.add_argument(
        "--stale-after",
        type=float,
        metavar="SECONDS",
        help="also end runs of other hosts whose last heartbeat is older than this",
    )
    gc.add_argument("--dry-run", action="store_true", help="list the orphans, change nothing")

    data = sub.add_parser("data", help="data set tools")
    dsub = data.add_subparsers(dest="data_command", required=True)
    synth = dsub.add_parser(
        "synth", help="write a synthetic data set (data.synthetic's tasks) in the on-disk format"
    )
    synth.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    _synthetic_options(synth)
    conv = dsub.add_parser(
        "convert", help="convert a real data set's release into the on-disk format"
    )
    conv.add_argument("--format", required=True, dest="fmt", choices=_FORMAT_NAMES)
    conv.add_argument("--src", required=True, help="the unpacked release folder")
    conv.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    conv.add_argument(
        "--image-size", type=int, default=384, help="shrink larger images to N x N (0: keep)"
    )
    conv.add_argument(
        "--val-split",
        choices=["train", "test", "drop"],
        default="train",
        help="where the official validation split goes (default: train)",
    )
    conv.add_argument("--seed", type=int, default=0)
    conv.add_argument(
        "--clients", type=int, help="open-i, mimic-cxr: number of clients (default 4, 10)"
    )
    conv.add_argument("--alpha", type=float, default=0.5, help="open-i, mimic-cxr: Dirichlet")
    conv.add_argument(
        "--uncertain",
        choices=["positive", "negative", "ignore"],
        default="positive",
        help="mimic-cxr: CheXpert's -1 labels (positive = U-Ones, negative = U-Zeros, "
        "ignore = drop the study)",
    )
    conv.add_argument(
        "--client-per-subset", action="store_true", help="medmnist: one client per subset"
    )
    conv.add_argument(
        "--test-fraction", type=float, default=0.2, help="open-i: test share (no official split)"
    )
    conv.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    merge = dsub.add_parser("merge", help="join converted data sets with distinct clients")
    merge.add_argument("--src", required=True, nargs="+", help="data set folders to join")
    merge.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    merge.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    return p


def _dashboard_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--dashboard",
        action="store_true",
        help="a local Ray started for this command serves its web dashboard (127.0.0.1:8265)",
    )


def _synthetic_options(synth: argparse.ArgumentParser) -> None:
    """One option per `data.synthetic` key, with the config's choices, defaults and help, and
    `--image-size` with `data.image_size`'s default."""
    from f3ocus_ray.config import DataConfig, SyntheticDataConfig

    for name, field in SyntheticDataConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        if name == "task":
            choices = typing.get_args(field.annotation)
            synth.add_argument(flag, choices=choices, default=field.default, help=_help(field))
        else:
            synth.add_argument(
                flag, type=field.annotation, default=field.default, help=_help(field)
            )
    size = DataConfig.model_fields["image_size"]
    synth.add_argument("--image-size", type=int, default=size.default, help=_help(size))


def _help(field: FieldInfo) -> str:
    return f"{field.description or ''} (default: %(default)s)".lstrip()


# f3ocus_ray.data.convert.FORMATS' names (not imported here: --help stays fast)
_FORMAT_NAMES = (
    "slake",
    "vqa-rad",
    "vqa-med-2019",
    "vqa-med-2020",
    "vqa-med-2021",
    "pathvqa",
    "medmnist",
    "open-i",
    "mimic-cxr",
)


# f3ocus_ray.models.published's keys (not imported here: --help stays fast)
_COST_FAMILIES = ("vilt", "albef", "blip", "blip2", "llava")


def _cost(args: argparse.Namespace) -> int:
    from f3ocus_ray.errors import ConfigError
    from f3ocus_ray.models import cost

    for name in ("answers", "batch_size", "text_tokens", "answer_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be at least 1 (got {value})")
    if (args.config_json or args.model_path) and not args.family:
        raise ConfigError("--config-json and --model-path need --family")
    if args.config_json:
        targets = [cost.target_from_json(args.family, args.config_json, args.answers)]
    elif args.model_path:
        targets = [cost.target_from_checkpoint(args.family, args.model_path, args.answers)]
    else:
        keys = [args.family] if args.family else list(_COST_FAMILIES)
        targets = [cost.published_target(k, args.answers) for k in keys]
    budgets = args.budgets or [2, 4]
    modes = args.unit_modes or ["layers", "adapters"]
    for target in targets:
        print(cost.format_cost(target, cost.cost_rows(target, budgets, modes)))
        print()
        memory = cost.memory_rows(
            target, budgets, modes[0], args.batch_size, args.text_tokens, args.answer_tokens
        )
        print(cost.format_memory(target, memory, args.batch_size, modes[0]))
        print()
    return 0


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
    from f3ocus_ray.errors import ConfigError
    from f3ocus_ray.timing import mark

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    if args.resume is not None:
        if args.config is not None or overrides:
            raise ConfigError("--resume RUN_DIR runs the folder's own config: no CONFIG or --set")
        from f3ocus_ray.platform.experiment import resume_experiment

        summary = resume_experiment(args.resume, progress=log.info, dashboard=args.dashboard)
        cfg = load_config(summary.run_dir / "config.yaml")
    else:
        if args.config is None:
            raise ConfigError("give an experiment CONFIG (or --resume RUN_DIR)")
        cfg = load_config(args.config, overrides)
        mark("config")

        from f3ocus_ray.platform.experiment import RunOptions, run_experiment

        summary = run_experiment(
            cfg, progress=log.info, options=RunOptions(dashboard=args.dashboard)
        )
    print(_summary_table(summary))
    print(f"run folder: {summary.run_dir}")
    if summary.run_id:
        print(
            f"MLflow run {summary.run_id} in {cfg.tracking.uri} (experiment {cfg.tracking.experiment!r})"
        )
    return 0


def _grid(args: argparse.Namespace) -> int:
    from f3ocus_ray.platform.grid_spec import load_grid

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    grid = load_grid(args.grid, overrides)
    if args.storage_path:
        tune = grid.spec.tune.model_copy(update={"storage_path": args.storage_path})
        grid.spec = grid.spec.model_copy(update={"tune": tune})
    if args.dry_run:
        from f3ocus_ray.platform.dry_run import dry_run

        print(dry_run(grid, calibrate=args.calibrate, progress=log.info))
        return 0
    from f3ocus_ray.platform.tune_grid import run_grid

    out = run_grid(
        grid,
        resume=args.resume,
        run_name=args.run_name,
        progress=log.info,
        dashboard=args.dashboard,
    )
    done = ", ".join(f"{n} {s}" for s, n in sorted(out.statuses.items()))
    print(f"grid run {out.run_name}: {done}; Tune experiment at {out.path}")
    if out.parent_run_id:
        print(f"MLflow experiment {grid.name!r}, parent run {out.parent_run_id}")
    if out.best_method:
        print(f"best method (mean of the last 3 rounds): {out.best_method}")
    elif out.best:
        print(f"best: {out.best}")
    if out.parent_run_id and not args.no_report:
        from f3ocus_ray.platform.report import build_report

        uri = grid.trials[0].cfg.tracking.uri
        path = build_report(grid.name, uri, args.report_dir, run_name=out.run_name)
        tables = path / "tables.md"
        if tables.is_file():
            print(tables.read_text())
        print(f"report (tables, CSV, plots): {path}")
    return 0 if "ERROR" not in out.statuses else 1


def _report(args: argparse.Namespace) -> int:
    from f3ocus_ray.platform.report import build_report

    path = build_report(args.grid, args.tracking_uri, args.out, args.metric, args.run_name)
    print((path / "comparison.md").read_text())
    print(f"report: {path}")
    return 0


def _ui(args: argparse.Namespace) -> int:
    import os
    import signal
    import subprocess

    from f3ocus_ray.platform.ui import latest_experiment, runs_link, server_command

    cmd = server_command(args.tracking_uri, args.port)  # a missing store: exit 2, no server
    link = runs_link(args.port, latest_experiment(args.tracking_uri, args.experiment))
    print(f"MLflow UI: {link}", flush=True)
    print("(Group by -> method, in the runs list's toolbar, gives one colour per method)")
    # its own process group: Ctrl-C or a SIGTERM to `f3ocus ui` ends the server and its workers
    proc = subprocess.Popen(cmd, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _runs_gc(args: argparse.Namespace) -> int:
    from f3ocus_ray.platform.runs_gc import collect_orphans

    found = collect_orphans(args.tracking_uri, args.experiment, args.stale_after, args.dry_run)
    verb = "would end" if args.dry_run else "ended"
    for o in found:
        print(f"{verb} run {o.run_id} ({o.experiment}/{o.run_name}) as KILLED: {o.reason}")
    print(f"{len(found)} orphaned run{'s' if len(found) != 1 else ''} {verb}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from f3ocus_ray.config import DataConfig, SyntheticDataConfig
    from f3ocus_ray.errors import ConfigError
    from f3ocus_ray.platform.data_prep import synthesize_from_config

    synthetic = {name: getattr(args, name) for name in SyntheticDataConfig.model_fields}
    try:  # the options are checked as the config checks data.synthetic and data.image_size
        data = DataConfig(synthetic=synthetic, image_size=args.image_size)
    except ValidationError as e:
        err = e.errors()[0]
        flag = "--" + str(err["loc"][-1]).replace("_", "-")
        raise ConfigError(f"{flag}: {err['msg']} (got {err['input']!r})") from None
    path = synthesize_from_config(args.out, data.synthetic, data.image_size)
    print(f"wrote {path}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from f3ocus_ray.data.convert import convert

    path = convert(
        args.fmt,
        args.src,
        args.out,
        overwrite=args.overwrite,
        image_size=args.image_size,
        val_split=args.val_split,
        seed=args.seed,
        clients=args.clients,
        alpha=args.alpha,
        uncertain=args.uncertain,
        client_per_subset=args.client_per_subset,
        test_fraction=args.test_fraction,
    )
    from f3ocus_ray.data import load_dataset

    print(load_dataset(path).describe())
    print(f"wrote {path}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from f3ocus_ray.data import load_dataset
    from f3ocus_ray.data.convert import merge

    path = merge(args.src, args.out, overwrite=args.overwrite)
    print(load_dataset(path).describe())
    print(f"wrote {path}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from f3ocus_ray.platform.pretrain import check_out, pretrain
    from f3ocus_ray.platform.pretrain_config import load_pretrain_config

    cfg = load_pretrain_config(args.config, args.overrides)
    check_out(args.out)
    recipe = pretrain(cfg, args.out)
    print(f"pretrained {cfg.family} -> {args.out} (content hash {recipe['content_hash']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from f3ocus_ray.timing import mark

    mark("cli")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "grid":
            return _grid(args)
        if args.command == "pretrain":
            return _pretrain(args)
        if args.command == "report":
            return _report(args)
        if args.command == "ui":
            return _ui(args)
        if args.command == "runs":
            return _runs_gc(args)
        if args.command == "cost":
            return _cost(args)
        if args.data_command == "convert":
            return _convert(args)
        if args.data_command == "merge":
            return _merge(args)
        return _synth(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
