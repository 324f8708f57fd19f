#!/usr/bin/env bash
# Grade one shard of a class on a Slurm cluster: array task K of N grades part K/N.
#
#   sbatch --array=1-N slurm/grade_array.sh SUBMISSIONS OUTDIR
#
# SUBMISSIONS/<student>/<exercise>.ipynb on a shared filesystem; each array task writes
# OUTDIR/shard-K-of-N.csv (long-format gradebook) and the feedback of its students to
# OUTDIR/feedback/ (shards never share a student and exercise, see `--shard`). Submit
# slurm/merge.sh after the array (slurm/submit.sh does both). A re-submission resumes: what
# a shard already graded is skipped, grader errors are graded again.
#
# Environment: LHCBNN_PYTHON, the Python with lhcbnn installed (default: python on PATH);
# LHCBNN_GRADE_OPTIONS, extra options of `grade` (e.g. "--timeout 120 --sandbox none").
# The grader needs bubblewrap on the compute nodes, or an explicit --sandbox none.
#SBATCH --job-name=lhcbnn-grade
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=lhcbnn-grade-%A_%a.log
set -euo pipefail
submissions=${1:?usage: sbatch --array=1-N grade_array.sh SUBMISSIONS OUTDIR}
outdir=${2:?usage: sbatch --array=1-N grade_array.sh SUBMISSIONS OUTDIR}
k=${SLURM_ARRAY_TASK_ID:?submit as an array: sbatch --array=1-N ...}
n=${SLURM_ARRAY_TASK_COUNT:?submit as an array: sbatch --array=1-N ...}
if [ "${SLURM_ARRAY_TASK_MIN:-1}" != 1 ] || [ "${SLURM_ARRAY_TASK_MAX:-$n}" != "$n" ]; then
  echo "the array must be 1-N without gaps (got ${SLURM_ARRAY_TASK_MIN}-${SLURM_ARRAY_TASK_MAX}, $n tasks)" >&2
  exit 2
fi
mkdir -p "$outdir"
# shellcheck disable=SC2086 # LHCBNN_GRADE_OPTIONS is a list of options
exec "${LHCBNN_PYTHON:-python}" -m lhcbnn.grading grade "$submissions" \
  --out "$outdir/shard-$k-of-$n.csv" --feedback "$outdir/feedback" --shard "$k/$n" \
  --jobs "${SLURM_CPUS_PER_TASK:-1}" --no-progress ${LHCBNN_GRADE_OPTIONS:-}
