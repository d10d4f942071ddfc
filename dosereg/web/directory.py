"""Sign-in through the hospital's directory: LDAP / Active Directory (django-auth-ldap) and OpenID Connect
(mozilla-django-oidc), both optional and configured by environment variables (settings, "security"; README,
"Security and privacy").  Local accounts stay (the embedded mode, the first administrator).

Roles come from the directory at every sign-in: a role mapped to a group (LDAP group DN, or a value of the OIDC
roles claim) is given to members and taken from everyone else; roles not mapped are left as an administrator set
them in DoseReg.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.checks import Error, Tags, register

from dosereg.registry.roles import ROLES

log = logging.getLogger(__name__)


def roles_for(memberships: set[str], mapping: dict[str, list[str]]) -> dict[str, bool]:
    """For each mapped role: whether one of its groups is among the user's memberships (compared case-blind, as
    LDAP compares DNs and AD group names)."""
    have = {m.casefold() for m in memberships}
    return {role: any(g.casefold() in have for g in groups) for role, groups in mapping.items() if groups}


def apply_roles(user, wanted: dict[str, bool], source: str) -> None:
    """Give and take the mapped roles (Django groups); log the changes (user names and role names only)."""
    if user.pk is None:
        user.save()
    current = set(user.groups.values_list("name", flat=True))
    for role, member in wanted.items():
        if member and role not in current:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            log.info("%s sign-in: role %s given to %s", source, role, user.get_username())
        elif not member and role in current:
            user.groups.remove(Group.objects.get(name=role))
            log.info("%s sign-in: role %s taken from %s", source, role, user.get_username())


# --- LDAP --------------------------------------------------------------------------------------------------------------
def _ldap_populated(sender, user=None, ldap_user=None, **kwargs):
    apply_roles(user, roles_for(set(ldap_user.group_dns), settings.LDAP_ROLE_GROUPS), "LDAP")


try:  # the package is optional (pip install '.[sso]'); settings only name the backend when it is configured
    from django_auth_ldap.backend import populate_user
except ImportError:  # pragma: no cover - without the extra there is no LDAP sign-in to map
    populate_user = None
else:
    populate_user.connect(_ldap_populated, dispatch_uid="dosereg-ldap-roles")


# --- OpenID Connect ------------------------------------------------------------------------------------------------------
try:
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend
except ImportError:  # pragma: no cover
    OIDCAuthenticationBackend = object


class OidcBackend(OIDCAuthenticationBackend):
    """Users are found and named by the provider's ``preferred_username`` (falling back to ``sub``), not by e-mail
    (shared and functional mailboxes are common in hospitals); roles from the roles claim."""

    def _username(self, claims) -> str:
        return str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("sub") or "")[:150]

    def verify_claims(self, claims):
        return bool(self._username(claims))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username__iexact=self._username(claims))

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self._username(claims), email=claims.get("email") or "")
        user.set_unusable_password()
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        user.first_name = str(claims.get("given_name") or "")[:150]
        user.last_name = str(claims.get("family_name") or "")[:150]
        user.email = str(claims.get("email") or user.email)[:254]
        user.save()
        values = claims.get(settings.OIDC_ROLES_CLAIM) or []
        values = {values} if isinstance(values, str) else {str(v) for v in values}
        apply_roles(user, roles_for(values, settings.OIDC_ROLE_GROUPS), "OIDC")
        return user


@register(Tags.security)
def role_mapping(app_configs=None, **kwargs):
    """A mapping names a DoseReg role (DOSEREG_LDAP_ROLE_<ROLE>, DOSEREG_OIDC_ROLE_<ROLE>)."""
    problems = []
    for source, mapping in (("LDAP", settings.LDAP_ROLE_GROUPS), ("OIDC", settings.OIDC_ROLE_GROUPS)):
        for role in sorted(set(mapping) - set(ROLES)):
            problems.append(Error(f"DOSEREG_{source}_ROLE_{role.upper()} names no DoseReg role",
                                  hint=f"roles: {', '.join(ROLES)}", id="dosereg.E011"))
    return problems
