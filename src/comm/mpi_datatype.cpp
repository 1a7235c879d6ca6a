#include "comm/mpi_datatype.h"

#include <climits>

#include "core/error.h"
#include "comm/mpi_check.h"

namespace semskip {

MPI_Datatype mpi_element_type(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kShort: return MPI_INT16_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    // at::kBool is one byte holding 0 or 1; only moved, never reduced.
    case at::kBool: return MPI_UINT8_T;
    // No MPI type: moved as their 16 bits.
    case at::kBFloat16:
    case at::kHalf: return MPI_UINT16_T;
    default: break;
  }
  SEMSKIP_THROW_MSG("{}: tensors of dtype {} cannot be communicated (fp32, fp64, bf16, fp16, int64, int32, int16, "
                    "int8, uint8 and bool can)",
                    what, c10::toString(t));
}

MPI_Datatype mpi_reduce_type(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    default: break;
  }
  SEMSKIP_THROW_MSG("{}: cannot reduce {} tensors; reductions take fp32, fp64 or int64 (convert first, e.g. "
                    "bf16/fp16 -> fp32, bool -> int64)",
                    what, c10::toString(t));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  SEMSKIP_ASSERT(false);
  return MPI_OP_NULL;
}

MpiRowType::MpiRowType(MPI_Datatype element, int64_t row_numel) {
  SEMSKIP_THROW_IF_NOT_MSG(row_numel >= 0 && row_numel <= INT_MAX, "a row of {} elements is too wide for MPI",
                           row_numel);
  if (row_numel == 1) {
    type_ = element;
    return;
  }
  // Zero-width rows still need a valid type (counts are exchanged, no bytes move).
  SEMSKIP_MPI_CHECK(MPI_Type_contiguous(static_cast<int>(row_numel), element, &type_));
  owned_ = true;
  SEMSKIP_MPI_CHECK(MPI_Type_commit(&type_));
}

MpiRowType::~MpiRowType() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owned_ && !finalized) MPI_Type_free(&type_);
}

}  // namespace semskip
