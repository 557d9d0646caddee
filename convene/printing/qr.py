"""QR codes for badges: the check-in token as inline SVG, cached per token."""
from __future__ import annotations

from functools import lru_cache

import segno
from markupsafe import Markup


@lru_cache(maxsize=20_000)
def qr_svg(token: str) -> Markup:
    """An inline <svg> (no size: the badge's CSS sizes it) encoding `token`, with a quiet zone of 2 modules.

    Encoding (choosing the best of eight masks) is the slow part. Batches make their codes in the
    process that asks for the batch, while its pool starts, and hand them to the workers; in a web
    process the cache then outlives the batch, so reprints and the next batch skip the encoding.
    """
    code = segno.make(token, error="m", micro=False)
    svg = code.svg_inline(border=2, omitsize=True, dark="#000", light="#fff")
    # segno's output is our own markup (the token is only ever encoded into the path data).
    return Markup(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
