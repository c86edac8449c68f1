"""The still-image path. ``image``: read a photo, find its faces, embed one face's identity (what
the live swap stage needs from its ``--source``). ``swapper``: the live path's own stages run
once on a still (``swap-image``, and ``eval-swap`` on hundreds). Nothing is re-exported here, so
that the swap stage can import ``image`` without loading the stages that ``swapper`` wraps."""
