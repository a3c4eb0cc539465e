import pytest

from ccr import languages
from ccr.errors import CcrError


def test_known_codes_and_subtags():
    assert languages.parse_list("de, fr,cs,zh-Hans") == ["de", "fr", "cs", "zh-Hans"]


@pytest.mark.parametrize("code, hint", [("cz", "'cs'"), ("jp", "'ja'"), ("xx", "ISO 639-1")])
def test_unknown_codes_name_the_fix(code, hint):
    with pytest.raises(CcrError, match=hint):
        languages.check(code)
