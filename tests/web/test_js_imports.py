"""The web client's ES modules (static/app/*.js) import each other without cycles, and nobody imports main.js.

main.js is the entry module (loaded by templates/app.html); the other modules reach it only through
the event bus (bus.js). The check reads the static ``import ... from "./x.js"`` / ``import "./x.js"`` /
``export ... from "./x.js"`` statements of every module (comments are ignored); it needs neither a
database nor a browser.
"""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "static" / "app"
ENTRY = "main.js"

_CLAUSE = r"""(?:[\w$]+\s*(?:,\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+))?|\{[^}]*\}|\*\s*as\s+[\w$]+)"""
# `import x from "…"`, `import {a,\n b} from "…"`, `import * as x from "…"`, `import x, {a} from "…"`, `import "…"`.
IMPORT_RE = re.compile(rf"""^[ \t]*import\s*(?:{_CLAUSE}\s*from\s*)?(["'])(?P<spec>[^"'\n]+)\1""", re.MULTILINE)
# `export {a, b} from "…"`, `export * from "…"`, `export * as ns from "…"`.
EXPORT_RE = re.compile(r"""^[ \t]*export\s*(?:\{[^}]*\}|\*(?:\s*as\s+[\w$]+)?)\s*from\s*(["'])(?P<spec>[^"'\n]+)\1""",
                       re.MULTILINE)

_REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS = {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "yield",
                   "await", "instanceof"}


def strip_comments(src: str) -> str:
    """``src`` with comments blanked (newlines kept) and template/regex literal bodies blanked.

    String literals are kept as they are (they hold the module specifiers); a small lexer tells strings,
    template literals and regular-expression literals from comments, so ``"image/*"`` or ``/\\/\\//`` do not
    open a comment.
    """
    out: list[str] = []
    i, n = 0, len(src)
    last = ""  # last significant code character or word, to tell a regex literal from a division
    braces: list[str] = []  # "{" for a code block, "${" for a template substitution

    def blank(text: str) -> str:
        return re.sub(r"[^\n]", " ", text)

    def template(start: int) -> int:
        """Skip a template literal body from ``start`` (just after a backquote or a closing ``}``)."""
        j = start
        while j < n:
            c = src[j]
            if c == "\\":
                j += 2
                continue
            if c == "`":
                return j + 1
            if c == "$" and src.startswith("${", j):
                braces.append("${")
                return j + 2
            j += 1
        return n

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(src[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(src[i:j])
            i, last = j, "x"
        elif c == "`":
            j = template(i + 1)
            out.append("`" + blank(src[i + 1:j]))
            i, last = j, "x"
        elif c == "/" and (not last or last in _REGEX_AFTER or last in _REGEX_KEYWORDS):
            j, in_class = i + 1, False
            while j < n and src[j] != "\n":
                if src[j] == "\\":
                    j += 2
                    continue
                if src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                elif src[j] == "/" and not in_class:
                    break
                j += 1
            j = min(j + 1, n)
            out.append("/" + blank(src[i + 1:j]))
            i, last = j, "x"
        elif c == "{":
            braces.append("{")
            out.append(c)
            i, last = i + 1, c
        elif c == "}":
            if braces and braces.pop() == "${":
                j = template(i + 1)
                out.append("}" + blank(src[i + 1:j]))
                i, last = j, "x"
            else:
                out.append(c)
                i, last = i + 1, c
        elif c.isalnum() or c in "_$":
            j = i
            while j < n and (src[j].isalnum() or src[j] in "_$"):
                j += 1
            word = src[i:j]
            out.append(word)
            i, last = j, word if word in _REGEX_KEYWORDS else "x"
        else:
            out.append(c)
            if not c.isspace():
                last = c if c != ")" and c != "]" else "x"
            i += 1
    return "".join(out)


def imported_specifiers(src: str) -> list[str]:
    """The module specifiers of the static imports and re-exports in ``src``, in source order."""
    code = strip_comments(src)
    found = [(m.start(), m.group("spec")) for m in IMPORT_RE.finditer(code)]
    found += [(m.start(), m.group("spec")) for m in EXPORT_RE.finditer(code)]
    return [spec for _, spec in sorted(found)]


def import_graph(app: Path = APP) -> dict[str, list[str]]:
    """Module file name -> the local module file names it imports (relative specifiers only)."""
    graph: dict[str, list[str]] = {}
    for path in sorted(app.glob("*.js")):
        deps: list[str] = []
        for spec in imported_specifiers(path.read_text(encoding="utf-8")):
            if not spec.startswith("."):
                continue  # a bare or absolute specifier: not one of ours
            target = (path.parent / spec).resolve()
            dep = target.relative_to(app.resolve()).as_posix() if target.is_relative_to(app.resolve()) else str(target)
            if dep not in deps:
                deps.append(dep)
        graph[path.name] = deps
    return graph


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, …, a]``, or None."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, []):
            if dep in on_stack:
                return stack[stack.index(dep):] + [dep]
            if dep not in done:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


# ---- the parser itself ----

def test_parser_reads_every_static_import_form() -> None:
    src = '''// import { x } from "./commented.js";
/* import y from "./blocked.js"; */
import { h, $,
  clear } from "./dom.js";
import * as room from './room.js';
import api, { get } from "./api.js"
import "./side-effect.js";
export { a, b as c } from "./reexport.js";
export * from "./star.js";
export * as ns from "./star-ns.js";
const re = /\\/\\/not-a-comment/; const accept = "image/*"; const s = `${"x"} import z from "./tpl.js"`;
export function f() { return import("./dynamic.js"); }
'''
    assert imported_specifiers(src) == ["./dom.js", "./room.js", "./api.js", "./side-effect.js", "./reexport.js",
                                        "./star.js", "./star-ns.js"]


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a.js": ["b.js"], "b.js": ["c.js"], "c.js": []}) is None
    assert find_cycle({"a.js": ["b.js"], "b.js": ["c.js"], "c.js": ["a.js"]}) == ["a.js", "b.js", "c.js", "a.js"]


# ---- the web client ----

def test_web_client_imports_resolve() -> None:
    graph = import_graph()
    assert ENTRY in graph and graph[ENTRY], f"no imports found in {ENTRY}: is the parser broken? {graph}"
    # JSON modules (``import t from "./emoji.json" with { type: "json" }``) are files, not JS modules.
    missing = {mod: [d for d in deps if d not in graph and not (d.endswith(".json") and (APP / d).is_file())]
               for mod, deps in graph.items()}
    assert not any(missing.values()), f"imports of modules that are not in static/app: {missing}"


def test_nothing_imports_the_entry_module() -> None:
    importers = sorted(mod for mod, deps in import_graph().items() if ENTRY in deps)
    assert not importers, f"{ENTRY} is the entry module; these modules import it (use bus.js instead): {importers}"


def test_web_client_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle among static/app modules: {' -> '.join(cycle or [])}"
