"""Our templates keep to the Content-Security-Policy (crm/security_headers.py): no inline
script anywhere, and the Flask-Admin templates we copy and change (templates/admin/, same
paths as Flask-Admin's, so they shadow them) are still copies of the installed ones.

The pages as rendered are checked in tests/integration/test_security_headers.py and, in a
browser, in tests/e2e/test_content_security_policy.py; this reads the sources, so it also
covers templates no test renders."""

import hashlib
import re
from pathlib import Path

import flask_admin
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
FLASK_ADMIN = Path(flask_admin.__file__).parent / "templates" / "bootstrap4"

# Each copied Flask-Admin template and the SHA-256 of the original it was copied from
# (Flask-Admin 2.2.1). When Flask-Admin changes one, copy the new original, make the changes
# again (the comment at the top of our copy lists them) and put its hash here.
SHADOWED = {
    "admin/actions.html": "685288ebd9108462ae72a04b894303142f1f6b953834295a85f4c4e8d233a514",
    "admin/base.html": "a6add6a45c2ac3c55046ea283318e719269ac7b4e181cc3787904db53b8aaea4",
    "admin/layout.html": "5e62de8b5e527fc754d529ff9099d38ab4cd27b37e351bab1e7eccd692b57ddd",
    "admin/lib.html": "21a2c36fee3e19840985344119f1f84b9330b0c60c00102958e3f652d38194fb",
    "admin/model/layout.html":
        "9801f7f6e21b6dfef6231ea0a2e297ff9903692e894ac1f72e84bd6dddea8cbe",
    "admin/model/inline_list_base.html":
        "9385d36000f838cdc0cd90bc310baa5a6e328c738b9ff862f36c75661e1df23b",
    "admin/model/row_actions.html":
        "4dc1ade152ecd029860ea8248d10d60ec558571d798ccb20017cd2cc4bb42a7d",
    "admin/model/list.html": "21003d92feb9a75c9cbb3b816b2ebdd5e8479917edac2483c803561c5cfb5159",
    "admin/model/edit.html": "b606efe0a695ead26c97616afacbe16ac1a83dcdfec0caeea1888515be7724d0",
    "admin/model/create.html":
        "8930a13e4d81cd59811ff487314156efa07ebd078471edeca5a97212e145cff2",
    "admin/model/details.html":
        "c4aa5d6ca9b9b82d52b9bf97e93ea34fa678da0bc181afdf618d4bab5ed5a04f",
}

JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
INLINE = {
    "a <script> without src": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "an on…= event handler": re.compile(r"\son[a-z]+\s*=\s*[\"'{]", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


def inline_script(source: str) -> list[str]:
    code = JINJA_COMMENT.sub("", source)
    return [what for what, pattern in INLINE.items() if pattern.search(code)]


TEMPLATE_FILES = sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("name", TEMPLATE_FILES)
def test_no_template_has_inline_script(name):
    assert inline_script((TEMPLATES / name).read_text()) == []


def test_the_check_finds_each_kind_of_inline_script():
    """The control for the test above: each kind is found, in code but not in a comment."""
    assert inline_script('<script>go()</script><a href="JavaScript:x()" onClick="y()">') == [
        "a <script> without src", "an on…= event handler", "a javascript: URL"]
    assert inline_script('<form onsubmit="return confirm(\'{{ q }}\')">') == [
        "an on…= event handler"]
    assert inline_script('{# was onclick="x()" and javascript:void(0) #}'
                         '<script src="{{ url }}"></script><a href="#" data-confirm="Sure?">'
                         'turn on = off</a>') == []


@pytest.mark.parametrize("name", sorted(SHADOWED))
def test_a_copied_flask_admin_template_still_matches_the_installed_original(name):
    original = FLASK_ADMIN / name
    assert (TEMPLATES / name).exists()
    assert hashlib.sha256(original.read_bytes()).hexdigest() == SHADOWED[name], (
        f"Flask-Admin's {name} changed: copy it to templates/{name} again and redo our changes "
        "(listed at the top of our copy), then update its hash here")
