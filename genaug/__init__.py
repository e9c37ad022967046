"""genaug: generative data augmentation for chest X-rays.

Plain modules, one idea each: ``data`` (datasets, splits, cache), ``models``
(networks), ``gan``/``encode``/``benchmark`` (the three jobs), ``metrics``,
``report``, ``runs`` (run directories, checkpoints) and ``config``.
"""

__version__ = "0.1.0"

from genaug.errors import GenaugError  # noqa: E402,F401
