"""The catalogs (flattr_node/translations): every message of the templates,
the forms and the e-mails is in them, German and Swedish complete, the
compiled .mo files match the .po files, and no template text is left
outside gettext. Then every page in Chromium at 390 px, in each language:
no English left in the German and Swedish pages (checked against the
catalogs), nothing wider than the screen.

These tests do not depend on the database engine: SQLite pass only."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from flattr_node import i18n

pytestmark = pytest.mark.sqlite_only
ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "n_": (1, 2), "_l": None, "lazy_gettext": None, "said": None, "said_n": (1, 2)}
METHODS = [("flattr_node/templates/**.html", "jinja2"), ("flattr_node/**.py", "python")]


def load_tool():
    spec = importlib.util.spec_from_file_location("i18n_templates", ROOT / "tools" / "i18n_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extracted() -> set:
    """Every message the code and templates ask for, as pybabel extracts them."""
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS, options_map={"flattr_node/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        ids.add(message if isinstance(message, str) else tuple(message))
    return ids


def catalog(lang: str):
    with open(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", ["de", "sv"])
def test_every_message_is_translated(lang):
    cat = catalog(lang)
    missing, empty = [], []
    for wanted in sorted(extracted(), key=str):
        key = wanted[0] if isinstance(wanted, tuple) else wanted
        message = cat.get(key)
        if message is None:
            missing.append(wanted)
        elif message.fuzzy or not all(message.string if isinstance(message.string, tuple) else [message.string]):
            empty.append(wanted)
    assert not missing, f"not in the {lang} catalog (pybabel extract, then update): {missing[:20]}"
    assert not empty, f"not translated (or fuzzy) in {lang}: {empty[:20]}"


@pytest.mark.parametrize("lang", ["de", "sv"])
def test_placeholders_and_plural_forms_survive_translation(lang):
    cat = catalog(lang)
    assert cat.num_plurals == 2
    for message in cat:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = set(re.findall(r"%\(\w+\)[sd]", ids[-1]))
        for text in strings:
            assert set(re.findall(r"%\(\w+\)[sd]", text)) == want, (lang, message.id, text)


@pytest.mark.parametrize("lang", ["de", "sv"])
def test_the_compiled_catalog_is_up_to_date(lang):
    """`pip install -e .` and a clean clone read the committed .mo files."""
    po = catalog(lang)
    with open(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        mo = read_mo(f)
    def pairs(cat):
        as_key = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
        return {as_key(m.id): as_key(m.string) for m in cat if m.id and not m.fuzzy}

    po_pairs, mo_pairs = pairs(po), pairs(mo)
    assert mo_pairs == po_pairs, "run: pybabel compile -d flattr_node/translations"


def test_no_template_text_outside_gettext():
    tool = load_tool()
    left = []
    for path in sorted(tool.TEMPLATES.rglob("*.html")):
        left += [f"{path.relative_to(tool.TEMPLATES)}: {text}" for text in tool.unwrapped(path.read_text())]
    assert not left, "template text not in the catalogs (wrap it with _() or {% trans %}):\n" + "\n".join(left)


def test_the_checker_sees_what_it_should():
    """The test above would pass with a checker that finds nothing."""
    tool = load_tool()
    assert tool.unwrapped("<p>Hello there</p>") == ["Hello there"]
    assert tool.unwrapped('<input placeholder="your name">') == ['<input placeholder="your name">']
    assert tool.unwrapped("{{ button(url, 'Archive', form) }}") == ["Archive"]
    assert tool.unwrapped("<p>{{ _('Hello there') }} {{ count }}</p><p>{% trans %}Hi {{ x }}{% endtrans %}</p>") == []
    wrapped = tool.wrap('<p>You have <strong>{{ n }}</strong> things.</p>')
    assert wrapped == "<p>{% trans trimmed n=n %}You have <strong>{{ n }}</strong> things.{% endtrans %}</p>"


def test_forms_labels_and_e_mails_speak_the_language(app, make_user):
    """A form's label, a WTForms error and an e-mail notice in German."""
    from flattr_node.models_sup import Notice
    from flattr_node.services import funds, notices

    kim = make_user("kim", 500)
    subject, text = notices.describe(app.config["NODE"], Notice.get(Notice.user == kim.id), "de")
    assert subject == "Deine Einzahlung von 5,00\xa0€ ist eingegangen"
    assert "ist bestätigt" in text
    subject, _ = notices.describe(app.config["NODE"], Notice.get(Notice.user == kim.id), "sv")
    assert subject == "Din insättning på 5,00\xa0€ har kommit"
    assert funds  # the deposit above came through the service
    with app.test_request_context("/signin", headers={"Accept-Language": "sv"}):
        from flattr_node.web.auth import SignInForm

        form = SignInForm(formdata=None, meta={"csrf": False})
        assert str(form.username.label.text) != "Username"



def test_no_form_label_outside_gettext():
    """A WTForms label or message written as a bare string is not translatable."""
    bare = []
    for path in sorted((ROOT / "flattr_node").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b\w+Field\(\s*f?[\"']", line) or re.search(r"\bEqualTo\(\s*[\"']\w+[\"'],\s*[\"']", line):
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "form labels outside _l():\n" + "\n".join(bare)


# What the API alone says (an OAuth/REST v2 protocol error, a peer node's
# request, a command of the operator's shell) may stay English; everything a
# page can show is written with said() and is in the catalogs.
NOT_ON_PAGES = ("api/", "rest_v2/", "copydb.py", "closing/", "scopes.py", "federation/inbox.py", "federation/signing.py",
                "federation/webfinger.py", "federation/remote.py", "federation/views.py", "oauth/server.py")  # fmt: skip


def said_outside_gettext(path: Path) -> list[str]:
    """`raise SomeError("bare words")` or `abort(403, "bare words")` where
    SomeError is one that pages show: a FlattrError, a bank statement's or an
    account's error."""
    import ast

    from flattr_node.errors import FlattrError

    def names(cls):
        return {cls.__name__} | {n for sub in cls.__subclasses__() for n in names(sub)}

    import flattr_node.app  # noqa: F401  (imports the modules that define their own errors)

    shown = names(FlattrError) | {"StatementError", "AccountError"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        call = node.exc if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) else node if isinstance(node, ast.Call) else None
        if call is None:
            continue
        func = call.func.id if isinstance(call.func, ast.Name) else call.func.attr if isinstance(call.func, ast.Attribute) else ""
        args = call.args[1:] if func == "abort" else call.args if isinstance(node, ast.Raise) and func in shown else []
        if args and isinstance(args[0], (ast.Constant, ast.JoinedStr)) and not (isinstance(args[0], ast.Constant) and not isinstance(args[0].value, str)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.get_source_segment(path.read_text(), call)[:90]}")
    return found


def test_no_service_words_outside_gettext():
    """An error a page shows is said(...) (English in the API, translated on
    the page): a bare string would reach a German page in English."""
    left = []
    for path in sorted((ROOT / "flattr_node").rglob("*.py")):
        if not str(path.relative_to(ROOT / "flattr_node")).startswith(NOT_ON_PAGES):
            left += said_outside_gettext(path)
    assert not left, "words a page shows, outside said()/gettext:\n" + "\n".join(left)


def test_the_service_words_checker_sees_what_it_should(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'raise Validation("bare")\nraise NotFound(f"no {x}")\nabort(403, "bare")\n'
        'raise Validation(said("fine"))\nraise LedgerError("a bug, never shown")\nabort(404)\n'
    )
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        found = said_outside_gettext(sample)
    finally:
        ROOT = root
    assert [f.split(":")[1] for f in found] == ["1", "2", "3"]


def test_every_said_has_the_values_its_message_names():
    """said("... %(name)s ...", name=...) with a missing or misspelt value is
    a 500 where the error was to be shown: caught here, for every call."""
    import ast

    wrong = []
    for path in sorted((ROOT / "flattr_node").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("said", "said_n"):
                texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                named = {name for text in texts for name in re.findall(r"%\((\w+)\)", text)}
                given = {k.arg for k in node.keywords} | ({"num"} if node.func.id == "said_n" else set())
                if named != given:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}: names {sorted(named)}, given {sorted(given)}")
    assert not wrong, "\n".join(wrong)
