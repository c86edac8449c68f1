"""The live control panel: a local web page and JSON API beside a running pipeline (``--control``).
``preview``: the latest output frame, kept by a sink that never holds the pipeline; ``panel``: what
the page can do to the run; ``api``: the Starlette routes, token-checked; ``server``: uvicorn on a
thread; ``page``: the panel and kiosk pages."""

from importlib.util import find_spec

from realtime.errors import ConfigError

PANEL_PACKAGES = ("starlette", "uvicorn")


def check_panel_packages() -> None:
    """Refuse ``--control`` before anything opens when the web stack is missing (an install made
    without the package's dependencies), instead of failing mid-start."""
    missing = [name for name in PANEL_PACKAGES if find_spec(name) is None]
    if missing:
        raise ConfigError(f"--control needs {' and '.join(missing)}, which this Python lacks", f"pip install {' '.join(missing)} (or reinstall realtime with its dependencies)")
