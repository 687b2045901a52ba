"""pytest's default import mode imports each test module by its basename, so two test files
of one name in different folders break collection of the whole suite (it happened twice)."""
from collections import Counter

from tests.support import REPOSITORY


def test_no_two_test_modules_share_a_basename():
    names = Counter(path.name for path in (REPOSITORY / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
