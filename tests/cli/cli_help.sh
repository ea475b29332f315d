#!/usr/bin/env bash
# evo's help and usage errors: every command has help, and a wrong command,
# option or option value exits 2 with one error line and a hint.
set -u
: "${EVO:?EVO must name the evo binary}"
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

bad() { echo "FAIL: $*"; fail=1; }

# --help and help CMD print usage on stdout and exit 0
"$EVO" --help >"$t/out" 2>"$t/err" || bad "evo --help exited $?"
for c in inspect run check; do
  grep -q "^  $c " "$t/out" || bad "evo --help does not list $c"
  "$EVO" help "$c" >"$t/h1" 2>&1 || bad "evo help $c exited $?"
  "$EVO" "$c" --help >"$t/h2" 2>&1 || bad "evo $c --help exited $?"
  grep -q "^usage: evo $c" "$t/h1" || bad "evo help $c prints no usage line"
  cmp -s "$t/h1" "$t/h2" || bad "evo help $c and evo $c --help differ"
done
"$EVO" help >/dev/null || bad "evo help exited $?"

# usage errors: exit 2, "evo...: message" then "Try 'evo ... --help'."
usage_error() {
  local want=$1; shift
  "$EVO" "$@" >"$t/out" 2>"$t/err"
  local rc=$?
  [ "$rc" -eq 2 ] || { bad "evo $* exited $rc, want 2"; return; }
  [ "$(wc -l <"$t/err")" -le 2 ] || bad "evo $*: more than two stderr lines: $(cat "$t/err")"
  head -1 "$t/err" | grep -q "^evo.*$want" || bad "evo $*: stderr lacks '$want': $(cat "$t/err")"
  sed -n 2p "$t/err" | grep -q "^Try 'evo.*--help'\.$" || bad "evo $*: no usage hint"
}
m=model.onnx # never opened: the arguments are refused first
usage_error "unknown command 'frobnicate'" frobnicate
usage_error "unknown command 'nosuch'" help nosuch
usage_error "unknown option '--bogus'" --bogus
usage_error "unknown option '--bogus'" run "$m" --bogus
usage_error "unknown option '--rtol'" inspect "$m" --rtol 1
usage_error "--dim expects NAME=VALUE, got 'batch'" run "$m" --dim batch
usage_error "--dim expects NAME=VALUE, got '=3'" inspect "$m" --dim =3
usage_error "--dim expects an integer" inspect "$m" --dim batch=x
usage_error "--dim expects an integer" inspect "$m" --dim batch=-1
usage_error "option --input needs a value" run "$m" --input
usage_error "--repeat expects an integer" run "$m" --repeat 0
usage_error "--repeat expects an integer" run "$m" --repeat=abc
usage_error "--seed expects an integer" run "$m" --seed -5
usage_error "--rtol expects a number" check dir --rtol nan
usage_error "--timeout expects a number" check dir --timeout -1
usage_error "no model given" run
usage_error "no model given" inspect --json
usage_error "no test directory given" check
usage_error "unexpected argument 'extra'" run "$m" extra

# no command at all: usage on stderr, exit 2
"$EVO" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] || bad "evo without a command exited $rc"
grep -q "^usage: evo" "$t/err" || bad "evo without a command prints no usage"

[ "$fail" -eq 0 ] && echo "cli_help: all good"
exit "$fail"
