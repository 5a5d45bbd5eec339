#!/usr/bin/env bash
# Source layering the design relies on (DESIGN.md §2), checked on the tree itself:
# - trainer/config owns the recipe's types: it includes nothing from trainer/optim (the
#   learning-rate schedule kind lives in trainer/config/lr_schedule_kind.hpp);
# - the model never reads index tensors on the host (ids, targets, positions are checked
#   and built once per micro-batch in trainer/model/batch.cpp / trainer/train/micro_batch.cpp);
# - tensor parallelism lives in parallel/tensor_parallel.*: the model calls no collective.
# Usage: layering_test.sh KILN_BINARY FIXTURES_DIR (the binary is unused).
source "$(dirname "$0")/testlib.sh"
root=$(cd "$2/../.." && pwd)

config_includes_optim() { grep -l '#include "trainer/optim/' "$root"/trainer/config/*; }
check "trainer/config includes nothing from trainer/optim" test -z "$(config_includes_optim)"

model_reads_ids() { grep -n 'index_values\|read_indices' "$root"/trainer/model/transformer.cpp; }
check "transformer.cpp reads no index tensor on the host" test -z "$(model_reads_ids)"

model_collectives() { grep -n 'all_reduce\|->tp->\|placement_\.tp->' "$root"/trainer/model/transformer.cpp; }
check "transformer.cpp calls no collective itself" test -z "$(model_collectives)"

finish
