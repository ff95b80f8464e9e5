"""``ganas supernet register|list|show``: the registry of trained supernets."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..arguments import store_flag, teacher_state_dict_flags, workspace_of
from ..output import print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("supernet", help="register, list and show trained supernets",
                              description="The registry of supernets the search service can search.")
    p.add_argument("--workspace", default=None, help="workspace folder (default ./ganas-workspace or $GANAS_WORKSPACE)")
    store_flag(p)
    commands = p.add_subparsers(dest="supernet_command", metavar="ACTION", required=True)
    reg = commands.add_parser("register", help="record a supernet checkpoint written by `ganas train supernet`")
    reg.add_argument("checkpoint", type=Path)
    reg.add_argument("--name", default=None, help="registry name (default: from the checkpoint's folder)")
    reg.add_argument("--teacher", type=Path, default=None,
                     help="the teacher to compare against (default: the one the supernet was distilled from): a "
                          "checkpoint, a state dict, TorchScript, a torch.export archive or ONNX (docs/teachers.md)")
    teacher_state_dict_flags(reg)
    reg.set_defaults(func=_register)
    commands.add_parser("list", help="registered supernets").set_defaults(func=_list)
    show = commands.add_parser("show", help="one supernet")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)


def _store(args, read_only: bool = False):
    """``register`` creates the workspace and its store if needed; ``list`` and ``show`` only read."""
    return workspace_of(args).open_store(read_only=read_only)


def _register(args) -> int:
    from nas.registry import register_supernet
    from supernet.foreign import key_map_lines, read_key_map

    hparams = {"ngf": args.teacher_ngf} if args.teacher_ngf else None
    key_map = read_key_map(args.teacher_map) if args.teacher_map is not None else None
    with _store(args) as store:
        record = register_supernet(store, args.checkpoint, args.name, args.teacher, args.teacher_arch, hparams,
                                   key_map, workspace=workspace_of(args))
    print(f"registered supernet {record.name!r} ({record.architecture}, space {record.space}, "
          f"metrics {', '.join(record.metrics)})")
    print(_teacher_line(record, workspace_of(args)))
    for line in key_map_lines((record.teacher or {}).get("key_map")):
        print(line)
    return 0


def _list(args) -> int:
    with _store(args, read_only=True) as store:
        listing = store.supernet_listing()
    records = listing.records
    if records:
        workspace = workspace_of(args)  # paths inside it are stored relative to it
        print_table([(r.name, r.architecture, r.space, ", ".join(r.metrics), workspace.absolute(r.checkpoint))
                     for r in records],
                    ["NAME", "ARCH", "SPACE", "METRICS", "CHECKPOINT"])
    elif not listing.unreadable:
        print("no supernet registered yet (ganas train supernet ... --register, or ganas supernet register)")
    for row in listing.unreadable:
        print(f"ganas supernet list: warning: {row.describe()}", file=sys.stderr)
    return 0


def _show(args) -> int:
    with _store(args, read_only=True) as store:
        record = store.get_supernet(args.name)
    data = record.to_dict()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print_table([(k, json.dumps(v, default=str) if isinstance(v, (dict, list, tuple)) else v)
                     for k, v in data.items()])
    return 0


def _teacher_line(record, workspace) -> str:
    from nas.budget import format_macs

    if record.teacher is None:
        return "no teacher recorded: figures will not be compared with one (register again with --teacher FILE)"
    t = record.teacher
    return (f"teacher: {workspace.absolute(t['path'])} ({t['architecture']}, {format_macs(t['macs'])} MACs, {t['params']:,} params at "
            f"{t['size'][0]}x{t['size'][1]})")
