#!/bin/bash
# Lambda custom runtime written by `layerpack wrap` (stdio adapter). Edit freely, or regenerate with
#   layerpack wrap PROGRAM --out DIR --force
#
# The program below is started during init and kept running; init ends when it is ready (it printed
# the ready line, if one is set; else it is asleep, waiting for input), so its start-up counts in
# Init Duration and not in the first event's Duration. A program that cannot start fails init
# (Stdio.ProgramNotFound if its file or its #! interpreter is missing). For each event it
# gets ONE line on stdin: the event's JSON, with its line breaks turned into spaces (valid JSON
# never has a raw line break inside a string, so this changes only whitespace). It must answer with
# ONE line on stdout (and flush it): a JSON value, which becomes the response. Anything else
# becomes an invocation error:
#   Stdio.NotJson         the line is not a JSON value
#   Stdio.ProgramExited   the program exited or closed stdout (it is started again for the next event)
#   Stdio.Stderr          it wrote to stderr while handling the event (only with --stderr fail)
#   Stdio.BadEvent        the event holds a NUL byte (never valid JSON)
# Its stderr always goes on to the function's logs. Commands used: bash and curl; nothing but curl
# is started per event.
set -u
trap '' PIPE                     # a dead program must not kill this loop through SIGPIPE
LC_ALL=C                         # (not exported) bash's own string operations work on bytes

program=@PROGRAM@
args=(@ARGS@)
stderr_fails=@STDERR_FAILS@
ready_line=@READY_LINE@          # empty: ready once the program and its children all sleep
here=${BASH_SOURCE[0]%/*}        # /opt for a layer, /var/task for a function
case $program in /*) ;; *) program=$here/$program ;; esac
api=http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime
tmp=${TMPDIR:-/tmp}/layerpack-wrap.$$
log_fd=2                         # the function's log stream
number_re='^-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?$'
err_total=0
exec {nap}<> <(:)                # `read -t` on this never-written pipe: a sleep without a process

json_escape() {                  # -> REPLY: $1 as the inside of a JSON string (no subshell)
  local s=${1:0:8192}
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  s=${s//[$'\001'-$'\037']/?}
  REPLY=$s
}

post() {                         # post PATH [ERROR-TYPE] < body
  if [[ -n ${2-} ]]; then
    curl -sS -o /dev/null -X POST -H "Lambda-Runtime-Function-Error-Type: $2" --data-binary @- "$api/$1"
  else
    curl -sS -o /dev/null -X POST --data-binary @- "$api/$1"
  fi
}

fail() {                         # fail TYPE MESSAGE: the invocation's error
  json_escape "$2"
  post "invocation/$rid/error" "$1" <<<"{\"errorType\":\"$1\",\"errorMessage\":\"$REPLY\"}"
}

is_json() {                      # is $1 a JSON value? (its shape: first and last character)
  local v=$1
  while [[ ${v:0:1} == [[:space:]] ]]; do v=${v:1}; done
  while [[ ${v: -1} == [[:space:]] ]]; do v=${v:0:${#v}-1}; done  # (not ${v%?}: quadratic in bash)
  case $v in
    \{*\} | \[*\] | \"*\" | true | false | null) return 0 ;;
  esac
  [[ $v =~ $number_re ]]
}

drain_stderr() {                 # -> errtext: what the program wrote to stderr since last time
  local l
  errtext=
  while IFS= read -r -u "$errfd" l || [[ -n $l ]]; do errtext+=$l$'\n'; done
  if [[ -n $errtext ]]; then
    printf '%s' "$errtext" >&"$log_fd"
    err_total=$((err_total + ${#errtext}))
    if [[ $err_total -gt 1048576 ]]; then  # keep /tmp small: start the capture file afresh
      : >"$tmp.stderr"
      exec {errfd}<&-
      exec {errfd}<"$tmp.stderr"
      err_total=0
    fi
  fi
}

start_program() {
  : >"$tmp.stderr"
  exec {errfd}<"$tmp.stderr"
  err_total=0
  coproc PROGRAM_PROC { exec "$program" "${args[@]}" 2>>"$tmp.stderr"; }
  pid=$PROGRAM_PROC_PID
  # private copies: bash closes the coproc's own descriptors as soon as it reaps the process,
  # which could lose a line it wrote just before exiting
  exec {to}>&"${PROGRAM_PROC[1]}" {from}<&"${PROGRAM_PROC[0]}"
}

alive() {                        # is the program still running (not exited, not a zombie)?
  local stat
  { IFS= read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  stat=${stat%% *}
  [[ $stat != Z && $stat != X ]]
}

reap_program() {                 # -> how, status: why it ended, as it ended
  local n=0
  exec {to}>&- {from}<&- {errfd}<&-
  while alive && ((n < 100)); do  # with its stdin closed it may well exit by itself: wait up to 1 s
    read -r -t 0.01 -u "$nap" _
    n=$((n + 1))
  done
  alive && kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  status=$?
  how="exit status $status"
  if [[ $status -gt 128 ]]; then
    how="killed by signal $((status - 128))"
  fi
}

all_asleep() {                   # the program and every process below it sleep (S) right now
  local p stat kids k
  local queue=("$pid")
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    { IFS= read -r stat <"/proc/$p/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} == S ]] || return 1
    kids=
    { IFS= read -r kids <"/proc/$p/task/$p/children"; } 2>/dev/null
    for k in $kids; do queue+=("$k"); done
  done
}

wait_ready() {                   # init: until the program is ready; if it ends first, init fails
  local line n=0 asleep=0 type
  if [[ -n $ready_line ]]; then
    while IFS= read -r -u "$from" line; do
      [[ ${line%$'\r'} == "$ready_line" ]] && return 0
      printf '%s\n' "$line" >&"$log_fd"   # what it prints before it is ready only goes to the logs
    done
  else
    while alive && ((n < 900)); do  # 10 ms steps, at most 9 s (Lambda's init phase lasts 10 s)
      if all_asleep; then
        asleep=$((asleep + 1))
        ((asleep >= 3)) && return 0
      else
        asleep=0
      fi
      read -r -t 0.01 -u "$nap" _
      n=$((n + 1))
    done
    alive && return 0            # still busy after 9 s: the first event waits for it
  fi
  drain_stderr
  reap_program
  if [[ $status == 126 || $status == 127 ]]; then  # the shell's "cannot execute" / "not found"
    type=@ERR_NOT_FOUND@
    how="$program could not be started ($how)"
  else
    type=@ERR_EXITED@
    how="the program ended during init ($how)"
  fi
  json_escape "$how${errtext:+: $errtext}"
  post init/error "$type" <<<"{\"errorType\":\"$type\",\"errorMessage\":\"$REPLY\"}"
  exit 1
}

if [[ ! -f $program || ! -x $program ]]; then
  json_escape "$program is missing or not executable"
  post init/error @ERR_NOT_FOUND@ <<<"{\"errorType\":\"@ERR_NOT_FOUND@\",\"errorMessage\":\"$REPLY\"}"
  exit 1
fi
start_program
wait_ready

while :; do
  curl -sS -o "$tmp.event" -D "$tmp.headers" "$api/invocation/next" || exit 1
  rid=
  while IFS= read -r h || [[ -n $h ]]; do
    h=${h%$'\r'}
    case ${h,,} in lambda-runtime-aws-request-id:*) rid=${h#*:}; rid=${rid//[[:space:]]/} ;; esac
  done <"$tmp.headers"

  event=
  if IFS= read -r -d '' event <"$tmp.event"; then
    fail @ERR_BAD_EVENT@ "the event holds a NUL byte, which JSON cannot"
    continue
  fi
  event=${event//[$'\r\n']/ }

  if ! kill -0 "$pid" 2>/dev/null; then
    drain_stderr
    reap_program
    start_program
  fi
  drain_stderr                   # what it wrote between events belongs to no event
  line=
  if ! printf '%s\n' "${event:-null}" >&"$to" || ! IFS= read -r -u "$from" line; then
    drain_stderr
    reap_program
    fail @ERR_EXITED@ "the program ended while handling the event ($how)${errtext:+: $errtext}"
    start_program
    continue
  fi
  if [[ ${line: -1} == $'\r' ]]; then line=${line:0:${#line}-1}; fi
  drain_stderr
  if ! is_json "$line"; then
    fail @ERR_NOT_JSON@ "the program's answer is not a JSON value: ${line:0:2048}${errtext:+ (stderr: $errtext)}"
  elif [[ $stderr_fails = 1 && -n $errtext ]]; then
    fail @ERR_STDERR@ "$errtext"
  else
    post "invocation/$rid/response" <<<"$line"
  fi
done
