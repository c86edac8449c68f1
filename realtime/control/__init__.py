"""The live control panel: a local web page and JSON API beside a running pipeline (``--control``).
``preview``: the latest output frame, kept by a sink that never holds the pipeline; ``panel``: what
the page can do to the run; ``api``: the Starlette routes, token-checked; ``server``: uvicorn on a
thread; ``page``: the panel and kiosk pages."""
