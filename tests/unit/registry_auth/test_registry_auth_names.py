"""Project and repository name rules."""
import pytest

from berth.registry_auth import project_of, validate_project_name, validate_repository_name


@pytest.mark.parametrize(
    "name", ["ab", "shop", "a1", "my-team", "a--b", "a.b", "a_b", "a__b", "x" * 64, "00"]
)
def test_valid_project_names(name):
    validate_project_name(name)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("a", "2 to 64 characters"),
        ("", "2 to 64 characters"),
        ("x" * 65, "2 to 64 characters"),
        ("Shop", "lowercase"),
        ("-ab", "lowercase"),
        ("ab-", "lowercase"),
        ("a..b", "lowercase"),
        ("a___b", "lowercase"),
        ("a._b", "lowercase"),
        ("a/b", "lowercase"),
        ("a b", "lowercase"),
        ("ab:5000", "lowercase"),
    ],
)
def test_invalid_project_names(name, rule):
    with pytest.raises(ValueError, match=rule):
        validate_project_name(name)


@pytest.mark.parametrize(
    "name",
    ["proj/app", "proj/team/app", "proj/a.b_c__d-e", "proj/a", "pr/" + "a" * 252],
)
def test_valid_repository_names(name):
    validate_repository_name(name)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("busybox", "<project>/<name>"),
        ("proj/", "<project>/<name>"),
        ("", "<project>/<name>"),
        ("p/app", "2 to 64 characters"),  # project part too short
        ("Proj/app", "project name must be lowercase"),
        ("proj/App", "components"),
        ("proj//app", "components"),
        ("proj/app/", "components"),
        ("proj/-app", "components"),
        ("127.0.0.1:5000/proj/app", "project name must be lowercase"),
        ("pr/" + "a" * 253, "at most 255"),
    ],
)
def test_invalid_repository_names(name, rule):
    with pytest.raises(ValueError, match=rule):
        validate_repository_name(name)


@pytest.mark.parametrize(
    ("name", "project"),
    [
        ("proj/app", "proj"),
        ("proj/team/app", "proj"),
        ("busybox", None),
        ("127.0.0.1:5000/proj/app", None),
        ("Proj/app", None),
    ],
)
def test_project_of(name, project):
    assert project_of(name) == project
