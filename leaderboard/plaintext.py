"""Free text (ids, model paths, error messages, descriptions) shown as text, never as markup.

Streamlit renders Markdown, with GitHub's bare-URL links and its own ``:color[…]``,
``:emoji:`` and ``$math$`` extensions, in titles, captions, alerts and ``st.markdown``: a model
path such as ``![x](https://example.com/a.png)`` would load a remote image there, and
backslash escapes do not stop a bare URL from becoming a link (that happens after parsing, on
the text). A Markdown code span is shown verbatim by all of them, so :func:`inline` puts free
text in one. Data grids, selectboxes, ``st.code``, JSON and chart labels already show text as
text.
"""

from __future__ import annotations

import re


def inline(value: object) -> str:
    """``value`` as a Markdown code span, shown verbatim on one line whatever it holds."""
    text = " ".join(str(value).split())
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"  # the spaces let the text start or end with a backtick
