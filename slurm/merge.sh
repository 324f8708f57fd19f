#!/usr/bin/env bash
# Merge the shard gradebooks of slurm/grade_array.sh into OUTDIR/grades.csv and export the
# wide table and the Moodle and Canvas import files beside it.
#
#   sbatch --dependency=afterany:ARRAY_JOB_ID slurm/merge.sh OUTDIR N
#
# Fails (and says which) when a shard gradebook is missing: re-submit the array, then this.
#SBATCH --job-name=lhcbnn-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=00:10:00
#SBATCH --output=lhcbnn-merge-%j.log
set -euo pipefail
outdir=${1:?usage: merge.sh OUTDIR N}
n=${2:?usage: merge.sh OUTDIR N}
python=${LHCBNN_PYTHON:-python}
shards=()
for k in $(seq 1 "$n"); do
  shard="$outdir/shard-$k-of-$n.csv"
  [ -f "$shard" ] || { echo "missing $shard: shard $k of $n did not finish" >&2; exit 1; }
  shards+=("$shard")
done
"$python" -m lhcbnn.grading merge "${shards[@]}" --out "$outdir/grades.csv"
for format in wide moodle canvas; do
  "$python" -m lhcbnn.grading export "$outdir/grades.csv" --format "$format" \
    --out "$outdir/grades-$format.csv"
done
