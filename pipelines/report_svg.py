"""Matplotlib figures as inline SVG for the HTML report: byte-stable, ids scoped per plot.

The hash salt is fixed and the date left out, so the same figure gives the same bytes; every id
(and every reference to it) is prefixed, so many plots inlined in one page never collide. Text is
drawn as paths (no font is fetched); matplotlib keeps each label as an XML comment.
"""

from __future__ import annotations

import io
import re
from typing import Any

_ID = re.compile(r'\bid="([^"]+)"')


def scoped(svg: str, prefix: str) -> str:
    """Prefix every id (and every reference to it) so plots inlined in one page never collide."""
    ids = set(_ID.findall(svg))
    if not ids:
        return svg
    names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    pattern = re.compile(r'(id="|url\(#|href="#)(' + names + r')(?=[")])')
    return pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def svg(fig: Any, prefix: str) -> str:
    """The figure as one `<svg>` element (closed afterwards), its ids prefixed with `prefix`."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "synthgate", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.find("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return scoped(text, prefix)
