"""How an error is written down: one line of type and message, the original exception of a wrapper, no escapes."""
from foundation.errors import GanasError, clean_message, describe_error


class Wrapper(Exception):
    """Like Ray's RayTaskError: its text is a coloured remote traceback, the original exception is ``cause``."""

    def __init__(self, cause):
        super().__init__("\x1b[36mray::RayWorker.run()\x1b[39m (pid=1)\n  File \"w.py\", line 3\n" + str(cause))
        self.cause = cause


def test_describe_error_is_type_and_message_of_the_original_exception():
    assert describe_error(ValueError("bad size 0")) == "ValueError: bad size 0"
    assert describe_error(KeyError()) == "KeyError"
    inner = GanasError("\x1b[1mimage a.png\x1b[0m cannot be read")
    assert describe_error(Wrapper(inner)) == "GanasError: image a.png cannot be read"
    assert describe_error(Wrapper(Wrapper(inner))) == "GanasError: image a.png cannot be read"
    loop = Wrapper(ValueError("x"))
    loop.cause = loop  # a wrapper naming itself ends the unwrapping
    assert describe_error(loop).startswith("Wrapper: ray::RayWorker.run() (pid=1)")


def test_clean_message_drops_escapes_and_control_characters_but_keeps_lines():
    text = "\x1b[31merror\x1b[0m:\tbad\r\n\x1b]8;;http://x\x07link\x1b]8;;\x07\x00 end \x1b(B"
    assert clean_message(text) == "error:\tbad\nlink end"
    assert clean_message("  plain  ") == "plain"
