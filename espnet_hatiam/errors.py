"""The error of a bad input, which every layer may raise and every CLI prints as one line.

:class:`InputError` names the file, utterance or option; :func:`one_line_errors` turns it
into ``<program>: <message>`` and exit status 1, so a bad input never ends in a traceback
and a genuine bug still does. The catalogue of checked inputs is docs/RELIABILITY.md.
"""

import contextlib
import sys
from typing import Iterator


class InputError(ValueError):
    """A bad input, described in one line that names the file, utterance or option."""


@contextlib.contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """Exit with ``<prog>: <message>`` (status 1) on an :class:`InputError`."""
    try:
        yield
    except InputError as error:
        sys.exit(f"{prog}: {error}")
