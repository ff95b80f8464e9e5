"""Running ``ganas`` in-process from a test: the exit status and what it printed."""
from nas.cli import main


def run_cli(argv, capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err
