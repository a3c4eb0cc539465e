"""Language codes a caption may carry.

ISO 639-1 two-letter codes; a region or script subtag (``zh-Hans``, ``pt-BR``) is accepted on top
of a known base code. An unknown code is almost always a typo (``cz`` for ``cs``, ``jp`` for
``ja``), so it is refused rather than stored.
"""

from __future__ import annotations

import re

from ccr.errors import CcrError

ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy
    hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li
    ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa
    pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th
    ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()
)

_TAG = re.compile(r"^([a-z]{2})(?:[-_][A-Za-z0-9]{2,8})*$")

COMMON_MISTAKES = {"cz": "cs", "jp": "ja", "gr": "el", "dk": "da", "cn": "zh", "ua": "uk"}


def is_known(code: str) -> bool:
    m = _TAG.match(code or "")
    return bool(m) and m.group(1) in ISO_639_1 and code not in COMMON_MISTAKES


def check(code: str) -> str:
    """Return ``code`` if known, else raise a one-line error with the likely fix."""
    if is_known(code):
        return code
    hint = COMMON_MISTAKES.get((code or "").lower())
    fix = f" (did you mean {hint!r}?)" if hint else " (use an ISO 639-1 code such as de, fr, cs, zh, ja)"
    raise CcrError(f"unknown language code {code!r}{fix}")


def parse_list(spec: str) -> list[str]:
    """``"de,fr, cs"`` -> ``["de", "fr", "cs"]``, each checked."""
    langs = [c.strip() for c in spec.split(",") if c.strip()]
    if not langs:
        raise CcrError("no language given: pass e.g. --lang cs or --lang de,fr,cs")
    return [check(c) for c in langs]
