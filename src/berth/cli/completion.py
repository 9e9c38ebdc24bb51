"""`berth completion bash|zsh`: a static completion script made from the parser itself.

Commands, subcommands, options and option choices come from the argparse tree, so the script
follows the CLI without upkeep; context names are the only thing looked up at completion time
(`berth context ls -q`, which reads a local file and never calls the daemon).

    source <(berth completion bash)                 # or save it in bash-completion's folder
    berth completion zsh > "${fpath[1]}/_berth"     # or: source <(berth completion zsh)
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Iterator

FILE_OPTIONS = {"--tls-ca", "--tls-cert", "--tls-key", "--env-file", "--input", "-i", "--set",
                "--file"}
CONTEXT_OPTIONS = {"--context"}
CONTEXT_ARGS = {"context use", "context rm", "context inspect"}


def _walk(parser: argparse.ArgumentParser, path: str = ""
          ) -> Iterator[tuple[str, list[str], list[str], list[str], dict[str, list[str]]]]:
    """(path, subcommands, options, options taking a value, {option: choices}); the choices
    of positionals are under the option ""."""
    subs: dict[str, argparse.ArgumentParser] = {}
    opts: list[str] = []
    valued: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs.update(action.choices)
            continue
        if not action.option_strings and action.choices:  # `member set P U ROLE`
            choices[""] = choices.get("", []) + [str(c) for c in action.choices]
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        opts += action.option_strings
        if action.nargs != 0:
            valued += action.option_strings
            if action.choices:
                for o in action.option_strings:
                    choices[o] = [str(c) for c in action.choices]
    yield path, list(subs), opts, valued, choices
    for name, sub in subs.items():
        yield from _walk(sub, f"{path} {name}".strip())


def _case(fn: str, rows: list[tuple[str, list[str]]]) -> str:
    lines = [f"_berth_{fn}() {{", '    case "$1" in']
    for key, words in rows:
        if words:
            lines.append(f"        \"{key}\") printf '%s\\n' \"{' '.join(words)}\" ;;")
    lines += ["    esac", "}"]
    return "\n".join(lines)


def tables(parser: argparse.ArgumentParser) -> str:
    """Shell functions (bash and zsh alike) answering: which subcommands, options, options with
    a value, and choices of an option, at a command path such as "image ls"."""
    subs, opts, valued, choices = [], [], [], []
    for path, s, o, v, c in _walk(parser):
        subs.append((path, s))
        opts.append((path, o))
        valued.append((path, v))
        choices += [(f"{path}|{opt}", words) for opt, words in c.items()]
    return "\n".join([_case("subs", subs), _case("opts", opts), _case("valued", valued),
                      _case("choices", choices)])


# What to offer for the word under the cursor; $cur, $prev and $cmdpath are set by the caller,
# $1 is "files" or "" depending on the shell's own way to complete file names.
_LOGIC = r"""
_berth_is_valued() {
    [[ "$1" == -* && " $(_berth_valued "$cmdpath") $(_berth_valued "") " == *" $1 "* ]]
}

_berth_path() {  # the command path in the given words: options and their values skipped
    cmdpath=""
    local w before=""
    for w in "$@"; do
        if _berth_is_valued "$before"; then before=""; continue; fi
        before="$w"
        [[ "$w" == -* ]] && continue
        if [[ " $(_berth_subs "$cmdpath") " == *" $w "* ]]; then
            cmdpath="${cmdpath:+$cmdpath }$w"
        fi
    done
}

_berth_words() {  # what may stand at $cur: words, @files or @none
    local vals
    if _berth_is_valued "$prev"; then
        vals=$(_berth_choices "$cmdpath|$prev")
        [[ -z "$vals" ]] && vals=$(_berth_choices "|$prev")
        if [[ -n "$vals" ]]; then printf '%s\n' "$vals"; return; fi
        case "$prev" in
            CONTEXT_OPTIONS) berth context ls -q 2>/dev/null; return ;;
            FILE_OPTIONS) printf '%s\n' "@files"; return ;;
        esac
        printf '%s\n' "@none"; return
    fi
    if [[ "$cur" == -* ]]; then _berth_opts "$cmdpath"; return; fi
    case "$cmdpath" in
        CONTEXT_ARGS) berth context ls -q 2>/dev/null; return ;;
    esac
    _berth_subs "$cmdpath"
    _berth_choices "$cmdpath|"  # a positional's choices
}
"""

_BASH = r"""
_berth() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmdpath words
    _berth_path "${COMP_WORDS[@]:1:COMP_CWORD-1}"
    words=$(_berth_words)
    case "$words" in
        @files) COMPREPLY=($(compgen -f -- "$cur")) ;;
        @none) COMPREPLY=() ;;
        *) COMPREPLY=($(compgen -W "$words" -- "$cur")) ;;
    esac
}
complete -o default -F _berth berth
"""

_ZSH = r"""
_berth() {
    local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" cmdpath list
    _berth_path "${(@)words[2,CURRENT-1]}"
    list=$(_berth_words)
    case "$list" in
        @files) _files ;;
        @none) return 1 ;;
        "") _files ;;
        *) compadd -- ${=list} ;;
    esac
}

if [[ "${funcstack[1]}" == "_berth" ]]; then
    _berth "$@"
else
    compdef _berth berth
fi
"""


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    logic = (_LOGIC.replace("CONTEXT_OPTIONS", "|".join(sorted(CONTEXT_OPTIONS)))
             .replace("FILE_OPTIONS", "|".join(sorted(FILE_OPTIONS)))
             .replace("CONTEXT_ARGS", "|".join(f'"{a}"' for a in sorted(CONTEXT_ARGS))))
    head = ("#compdef berth\n" if shell == "zsh" else "") + \
        f"# berth {shell} completion: made by `berth completion {shell}`\n"
    return head + tables(parser) + "\n" + logic + (_ZSH if shell == "zsh" else _BASH)


def cmd_completion(args: argparse.Namespace) -> int:
    import sys

    from berth.cli.parser import build

    sys.stdout.write(script(args.shell, build()))
    return 0
