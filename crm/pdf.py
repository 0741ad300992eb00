"""HTML to PDF with xhtml2pdf, for statements, invoices and credit notes.

The templates name their fonts by file name only (``@font-face { src: url("DejaVuSans.ttf") }``)
and the conversion runs under a resource policy confined to ``templates/pdf/fonts``: no
network, no other file. A document whose text came from a user ("<img src=/etc/passwd>"
would be escaped anyway) still cannot make the renderer fetch anything else.
"""

import gc
from io import BytesIO
from pathlib import Path

from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

FONTS = Path(__file__).resolve().parent.parent / "templates" / "pdf" / "fonts"
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
_POLICY = ResourceAccessPolicy(allow_remote=False, base_dir=FONTS)


class PdfError(RuntimeError):
    """The PDF could not be made; the message says why (for the log and the user)."""


def html_to_pdf(html: str) -> bytes:
    """Render ``html`` (a whole document from ``templates/pdf/``) to PDF bytes."""
    missing = [name for name in FONT_FILES if not (FONTS / name).is_file()]
    if missing:
        raise PdfError(f"The PDF font {', '.join(missing)} is missing from {FONTS}.")
    out = BytesIO()
    # xhtml2pdf allocates hundreds of thousands of short-lived objects per page; the cyclic
    # collector's full passes in the middle of that were the slow tail (a 60-line statement:
    # p95 320 ms with it, against a 180 ms median). Paused for the render, it catches up after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        status = pisa.CreatePDF(
            html, dest=out, path=str(FONTS / "document.html"), encoding="utf-8",
            resource_policy=_POLICY,
        )
    except Exception as exc:  # xhtml2pdf raises whatever its parsers raise
        raise PdfError(f"The PDF could not be made: {exc}") from exc
    finally:
        if collecting:
            gc.enable()
    if status.err:
        messages = "; ".join(str(entry[2]) for entry in status.log if entry[0] == "error")
        raise PdfError(f"The PDF could not be made: {messages or 'unknown error'}.")
    return out.getvalue()
