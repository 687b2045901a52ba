"""The pure core of Berth's Docker Registry v2 token service: scopes, the grant
decision, the signing key and the tokens. No Flask, no database.

The token endpoint does, per request::

    scopes = parse_scopes(request.args.getlist("scope"))       # ValueError -> 400
    principal = ...authenticate Basic credentials, or ANONYMOUS  # bad credentials -> 401
    grants = grant_access(principal, scopes, allowed_actions)  # DB-backed lookup
    issued = issue_token(key, issuer=..., audience=service, subject=principal.subject,
                         access=grants, lifetime_s=..., now=utcnow())
    return token_response(issued)
"""
from berth.registry_auth.keys import CERT_FILE, KEY_FILE, SigningKey, libtrust_kid
from berth.registry_auth.names import (
    project_of,
    validate_project_name,
    validate_repository_name,
)
from berth.registry_auth.policy import (
    ALL,
    ANONYMOUS,
    DELETE,
    PUBLIC_ACTIONS,
    PULL,
    PUSH,
    REPOSITORY_ACTIONS,
    ROBOT_ACTIONS,
    ROLE_ACTIONS,
    AllowedActions,
    Grant,
    Principal,
    grant_access,
    project_actions,
)
from berth.registry_auth.scopes import Scope, parse_scope, parse_scopes
from berth.registry_auth.tokens import (
    IssuedToken,
    InvalidToken,
    issue_token,
    token_response,
    verify_token,
)

__all__ = [
    "ALL",
    "ANONYMOUS",
    "CERT_FILE",
    "DELETE",
    "KEY_FILE",
    "PUBLIC_ACTIONS",
    "PULL",
    "PUSH",
    "REPOSITORY_ACTIONS",
    "ROBOT_ACTIONS",
    "ROLE_ACTIONS",
    "AllowedActions",
    "Grant",
    "InvalidToken",
    "IssuedToken",
    "Principal",
    "Scope",
    "SigningKey",
    "grant_access",
    "issue_token",
    "libtrust_kid",
    "parse_scope",
    "parse_scopes",
    "project_actions",
    "project_of",
    "token_response",
    "validate_project_name",
    "validate_repository_name",
    "verify_token",
]
