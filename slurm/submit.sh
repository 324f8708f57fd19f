#!/usr/bin/env bash
# Grade a class on Slurm in N shards and merge them: prints the two job ids.
#
#   slurm/submit.sh SUBMISSIONS OUTDIR N [extra sbatch options, e.g. --partition=short]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
submissions=${1:?usage: submit.sh SUBMISSIONS OUTDIR N [sbatch options]}
outdir=${2:?usage: submit.sh SUBMISSIONS OUTDIR N [sbatch options]}
n=${3:?usage: submit.sh SUBMISSIONS OUTDIR N [sbatch options]}
shift 3
mkdir -p "$outdir"
submissions=$(realpath "$submissions")
outdir=$(realpath "$outdir")
array=$(sbatch --parsable --array="1-$n" --chdir="$outdir" "$@" \
  "$here/grade_array.sh" "$submissions" "$outdir")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterany:$array" --chdir="$outdir" "$@" \
  "$here/merge.sh" "$outdir" "$n")
echo "$array ${merge%%;*}"
