# descent.bash - bash completion for the `descent` command. Installed to
# share/bash-completion/completions/descent, where bash-completion loads it on
# first use; or source it from ~/.bashrc.
#
# Everything offered is read from the command itself, so it follows new
# commands and options without edits here:
#   descent <TAB>               commands, from `descent --help`
#   descent CMD --<TAB>         options, from `descent help CMD`
#   descent list <TAB>          optimizers, from `descent list --markdown`
#   descent gpt2|theory <TAB>   subcommands / experiments, from their help
#   descent replay <TAB>        files (*.golden first)
#   descent convert --optimizer|--format <TAB>   their values

_descent_commands()
{
    "$1" --help 2>/dev/null | sed -n '/^commands:/,/^$/p' | awk 'NF && $1 != "commands:" {print $1}'
}

# The words listed under a "subcommands:" or "experiments:" heading.
_descent_subwords()
{
    "$1" help "$2" 2>/dev/null |
        awk '/^(subcommands|experiments):/ {on = 1; next}
             on && /^[^ ]/ {on = 0}
             on && /^  [a-z]/ {print $1}'
}

_descent()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local bin=${COMP_WORDS[0]}
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(_descent_commands "$bin") --help --version" -- "$cur"))
        return 0
    fi
    local cmd=${COMP_WORDS[1]}
    if [[ $cur == -* ]]; then
        local help
        if { [ "$cmd" = gpt2 ] || [ "$cmd" = classify ]; } && [ "$COMP_CWORD" -gt 2 ]; then
            help=$("$bin" "$cmd" "${COMP_WORDS[2]}" --help 2>/dev/null)
        else
            help=$("$bin" help "$cmd" 2>/dev/null)
        fi
        COMPREPLY=($(compgen -W "$(grep -o -- '--[a-z0-9][a-z0-9-]*' <<<"$help" | sort -u) --help" \
                     -- "$cur"))
        return 0
    fi
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$cmd" = convert ]; then
        case $prev in
        --optimizer) COMPREPLY=($(compgen -W "sgd adam adamw adagrad" -- "$cur")); return 0 ;;
        --format) COMPREPLY=($(compgen -W "safetensors npz" -- "$cur")); return 0 ;;
        esac
    fi
    case $cmd in
    help)
        [ "$COMP_CWORD" -eq 2 ] &&
            COMPREPLY=($(compgen -W "$(_descent_commands "$bin")" -- "$cur")) ;;
    list)
        COMPREPLY=($(compgen -W "$("$bin" list --markdown 2>/dev/null |
                     sed -n 's/^| `\([a-z0-9_]*\)`.*/\1/p')" -- "$cur")) ;;
    gpt2 | theory | classify)
        if [ "$COMP_CWORD" -eq 2 ] || [ "$cmd" = theory ]; then
            COMPREPLY=($(compgen -W "$(_descent_subwords "$bin" "$cmd")" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi ;;
    bench)
        [ "$COMP_CWORD" -eq 2 ] && COMPREPLY=($(compgen -W "elementwise" -- "$cur")) ;;
    replay)
        COMPREPLY=($(compgen -f -X '!*.golden' -- "$cur") $(compgen -d -- "$cur")) ;;
    *)
        COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
    return 0
}

complete -F _descent descent
