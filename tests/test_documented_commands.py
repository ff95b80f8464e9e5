"""Every command shown in README.md and docs/*.md runs end to end, on tiny data, through ganas's entry point.

- ``tests/doc_commands.read_commands`` reads every ``ganas ...`` (also ``.venv/bin/ganas``, ``python -m
  nas.cli``) and ``mlflow ...`` line of the code blocks (fenced or indented) of README.md and docs/*.md:
  ``\\`` continuations joined, ``# comments`` dropped, ``pause 1 / cancel 1`` expanded into two commands.
- Each page is one reader's session in its own folder (``./runs``, ``./ganas-workspace``: README.md and
  docs/training.md both train ``--out runs/supernet --register``, so one shared folder or workspace would refuse
  the second); pages run in reading order (PAGES), commands in page order, servers last; a command documented
  twice runs once.
- Optional flags ``[--flag VALUE]`` are used (the first alternative of ``a|b``), except DROPPED ones;
  placeholders are replaced as PLACEHOLDERS says (a search id as the command's recipe says); files a page
  takes from an earlier page are linked into its folder (PAGE_INPUTS); RECIPES adds or overrides only image
  sizes, step, trial and image counts, the executor, and the servers' ports and workers: nothing else of a
  documented command changes.
- ``ganas`` commands run in-process through ``nas.cli.main``: exit status 0, no traceback. Servers start in a
  subprocess, are probed once over HTTP on a free 127.0.0.1 port, and are stopped.

A documented command whose kind has no entry in RECIPES fails ``test_every_documented_command_has_a_recipe``:
documenting a new command means adding one line to RECIPES (and to PLACEHOLDERS for a new placeholder).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from .doc_commands import DocCommand, read_commands

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["docs/datasets.md", "README.md", "docs/training.md", "docs/search.md", "docs/evaluation.md",
         "docs/cli.md", "docs/service.md"]  # a reader's order; a new page runs after these
TINY_DATA = ["--size", "32", "--count", "10"]  # 10 train (8 train1 + 2 train2) and 2 val images, 32x32
TINY_TRAINING = ["--steps", "2", "--size", "32"]
TOKEN = "doc-commands-token-0123456789"
pytestmark = pytest.mark.filterwarnings("ignore::evaluators.frechet.RankDeficientCovarianceWarning")


@dataclass(frozen=True)
class Recipe:
    """How one kind of documented command runs: the flags it adds or overrides to stay tiny (only sizes, step,
    trial and image counts, the executor, a server's port and workers), whether it is a server (probed once at
    ``probe`` over HTTP), the environment a server gets in addition, and which search a search id in the
    command (``1``, ``ID``) stands for: see Session.search_for."""

    tiny: tuple[str, ...] = ()
    server: bool = False
    probe: str = "/"
    env: tuple[tuple[str, str], ...] = ()
    search: str | None = None  # latest, running, paused or unfinished
    registered: bool = False  # a supernet registered in the page's workspace first (read commands create none)


# The table of what the test adds or overrides, per kind of command ({port} is a free port).
RECIPES: dict[str, Recipe] = {
    "ganas data list": Recipe(),
    "ganas data make": Recipe(tuple(TINY_DATA)),
    "ganas data check": Recipe(),
    "ganas data split": Recipe(),
    "ganas train teacher": Recipe(tuple(TINY_TRAINING)),
    "ganas train supernet": Recipe(tuple(TINY_TRAINING)),
    "ganas train finetune": Recipe(tuple(TINY_TRAINING)),
    "ganas train segmenter": Recipe(tuple(TINY_TRAINING)),
    "ganas supernet list": Recipe(registered=True),
    "ganas supernet register": Recipe(),
    "ganas search start": Recipe(("--trials", "2", "--executor", "local")),  # no Ray: one in-process worker
    "ganas search status": Recipe(search="latest"),
    "ganas search front": Recipe(search="latest"),
    "ganas search list": Recipe(registered=True),
    "ganas search resume": Recipe(("--executor", "local"), search="paused"),
    "ganas search pause": Recipe(search="running"),
    "ganas search cancel": Recipe(search="unfinished"),
    "ganas search finalize": Recipe(("--steps", "2", "--executor", "local", "--latency-runs", "2"), search="done"),
    "ganas search sync": Recipe(search="done"),
    "ganas evaluate": Recipe(("--size", "32", "--kid-subset-size", "2", "--latency-runs", "2")),
    "ganas export": Recipe(("--size", "32")),
    "ganas macs": Recipe(),
    "ganas space list": Recipe(),
    "ganas space show": Recipe(),
    "ganas serve": Recipe(("--port", "{port}"), server=True, probe="/api/supernets"),
    "mlflow ui": Recipe(("--port", "{port}", "--workers", "1"), server=True, probe="/health",
                        env=(("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),)),  # no background job runner
}
DROPPED = {"--ray-address"}  # optional flags left out: joining a Ray cluster needs one


def kind(command: DocCommand) -> str | None:
    """The longest RECIPES key that starts the command's positional words."""
    keys = [k for k in RECIPES if command.positional[:len(k.split())] == k.split()]
    return max(keys, key=len) if keys else None


def session_order(commands: list[DocCommand]) -> list[DocCommand]:
    """Pages in reading order, servers last within a page; a command documented twice runs where first shown."""
    seen, ordered = set(), []
    pages = list(dict.fromkeys(c.page for c in commands))
    for command in sorted(commands, key=lambda c: (pages.index(c.page), _is_server(c), c.line)):
        if command.text not in seen:
            seen.add(command.text)
            ordered.append(command)
    return ordered


def _is_server(command: DocCommand) -> bool:
    return kind(command) is not None and RECIPES[kind(command)].server


ALL_COMMANDS = read_commands(ROOT, PAGES)
COMMANDS = session_order([c for c in ALL_COMMANDS if kind(c) is not None])


# --------------------------------------------------------------------------- the reader's session
# What a reader of a page already has in their folder, linked there: path -> (page that made it, its path
# there); page None: a file the reader brings (made by the ``session`` fixture).
PAGE_INPUTS: dict[str, dict[str, tuple[str | None, str]]] = {
    "README.md": {"latest_net_G.pth": (None, "latest_net_G.pth"),  # a pytorch-CycleGAN-and-pix2pix teacher
                  "weights-inception-2015-12-05-6726825d.pth": (None, "weights-inception-2015-12-05-6726825d.pth")},
    "docs/evaluation.md": {"runs": ("README.md", "runs"), "data/scenes": ("docs/datasets.md", "data/scenes")},
    "docs/cli.md": {"runs": ("README.md", "runs")},  # export the README's supernet and fine-tuned subnet
    "docs/teachers.md": {"G_A2B.pth": (None, "G_A2B.pth"),  # another implementation's CycleGAN generator
                         "latest_net_G.pth": (None, "latest_net_G.pth"),
                         **{f"G.{kind}": (None, f"G.{kind}") for kind in ("ts", "pt2", "onnx")}},  # programs
}
# Placeholders: a word -> its value in the session (``flag word`` keys match after that flag only).
PLACEHOLDERS: dict[str, Callable[["Session", DocCommand], str]] = {
    "DATA": lambda s, c: str(s.pages / "docs/datasets.md/data/scenes/labelled"),  # what docs/datasets.md made
    "NAME": lambda s, c: s.supernet_name(c.page),
    "--workspace DIR": lambda s, c: str(s.workspace(c.page)),
    "--workspace W": lambda s, c: str(s.workspace(c.page)),
    "--cache DIR": lambda s, c: str(s.folder(c.page) / "cache"),
    "--inception-weights PATH": lambda s, c: str(s.inception),
    "--token TOKEN": lambda s, c: TOKEN,
    "--allowed-host HOST": lambda s, c: "ganas.lab.example",  # a proxy's name; the probe uses 127.0.0.1
    "--workers N": lambda s, c: "1",
    "--executor E": lambda s, c: "local",
    "--lease-seconds S": lambda s, c: "900",
    "--store URL": lambda s, c: f"sqlite:///{s.workspace(c.page) / 'ganas.db'}",  # the page's store, as a URL
}


@dataclass
class Result:
    status: object  # 0: success
    output: str
    argv: list[str] = field(default_factory=list)


@dataclass
class Session:
    root: Path
    inception: Path
    results: dict[int, Result] = field(default_factory=dict)

    @property
    def pages(self) -> Path:
        return self.root / "pages"

    def folder(self, page: str) -> Path:
        folder = self.pages / page
        if not folder.exists():
            folder.mkdir(parents=True)
            for name, (made_by, path) in PAGE_INPUTS.get(page, {}).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).symlink_to((self.root if made_by is None else self.pages / made_by) / path)
        return folder

    def workspace(self, page: str) -> Path:
        return self.folder(page) / "ganas-workspace"

    def store(self, page: str):
        from nas.store import Store

        self.workspace(page).mkdir(parents=True, exist_ok=True)
        return Store(f"sqlite:///{self.workspace(page) / 'ganas.db'}")

    def supernet_name(self, page: str) -> str:
        """A supernet registered in the page's workspace (a tiny untrained one if the page registered none)."""
        from nas.registry import register_supernet

        with self.store(page) as store:
            registered = store.list_supernets()
            if registered:
                return registered[-1].name
            return register_supernet(store, self._tiny_supernet(), "tiny").name

    def _tiny_supernet(self) -> Path:
        import torch

        from distill.jobs import DataSpec
        from supernet import create_generator, save_generator

        path = self.root / "tiny-supernet.pt"
        if not path.exists():
            from foundation.hashing import file_sha256

            data = DataSpec(Path(PLACEHOLDERS["DATA"](self, None)), size=32)
            data.ensure_split(0)
            torch.manual_seed(0)
            teacher = save_generator(create_generator("resnet", ngf=8, n_blocks=3), self.root / "tiny-teacher.pt",
                                     kind="teacher")
            supernet = create_generator("mobile_resnet", elastic=True, ngf=16, n_blocks=3)
            save_generator(supernet, path, kind="supernet", space="channels-16", dataset=data.describe("train1", 0),
                           method="test", teacher={"path": str(teacher), "sha256": file_sha256(teacher), "arch": None})
        return path

    def search_for(self, page: str, which: str) -> str:
        """The id of the page's latest search (``latest``), or of its latest one in the state a command needs:
        ``running`` (an orchestrator elsewhere runs it), ``paused``, ``done`` (finished by a command before it),
        ``unfinished`` (created, running or paused).
        When there is none, one is made (1 trial, SSIM) and brought to that state."""
        from nas.search_setup import create_search
        from nas.store import SearchState as S

        states = {"latest": set(S), "running": {S.RUNNING}, "paused": {S.PAUSED}, "done": {S.DONE},
                  "unfinished": {S.CREATED, S.RUNNING, S.PAUSED}}[which]
        name = self.supernet_name(page)
        with self.store(page) as store:
            searches = [s for s in store.list_searches() if s.state in states]
            if searches:
                return str(searches[-1].id)
            search = create_search(store, name, budgets=[10**12], metric="ssim", trials=1, batch_size=1)
            for state in {"running": [S.RUNNING], "paused": [S.RUNNING, S.PAUSED]}.get(which, []):
                store.set_search_state(search.id, state)
            return str(search.id)

    def argv(self, command: DocCommand, port: int | None = None) -> list[str]:
        """The documented words with placeholders replaced and the recipe's tiny flags added or overriding."""
        recipe, action = RECIPES[kind(command)], kind(command).split()[-1]
        if recipe.registered:
            self.supernet_name(command.page)
        words = command.words
        for flag in DROPPED.intersection(words):
            del words[words.index(flag):words.index(flag) + 2]
        out: list[str] = []
        for i, word in enumerate(words):
            before = words[i - 1] if i else ""
            if f"{before} {word}" in PLACEHOLDERS:
                word = PLACEHOLDERS[f"{before} {word}"](self, command)
            elif word in PLACEHOLDERS:
                word = PLACEHOLDERS[word](self, command)
            elif recipe.search and before == action and re.fullmatch(r"\d+|ID", word):
                word = self.search_for(command.page, recipe.search)
            out.append(word.replace("$PWD", str(self.folder(command.page))))
        tiny = [w.format(port=port) for w in recipe.tiny]
        for flag, value in zip(tiny[::2], tiny[1::2]):
            if flag in out:
                out[out.index(flag) + 1] = value
            else:
                out += [flag, value]
        return out

    def result(self, index: int) -> Result:
        """Runs the session's commands up to ``index`` (those not run yet), in order; returns that one's result."""
        for i in range(index + 1):
            if i not in self.results:
                self.results[i] = self._run(COMMANDS[i])
        return self.results[index]

    def _run(self, command: DocCommand) -> Result:
        folder = self.folder(command.page)
        try:
            if _is_server(command):
                return _serve(self, command, folder)
            argv = self.argv(command)
            return Result(*_in_process(argv, folder), argv)
        except Exception:  # a fault of this harness (a placeholder it could not resolve): report it as such
            return Result("harness error", traceback.format_exc())


def _in_process(argv: list[str], folder: Path) -> tuple[object, str]:
    from nas.cli import main

    out = io.StringIO()
    previous = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                status = main(argv[1:])
            except SystemExit as exc:  # argparse: a flag the command does not have
                status = exc.code
            except Exception:
                status = "traceback"
                traceback.print_exc(file=out)
    finally:
        os.chdir(previous)
    return status, out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(session: Session, command: DocCommand, folder: Path) -> Result:
    """Start the server, wait for one HTTP answer at the recipe's probe path, stop it."""
    recipe, port = RECIPES[kind(command)], _free_port()
    argv = session.argv(command, port)
    if argv[0] == "ganas":
        argv = [sys.executable, "-m", "nas.cli", *argv[1:]]
    else:
        tool = Path(sys.executable).with_name(argv[0])
        argv = [str(tool) if tool.exists() else argv[0], *argv[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           **dict(recipe.env)}
    log = folder / f"server-{port}.log"
    headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN in argv else {}
    status: object = "no answer"
    with open(log, "wb") as sink:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.time() + 180
            while time.time() < deadline and process.poll() is None:
                try:
                    request = urllib.request.Request(f"http://127.0.0.1:{port}{recipe.probe}", headers=headers)
                    with urllib.request.urlopen(request, timeout=5) as answer:
                        status = 0 if answer.status == 200 else answer.status
                    break
                except urllib.error.HTTPError as exc:
                    status = exc.code
                    break
                except OSError:
                    time.sleep(0.3)
        finally:
            _stop(process)
    output = log.read_text(errors="replace")
    return Result(status if status != "no answer" else f"no answer (exit {process.returncode})", output, argv)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (it was started in a new session), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            time.sleep(0.5)  # let the group's other members (workers) exit
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- fixtures and tests
@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Files a reader brings (a pytorch-CycleGAN-and-pix2pix teacher, Inception and VGG16 weights files in
    the standard layouts, random values), found through the documented environment variables."""
    import torch

    from evaluators.vgg import VGG16FeatureExtractor
    from evaluators.inception import FIDInceptionV3
    from supernet import create_generator

    from .supernet.program_generators import write_program
    from .supernet.reimplementations import Issue10Generator

    root = tmp_path_factory.mktemp("documented")
    torch.manual_seed(0)
    torch.save(create_generator("resnet_9blocks").state_dict(), root / "latest_net_G.pth")
    torch.save(Issue10Generator().state_dict(), root / "G_A2B.pth")  # issue 10's layout: other names, affine norms
    for kind, suffix in (("torchscript", "ts"), ("pt2", "pt2"), ("onnx", "onnx")):  # a 9-block generator as programs
        write_program(root / f"G.{suffix}", kind, blocks=9)
    inception = root / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(FIDInceptionV3().state_dict(), inception)
    torch.save(VGG16FeatureExtractor().state_dict(), root / "vgg16-397923af.pth")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GANAS_INCEPTION_WEIGHTS", str(inception))
        env.setenv("GANAS_VGG16_WEIGHTS", str(root / "vgg16-397923af.pth"))
        for name in ("GANAS_WORKSPACE", "GANAS_TOKEN"):
            env.delenv(name, raising=False)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        session = Session(root, inception)
        yield session
        torch.set_num_threads(previous)
    if all(r.status == 0 for r in session.results.values()):
        shutil.rmtree(root, ignore_errors=True)  # about 1.5 GB of full-width checkpoints; kept when a command failed


def test_every_documented_command_has_a_recipe():
    assert len(ALL_COMMANDS) >= 30, "the docs' code blocks were not read"
    missing = [f"{c.page}:{c.line}: {c.text}" for c in ALL_COMMANDS if kind(c) is None]
    assert not missing, ("documented commands this test cannot run; add their kind to RECIPES in "
                         f"{Path(__file__).name}:\n" + "\n".join(missing))


def test_commands_are_read_from_code_blocks(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "Run `ganas demo` (prose: not read).\n\n```bash\n"
        ".venv/bin/ganas train finetune --supernet runs/s/supernet.pt \\\n      --out runs/subnet   # a comment\n"
        "make test\nganas search pause 1 / cancel 1\n```\n")
    (tmp_path / "docs" / "x.md").write_text(
        "Indented:\n\n    ganas evaluate --metrics fid [--size 256] [--extractor inception|PATH.pt] \\\n"
        "        [--cache DIR | --no-cache]\n\n```\npython -m nas.cli search --workspace W resume ID\n"
        "mlflow ui --backend-store-uri sqlite:///$PWD/m.db\n```\n")
    read = read_commands(tmp_path, ["docs/x.md"])
    assert [(c.page, c.line, c.text) for c in read] == [
        ("docs/x.md", 3, "ganas evaluate --metrics fid [--size 256] [--extractor inception|PATH.pt] "
                         "[--cache DIR | --no-cache]"),
        ("docs/x.md", 7, "ganas search --workspace W resume ID"),
        ("docs/x.md", 8, "mlflow ui --backend-store-uri sqlite:///$PWD/m.db"),
        ("README.md", 4, "ganas train finetune --supernet runs/s/supernet.pt --out runs/subnet"),
        ("README.md", 7, "ganas search pause 1"), ("README.md", 7, "ganas search cancel 1")]
    assert read[0].words == ["ganas", "evaluate", "--metrics", "fid", "--size", "256", "--extractor", "inception",
                             "--cache", "DIR"]
    assert read[1].positional == ["ganas", "search", "resume", "ID"] and kind(read[1]) == "ganas search resume"


@pytest.mark.parametrize("index", range(len(COMMANDS)),
                         ids=[f"{c.page}:{c.line} {kind(c)}" for c in COMMANDS])
def test_documented_command_runs(session, index):
    result = session.result(index)
    command = COMMANDS[index]
    print(f"$ {shlex.join(result.argv)}\n{result.output[-3000:]}")  # shown by pytest -rP
    assert result.status == 0 and "Traceback" not in result.output, (
        f"{command.page}:{command.line}: {command.text}\nran as: {shlex.join(result.argv)}\n"
        f"status {result.status}\n{result.output[-4000:]}")


def test_finetune_takes_its_student_from_the_supernet(session):
    """The README's fine-tuning step (once an AttributeError: the finetune parser has no --blocks) records the
    supernet's architecture and depth as its student."""
    import torch

    index = next(i for i, c in enumerate(COMMANDS) if c.page == "README.md" and kind(c) == "ganas train finetune")
    assert session.result(index).status == 0
    folder = session.folder("README.md")
    subnet = torch.load(folder / "runs/subnet/subnet.pt", map_location="cpu", weights_only=True)
    supernet = torch.load(folder / "runs/supernet/supernet.pt", map_location="cpu", weights_only=True)
    losses = subnet["meta"]["losses"]
    assert losses["student_arch"] == supernet["arch"] == subnet["arch"] == "mobile_resnet"
    assert losses["student_hparams"]["n_blocks"] == supernet["hparams"]["n_blocks"] == 9
    assert losses["space"] == "channels-64-pix2pix" and losses["fixed_config"] == [16, 16, 24, 16, 32, 64, 16, 24]
