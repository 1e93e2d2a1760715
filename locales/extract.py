"""Keep the gettext catalogs in step with the source: ``python -m locales.extract``.

Extracts every string the page shows (the mapping is ``locales/babel.cfg``), merges it into the
English and German catalogs (``locales/<lang>/LC_MESSAGES/attention_lens.po``) without fuzzy
guesses, fills the English catalog with the source text, and lists the German entries that
still need a translation (exit status 1 while there are any). The page reads the ``.po`` files
directly (``views.i18n``), so there is no compile step.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
MAPPING = Path(__file__).with_name("babel.cfg")
DOMAIN = "attention_lens"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "de")
HEADER = "# Attention Lens: the page's text. Written by `python -m locales.extract`; translate the empty msgstr entries."


def constants(fileobj, keywords, comment_tags, options) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extraction method: the string literals of chosen module-level constants.

    Options: ``names`` (the constants, separated by spaces or commas) and ``argument`` (for a
    constant built from calls such as ``ModelEntry(id, description, …)``, the index of the
    positional argument that holds the text). Dict keys are identifiers, never text: skipped.
    """
    names = set(options.get("names", "").replace(",", " ").split())
    argument = int(options["argument"]) if "argument" in options else None
    tree = ast.parse(fileobj.read())
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id in names for target in targets):
            for literal in _strings(value, argument):
                yield literal.lineno, None, literal.value, []


def _strings(node: ast.AST, argument: int | None) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _strings(value, argument)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            yield from _strings(element, argument)
    elif isinstance(node, ast.Call):
        chosen = node.args if argument is None else node.args[argument : argument + 1]
        for element in chosen:
            yield from _strings(element, argument)


def template() -> Catalog:
    """Every message the source marks for translation, with the files it comes from."""
    with open(MAPPING, encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(MAPPING))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # babel imports the constants extractor as locales.extract
    found = Catalog(project="Attention Lens", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(ROOT, method_map, options_map):
        found.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return found


def catalog_path(language: str) -> Path:
    return ROOT / "locales" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(language: str) -> Catalog:
    with open(catalog_path(language), "rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def untranslated(catalog: Catalog) -> list[str]:
    """The msgids of ``catalog`` that have no translation, or only a fuzzy one."""
    return [message.id for message in catalog if message.id and (not message.string or message.fuzzy)]


def update(language: str, source: Catalog) -> Catalog:
    """Merge ``source`` into ``language``'s catalog and write it; strings gone from the source are dropped."""
    path = catalog_path(language)
    if path.exists():
        catalog = read_catalog(language)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(locale=language, domain=DOMAIN, project="Attention Lens", fuzzy=False, header_comment=HEADER)
    before = ({message.id for message in catalog}, catalog.creation_date)
    # A fuzzy guess from a similar old string would be shown as if it were checked; an empty
    # entry is listed below instead.
    catalog.update(source, no_fuzzy_matching=True)
    if {message.id for message in catalog} == before[0]:
        catalog.creation_date = before[1]  # nothing new: no date-only change to commit
    catalog.fuzzy = False
    if language == SOURCE_LANGUAGE:
        for message in catalog:
            if message.id and not message.string:
                message.string = message.id
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=0, include_lineno=False, ignore_obsolete=True)
    return catalog


def main() -> int:
    missing = {}
    for language in LANGUAGES:
        # A fresh template each time: Catalog.update shares its message objects with the template.
        missing[language] = untranslated(update(language, template()))
    print(f"{len(template())} messages extracted")
    for language, ids in missing.items():
        for message in ids:
            print(f"{language}: untranslated: {message}")
    return 1 if any(missing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
