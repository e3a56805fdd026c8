"""Build the API reference (HTML, from the docstrings) with pdoc, a dev dependency.

    python docs/api.py [OUTPUT_FOLDER]        # default: docs/api (not committed)

Any pdoc warning (a module that fails to import, a broken reference) is an error.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

#: The documented modules: the package's public API and the subpackages users import.
MODULES = ["analogsim", "analogsim.analog", "analogsim.rules", "analogsim.config",
           "analogsim.runner", "analogsim.plots", "analogsim.clock", "analogsim.errors"]


def build(out: Path) -> None:
    """Write the reference into ``out`` (index.html and one page per module)."""
    import pdoc

    warnings.simplefilter("error")
    pdoc.render.configure(docformat="google", footer_text="analogsim")
    pdoc.pdoc(*MODULES, output_directory=out)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "api")
