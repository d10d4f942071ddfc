"""Directory sign-in: LDAP against a real OpenLDAP server (Debian slapd) started here, with group-to-role mapping;
OpenID Connect configured by environment variables; the mapping rule itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import User

from dosereg.web.directory import roles_for
from tests.conftest import REPO, free_port, require

BASE = "dc=hospital,dc=example"
ROOT_DN, ROOT_PW = f"cn=admin,{BASE}", "slapd-secret"
MEDPHYS, RADIOGRAPHERS = f"cn=medphys,ou=groups,{BASE}", f"cn=radiographers,ou=groups,{BASE}"
ENTRIES = f"""dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Hospital
dc: hospital

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice Curie
sn: Curie
givenName: Alice
mail: alice@hospital.example
userPassword: alice-password-1

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
uid: bob
cn: Bob Roentgen
sn: Roentgen
userPassword: bob-password-1

dn: {MEDPHYS}
objectClass: groupOfNames
cn: medphys
member: uid=alice,ou=people,{BASE}

dn: {RADIOGRAPHERS}
objectClass: groupOfNames
cn: radiographers
member: uid=bob,ou=people,{BASE}
"""


def test_roles_for_maps_memberships_case_blind():
    mapping = {"physicist": ["CN=MedPhys,OU=Groups,DC=x"], "admin": ["cn=it,dc=x"], "qa_committee": []}
    assert roles_for({"cn=medphys,ou=groups,dc=x"}, mapping) == {"physicist": True, "admin": False}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    binary = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
    require(binary is not None and shutil.which("ldapadd") is not None,
            "slapd and ldap-utils are not installed (apt-get install slapd ldap-utils)")
    pytest.importorskip("django_auth_ldap", reason="django-auth-ldap is not installed (pip install '.[sso]')")
    root = tmp_path_factory.mktemp("slapd")
    (root / "db").mkdir()
    schema = "/etc/ldap/schema"
    (root / "slapd.conf").write_text("\n".join([
        *[f"include {schema}/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")],
        "modulepath /usr/lib/ldap", "moduleload back_mdb", f"pidfile {root}/slapd.pid",
        "database mdb", f'suffix "{BASE}"', f'rootdn "{ROOT_DN}"', f"rootpw {ROOT_PW}", f"directory {root}/db",
        "maxsize 10485760", ""]))
    port = free_port()
    uri = f"ldap://127.0.0.1:{port}/"
    proc = subprocess.Popen([binary, "-f", str(root / "slapd.conf"), "-h", uri, "-d", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    if proc.poll() is not None:
        require(False, f"slapd could not start: {proc.stdout.read().decode(errors='replace')[-500:]}")
    try:
        added = subprocess.run(["ldapadd", "-x", "-H", uri, "-D", ROOT_DN, "-w", ROOT_PW], input=ENTRIES.encode(),
                               capture_output=True, timeout=30)
        assert added.returncode == 0, added.stderr
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def ldap_settings(settings, slapd):
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    settings.AUTH_LDAP_SERVER_URI = slapd
    settings.AUTH_LDAP_BIND_DN, settings.AUTH_LDAP_BIND_PASSWORD = ROOT_DN, ROOT_PW
    settings.AUTH_LDAP_USER_SEARCH = LDAPSearch(f"ou=people,{BASE}", ldap.SCOPE_SUBTREE, "(uid=%(user)s)")
    settings.AUTH_LDAP_GROUP_SEARCH = LDAPSearch(f"ou=groups,{BASE}", ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)")
    settings.AUTH_LDAP_GROUP_TYPE = GroupOfNamesType()
    settings.AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    settings.AUTH_LDAP_ALWAYS_UPDATE_USER = True
    settings.LDAP_ROLE_GROUPS = {"physicist": [MEDPHYS], "radiographer": [RADIOGRAPHERS]}
    settings.AUTHENTICATION_BACKENDS = ["dosereg.web.signin.LockoutBackend", "django_auth_ldap.backend.LDAPBackend",
                                        "django.contrib.auth.backends.ModelBackend"]
    return slapd


@pytest.mark.django_db
def test_ldap_sign_in_maps_groups_to_roles(client, ldap_settings, make_user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    alice = User.objects.get(username="alice")
    assert alice.first_name == "Alice" and alice.email == "alice@hospital.example"
    assert set(alice.groups.values_list("name", flat=True)) == {"physicist"}
    assert alice.has_perm("registry.export_studies") and not alice.has_usable_password()
    client.logout()
    # the directory moves alice to the radiographers: the next sign-in gives and takes the roles
    change = (f"dn: {MEDPHYS}\nchangetype: modify\nadd: member\nmember: {ROOT_DN}\n-\n"
              f"delete: member\nmember: uid=alice,ou=people,{BASE}\n\n"
              f"dn: {RADIOGRAPHERS}\nchangetype: modify\nadd: member\nmember: uid=alice,ou=people,{BASE}\n")
    done = subprocess.run(["ldapmodify", "-x", "-H", ldap_settings, "-D", ROOT_DN, "-w", ROOT_PW],
                          input=change.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}).status_code == 302
    assert set(User.objects.get(username="alice").groups.values_list("name", flat=True)) == {"radiographer"}
    client.logout()
    # a wrong password is refused and counts toward the lock; local accounts still sign in
    assert client.post("/accounts/login/", {"username": "bob", "password": "nope"}).status_code == 200
    make_user("admin", username="local-admin")
    assert client.post("/accounts/login/", {"username": "local-admin",
                                            "password": "correct horse battery"}).status_code == 302


def test_directory_settings_from_the_environment(tmp_path):
    pytest.importorskip("django_auth_ldap", reason="django-auth-ldap is not installed (pip install '.[sso]')")
    pytest.importorskip("mozilla_django_oidc", reason="mozilla-django-oidc is not installed (pip install '.[sso]')")
    env = {**os.environ, "DOSEREG_DATA_DIR": str(tmp_path), "DOSEREG_ALLOWED_HOSTS": "testserver",
           "DOSEREG_LDAP_URI": "ldap://dc1.hospital.example",
           "DOSEREG_LDAP_USER_BASE": "ou=people,dc=hospital,dc=example", "DOSEREG_LDAP_GROUP_TYPE": "groupofnames",
           "DOSEREG_LDAP_ROLE_PHYSICIST": "cn=medphys,ou=groups,dc=hospital,dc=example|cn=rpe,dc=x",
           "DOSEREG_OIDC_CLIENT_ID": "dosereg", "DOSEREG_OIDC_CLIENT_SECRET": "s3cret",
           "DOSEREG_OIDC_AUTHORIZATION_ENDPOINT": "https://idp.example/auth",
           "DOSEREG_OIDC_TOKEN_ENDPOINT": "https://idp.example/token",
           "DOSEREG_OIDC_USERINFO_ENDPOINT": "https://idp.example/userinfo",
           "DOSEREG_OIDC_JWKS_ENDPOINT": "https://idp.example/jwks", "DOSEREG_OIDC_ROLE_ADMIN": "dosereg-admins"}
    code = ("from django.conf import settings as s; from django.test import Client; "
            "print(s.AUTHENTICATION_BACKENDS); print(s.LDAP_ROLE_GROUPS, s.OIDC_ROLE_GROUPS); "
            "r = Client().get('/oidc/authenticate/'); print(r.status_code, r['Location'].split('?')[0], "
            "'client_id=dosereg' in r['Location'])")
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)  # the OIDC state goes in the session
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    backends, roles, redirect = result.stdout.strip().splitlines()[-3:]
    assert "django_auth_ldap.backend.LDAPBackend" in backends and "dosereg.web.directory.OidcBackend" in backends
    assert backends.index("LockoutBackend") < backends.index("LDAPBackend")  # the lock applies to both
    assert "'physicist': ['cn=medphys,ou=groups,dc=hospital,dc=example', 'cn=rpe,dc=x']" in roles
    assert "{'admin': ['dosereg-admins']}" in roles
    assert redirect == "302 https://idp.example/auth True"
