# bash completion for chadthrottlectl
# generated from chadthrottlectl's command table by 'chadthrottlectl completion bash'; do not edit

_chadthrottlectl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd="" nargs=0 i words
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--interval|--bus|--host|-H|--pid|--app|--down|--up|--traffic|--down-traffic|--up-traffic|--when|--uid|--interface|--since|--until|--by|--per|--bytes|--direction|--then) ((i++)) ;;
		-*) ;;
		*) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else ((nargs++)); fi ;;
		esac
	done
	case $prev in
	--interval)
		COMPREPLY=($(compgen -W "1s 2s 5s" -- "$cur"))
		return ;;
	--bus)
		COMPREPLY=($(compgen -W "system session" -- "$cur"))
		return ;;
	--host|-H)
		COMPREPLY=($(compgen -A hostname -- "$cur"))
		return ;;
	--pid)
		COMPREPLY=($(compgen -W "$(ps -u "$UID" -o pid= 2>/dev/null)" -- "$cur"))
		return ;;
	--app)
		if [[ $cur == */* ]]; then COMPREPLY=($(compgen -f -- "$cur")); else COMPREPLY=($(compgen -c -- "$cur")); fi
		return ;;
	--down)
		COMPREPLY=($(compgen -W "none 100KB/s 500KB/s 1MB/s 10MB/s" -- "$cur"))
		return ;;
	--up)
		COMPREPLY=($(compgen -W "none 100KB/s 500KB/s 1MB/s 10MB/s" -- "$cur"))
		return ;;
	--traffic)
		COMPREPLY=($(compgen -W "all internet local" -- "$cur"))
		return ;;
	--down-traffic)
		COMPREPLY=($(compgen -W "all internet local" -- "$cur"))
		return ;;
	--up-traffic)
		COMPREPLY=($(compgen -W "all internet local" -- "$cur"))
		return ;;
	--when)
		COMPREPLY=($(compgen -W "Mon-Fri 09:00-17:00" -- "$cur"))
		return ;;
	--uid)
		COMPREPLY=($(compgen -W "" -- "$cur"))
		return ;;
	--interface)
		COMPREPLY=($(compgen -W "" -- "$cur"))
		return ;;
	--since)
		COMPREPLY=($(compgen -W "1h 24h 7d 30d" -- "$cur"))
		return ;;
	--until)
		COMPREPLY=($(compgen -W "1h 24h" -- "$cur"))
		return ;;
	--by)
		COMPREPLY=($(compgen -W "minute hour day month" -- "$cur"))
		return ;;
	--per)
		COMPREPLY=($(compgen -W "day week month" -- "$cur"))
		return ;;
	--bytes)
		COMPREPLY=($(compgen -W "500MB 1GB 10GB" -- "$cur"))
		return ;;
	--direction)
		COMPREPLY=($(compgen -W "down up both" -- "$cur"))
		return ;;
	--then)
		COMPREPLY=($(compgen -W "block 100KB/s 1MB/s" -- "$cur"))
		return ;;
	esac
	case $cmd in
	"")
		words="top details limit unlimit block unblock priority rules pause resume stats quota unquota quotas status backends version completion help --bus --host -H --help -h" ;;
	top)
		words="--json --watch --interval --bus --host -H --help -h" ;;
	details)
		words="--json --bus --host -H --help -h" ;;
	limit)
		words="--pid --app --global --down --up --traffic --down-traffic --up-traffic --when --uid --interface --bus --host -H --help -h" ;;
	unlimit)
		words="--pid --app --global --uid --bus --host -H --help -h" ;;
	block)
		words="--pid --app --traffic --when --uid --bus --host -H --help -h" ;;
	unblock)
		words="--pid --app --uid --bus --host -H --help -h" ;;
	priority)
		words="--app --uid --bus --host -H --help -h"
		[[ $cur == -* || $nargs -ge 1 ]] || words="low normal high critical" ;;
	rules)
		words="--json --bus --host -H --help -h" ;;
	pause)
		words="--bus --host -H --help -h" ;;
	resume)
		words="--bus --host -H --help -h" ;;
	stats)
		words="--app --uid --since --until --by --json --bus --host -H --help -h" ;;
	quota)
		words="--app --per --bytes --direction --then --uid --bus --host -H --help -h" ;;
	unquota)
		words="--app --uid --bus --host -H --help -h" ;;
	quotas)
		words="--json --bus --host -H --help -h" ;;
	status)
		words="--json --bus --host -H --help -h" ;;
	backends)
		words="--json --bus --host -H --help -h" ;;
	version)
		words="--bus --host -H --help -h" ;;
	completion)
		words="--bus --host -H --help -h"
		[[ $cur == -* || $nargs -ge 1 ]] || words="bash zsh fish" ;;
	help)
		words="--bus --host -H --help -h"
		[[ $cur == -* || $nargs -ge 1 ]] || words="top details limit unlimit block unblock priority rules pause resume stats quota unquota quotas status backends version completion help" ;;
	*) words="" ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _chadthrottlectl chadthrottlectl
