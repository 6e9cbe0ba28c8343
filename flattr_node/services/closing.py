"""Moved to flattr_node/closing/ (the package); this name stays for code in flight."""

from ..closing import *  # noqa: F403
from ..closing import __all__  # noqa: F401
