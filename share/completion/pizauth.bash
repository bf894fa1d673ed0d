# bash completion for pizauth(1)
#
# Account names come from the configuration file the server would read (the
# -c given on the line, else $XDG_CONFIG_HOME/pizauth.conf, else
# ~/.config/pizauth.conf), so completion works with no server running.
#
# An account name is data, never code: it is matched in a loop, not through
# `compgen -W` (which expands $(...) and backquotes in its word list), and
# offered quoted with %q.

# Prints one account name per line from the configuration file $1 (or the
# default one when $1 is empty), with the file's \" and \\ escapes undone.
_pizauth_accounts()
{
    local conf=$1
    if [[ -z $conf ]]; then
        if [[ -n ${XDG_CONFIG_HOME-} ]]; then
            conf=$XDG_CONFIG_HOME/pizauth.conf
        else
            conf=$HOME/.config/pizauth.conf
        fi
    fi
    conf=${conf/#\~/$HOME}
    [[ -r $conf ]] || return 0
    sed -n -E -e 's/^[[:space:]]*account[[:space:]]*"(([^"\\]|\\.)*)".*/\1/' \
        -e tu -e d -e :u -e 's/\\(.)/\1/g' -e p -- "$conf" 2>/dev/null
}

_pizauth()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="discover dump help info refresh reload restore revoke server show shutdown status version"
    local cmd="" conf="" nargs=0 i word name quoted

    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -z $cmd ]]; then
            [[ $word == -* ]] || cmd=$word
            continue
        fi
        case $word in
            -c) ((i++)); conf=${COMP_WORDS[i]} ;;
            -*) ;;
            *) ((nargs++)) ;;
        esac
    done

    COMPREPLY=()
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
    fi

    if [[ $prev == -c ]]; then
        case $cmd in
            info|server)
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
                return 0
                ;;
        esac
    fi

    local flags="-v"
    case $cmd in
        discover) flags="-d -v" ;;
        info) flags="-j -c -v" ;;
        refresh|show) flags="-u -v" ;;
        server) flags="-c -d -v" ;;
        status) flags="-j -v" ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return 0
    fi

    case $cmd in
        refresh|revoke|show)
            if ((nargs == 0)); then
                while IFS= read -r name; do
                    printf -v quoted '%q' "$name"
                    if [[ $name == "$cur"* || $quoted == "$cur"* ]]; then
                        COMPREPLY+=("$quoted")
                    fi
                done < <(_pizauth_accounts "$conf")
            fi
            ;;
    esac
    return 0
}

complete -F _pizauth pizauth
