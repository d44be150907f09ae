"""Text bound for a terminal: what the CLI prints may hold strings read from a file."""

from __future__ import annotations

__all__ = ["LIMIT", "printable"]

LIMIT = 300


def printable(text, limit: int = LIMIT) -> str:
    r"""``text`` on one line, every character a terminal would act on (newline, carriage return,
    ESC, lone surrogates, ...) escaped as in a Python literal, cut in the middle to ``limit``
    characters so that both its start and its end (where an error names the reason) stay.

    >>> print(printable("x" + chr(10) + chr(27) + "[2K OK"))
    x\n\x1b[2K OK
    >>> printable("a" * 20, limit=10)
    'aaaa...aaa'
    """
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return text[:head] + "..." + text[len(text) - (limit - 3 - head) :]
