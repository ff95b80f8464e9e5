"""``ganas search start|resume|status|front|list|pause|cancel``."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager

from ..arguments import image_size, store_flag, workspace_of
from ..output import print_table

TERMINATED = 143  # exit status after SIGTERM (128 + 15): the work was handed back, the run can be continued


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("search", help="search a registered supernet under MACs budgets",
                              description="Searches run on Ray workers; the store in the workspace is the source of "
                                          "truth, so any search can be stopped (even killed) and resumed.")
    p.add_argument("--workspace", default=None, help="workspace folder (default ./ganas-workspace or $GANAS_WORKSPACE)")
    store_flag(p)
    commands = p.add_subparsers(dest="search_command", metavar="ACTION", required=True)

    start = commands.add_parser("start", help="create a search and run it")
    start.add_argument("--supernet", required=True, help="registered supernet name (ganas supernet list)")
    start.add_argument("--budget", action="append", required=True,
                       help="MACs budget such as 2G, 500M or 1.5e9; repeat for several budgets")
    start.add_argument("--metric", required=True, choices=_Registered(_search_metrics), metavar="METRIC",
                       help="metric to optimise: %(choices)s (one the supernet's dataset can give)")
    start.add_argument("--strategy", default="evolution", choices=_Registered(_strategies), metavar="NAME",
                       help="search strategy: %(choices)s (default %(default)s)")
    start.add_argument("--trials", type=int, default=100, help="candidates to evaluate (default 100)")
    start.add_argument("--seed", type=int, default=0)
    start.add_argument("--batch-size", type=int, default=8,
                       help="configs asked and evaluated together (default 8); results do not depend on timing")
    start.add_argument("--macs-size", default=None, type=image_size, help="resolution of the budgets, H or HxW "
                       "(default: the supernet's training size)")
    start.add_argument("--multi-objective", action="store_true", help="optimise MACs and the metric (Pareto front)")
    start.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                       help="strategy setting, e.g. population_size=50 (repeatable)")
    start.add_argument("--extractor", default=None, help="FID/KID features: inception (default) or a TorchScript file")
    start.add_argument("--inception-weights", default=None, help="path of the FID Inception weights file")
    start.add_argument("--segmenter", default=None, help="mIoU segmenter (ganas train segmenter, or TorchScript)")
    start.add_argument("--metric-option", action="append", default=[], metavar="KEY=VALUE",
                       help="metric option for every worker, e.g. kid_subset_size=100 (repeatable; see "
                            "docs/evaluation.md)")
    _run_flags(start)
    start.set_defaults(func=_start)

    resume = commands.add_parser("resume", help="continue a stopped, paused or killed search")
    resume.add_argument("search_id", type=int)
    _run_flags(resume)
    resume.set_defaults(func=_resume)

    for name, helptext in (("status", "state, progress and best per budget"), ("front", "the Pareto front")):
        q = commands.add_parser(name, help=helptext)
        q.add_argument("search_id", type=int)
        q.add_argument("--json", action="store_true")
        q.set_defaults(func=_status if name == "status" else _front)
    commands.add_parser("list", help="all searches").set_defaults(func=_list)
    _finalize_parser(commands)
    _sync_parser(commands)
    for name in ("pause", "cancel"):
        q = commands.add_parser(name, help=f"{name} a search (its orchestrator stops after the running evaluations)")
        q.add_argument("search_id", type=int)
        q.set_defaults(func=_set_state, state="paused" if name == "pause" else "cancelled")


def _finalize_parser(commands) -> None:
    f = commands.add_parser(
        "finalize", help="fine-tune the chosen subnets, measure them against the teacher on val, export them",
        description="For each chosen config (default: the best under each of the search's budgets): fine-tune the "
                    "extracted subnet with GAN Compression's losses and distillation from the teacher, evaluate it "
                    "before and after on the held-out split (val, else test) next to the teacher, time both, export "
                    "it to pt2 and ONNX (checked against PyTorch) and register it in MLflow. Jobs run on the "
                    "search's workers; run the command again to resume after a kill.")
    f.add_argument("search_id", type=int)
    f.add_argument("--budget", action="append", default=[], help="finalize the best subnet under this MACs budget "
                   "(repeatable; default: every budget of the search)")
    f.add_argument("--front", action="store_true", help="finalize every member of the Pareto front")
    f.add_argument("--config", action="append", default=[], help="finalize this done candidate (repeatable)")
    f.add_argument("--steps", type=int, default=1000, help="fine-tuning steps per subnet (default 1000)")
    f.add_argument("--batch-size", type=int, default=1, help="fine-tuning batch size (default 1, as pix2pix)")
    f.add_argument("--recipe", default="gan-compression", help="fine-tuning recipe: gan-compression (default: the "
                   "subnet against the frozen teacher, with a discriminator, as GAN Compression) or online (the "
                   "teacher trains on and the subnet learns only from its outputs and features, as OMGD)")
    f.add_argument("--model-name", default=None, help="MLflow registered model name (default ganas-SUPERNET)")
    f.add_argument("--latency-runs", type=int, default=10, help="timed runs of subnet and teacher (default 10)")
    f.add_argument("--json", action="store_true", help="print the final models as JSON")
    _run_flags(f, lease=3600.0)
    f.set_defaults(func=_finalize)


class _Registered:
    """Choices read from a registry when argparse first needs them (to check a value or write help), so
    building the parser imports no registry and ``ganas --help`` stays fast."""

    def __init__(self, names) -> None:
        self._names = names

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, value) -> bool:
        return value in self._names()


def _search_metrics() -> list[str]:
    from nas.registry import search_metrics

    return search_metrics()


def _strategies() -> list[str]:
    from nas.strategies import list_strategies

    return list_strategies()


def _run_flags(p: argparse.ArgumentParser, lease: float = 900.0) -> None:
    p.add_argument("--workers", type=int, default=2, help="evaluation workers (default 2)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster (default: start one locally)")
    p.add_argument("--executor", default="ray", choices=["ray", "local"],
                   help="ray (default) or local (in this process, one worker, for debugging)")
    _mlflow_flag(p)
    p.add_argument("--lease-seconds", type=float, default=lease,
                   help=f"seconds a worker may spend on one task before it is presumed hung (default {lease:.0f})")
    p.add_argument("--threads-per-worker", type=int, default=None, metavar="N",
                   help="torch threads in each worker (default: this machine's cores / workers; see docs/search.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _workspace(args):
    """The workspace folder and store (``--workspace``, ``--store`` or their environment variables)."""
    return workspace_of(args)


def _reader(args):
    """The store for a command that only reads: opened read-only, never created."""
    return _workspace(args).open_store(read_only=True)


def _existing(args):
    """The store for a command about an existing search: written to, never created."""
    return _workspace(args).open_store(create=False)


# request fields (as the REST API names them) that the flags of `ganas search` spell otherwise
_FLAGS = {"budgets": "--budget", "strategy_settings": "--setting", "metric_options": "--metric-option"}


def _flag(field: str) -> str:
    head, _, key = field.partition(".")
    flag = _FLAGS.get(head, "--" + head.replace("_", "-"))
    return f"{flag} {key}" if key else flag


@contextmanager
def _flags():
    """A refused field's message with the field named as its flag (``--batch-size``, not ``batch_size``)."""
    from nas.cli import CliUsageError
    from nas.fields import FieldError

    try:
        yield
    except FieldError as exc:
        raise CliUsageError(exc.renamed(_flag(exc.field))) from None


def _settings(args):
    from nas.fields import WORKERS
    from nas.orchestrator import OrchestratorSettings

    WORKERS.check(args.workers)  # checked even where --executor local runs one
    workers = 1 if args.executor == "local" else args.workers
    return OrchestratorSettings(workers=workers, executor=args.executor, ray_address=args.ray_address,
                                lease_seconds=args.lease_seconds, mlflow_uri=args.mlflow_uri,
                                progress=not args.quiet, threads_per_worker=args.threads_per_worker)


def _key_values(pairs: list[str], flag: str = "--setting") -> dict:
    from nas.cli import CliUsageError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliUsageError(f"{flag} {pair!r} must be KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _start(args) -> int:
    from nas.search_setup import create_search

    with _flags():
        settings = _settings(args)  # checked before the search is created: a refused run writes nothing
    workspace = _workspace(args)
    with workspace.open_store() as store:
        with _flags():
            search = create_search(
                store, args.supernet, budgets=args.budget, metric=args.metric, strategy=args.strategy,
                trials=args.trials, seed=args.seed, multi_objective=True if args.multi_objective else None,
                strategy_settings=_key_values(args.setting), batch_size=args.batch_size, macs_size=args.macs_size,
                extractor=args.extractor, inception_weights=args.inception_weights, segmenter=args.segmenter,
                metric_options=_key_values(args.metric_option, "--metric-option"), workspace=workspace)
        print(f"search {search.id} created (resume it any time with: ganas search resume {search.id})", flush=True)
        return _run(store, workspace, search.id, settings)


def _resume(args) -> int:
    with _flags():
        settings = _settings(args)
    workspace = _workspace(args)
    with workspace.open_store(create=False) as store:
        return _run(store, workspace, args.search_id, settings)


def _run(store, workspace, search_id: int, settings) -> int:
    from nas.orchestrator import Orchestrator

    orchestrator = Orchestrator(store, workspace, search_id, settings)
    summary = orchestrator.run()
    _print_summary(store, summary)
    if orchestrator.terminated:
        print(f"ganas search: stopped by SIGTERM; search {search_id} is paused with its running evaluations handed "
              f"back (not counted as attempts); continue with: ganas search resume {search_id}", file=sys.stderr)
        return TERMINATED
    return 0


def _summary(store, search_id: int):
    from nas.summary import summarize

    return summarize(store, search_id)


def _print_summary(store, summary) -> None:
    from nas.budget import format_macs
    from nas.reference import reference_of

    metric = summary.objective.metric
    counts = summary.counts
    vs = reference_of(store.get_supernet(summary.search.supernet_id), summary.search)
    print(f"search {summary.search_id}: {summary.state}, {counts.done} done, {counts.failed} failed")
    print(vs.describe(metric))
    header = ["MACS", "X FEWER MACS", metric.upper(), "VS TEACHER"]
    if summary.best:
        print_table([(f"<= {format_macs(b.budget)}", c.config if c else "-",
                      *_versus(vs, metric, c.macs if c else None, c.metrics[metric] if c else None))
                     for b in summary.best for c in [b.candidate]], ["BUDGET", "BEST CONFIG"] + header)
    if summary.front.front:
        print("Pareto front (MACs vs " + metric + "):")
        print_table([(p.config, f"{p.params:,}", *_versus(vs, metric, p.macs, p.value)) for p in summary.front.front],
                    ["CONFIG", "PARAMS"] + header)
        if summary.hypervolume is not None:
            print(f"hypervolume: {summary.hypervolume:.6g}")


def _versus(vs, metric: str, macs, value) -> tuple[str, str, str, str]:
    from nas.budget import format_macs

    if macs is None:
        return ("-", "-", "-", "-")
    return (format_macs(macs), vs.fewer_macs_text(macs), f"{value:.4f}", vs.versus_text(metric, value))


def _status(args) -> int:
    with _reader(args) as store:
        summary = _summary(store, args.search_id)
        counts = store.count_candidates(args.search_id)
        if args.json:
            print(json.dumps({"search": store.get_search(args.search_id).to_dict(), "counts": counts.to_dict(),
                              "teacher": _teacher_json(store, summary),
                              "best": {str(b.budget): (b.candidate.to_dict() if b.candidate else None)
                                       for b in summary.best},
                              "hypervolume": summary.hypervolume,
                              "mlflow_not_logged": _mlflow_backlog(args).counts()}, default=str))
            return 0
        print(f"counts: {counts.to_dict()}")
        _print_summary(store, summary)
        for line in _mlflow_backlog(args).describe():
            print(line)
    return 0


def _front(args) -> int:
    with _reader(args) as store:
        summary = _summary(store, args.search_id)
        if args.json:
            front = {p.config for p in summary.front.front}
            members = [c.to_dict() for c in store.candidates(args.search_id, "done") if c.config in front]
            print(json.dumps({"front": sorted(members, key=lambda c: (c["macs"], c["config"])),
                              "teacher": _teacher_json(store, summary),
                              "hypervolume": summary.hypervolume}, default=str))
        else:
            _print_summary(store, summary)
    return 0


def _teacher_json(store, summary) -> dict | None:
    from nas.reference import reference_of

    vs = reference_of(store.get_supernet(summary.search.supernet_id), summary.search)
    if vs.teacher is None:
        return None
    return {"macs": vs.teacher.macs, "params": vs.teacher.params, "metrics": dict(vs.teacher.metrics),
            "split": vs.teacher.split, "note": vs.note}


def _finalize(args) -> int:
    from nas import fields
    from nas.budget import parse_macs
    from nas.finalize import FinalizeSettings, Finalizer, choose

    with _flags():
        fields.WORKERS.check(args.workers)
        settings = FinalizeSettings(steps=args.steps, batch_size=args.batch_size,
                                    workers=1 if args.executor == "local" else args.workers, executor=args.executor,
                                    ray_address=args.ray_address, lease_seconds=args.lease_seconds,
                                    mlflow_uri=args.mlflow_uri, model_name=args.model_name,
                                    latency_runs=args.latency_runs, progress=not args.quiet,
                                    threads_per_worker=args.threads_per_worker, recipe=args.recipe)
        budgets = [parse_macs(b) for b in args.budget]
    workspace = _workspace(args)
    with workspace.open_store(create=False) as store:
        choices = choose(store, args.search_id, budgets, args.front, args.config)
        log = (lambda message: print(message, file=sys.stderr)) if args.json else print  # stdout: the JSON alone
        finalizer = Finalizer(store, workspace, args.search_id, settings, log=log)
        finals = finalizer.run(choices)
        teacher = store.get_supernet(store.get_search(args.search_id).supernet_id).teacher
    if args.json:
        print(json.dumps([f.to_dict() for f in finals], default=str))
    else:
        print_finals(finals, teacher, workspace)
    if finalizer.terminated:
        print(f"ganas search: stopped by SIGTERM; the running fine-tuning jobs were handed back (not counted as "
              f"attempts); continue with the same ganas search finalize {args.search_id} command", file=sys.stderr)
        return TERMINATED
    return 0 if all(f.status.value == "done" for f in finals) else 1


def print_finals(finals, teacher, workspace) -> None:
    """The final table, then each done model's MLflow URI and files (stored relative to ``workspace``)."""
    from nas.finalize.report import HEADER, final_rows

    print_table(final_rows(finals, teacher), HEADER)
    for f in finals:
        if f.status.value == "done":
            files = ", ".join(str(workspace.absolute(p)) for p in f.files.values())
            print(f"{f.config}: {f.model_uri or 'not registered in MLflow'}; files: {files}")


def _list(args) -> int:
    from nas.budget import format_macs

    with _reader(args) as store:
        listing = store.search_listing()
        rows = []
        for s in listing.records:
            counts = store.count_candidates(s.id)
            rows.append((s.id, s.supernet, s.state.value, s.strategy, " ".join(format_macs(b) for b in s.budgets),
                         s.objectives[0].metric, f"{counts.done}/{s.trials}"))
    if rows:
        print_table(rows, ["ID", "SUPERNET", "STATE", "STRATEGY", "BUDGETS", "METRIC", "DONE"])
    elif not listing.unreadable:
        print("no search yet (ganas search start ...)")
    for row in listing.unreadable:
        print(f"ganas search list: warning: {row.describe()}", file=sys.stderr)
    return 0


def _set_state(args) -> int:
    with _existing(args) as store:
        store.set_search_state(args.search_id, args.state)
    print(f"search {args.search_id} {args.state}")
    return 0


# -- ganas search sync: MLflow catches up from the store --------------------------------------------------------
def _mlflow_flag(p: argparse.ArgumentParser) -> None:
    from ..arguments import mlflow_uri

    p.add_argument("--mlflow-uri", default=None, type=mlflow_uri,
                   help="MLflow tracking URI: sqlite:///PATH or http://HOST:PORT (default: SQLite in the workspace)")


def _sync_parser(commands) -> None:
    s = commands.add_parser(
        "sync", help="log to MLflow what it missed of a search (after an outage, or to another tracking server)",
        description="Replays the search from the store and logs only what MLflow lacks: the search's run and "
                    "parameters, the teacher's figures, the progress, the candidate batches, the Pareto front and "
                    "the final models not yet registered. Running it twice logs nothing twice.")
    s.add_argument("search_id", type=int)
    _mlflow_flag(s)
    s.add_argument("--model-name", default=None, help="registered model name for final models not registered yet "
                   "(default ganas-SUPERNET, as finalize)")
    s.set_defaults(func=_sync)


def _mlflow_backlog(args):
    from nas.orchestrator.backlog import MlflowBacklog

    return MlflowBacklog(_workspace(args), args.search_id)


def _sync(args) -> int:
    from nas.orchestrator.sync import sync_search

    workspace = _workspace(args)
    with workspace.open_store(create=False) as store:
        report = sync_search(store, workspace, args.search_id, args.mlflow_uri, args.model_name)
    print(report.describe())
    return 0
