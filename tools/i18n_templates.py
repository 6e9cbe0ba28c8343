"""Find (and wrap) template text that is not yet translatable.

    python tools/i18n_templates.py --check   # list text outside {% trans %} / _()
    python tools/i18n_templates.py --wrap    # wrap it, in place

Text between tags becomes `{{ _("...") }}`, or `{% trans trimmed a=expr %}...
{{ a }}...{% endtrans %}` when it holds `{{ expressions }}` or inline tags
(a sentence stays one message, with its placeholders, so that a translation
can order its words). The titles, placeholders and labels of tags are
wrapped too. tests/test_languages.py runs the check: a template string that
is not in the catalogs fails the build. Wrapping is mechanical: read the
result, and use `{% pluralize %}` where a number decides the words.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "flattr_node" / "templates"
INLINE = {"a", "strong", "em", "b", "i", "code", "small", "span", "abbr", "time", "kbd", "br", "bdi", "q", "mark", "sup", "sub"}
SKIP = {"script", "style", "textarea", "pre"}
ATTRS = ("title", "placeholder", "aria-label", "alt")
LETTER = re.compile(r"[A-Za-z]{2,}")
JINJA_OPEN = ("{{", "{%", "{#")
JINJA_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}


def tokenize(src: str) -> list[tuple[str, str]]:
    """('jinja', '{{ x }}' | '{% ... %}' | '{# #}'), ('tag', '<a ...>'), ('text', ...)."""
    out: list[tuple[str, str]] = []
    i, n, text = 0, len(src), []

    def flush():
        if text:
            out.append(("text", "".join(text)))
            text.clear()

    while i < n:
        two = src[i : i + 2]
        if two in JINJA_OPEN:
            end = src.find(JINJA_CLOSE[two], i + 2)
            end = n if end < 0 else end + 2
            flush()
            out.append(("jinja", src[i:end]))
            i = end
        elif src[i] == "<" and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] in "/!"):
            j = i + 1
            while j < n and src[j] != ">":
                if src[j : j + 2] in JINJA_OPEN:
                    close = src.find(JINJA_CLOSE[src[j : j + 2]], j + 2)
                    j = n if close < 0 else close + 2
                else:
                    j += 1
            flush()
            out.append(("tag", src[i : j + 1]))
            i = j + 1
        else:
            text.append(src[i])
            i += 1
    flush()
    return out


def _tag_name(tag: str) -> str:
    m = re.match(r"</?\s*([A-Za-z0-9-]+)", tag)
    return m.group(1).lower() if m else ""


def _block_word(jinja: str) -> str:
    m = re.match(r"\{%-?\s*(\w+)", jinja)
    return m.group(1) if m else ""


def _var_name(expr: str, used: dict) -> str:
    inner = expr.strip()[2:-2].strip().strip("-").strip()
    head = re.split(r"[|\s(\[]", inner, maxsplit=1)[0]
    name = head.split(".")[-1] if re.fullmatch(r"[A-Za-z_][\w.]*", head) else "value"
    name = re.sub(r"\W", "_", name) or "value"
    if name in ("_", "gettext", "ngettext"):
        name = "value"
    base, k = name, 2
    while name in used and used[name] != inner:
        name, k = f"{base}{k}", k + 1
    used[name] = inner
    return name


def _runs(tokens):
    """Index ranges [i, j) of inline runs holding text to translate."""
    skip_depth, in_trans, in_raw = 0, False, False
    runs, start, opened = [], None, []

    def close(j):
        nonlocal start
        opened.clear()
        if start is not None:
            parts = tokens[start:j]
            if any(k == "text" and LETTER.search(_unescape(v)) for k, v in parts):
                runs.append((start, j))
        start = None

    for idx, (kind, value) in enumerate(tokens):
        if kind == "jinja" and value.startswith("{%"):
            word = _block_word(value)
            close(idx)
            if word == "trans":
                in_trans = True
            elif word == "endtrans":
                in_trans = False
            elif word == "raw":
                in_raw = True
            elif word == "endraw":
                in_raw = False
            continue
        if kind == "jinja" and value.startswith("{#"):
            close(idx)
            continue
        if in_trans or in_raw:
            continue
        if kind == "tag":
            name = _tag_name(value)
            if name in SKIP:
                close(idx)
                skip_depth += -1 if value.startswith("</") else 1
                continue
            if name in INLINE and "{{" not in value and "{%" not in value and start is not None:
                if not value.startswith("</"):
                    if not value.rstrip(">").endswith("/") and name != "br":
                        opened.append(name)
                    continue  # inside a sentence
                if opened and opened[-1] == name:
                    opened.pop()
                    continue
            close(idx)
            if name in INLINE and name != "a" and not value.startswith("</") and "{{" not in value and "{%" not in value and skip_depth == 0:
                start = idx  # a sentence may begin with <strong> (a link is a message of its own)
                if name != "br":
                    opened.append(name)
            continue
        if skip_depth:
            continue
        if kind == "jinja":  # {{ expression }}
            if start is None:
                start = idx
            continue
        if start is None and value.strip():  # a sentence starts with words, not with the space before a link
            start = idx
    close(len(tokens))
    return runs


def _unescape(text: str) -> str:
    return re.sub(r"&[a-z]+;|&#\d+;", " ", text)


def _trim_run(tokens, i, j):
    """Leading/trailing tokens that are only whitespace or closing/opening tags stay outside."""
    while i < j and (tokens[i][0] == "text" and not tokens[i][1].strip() or tokens[i][0] == "tag" and tokens[i][1].startswith("</")):
        i += 1
    while j > i and (tokens[j - 1][0] == "text" and not tokens[j - 1][1].strip() or tokens[j - 1][0] == "tag" and not tokens[j - 1][1].startswith("</")):
        j -= 1
    return i, j


def _quote(text: str, mark: str = '"') -> str:
    return mark + text.replace("\\", "\\\\").replace(mark, "\\" + mark) + mark


def _wrap_run(tokens, i, j) -> str:
    parts = tokens[i:j]
    raw = "".join(v for _, v in parts)
    lead = raw[: len(raw) - len(raw.lstrip())]
    tail = raw[len(raw.rstrip()) :]
    if all(k in ("text", "tag") for k, _ in parts):
        text = " ".join(raw.split())
        if all(k == "text" for k, _ in parts):  # _() is escaped when shown: the msgid is plain text
            return f"{lead}{{{{ _({_quote(html.unescape(text))}) }}}}{tail}"
        return f"{lead}{{% trans trimmed %}}{raw.strip().replace('%', '%%')}{{% endtrans %}}{tail}"
    used: dict = {}
    body = []
    for kind, value in parts:
        if kind == "jinja":
            name = _var_name(value, used)
            body.append(f"{{{{ {name} }}}}")
        else:
            body.append(value.replace("%", "%%"))
    args = ", ".join(f"{name}={_arg(expr)}" for name, expr in used.items())
    return f"{lead}{{% trans trimmed {args} %}}{''.join(body).strip()}{{% endtrans %}}{tail}"


def _arg(expr: str) -> str:
    return f"({expr})" if re.search(r"\s(if|else|or|and|~)\s", expr) else expr


def _wrap_attrs(tag: str) -> str:
    def repl(m):
        value = m.group(3)
        if "{{" in value or "{%" in value or not LETTER.search(value):
            return m.group(0)
        other = "'" if m.group(2) == '"' else '"'
        return f"{m.group(1)}={m.group(2)}{{{{ _({_quote(value, other)}) }}}}{m.group(2)}"

    return re.sub(r'\b(' + "|".join(ATTRS) + r')=(["\'])(.*?)\2', repl, tag)


def wrap(src: str) -> str:
    tokens = tokenize(src)
    out, pos = [], 0
    for i, j in _runs(tokens):
        i, j = _trim_run(tokens, i, j)
        if i >= j:
            continue
        out.extend(_emit(tokens[pos:i]))
        out.append(_wrap_run(tokens, i, j))
        pos = j
    out.extend(_emit(tokens[pos:]))
    return "".join(out)


def _emit(tokens) -> list[str]:
    return [_wrap_attrs(v) if k == "tag" else v for k, v in tokens]


LITERAL = re.compile(r"""(?<![\w.=] )(?<![\w.])(["'])((?:[A-Z][a-z]*\s[a-z]+|[A-Z][a-z]+|[a-z]+ [a-z]+)[^"'{}]*)\1""")
SHOWN = re.compile(r"""\b(?:hint|placeholder|label|title)=(["'])([^"']*[A-Za-z]{2,}[^"']*)\1""")


def unwrapped(src: str) -> list[str]:
    """What `wrap` would change, and English string literals in expressions
    that are not inside _(...)."""
    found = []
    tokens = tokenize(src)
    for i, j in _runs(tokens):
        i, j = _trim_run(tokens, i, j)
        if i < j:
            found.append(" ".join("".join(v for _, v in tokens[i:j]).split()))
    for kind, value in tokens:
        if kind == "tag" and _wrap_attrs(value) != value:
            found.append(value)
        if kind == "jinja" and not value.startswith("{#"):
            stripped = re.sub(r"\b_l?\(\s*(['\"]).*?\1", "", value)
            stripped = re.sub(r"\bn?gettext\(\s*(['\"]).*?\1(\s*,\s*(['\"]).*?\3)?", "", stripped)
            for m in LITERAL.finditer(stripped):
                found.append(m.group(2))
            for m in SHOWN.finditer(stripped):
                if not m.group(2).startswith("http") and m.group(2) not in found and len(m.group(2)) > 2:
                    found.append(m.group(2))
    return found


def main(argv: list[str]) -> int:
    files = sorted(TEMPLATES.rglob("*.html"))
    if "--wrap" in argv:
        for path in files:
            src = path.read_text()
            new = wrap(src)
            if new != src:
                path.write_text(new)
                print(f"wrapped {path.relative_to(TEMPLATES)}")
        return 0
    bad = 0
    for path in files:
        for text in unwrapped(path.read_text()):
            print(f"{path.relative_to(TEMPLATES)}: {text}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
