"""A transactional test's flush must not take the data-migration rows (roles, packs) from later tests."""

import pytest
from django.contrib.auth.models import Group


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_sees_the_roles():
    assert Group.objects.filter(name="admin").exists()


@pytest.mark.django_db
def test_b_roles_and_permissions_are_back_after_the_flush(make_user):
    user = make_user("physicist")
    assert user.has_perm("registry.view_all_staff_doses")
    assert user.has_perm("triggers.manage_rules")
