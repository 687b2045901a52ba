"""Which project and repository names Berth accepts: the registry's reference grammar,
narrowed so every repository lives inside a project (`<project>/<path>`)."""
from __future__ import annotations

import re

# One path component of distribution's reference grammar (reference/regexp.go).
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_NAME_MAX = 255  # distribution's NameTotalLengthMax
PROJECT_NAME_MIN = 2
PROJECT_NAME_MAX = 64  # the width of projects.name

_COMPONENT_RE = re.compile(PATH_COMPONENT)

COMPONENT_RULE = (
    "lowercase letters and digits, separated by a single '.', '_', '__' or one or more '-',"
    " starting and ending with a letter or digit"
)


def validate_project_name(name: str) -> None:
    """Raise ValueError unless `name` is one path component of 2 to 64 characters."""
    if not PROJECT_NAME_MIN <= len(name) <= PROJECT_NAME_MAX:
        raise ValueError(
            f"project name must be {PROJECT_NAME_MIN} to {PROJECT_NAME_MAX} characters long"
        )
    if not _COMPONENT_RE.fullmatch(name):
        raise ValueError(f"project name must be {COMPONENT_RULE}")


def validate_repository_name(name: str) -> None:
    """Raise ValueError unless `name` is `<project>/<component>[/<component>...]`."""
    if len(name) > REPOSITORY_NAME_MAX:
        raise ValueError(f"repository name must be at most {REPOSITORY_NAME_MAX} characters long")
    project, sep, rest = name.partition("/")
    if not sep or not rest:
        raise ValueError("repository name must be <project>/<name>, e.g. 'shop/web'")
    validate_project_name(project)
    for component in rest.split("/"):
        if not _COMPONENT_RE.fullmatch(component):
            raise ValueError(
                "repository name components are separated by single '/' and must be"
                f" {COMPONENT_RULE}"
            )


def project_of(repository_name: str) -> str | None:
    """The project owning a repository, or None when the name is not a valid Berth name."""
    try:
        validate_repository_name(repository_name)
    except ValueError:
        return None
    return repository_name.partition("/")[0]
