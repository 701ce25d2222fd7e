"""Evidently's HTML with its data block made safe to open in a browser.

Evidently (0.7) writes a report's data as ``<script> var metric_… = {json}; var
additional_graphs_metric_… = {json}; </script>`` with a plain ``json.dumps``: a category
value such as a CSM named ``</script><script>…`` closes the block and the rest runs as
script in the reader's browser (issue 13). ``safe_report_html`` re-encodes exactly those
two JSON values with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\uXXXX`` escapes:
the same JavaScript values (the report still shows the real name, as text), but no
``</script``, ``<!--`` or line terminator can appear inside the block. A page whose data
block is not laid out as expected is refused, never written unchecked.
"""

from __future__ import annotations

import json
import re

from monitoring.errors import MonitoringError

#: JSON text written as JavaScript inside ``<script>``: these characters only occur inside
#: JSON strings, where the ``\\uXXXX`` escape means the same character.
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")

_DATA_START = re.compile(r"<script>\s*var (metric_[0-9a-f]+) = ")
_DECODER = json.JSONDecoder()


def script_json(value: object, **dumps_kwargs) -> str:
    """``json.dumps(value)`` safe to embed in an HTML ``<script>`` block (a JavaScript literal).

    Keyword arguments go to ``json.dumps`` (e.g. ``default=str``).
    """
    text = json.dumps(value, ensure_ascii=False, **dumps_kwargs)
    return _UNSAFE_RE.sub(lambda m: _SCRIPT_UNSAFE[m.group(0)], text)


def _layout_error(what: str) -> MonitoringError:
    return MonitoringError(f"Evidently's HTML report has an unexpected layout ({what}): it is not written, "
                           "because its data could not be checked for script injection")


def _take_json(page: str, pos: int) -> tuple[object, int]:
    try:
        return _DECODER.raw_decode(page, pos)
    except json.JSONDecodeError as exc:
        raise _layout_error(f"data block is not JSON at offset {pos}") from exc


def _expect(page: str, pos: int, pattern: str, what: str) -> int:
    found = re.compile(pattern).match(page, pos)
    if found is None:
        raise _layout_error(what)
    return found.end()


def safe_report_html(page: str) -> str:
    """Evidently's standalone page (``Snapshot.get_html_str(as_iframe=False)``) with its data
    block re-encoded by ``script_json``.

    Raises:
        MonitoringError: no data block, or one laid out differently (another Evidently version).
    """
    start = _DATA_START.search(page)
    if start is None:
        raise _layout_error("no data block")
    dashboard_id = start.group(1)
    info, end_info = _take_json(page, start.end())
    graphs_at = _expect(page, end_info, rf";\s*var additional_graphs_{dashboard_id} = ", "no graphs variable")
    graphs, end_graphs = _take_json(page, graphs_at)
    close = _expect(page, end_graphs, r";\s*</script>", "data block not closed after its two variables")
    block = (f"<script>\n    var {dashboard_id} = {script_json(info)};\n"
             f"    var additional_graphs_{dashboard_id} = {script_json(graphs)};\n</script>")
    return page[:start.start()] + block + page[close:]


def insert_after_body(page: str, header: str) -> str:
    """``page`` with ``header`` (trusted, already escaped HTML) right after its ``<body>`` tag.

    Raises:
        MonitoringError: no ``<body>`` tag.
    """
    at = page.find("<body>")
    if at < 0:
        raise _layout_error("no <body> tag")
    at += len("<body>")
    return f"{page[:at]}\n{header}{page[at:]}"
