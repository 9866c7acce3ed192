#!/usr/bin/env bash
# Run dbt in the build image: a slim build (modified models and their children, deferring to production
# state) or a full build, with selection by --select/--exclude/--selector/tags and resource types.
# Every option is also an environment variable (the Airflow DAG may pass either); flags win over env.
# Exits with dbt's exit code (0 ok, 1 model/test failure, 2 dbt error) — never 0 after a failure.
set -uo pipefail

usage() {
  cat <<'USAGE'
usage: entrypoint.sh [OPTIONS] [-- EXTRA_DBT_ARGS...]

  --mode slim|full            DBT_MODE (default slim). slim = state:modified+ with --defer to the state
                              manifest; falls back to full when there is no manifest.
  --select SEL                DBT_SELECT        dbt selection (with slim: intersected with state:modified+)
  --exclude SEL               DBT_EXCLUDE       dbt exclusion
  --selector NAME             DBT_SELECTOR      a selector from selectors.yml
  --tags t1,t2                DBT_TAGS          build only nodes with these dbt tags (tag:t1 tag:t2)
  --resource-types a,b        DBT_RESOURCE_TYPES          only these types (model,test,seed,snapshot,...)
  --exclude-resource-types a  DBT_EXCLUDE_RESOURCE_TYPES  never these types (e.g. snapshot,seed in slim)
  --target NAME               DBT_TARGET        profile target
  --threads N                 DBT_THREADS
  --fail-fast                 DBT_FAIL_FAST=1
  --state-uri URI             DBT_STATE_URI     s3://bucket/prefix or a directory holding manifest.json
  --upload-state              DBT_UPLOAD_STATE=1  after a successful full build, store manifest.json and
                                                  run_results.json at the state URI
                              DBT_WRITE_JSON    slim builds do not write dbt's JSON artifacts unless this is true
  --dry-run                   print the dbt command and exit
  -h, --help
  EXTRA_DBT_ARGS              DBT_EXTRA_ARGS    passed to dbt build as they are
USAGE
}

mode="${DBT_MODE:-slim}"
select_="${DBT_SELECT:-}"
exclude="${DBT_EXCLUDE:-}"
selector="${DBT_SELECTOR:-}"
tags="${DBT_TAGS:-}"
resource_types="${DBT_RESOURCE_TYPES:-}"
exclude_resource_types="${DBT_EXCLUDE_RESOURCE_TYPES:-}"
target="${DBT_TARGET:-}"
threads="${DBT_THREADS:-}"
fail_fast="${DBT_FAIL_FAST:-0}"
state_uri="${DBT_STATE_URI:-}"
upload_state="${DBT_UPLOAD_STATE:-0}"
dry_run=0
extra=()
if [ -n "${DBT_EXTRA_ARGS:-}" ]; then read -r -a extra <<<"$DBT_EXTRA_ARGS"; fi

need() { [ $# -ge 2 ] || { echo "entrypoint: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) need "$@"; mode="$2"; shift 2 ;;
    --select) need "$@"; select_="$2"; shift 2 ;;
    --exclude) need "$@"; exclude="$2"; shift 2 ;;
    --selector) need "$@"; selector="$2"; shift 2 ;;
    --tags) need "$@"; tags="$2"; shift 2 ;;
    --resource-types) need "$@"; resource_types="$2"; shift 2 ;;
    --exclude-resource-types) need "$@"; exclude_resource_types="$2"; shift 2 ;;
    --target) need "$@"; target="$2"; shift 2 ;;
    --threads) need "$@"; threads="$2"; shift 2 ;;
    --fail-fast) fail_fast=1; shift ;;
    --state-uri) need "$@"; state_uri="$2"; shift 2 ;;
    --upload-state) upload_state=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra+=("$@"); break ;;
    *) echo "entrypoint: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$mode" in slim|full) ;; *) echo "entrypoint: --mode must be slim or full, not '$mode'" >&2; exit 2 ;; esac

# The DAG passes every variable, empty when unused; profiles may read DBT_TARGET themselves: empty means unset.
if [ -z "${DBT_TARGET:-}" ]; then unset DBT_TARGET; fi

# The image holds dbt's parse of this project per target (dbt_parse.py, at build time). dbt reuses it only when
# the run hashes the same profile values, target and vars, so runs get the build's env values (DBT_PARSE_ENV)
# unless the caller sets them, and the target is always passed the way the parse was made (--target or not).
parse_root="${IMAGECTL_PARSE_DIR:-/home/dbt/.imagectl/parse}"
parse_key="${target:-_default}"
parse_note=""
if [ -f "$parse_root/env" ]; then
  while IFS= read -r line; do
    name="${line%%=*}"
    if [ -z "${!name+x}" ]; then export "${name}=${line#*=}"; fi
  done <"$parse_root/env"
fi
if [ -n "${DBT_PARTIAL_PARSE_FILE_PATH:-}" ]; then
  parse_note="parse: DBT_PARTIAL_PARSE_FILE_PATH set by the caller ($DBT_PARTIAL_PARSE_FILE_PATH)"
elif [ -f "$parse_root/$parse_key/partial_parse.msgpack" ]; then
  export DBT_PARTIAL_PARSE_FILE_PATH="$parse_root/$parse_key/partial_parse.msgpack"
  parse_note="parse: starting from the image's parse for ${target:-the default target}"
else
  parse_note="parse: the image has no parse for target '$parse_key'; dbt parses the project in full (list the target in the DBT_PARSE_TARGETS build argument)"
fi

state_dir="$(mktemp -d)"
if [ "$mode" = slim ]; then
  if [ -z "$state_uri" ]; then
    echo "entrypoint: slim build without a state location (DBT_STATE_URI): running a full build instead"
    mode=full
  else
    python3 /usr/local/bin/dbt_state.py get "$state_uri" "$state_dir"
    rc=$?
    if [ "$rc" -eq 3 ]; then
      echo "entrypoint: no manifest.json at $state_uri: running a full build instead"
      mode=full
    elif [ "$rc" -ne 0 ]; then
      echo "entrypoint: could not fetch state from $state_uri (exit $rc)" >&2
      exit 2
    fi
  fi
fi

# A slim run's JSON artifacts (manifest.json, run_results.json) are written twice by dbt and read by nobody (a pod's
# files vanish with it): seconds on a large project. DBT_WRITE_JSON=true keeps them.
if [ "$mode" = slim ] && [ -z "${DBT_WRITE_JSON:-}" ]; then
  export DBT_WRITE_JSON=false
  echo "entrypoint: slim: dbt's JSON artifacts are not written (DBT_WRITE_JSON=true keeps them)"
fi

args=(build)
selection=()
if [ "$mode" = slim ]; then
  if [ -n "$select_" ]; then
    for s in $select_; do selection+=("state:modified+,$s"); done
  else
    selection+=("state:modified+")
  fi
  args+=(--defer --state "$state_dir")
elif [ -n "$select_" ]; then
  read -r -a selection <<<"$select_"
fi
if [ -n "$tags" ]; then
  IFS=',' read -r -a tag_list <<<"$tags"
  if [ ${#selection[@]} -eq 0 ]; then
    for t in "${tag_list[@]}"; do selection+=("tag:$t"); done
  else
    # Tags narrow the selection: intersect each selected set with each tag.
    narrowed=()
    for s in "${selection[@]}"; do for t in "${tag_list[@]}"; do narrowed+=("$s,tag:$t"); done; done
    selection=("${narrowed[@]}")
  fi
fi
[ ${#selection[@]} -gt 0 ] && args+=(--select "${selection[@]}")
[ -n "$exclude" ] && { read -r -a ex <<<"$exclude"; args+=(--exclude "${ex[@]}"); }
[ -n "$selector" ] && args+=(--selector "$selector")
if [ -n "$resource_types" ]; then
  IFS=',' read -r -a rt <<<"$resource_types"; for r in "${rt[@]}"; do args+=(--resource-type "$r"); done
fi
if [ -n "$exclude_resource_types" ]; then
  IFS=',' read -r -a xrt <<<"$exclude_resource_types"; for r in "${xrt[@]}"; do args+=(--exclude-resource-type "$r"); done
fi
[ -n "$target" ] && args+=(--target "$target")
[ -n "$threads" ] && args+=(--threads "$threads")
[ "$fail_fast" = 1 ] && args+=(--fail-fast)
args+=("${extra[@]}")

echo "entrypoint: $parse_note"
echo "entrypoint: mode=$mode; running: dbt ${args[*]}"
[ "$dry_run" = 1 ] && exit 0

# dbt's output goes through as it comes; a copy is kept to say whether dbt had to re-parse.
output="$(mktemp)"
dbt "${args[@]}" 2>&1 | tee "$output"
rc=${PIPESTATUS[0]}
reparse="$(grep -o 'Unable to do partial parsing because.*' "$output" | head -n 1)"
if [ -n "$reparse" ]; then
  echo "entrypoint: dbt re-parsed the whole project ($reparse): the run's profile values, target, --vars or dbt_project.yml env vars differ from the build's (DBT_PARSE_ENV, DBT_PARSE_TARGETS build arguments)"
fi
rm -f "$output"
echo "entrypoint: dbt exited with $rc"
if [ "$rc" -eq 0 ] && [ "$mode" = full ] && [ "$upload_state" = 1 ]; then
  if [ -z "$state_uri" ]; then
    echo "entrypoint: --upload-state needs DBT_STATE_URI" >&2
    exit 2
  fi
  python3 /usr/local/bin/dbt_state.py put "$state_uri" target || { echo "entrypoint: state upload failed" >&2; exit 2; }
fi
exit "$rc"
