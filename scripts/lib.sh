# shellcheck shell=bash
# Sourced by every script in scripts/ and by .ci/run, right after `set -euo pipefail`. It gives them named
# steps and makes sure none of them exits non-zero without one line on stderr saying which step failed and why:
#
#   step NAME [WHAT-TO-DO]   the step that runs from here on, and what to do if it fails
#   fail MESSAGE             stop now; MESSAGE says what was wrong and what to do
#   on_exit FUNCTION         run FUNCTION when the script exits, however it exits (this file owns the EXIT trap)
#
# A command that fails prints, for example:
#   scripts/python-image.sh: step 'debootstrap' failed (exit 1) at line 72: debootstrap … — <what to do>
# as the script's last line, after its cleanups' output; any other non-zero exit (an unset variable, an `exit 1`,
# a signal) still names the step.
set -Eeuo pipefail
shopt -s inherit_errexit

_lib_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_lib_self="$(cd "$(dirname "$0")" && pwd)/${0##*/}"
_lib_script="${_lib_self#"$_lib_root"/}"
_lib_step="start"
_lib_hint=""
_lib_line=""  # the failure line, printed last when the script exits (after its cleanups' output)
_lib_cleanups=()

step() {
  _lib_step="$1"
  _lib_hint="${2:-}"
}

fail() {
  printf -v _lib_line "%s: step '%s' failed: %s" "$_lib_script" "$_lib_step" "$*"
  if [ "$BASHPID" != "$$" ]; then printf '%s\n' "$_lib_line" >&2; fi  # a subshell has no exit trap
  exit 1
}

on_exit() {
  _lib_cleanups+=("$1")
}

_lib_on_err() {  # $1 exit status, $2 line, $3 the command, $4 the pipeline's statuses
  [ "$BASHPID" = "$$" ] || return 0  # inside a subshell: the command that ran it fails next and is reported
  local command="${3//$'\n'/ }"
  [ "${#command}" -le 300 ] || command="${command:0:297}..."
  case "$4" in *" "*) command+=" (pipeline exit statuses: $4)" ;; esac
  printf -v _lib_line "%s: step '%s' failed (exit %s) at line %s: %s%s" \
    "$_lib_script" "$_lib_step" "$1" "$2" "$command" "${_lib_hint:+ — $_lib_hint}"
}

_lib_on_exit() {
  local code=$? i
  trap - ERR
  set +e
  for ((i = ${#_lib_cleanups[@]} - 1; i >= 0; i--)); do "${_lib_cleanups[$i]}" || true; done
  if [ "$code" -ne 0 ]; then
    if [ -z "$_lib_line" ]; then
      local why=""
      case "$code" in 130) why=": interrupted" ;; 143) why=": terminated" ;; esac
      printf -v _lib_line "%s: step '%s' failed (exit %s)%s%s" "$_lib_script" "$_lib_step" "$code" "$why" "${_lib_hint:+ — $_lib_hint}"
    fi
    printf '%s\n' "$_lib_line" >&2
  fi
  exit "$code"
}

trap '_lib_on_err "$?" "$LINENO" "$BASH_COMMAND" "${PIPESTATUS[*]}"' ERR
trap _lib_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
