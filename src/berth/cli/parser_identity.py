"""Arguments of the tenancy and local commands: project, user, token, whoami, quota, context,
completion. Imported only when one of them is on the command line (or for --help)."""

from __future__ import annotations

import argparse

from berth.cli.parser import add_format

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable


def _verbs(p: argparse.ArgumentParser, common: argparse.ArgumentParser, dest: str
           ) -> Callable[[str, str], argparse.ArgumentParser]:
    subs = p.add_subparsers(dest=dest, metavar="COMMAND", required=True)

    def sub(name: str, help_: str) -> argparse.ArgumentParser:
        return subs.add_parser(name, help=help_, parents=[common])

    return sub


def _project(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "project_cmd")
    sub("ls", "list the projects you are in (an admin: every project)").add_argument(
        "-q", "--quiet", action="store_true", help="print only names")
    sub("create", "create a project (admins)").add_argument("name")
    sub("rm", "remove empty projects (admins)").add_argument("projects", nargs="+")
    inspect = sub("inspect", "show projects in detail")
    add_format(inspect)
    inspect.add_argument("projects", nargs="+")
    for verb, help_ in (("grant", "open admin-only features to a project (admins)"),
                        ("ungrant", "take grants back (admins)")):
        q = sub(verb, help_)
        q.add_argument("project")
        q.add_argument("grants", nargs="+", metavar="GRANT", help="privileged, host_mounts, "
                       "host_namespaces, cap_add, devices, choose_host, choose_runtime")
    q = sub("member", "manage a project's members")
    member = q.add_subparsers(dest="member_cmd", metavar="COMMAND", required=True)
    m = member.add_parser("set", help="give a user a role in the project", parents=[common])
    m.add_argument("project")
    m.add_argument("user")
    m.add_argument("role", choices=["reader", "member", "admin"])
    m = member.add_parser("rm", help="take a user out of the project", parents=[common])
    m.add_argument("project")
    m.add_argument("user")
    member.add_parser("ls", help="list the project's members",
                      parents=[common]).add_argument("project")


def _user(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "user_cmd")
    q = sub("ls", "list the project's members (--all-projects: every user, for admins)")
    q.add_argument("--all-projects", action="store_true")
    q.add_argument("-q", "--quiet", action="store_true", help="print only names")
    q = sub("create", "create a user (admins)")
    q.add_argument("--admin", action="store_true", help="a cloud admin: acts in any project")
    q.add_argument("name")


def _token(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "token_cmd")
    q = sub("create", "make an API token acting in the current project (its secret is "
            "shown once)")
    q.add_argument("--expires-in", metavar="DURATION",
                   help="e.g. 3600, 90m, 12h, 30d, 8w (default: never)")
    q.add_argument("--user", help="admins: make it for this member of the project")
    q.add_argument("name")
    q = sub("ls", "list your tokens (--all-projects: everyone's, for admins)")
    q.add_argument("--all-projects", action="store_true")
    q.add_argument("-q", "--quiet", action="store_true", help="print only ids")
    sub("revoke", "revoke tokens").add_argument("tokens", nargs="+", metavar="ID")


def _quota(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    quota = p.add_subparsers(dest="quota_cmd", metavar="COMMAND")
    quota.add_parser("show", help="show the project's limits and usage (the default)",
                     parents=[common])
    q = quota.add_parser("set", help="set limits (admins)", parents=[common])
    q.add_argument("limits", nargs="+", metavar="RESOURCE=LIMIT",
                   help="e.g. containers=10 vcpus=4 memory=8g disk=20g volumes=5 images=10g; "
                   "-1 or unlimited: no limit")


def _context(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = _verbs(p, common, "context_cmd")
    q = sub("create", "save an endpoint and its credentials under a name")
    q.add_argument("name")
    q.add_argument("--description", default="")
    # Own dests: the globals --host, --token, … are how *this* command reaches nothing.
    q.add_argument("--host", dest="ctx_host", required=True,
                   help="unix:///path, tcp://HOST:PORT or https://HOST:PORT")
    token = q.add_mutually_exclusive_group()
    token.add_argument("--token", dest="ctx_token", help="API token (visible in ps and "
                       "shell history: prefer --token-stdin)")
    token.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    q.add_argument("--project", dest="ctx_project")
    q.add_argument("--tls-ca", dest="ctx_tls_ca", metavar="FILE")
    q.add_argument("--tls-cert", dest="ctx_tls_cert", metavar="FILE")
    q.add_argument("--tls-key", dest="ctx_tls_key", metavar="FILE")
    q.add_argument("-f", "--force", action="store_true", help="replace one of the same name")
    sub("ls", "list contexts (* marks the current one)").add_argument(
        "-q", "--quiet", action="store_true", help="print only names")
    sub("use", "make a context the current one ('default': none)").add_argument("name")
    sub("show", "print the current context's name")
    q = sub("rm", "remove contexts")
    q.add_argument("-f", "--force", action="store_true", help="even the current one")
    q.add_argument("names", nargs="+")
    sub("inspect", "show contexts (default: the current one; tokens are never shown)"
        ).add_argument("names", nargs="*")


def _completion(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh"])


def _nothing(p: argparse.ArgumentParser, _c: argparse.ArgumentParser) -> None:
    pass


ARGS = {"project": _project, "user": _user, "token": _token, "whoami": _nothing,
        "quota": _quota, "context": _context, "completion": _completion}
