"""Company-name normalisation: one function shared by the mirror (which stores `name_normalized`) and search.

Both sides must agree byte for byte, otherwise an exact match would look like a fuzzy one. The rules:
fold case and accents, treat `&` as `and`, drop dots and apostrophes inside words (`L.L.C.` -> `llc`,
`O'Brien` -> `obrien`), turn every other non-alphanumeric run into one space, then drop trailing legal-form
words (`LLC`, `Inc`, `Corp`, `Co`, `Ltd`, `GmbH`, ...) and a leading `the`. A name made only of such words
keeps them: "Co" is not normalised to the empty string.
"""

from __future__ import annotations

import re
import unicodedata

# Legal forms dropped from the end of a name (after punctuation is gone, so "L.L.C." is "llc").
LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "ag",
        "bv",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "inc",
        "incorporated",
        "kg",
        "limited",
        "llc",
        "llp",
        "lp",
        "ltd",
        "nv",
        "oy",
        "pc",
        "plc",
        "pllc",
        "pty",
        "sa",
        "sarl",
        "sas",
        "spa",
        "srl",
        "ulc",
    }
)

_JOINERS = re.compile(r"[.'\u2019`]")  # removed outright: they sit inside abbreviations and names
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def _fold(text: str) -> str:
    """Case-fold and strip accents ("Müller" -> "muller"), so that either spelling finds the other."""
    folded = text.casefold()
    if folded.isascii():  # the common case, and the mirror normalises every name it stores
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_name(name: str) -> str:
    """The comparable form of a company name: "Acme Industrial Supply, L.L.C." -> "acme industrial supply"."""
    folded = _fold(name).replace("&", " and ")
    words = _SEPARATORS.sub(" ", _JOINERS.sub("", folded)).split()
    end = len(words)
    while end > 1 and words[end - 1] in LEGAL_SUFFIXES:
        end -= 1
    start = 1 if end > 1 and words[0] == "the" else 0
    if end == 1 and words and words[0] in LEGAL_SUFFIXES and len(words) > 1:
        end = len(words)  # the whole name is legal words ("Co Ltd"): keep it rather than invent one
    return " ".join(words[start:end])


def email_domain(value: str) -> str | None:
    """The lower-case domain of an email address or of `@domain`, or None when there is none."""
    _, at, domain = value.strip().rpartition("@")
    domain = domain.strip().strip(".").lower()
    if not at or not domain or " " in domain:
        return None
    return domain
