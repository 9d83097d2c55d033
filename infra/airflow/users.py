"""The Airflow UI's three accounts (FAB auth manager), made to match the platform settings.

    admin     role Admin    everything, users, roles and connections included
    operator  role User     triggers, clears and backfills DAG runs; no connections, variables, users or roles
    viewer    role Viewer   reads DAGs, runs, task instances and their logs

Passwords come from the environment (AIRFLOW_ADMIN_PASSWORD, AIRFLOW_OPERATOR_PASSWORD,
AIRFLOW_VIEWER_PASSWORD; infra/lib.sh generates them into .local/platform.env), never from
the command line, where `ps` would show them. FAB keeps only their scrypt hashes.

Idempotent: a missing account is created; an existing one gets its role and, when the
password no longer matches, its password (which also ends its web sessions). Accounts
created in the UI are left alone. Run with Airflow's configuration loaded:
infra/airflow.sh start does, after `airflow db migrate` has made FAB's tables.
"""
from __future__ import annotations

import os
import sys

# username, FAB role, variable holding the password
USERS = [
    ("admin", "Admin", "AIRFLOW_ADMIN_PASSWORD"),
    ("operator", "User", "AIRFLOW_OPERATOR_PASSWORD"),
    ("viewer", "Viewer", "AIRFLOW_VIEWER_PASSWORD"),
]


def sync_users(sm) -> int:
    from werkzeug.security import check_password_hash

    for username, role_name, var in USERS:
        password = os.environ[var]
        role = sm.find_role(role_name)
        if role is None:
            print(f"users.py: FAB has no role {role_name}", file=sys.stderr)
            return 1
        user = sm.find_user(username=username)
        if user is None:
            sm.add_user(username, username, "-", f"{username}@localhost", role, password)
            print(f"airflow user {username} created (role {role_name})")
            continue
        if [r.name for r in user.roles] != [role_name]:
            user.roles = [role]
            sm.update_user(user)
            print(f"airflow user {username}: role set to {role_name}")
        if not user.password or not check_password_hash(user.password, password):
            if not sm.reset_password(user.id, password):
                print(f"users.py: could not reset the password of {username}", file=sys.stderr)
                return 1
            print(f"airflow user {username}: password reset to {var}")
    return 0


def main() -> int:
    missing = [var for _, _, var in USERS if not os.environ.get(var)]
    if missing:
        print(f"users.py: {', '.join(missing)} not set", file=sys.stderr)
        return 2

    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    # FAB's settings (the [fab] section) are provider configuration, loaded on demand as the CLI does.
    @providers_configuration_loaded
    def sync() -> int:
        # Building the app builder also creates FAB's built-in roles and their permissions.
        with get_application_builder() as appbuilder:
            return sync_users(appbuilder.sm)

    return sync()


if __name__ == "__main__":
    sys.exit(main())
