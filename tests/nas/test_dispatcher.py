"""The dispatcher's one unleased task (the teacher's evaluation): a hand-back stop does not wait for it."""
from nas.orchestrator.dispatcher import Dispatcher, Stop


class _SlowExecutor:
    """A worker that never answers within a wait, as a long evaluation."""

    def __init__(self):
        self.submitted, self.waits = [], 0

    def submit(self, name, task):
        self.submitted.append((name, task))

    def wait(self, timeout):
        self.waits += 1
        return []


def test_run_one_returns_none_at_a_hand_back_stop_and_keeps_waiting_otherwise():
    executor = _SlowExecutor()
    dispatcher = Dispatcher(executor, lease_seconds=60, log=lambda m: None)
    dispatcher.workers = ["w0"]
    requests = iter([None, Stop.FINISH, None, Stop.HAND_BACK])  # finishing waits for the running task
    assert dispatcher.run_one("teacher", lambda: next(requests)) is None
    assert executor.submitted == [("w0", "teacher")] and executor.waits == 3
