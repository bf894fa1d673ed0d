# fish completion for pizauth(1)
#
# Account names come from the configuration file the server would read (the
# -c given on the line, else $XDG_CONFIG_HOME/pizauth.conf, else
# ~/.config/pizauth.conf), so completion works with no server running. They
# are data: fish inserts them escaped, and nothing here evaluates them.

function __pizauth_accounts
    set -l conf
    set -l want_conf 0
    for tok in (commandline -opc)
        if test $want_conf = 1
            set conf $tok
            set want_conf 0
        else if test "$tok" = -c
            set want_conf 1
        end
    end
    if test -z "$conf"
        if test -n "$XDG_CONFIG_HOME"
            set conf $XDG_CONFIG_HOME/pizauth.conf
        else
            set conf $HOME/.config/pizauth.conf
        end
    end
    set conf (string replace -r '^~' -- $HOME $conf)
    test -r "$conf"; or return 0
    # fish's single quotes take \\ for one backslash.
    sed -n -E -e 's/^[[:space:]]*account[[:space:]]*"(([^"\\\\]|\\\\.)*)".*/\1/' \
        -e tu -e d -e :u -e 's/\\\\(.)/\1/g' -e p -- $conf 2>/dev/null
end

# True when the command line has a command that takes an account but no
# account yet.
function __pizauth_needs_account
    set -l toks (commandline -opc)
    set -e toks[1]
    set -l cmd
    set -l nargs 0
    for tok in $toks
        if test -z "$cmd"
            string match -q -- '-*' $tok; or set cmd $tok
        else if not string match -q -- '-*' $tok
            set nargs (math $nargs + 1)
        end
    end
    contains -- "$cmd" refresh revoke show; and test $nargs -eq 0
end

set -l __pizauth_commands discover dump help info refresh reload restore revoke server show shutdown status version

complete -c pizauth -f
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a discover -d "Print an account block from a provider's metadata"
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a dump -d "Write the server's token state to stdout"
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a help -d 'Print the commands, each with what it does'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a info -d 'Show version, paths and server details'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a refresh -d "Refresh an account's token"
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a reload -d 'Make the server re-read its configuration'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a restore -d 'Merge token state from a dump on stdin'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a revoke -d "Drop an account's tokens"
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a server -d 'Start the server'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a show -d "Print an account's access token"
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a shutdown -d 'Stop the server'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a status -d 'Show the state of every account'
complete -c pizauth -n "not __fish_seen_subcommand_from $__pizauth_commands" -a version -d 'Print the version'

complete -c pizauth -n "__fish_seen_subcommand_from $__pizauth_commands" -s v -d 'Increase verbosity (repeatable)'
complete -c pizauth -n '__fish_seen_subcommand_from info status' -s j -d 'Print JSON'
complete -c pizauth -n '__fish_seen_subcommand_from info server' -s c -r -F -d 'Configuration file'
complete -c pizauth -n '__fish_seen_subcommand_from server' -s d -d 'Stay in the foreground, log to stderr'
complete -c pizauth -n '__fish_seen_subcommand_from discover' -s d -d 'Use the device flow'
complete -c pizauth -n '__fish_seen_subcommand_from refresh show' -s u -d 'Leave the authorisation URL out of the message'
complete -c pizauth -n __pizauth_needs_account -a '(__pizauth_accounts)' -d Account
