"""What every request handler of the service needs: the workspace, its store, the launcher, the access rule."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from nas.finalize.runner import FILE_NAMES
from nas.store import NotFoundError, Store
from nas.workspace import Workspace

from .auth import TokenAuth
from .errors import FinalFileNotFoundError, SampleNotFoundError
from .launcher import OrchestratorLauncher

SAMPLE_SUFFIX = ".png"
FINAL_FILE_KINDS = tuple(sorted(FILE_NAMES))  # the files a finalizer writes: checkpoint, onnx, pt2


@dataclass(frozen=True)
class ServiceContext:
    workspace: Workspace
    store: Store
    launcher: OrchestratorLauncher
    auth: TokenAuth

    def sample_path(self, search_id: int, config: str) -> Path | None:
        """``<workspace>/searches/<id>/samples/<config>.png`` if the worker wrote it, else None.

        Raises :class:`NotFoundError` unless ``config`` is a candidate of the search, so a URL
        can only name files the store knows about (never ``..`` or another folder).
        """
        self.store.get_search(search_id)
        if self.store.find_candidate(search_id, config) is None:
            raise NotFoundError(f"search {search_id} has no candidate {config!r}")
        folder = self.workspace.samples_dir(search_id)
        path = folder / f"{config}{SAMPLE_SUFFIX}"
        if path.parent != folder or not path.is_file():
            return None
        return path

    def require_sample(self, search_id: int, config: str) -> Path:
        path = self.sample_path(search_id, config)
        if path is None:
            where = self.workspace.samples_dir(search_id) / f"{config}{SAMPLE_SUFFIX}"
            raise SampleNotFoundError(f"candidate {config} of search {search_id} has no sample image ({where} does "
                                      "not exist: the worker writes it when it evaluates the candidate)")
        return path

    def final_file(self, search_id: int, config: str, kind: str) -> Path:
        """A final model's file of ``kind`` as the store records it, inside the workspace; else a typed 404.

        Only paths the store recorded are served, and only when they resolve (links followed) inside
        the workspace: a URL cannot name any other file.
        """
        self.store.get_search(search_id)
        if kind not in FINAL_FILE_KINDS:
            raise FinalFileNotFoundError(f"no file kind {kind!r}; kinds: {', '.join(FINAL_FILE_KINDS)}")
        record = next((f for f in self.store.finals(search_id) if f.config == config), None)
        if record is None:
            raise NotFoundError(f"search {search_id} has no final model {config!r}")
        relative = record.files.get(kind)
        if not relative:
            raise FinalFileNotFoundError(f"final model {config} of search {search_id} has no {kind} file "
                                         f"(status {record.status.value})")
        root = self.workspace.root.resolve()
        path = self.workspace.absolute(relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise FinalFileNotFoundError(f"the {kind} file of final model {config} of search {search_id} is not in "
                                         f"the workspace ({relative} was moved or deleted)")
        return path


def get_context(request: Request) -> ServiceContext:
    """The context :func:`nas.service.app.create_app` put on the app."""
    return request.app.state.ganas
